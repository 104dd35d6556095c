"""The partners' overview (role `network`): figures across all authorities,
no personal data; charts drawn on the server and CSV for German Excel."""

import csv
import io

from flask import Blueprint, Response, abort, render_template

from serviceplus.models.services import network
from serviceplus.models.tables import Role
from serviceplus.webui.auth import roles_required
from serviceplus.webui.db import get_db

bp = Blueprint("network", __name__, url_prefix="/network")

# name: (German title, column headings, function(session) -> rows,
#        (label column, value column) of the chart or None)
FIGURES = {
    "cases_by_step": (
        "Offene Fälle nach Behörde und Schritt",
        ["Behörde", "Schritt", "Fälle"],
        network.cases_by_authority_and_step,
        None,
    ),
    "deadlines": (
        "Fristtreue je Stelle",
        ["Stelle", "erledigt mit Frist", "in Frist", "in Frist (%)"],
        network.deadlines_met,
        (0, 3),
    ),
    "incomplete": (
        "Unvollständig eingegangene Anträge, mit und ohne Vorprüfung",
        ["Behörde", "Vorprüfung", "geprüft", "unvollständig", "unvollständig (%)"],
        network.incomplete_at_intake,
        None,
    ),
    "deemed": (
        "Zustimmungsfiktionen (Fristablauf) je Behörde",
        ["Behörde", "Anzahl"],
        network.deemed_approvals,
        (0, 1),
    ),
    "preapproval_days": (
        "Tage von vollständigen Unterlagen bis zur Vorabzustimmung",
        ["Behörde", "Fälle", "Median", "90. Perzentil"],
        network.days_to_preapproval,
        (0, 2),
    ),
    "prechecks": (
        "Vorprüfungen und Übergaben je Beratungsstelle",
        ["Beratungsstelle", "Vorprüfungen", "übergeben"],
        network.prechecks_by_adviser,
        (0, 1),
    ),
}


def chart_rows(rows: list[tuple], chart: tuple[int, int] | None) -> list[tuple]:
    """(label, value) pairs for the bar chart; rows without a value are left out."""
    if chart is None:
        label = lambda r: " · ".join(str(x) for x in r[:-1])  # noqa: E731
        return [(label(r), r[-1]) for r in rows]
    return [(r[chart[0]], r[chart[1]]) for r in rows if r[chart[1]] is not None]


@bp.get("/")
@roles_required(Role.network)
def index():
    session = get_db()
    figures = {}
    for name, (title, headings, compute, chart) in FIGURES.items():
        rows = compute(session)
        figures[name] = (title, headings, rows, chart_rows(rows, chart))
    return render_template("network/index.html", figures=figures)


def german(value) -> str:
    """A cell as German Excel reads it: decimal comma, empty for none."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


@bp.get("/figures/<name>.csv")
@roles_required(Role.network)
def figure_csv(name: str):
    if name not in FIGURES:
        abort(404)
    _title, headings, compute, _chart = FIGURES[name]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(headings)
    writer.writerows([german(v) for v in row] for row in compute(get_db()))
    # The byte order mark makes Excel read UTF-8 (umlauts) instead of ANSI.
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename=netzwerk-{name}.csv"},
    )
