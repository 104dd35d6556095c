"""The partners' overview (role `network`): figures across all authorities,
no personal data; charts drawn on the server and CSV for German Excel."""

from flask import Blueprint, Response, abort, render_template

from serviceplus import spreadsheet
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


@bp.get("/figures/<name>.<any(csv, xlsx):fmt>")
@roles_required(Role.network)
def figure_download(name: str, fmt: str):
    """One figure as a file for German Excel, made like the coordinators' downloads."""
    if name not in FIGURES:
        abort(404)
    title, headings, compute, _chart = FIGURES[name]
    rows = compute(get_db())
    if fmt == "csv":
        body, mimetype = spreadsheet.csv_bytes(headings, rows), "text/csv; charset=utf-8"
    else:
        body, mimetype = spreadsheet.xlsx_bytes(title, headings, rows), spreadsheet.XLSX_MIMETYPE
    disposition = f"attachment; filename=netzwerk-{name}.{fmt}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": disposition})
