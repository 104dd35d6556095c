"""Trend charts as server-rendered SVG (no script, no library): lines over
weeks and a histogram. Every label goes through markupsafe.escape, because
step titles come from an admin's definition. Each chart sits next to a
table of the same figures, for screen readers and for exact values."""

from markupsafe import Markup, escape

from serviceplus.webui import formatting

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 44, 36, 12
PALETTE = ["#0b4f9c", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490", "#be123c"]


def _nice_top(largest: float) -> float:
    """A top of the value axis whose four grid steps are whole numbers."""
    return max(4, -(-largest // 4) * 4)


def _frame(title: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="{escape(title)}" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}">'
    ]


def _axes(parts: list[str], x_labels: list[str], top: float, suffix: str) -> None:
    plot_w, base = WIDTH - LEFT - 10, HEIGHT - BOTTOM
    for i in range(5):  # horizontal grid with values
        y = base - i * (base - TOP) / 4
        value = formatting.number(top * i / 4)
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - 10}" y2="{y}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4}" font-size="10" text-anchor="end" '
            f'fill="#333">{value}{escape(suffix)}</text>'
        )
    step = plot_w / max(1, len(x_labels))
    for i, label in enumerate(x_labels):
        if i % max(1, len(x_labels) // 6) == 0:
            parts.append(
                f'<text x="{LEFT + step * (i + 0.5)}" y="{base + 14}" font-size="10" '
                f'text-anchor="middle" fill="#333">{escape(label)}</text>'
            )


def lines(
    title: str,
    x_labels: list[str],
    series: dict[str, list[float | None]],
    top: float | None = None,
    suffix: str = "",
) -> Markup:
    """One line per series over the x labels; None leaves a gap."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = top or _nice_top(max(values, default=0))
    legend_rows = (len(series) + 2) // 3
    parts = _frame(title, HEIGHT + 18 * legend_rows)
    _axes(parts, x_labels, top, suffix)
    step, base = (WIDTH - LEFT - 10) / max(1, len(x_labels)), HEIGHT - BOTTOM
    for n, (name, vs) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = [
            (LEFT + step * (i + 0.5), base - (v / top) * (base - TOP))
            for i, v in enumerate(vs)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
        lx, ly = LEFT + (n % 3) * 200, HEIGHT + 18 * (n // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{lx + 14}" y="{ly}" font-size="11" fill="#1a1a1a">{escape(name[:30])}</text>'
        )
    parts.append("</svg>")
    return Markup("\n".join(parts))


def histogram(title: str, x_labels: list[str], counts: list[int]) -> Markup:
    top = _nice_top(max(counts, default=0))
    parts = _frame(title, HEIGHT)
    _axes(parts, x_labels, top, "")
    step, base = (WIDTH - LEFT - 10) / max(1, len(x_labels)), HEIGHT - BOTTOM
    for i, count in enumerate(counts):
        height = (count / top) * (base - TOP)
        parts.append(
            f'<rect x="{LEFT + step * i + 2:.1f}" y="{base - height:.1f}" '
            f'width="{step - 4:.1f}" height="{height:.1f}" fill="#0b4f9c"/>'
        )
    parts.append("</svg>")
    return Markup("\n".join(parts))
