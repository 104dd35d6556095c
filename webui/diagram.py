"""A definition as a picture, laid out by Graphviz (`dot`, Debian package
graphviz, through the Python `graphviz` library) and rendered to SVG: boxes
with the steps' German titles and who acts, arrows labelled with the German
option labels, no overlaps. On a case's page the path it took is drawn
bold and the step it stands at is marked.

Titles and labels come from an admin's draft: each is passed as plain text
(`nohtml`, backslashes dropped) and `dot` escapes it in the SVG it writes,
except an ampersand: `dot` copies whatever looks like an entity ("&x;", even
"&;") as it is, which breaks the SVG. So `dot` never sees one: a stand-in
goes in, and `&amp;` replaces it in the SVG."""

from functools import lru_cache

import graphviz
from markupsafe import escape

from serviceplus.models.definition import Definition, Step
from serviceplus.webui import labels

FILL = {"auto": "#e8f0fb", "human": "#fff4d6", "end": "#e3f4e6"}
PATH_COLOUR, CURRENT_FILL = "#0b4f9c", "#ffd966"
AMPERSAND = "\ufdd0"  # a noncharacter: no text means it; dropped where it comes in


def _text(value: str) -> graphviz.nohtml:
    plain = value.replace("\\", "").replace(AMPERSAND, "")
    return graphviz.nohtml(plain.replace("&", AMPERSAND))


def _who(step: Step, organisations: dict[str, str]) -> str:
    if step.kind == "auto":
        return "automatisch"
    if step.kind == "end":
        return "Ende"
    slugs = [r.to for r in step.organisation_routes] or [step.organisation]
    names = [
        organisations.get(slug, "Ausländerbehörde des Falls" if slug == "case" else slug)
        for slug in slugs
    ]
    who = f"{' / '.join(names)}, {labels.role(step.role or '')}"
    return who + (", Vier-Augen-Prinzip" if step.four_eyes else "")


def _outcome(step: Step, outcome: str) -> str:
    option = step.option(outcome)
    if option:
        return option.label
    if step.on_timeout and step.on_timeout.outcome == outcome:
        return "bei Fristablauf"
    return labels.step_outcome(outcome)


def _edges(definition: Definition) -> list[tuple[str, str, str]]:
    edges = []
    for key, step in definition.steps.items():
        if step.next:
            edges.append((key, step.next, ""))
        if step.skip_to:
            edges.append((key, step.skip_to, "übersprungen"))
        if isinstance(step.routes, dict):
            edges += [(key, t, _outcome(step, o)) for o, t in step.routes.items()]
        else:
            edges += [(key, r.to, "wenn Bedingung" if r.when else "sonst") for r in step.routes]
    return edges


def source(
    definition: Definition,
    organisations: dict[str, str] | None = None,
    path: list[str] | None = None,
    current: str | None = None,
) -> str:
    """The DOT text; `path` is the case's visited steps in order."""
    organisations = organisations or {}
    visited = set(path or [])
    taken = set(zip(path or [], (path or [])[1:], strict=False))
    graph = graphviz.Digraph(name=_text(definition.title).replace('"', ""))
    graph.attr(rankdir="TB", nodesep="0.35", ranksep="0.45", fontname="DejaVu Sans")
    graph.attr("node", shape="box", style="rounded,filled", fontname="DejaVu Sans", fontsize="11")
    graph.attr("edge", fontname="DejaVu Sans", fontsize="9", color="#555555")
    for key, step in definition.steps.items():
        label = f"{step.title}\n{_who(step, organisations)}"
        looks = {"fillcolor": FILL[step.kind], "color": "#16406f"}
        if key in visited:
            looks |= {"color": PATH_COLOUR, "penwidth": "2.5"}
        if key == current:
            looks["fillcolor"] = CURRENT_FILL
        graph.node(key, _text(label), tooltip=_text(step.title), **looks)
    for tail, head, label in _edges(definition):
        extra = {"color": PATH_COLOUR, "penwidth": "2.5"} if (tail, head) in taken else {}
        graph.edge(tail, head, _text(label), **extra)
    return graph.source


@lru_cache(maxsize=256)
def _svg(dot_source: str) -> str:
    svg = graphviz.pipe("dot", "svg", dot_source.encode("utf-8")).decode("utf-8")
    svg = svg.replace(AMPERSAND, "&amp;")
    return svg[svg.index("<svg") :]  # without the XML declaration and doctype


def render(
    definition: Definition,
    organisations: dict[str, str] | None = None,
    path: list[str] | None = None,
    current: str | None = None,
) -> str:
    """The SVG, ready to put into a page; a German note if `dot` is missing."""
    try:
        svg = _svg(source(definition, organisations, path, current))
    except graphviz.ExecutableNotFound:
        return "<p>Das Diagramm kann nicht gezeichnet werden: Graphviz fehlt (Paket graphviz).</p>"
    what = f"Ablauf {definition.title}" + (", Weg des Falls hervorgehoben" if path else "")
    return svg.replace("<svg", f'<svg class="diagram" role="img" aria-label="{escape(what)}"', 1)
