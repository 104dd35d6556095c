"""A definition as a picture: steps as boxes in layers by distance from the
start, routes as arrows labelled with their outcome. Server-side SVG.

Titles, keys, labels and roles come from an admin's draft: every one goes
through markupsafe.escape, which also escapes quotes, so a value can never
leave the attribute or text it is put in."""

from collections import deque

from markupsafe import escape

from serviceplus.models.definition import Definition

BOX_W, BOX_H, GAP_X, GAP_Y = 190, 44, 30, 56
FILL = {"auto": "#e8f0fb", "human": "#fff4d6", "end": "#e3f4e6"}


def _layers(definition: Definition) -> dict[str, int]:
    level = {definition.start: 0}
    queue = deque([definition.start])
    while queue:
        key = queue.popleft()
        for target in definition.steps[key].targets():
            if target not in level:
                level[target] = level[key] + 1
                queue.append(target)
    for key in definition.steps:  # unreachable steps (a draft) go last
        level.setdefault(key, max(level.values()) + 1)
    return level


def _edges(definition: Definition) -> list[tuple[str, str, str]]:
    edges = []
    for key, step in definition.steps.items():
        if step.next:
            edges.append((key, step.next, ""))
        if step.skip_to:
            edges.append((key, step.skip_to, "übersprungen"))
        if isinstance(step.routes, dict):
            edges += [(key, target, outcome) for outcome, target in step.routes.items()]
        else:
            edges += [(key, r.to, "Bedingung" if r.when else "sonst") for r in step.routes]
    return edges


def render(definition: Definition) -> str:
    level = _layers(definition)
    rows: dict[int, list[str]] = {}
    for key in definition.steps:
        rows.setdefault(level[key], []).append(key)
    pos = {
        key: (20 + i * (BOX_W + GAP_X), 20 + lvl * (BOX_H + GAP_Y))
        for lvl, keys in rows.items()
        for i, key in enumerate(keys)
    }
    width = 40 + max(len(k) for k in rows.values()) * (BOX_W + GAP_X)
    height = 40 + (max(rows) + 1) * (BOX_H + GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" '
        f'aria-label="Ablauf {escape(definition.title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
    ]
    for source, target, label in _edges(definition):
        (x1, y1), (x2, y2) = pos[source], pos[target]
        ax, ay = x1 + BOX_W / 2, y1 + BOX_H
        bx, by = x2 + BOX_W / 2, y2 if y2 > y1 else y2 + BOX_H
        parts.append(
            f'<line x1="{ax}" y1="{ay}" x2="{bx}" y2="{by}" stroke="#333" '
            f'marker-end="url(#arrow)"/>'
        )
        if label:
            parts.append(
                f'<text x="{(ax + bx) / 2 + 4}" y="{(ay + by) / 2}" font-size="11" '
                f'fill="#333">{escape(label)}</text>'
            )
    for key, step in definition.steps.items():
        x, y = pos[key]
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{escape(FILL[step.kind])}" stroke="#16406f"/>'
        )
        parts.append(
            f'<text x="{x + 8}" y="{y + 18}" font-size="12" font-weight="bold" '
            f'fill="#1a1a1a">{escape(key)}</text>'
        )
        acting = "|".join(r.to for r in step.organisation_routes) or step.organisation
        who = {"auto": "automatisch", "end": "Ende"}.get(step.kind, f"{acting}/{step.role}")
        parts.append(
            f'<text x="{x + 8}" y="{y + 34}" font-size="11" fill="#1a1a1a">'
            f"{escape(who)}{' · 4 Augen' if step.four_eyes else ''}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
