"""The definition diagram: Graphviz layout, German titles, no overlapping
boxes, a case's path highlighted, draft text escaped."""

import re
from itertools import combinations

from serviceplus.models.definition import parse_definition
from serviceplus.models.services import versions
from serviceplus.webui import diagram

V1 = (versions.SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")


def _boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    """Each step's box (x0, y0, x1, y1) from the SVG that dot wrote."""
    boxes = {}
    for key, shape in re.findall(
        r'<g id="node\d+" class="node">\s*<title>([^<]*)</title>.*?<path[^>]* d="([^"]+)"',
        svg,
        re.S,
    ):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", shape)]
        xs, ys = numbers[0::2], numbers[1::2]
        boxes[key] = (min(xs), min(ys), max(xs), max(ys))
    return boxes


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_german_titles_and_no_overlapping_boxes():
    definition = parse_definition(V1)
    svg = diagram.render(definition, {"ba": "Bundesagentur für Arbeit"})
    assert svg.startswith('<svg class="diagram" role="img"')
    assert "Zustimmung der Bundesagentur für Arbeit" in svg and "Sachbearbeitung" in svg
    assert ">clerk<" not in svg and ">ba_approval<" not in svg.replace("<title>ba_approval", "")
    boxes = _boxes(svg)
    assert set(boxes) == set(definition.steps)
    assert not [(a, b) for a, b in combinations(boxes, 2) if _overlap(boxes[a], boxes[b])]
    assert "vollständig" in svg and "Zustimmung versagen" in svg  # arrows in German


def test_path_of_a_case_is_highlighted():
    definition = parse_definition(V1)
    path = ["intake", "fee_notice", "completeness", "decision"]
    svg = diagram.render(definition, path=path, current="decision")
    assert "Weg des Falls hervorgehoben" in svg
    # four boxes, and two arrows taken (intake → fee_notice → completeness), each a line and a head
    assert svg.count('stroke-width="2.5"') == 4 + 2 * 2
    decision = svg[svg.index("<title>decision</title>") :]
    assert 'fill="#ffd966"' in decision[: decision.index("</g>")]


def test_draft_text_cannot_break_out_of_the_picture():
    evil = V1.replace("title: Eingang bestätigen", 'title: "<script>x</script>\\\\l"', 1)
    svg = diagram.render(parse_definition(evil))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
