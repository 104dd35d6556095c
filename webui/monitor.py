"""Coordinators: figures, due work, case timelines, incidents, retry and cancel.
Figures come from our tables, precomputed (models/services/overview.py); run
states and incidents from Prefect."""

from dataclasses import dataclass

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlmodel import select

from serviceplus import spreadsheet
from serviceplus.models import clock
from serviceplus.models.services import (
    cases,
    coordination,
    human_tasks,
    monitoring,
    orchestration,
    overview,
    runs,
    versions,
)
from serviceplus.models.tables import Case, CaseStatus, Organisation, Role
from serviceplus.settings import get_settings
from serviceplus.webui import charts, diagram, formatting, labels
from serviceplus.webui.auth import roles_required
from serviceplus.webui.db import get_db
from serviceplus.webui.forms import CsrfForm

bp = Blueprint("monitor", __name__, url_prefix="/monitor")
bp.add_app_template_global(formatting.number, "de_number")
bp.add_app_template_global(formatting.percent, "de_percent")
bp.add_app_template_global(formatting.duration, "de_duration")
bp.add_app_template_global(labels.case_outcome)
bp.add_app_template_global(labels.flow_run_state, "run_state_label")


@dataclass(frozen=True)
class Figure:
    """A table of the overview: its title and columns as (heading, kind); its
    rows come from overview.FIGURES (same name). The kind says how a value
    reads: text, step, role, week, count, percent or days."""

    title: str
    columns: list[tuple[str, str]]


FIGURES = {
    "cases_by_step": Figure(
        "Offene Fälle nach Schritt",
        [("Schritt", "step"), ("Fälle", "count")],
    ),
    "open_tasks": Figure(
        "Offene Aufgaben nach Stelle",
        [("Organisation", "text"), ("Rolle", "role"), ("offen", "count"), ("überfällig", "count")],
    ),
    "compliance_30": Figure(
        "Fristtreue, letzte 30 Tage",
        [("Schritt", "step"), ("erledigt", "count"), ("in Frist", "percent")],
    ),
    "compliance_90": Figure(
        "Fristtreue, letzte 90 Tage",
        [("Schritt", "step"), ("erledigt", "count"), ("in Frist", "percent")],
    ),
    "step_cycle": Figure(
        "Bearbeitungszeit je Schritt",
        [("Schritt", "step"), ("Anzahl", "count"), ("Median", "days"), ("90. Perzentil", "days")],
    ),
    "case_cycle": Figure(
        "Durchlaufzeit je Fall",
        [("abgeschlossene Fälle", "count"), ("Median", "days"), ("90. Perzentil", "days")],
    ),
    "weekly": Figure(
        "Fälle je Woche",
        [("Woche", "week"), ("begonnen", "count"), ("abgeschlossen", "count")],
    ),
    "bottlenecks": Figure(
        "Engpässe",
        [
            ("Schritt", "step"),
            ("Organisation", "text"),
            ("Rolle", "role"),
            ("wartend", "count"),
            ("Median", "days"),
            ("längste", "days"),
        ],
    ),
}


# The late-work list shows this many rows, the most overdue first; the
# counts above it cover all.
DUE_LIST_LIMIT = 100


def _snapshot():
    return overview.current(get_db(), current_user.row.organisation_id)


def _rows(name: str, snapshot=None) -> list[tuple]:
    return (snapshot or _snapshot()).figures["tables"][name]


def _shown(kind: str, value, titles: dict[str, str]) -> str:
    """A cell as the page shows it."""
    if value is None:
        return "–"
    return {
        "step": lambda: titles.get(value, value),
        "role": lambda: labels.role(value),
        "week": lambda: formatting.week(value),
        "count": lambda: formatting.number(value),
        "percent": lambda: formatting.percent(value),
        "days": lambda: formatting.duration(value),
    }.get(kind, lambda: str(value))()


def _exported(kind: str, value, titles: dict[str, str]):
    """A cell as a download holds it: labels as text, figures as numbers
    (durations in hours, so that short ones do not read 0)."""
    if value is None or kind in ("count", "percent", "text"):
        return value
    if kind == "days":
        return round(value * 24, 1)
    return _shown(kind, value, titles)


def _cells(figure: Figure, row: tuple, convert, titles: dict[str, str]) -> tuple:
    return tuple(convert(k, v, titles) for (_, k), v in zip(figure.columns, row, strict=True))


def _export_headings(figure: Figure) -> list[str]:
    suffix = {"days": " (Stunden)", "percent": " (%)"}
    return [heading + suffix.get(kind, "") for heading, kind in figure.columns]


def _step_titles() -> dict[str, str]:
    return monitoring.step_titles(get_db())


@bp.get("/")
@roles_required(Role.coordinator)
def index():
    session, org_id = get_db(), current_user.row.organisation_id
    titles = _step_titles()
    snapshot = _snapshot()
    figures = snapshot.figures
    tables = {
        name: (figure, [_cells(figure, row, _shown, titles) for row in _rows(name, snapshot)])
        for name, figure in FIGURES.items()
    }
    by_step = [(titles.get(step, step), n) for step, n in _rows("cases_by_step", snapshot)]
    due = monitoring.due_work(
        session, org_id, clock.now(), get_settings().soon_due, limit=DUE_LIST_LIMIT
    )
    return render_template(
        "monitor/index.html",
        tables=tables,
        by_step=by_step,
        stand=snapshot.computed_at,
        figures=figures,
        due=due,
        due_limit=DUE_LIST_LIMIT,
        due_by_person=[
            (_person(*group), late, soon) for *group, late, soon in figures["due_by_person"]
        ],
        due_by_body=figures["due_by_body"],
        titles=titles,
        own_org=org_id,
        people=coordination.candidates(session, org_id),
        csrf_form=CsrfForm(),
        trends=_trends(titles, figures),
    )


def _trends(titles: dict[str, str], figures: dict) -> dict:
    """The three trend charts with the figures they draw."""
    weekly = figures["tables"]["weekly"]
    week_labels = [formatting.week(w) for w, _, _ in weekly]
    started = {"begonnen": [s for _, s, _ in weekly], "abgeschlossen": [c for _, _, c in weekly]}
    weeks = figures["compliance_trend"]["weeks"]
    by_step = figures["compliance_trend"]["by_step"]
    compliance = {titles.get(step, step): values for step, values in by_step.items()}
    counts = figures["cycle_distribution"]
    bins = [f"{i}–{i + 1}" for i in range(len(counts) - 1)] + [f"ab {len(counts) - 1}"]
    return {
        "throughput": charts.lines("Fälle je Woche", week_labels, started),
        "compliance": charts.lines(
            "Fristtreue je Schritt und Woche",
            [formatting.week(w) for w in weeks],
            compliance,
            top=100,
            suffix=" %",
        ),
        "compliance_rows": [
            (name, [formatting.percent(v) for v in values]) for name, values in compliance.items()
        ],
        "compliance_weeks": [formatting.week(w) for w in weeks],
        "cycle": charts.histogram("Durchlaufzeit abgeschlossener Fälle", bins, counts),
        "cycle_rows": list(zip(bins, counts, strict=True)),
    }


def _person(name: str, role: str, organisation: str) -> str:
    """A group of late work: the person's full name, or, for tasks nobody
    has taken, the role and body that should take them."""
    if name:
        return name
    return f"nicht übernommen ({labels.role(role)}, {organisation})"


@bp.get("/figures/<name>.<any(csv, xlsx):fmt>")
@roles_required(Role.coordinator)
def figure_download(name: str, fmt: str):
    figure = FIGURES.get(name) or abort(404)
    titles = _step_titles()
    rows = [_cells(figure, row, _exported, titles) for row in _rows(name)]
    headings = _export_headings(figure)
    if fmt == "csv":
        body, mimetype = spreadsheet.csv_bytes(headings, rows), "text/csv; charset=utf-8"
    else:
        body, mimetype = (
            spreadsheet.xlsx_bytes(figure.title, headings, rows),
            spreadsheet.XLSX_MIMETYPE,
        )
    disposition = f"attachment; filename={name}.{fmt}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": disposition})


@bp.get("/cases")
@roles_required(Role.coordinator)
def case_list():
    status, q = request.args.get("status", ""), request.args.get("q", "").strip()[:100]
    rows = monitoring.case_list(get_db(), current_user.row.organisation_id, status, q)
    return render_template(
        "monitor/cases.html", cases=rows, status=status, q=q, titles=_step_titles()
    )


def _own_case_or_404(reference: str) -> Case:
    case = cases.get_by_reference(get_db(), reference)
    if case is None or case.organisation_id != current_user.row.organisation_id:
        abort(404)
    return case


@bp.get("/cases/<reference>")
@roles_required(Role.coordinator)
def case_detail(reference: str):
    case = _own_case_or_404(reference)
    try:
        run_state, stuck = runs.retry_facts(case)
    except Exception:  # Prefect unreachable: the page still shows our figures
        run_state, stuck = "nicht erreichbar", False
    steps = monitoring.timeline(get_db(), case)
    return render_template(
        "monitor/case.html",
        case=case,
        steps=steps,
        picture=_case_picture(case, steps),
        titles=_step_titles(),
        run_state=run_state,
        can_retry=runs.can_retry(case, run_state, stuck),
        run_url=orchestration.prefect_ui_url(case.flow_run_id) if case.flow_run_id else None,
        refused=monitoring.refused_resumes(get_db(), case),
        outside_cancels=monitoring.outside_cancels(get_db(), case),
        csrf_form=CsrfForm(),
    )


def _back_to_overview():
    return redirect(url_for("monitor.index") + "#due-h")


@bp.post("/tasks/<int:task_id>/reassign")
@roles_required(Role.coordinator)
def reassign(task_id: int):
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    try:
        task = coordination.reassign(
            session,
            coordinator=current_user.row,
            task_id=task_id,
            to=request.form.get("to", ""),
            seen_assignee=request.form.get("seen") or None,
        )
        session.commit()
        flash(f"Die Aufgabe „{task.title}“ ist jetzt bei {task.assignee}.", "success")
    except human_tasks.TaskError as exc:
        session.rollback()
        flash(str(exc), "error")
    return _back_to_overview()


@bp.post("/tasks/<int:task_id>/priority")
@roles_required(Role.coordinator)
def priority(task_id: int):
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    try:
        task = coordination.set_priority(
            session,
            coordinator=current_user.row,
            task_id=task_id,
            priority=request.form.get("priority", type=int, default=-1),
        )
        session.commit()
        flash(f"Priorität von „{task.title}“: {'hoch' if task.priority else 'normal'}.", "success")
    except human_tasks.TaskError as exc:
        session.rollback()
        flash(str(exc), "error")
    return _back_to_overview()


def _case_picture(case: Case, steps: list[dict]) -> Markup:
    """The definition's diagram with the path this case took drawn bold."""
    session = get_db()
    path: list[str] = []
    for row in steps:
        step = human_tasks.step_of(row["step_key"])
        if not path or path[-1] != step:
            path.append(step)
    definition = versions.load(session, case.definition_name, case.definition_version)
    organisations = dict(session.exec(select(Organisation.slug, Organisation.name)).all())
    return Markup(diagram.render(definition, organisations, path, case.current_step))


@bp.get("/incidents")
@roles_required(Role.coordinator)
def incidents():
    try:
        rows, error = monitoring.incidents(get_db(), current_user.organisation.slug), None
        for row in rows:
            row["can_retry"] = runs.can_retry(row["case"], row["state"], row["stuck"])
    except Exception:
        rows, error = [], "Die Prozesssteuerung ist nicht erreichbar."
    return render_template(
        "monitor/incidents.html",
        incidents=rows,
        error=error,
        titles=_step_titles(),
        csrf_form=CsrfForm(),
    )


@bp.post("/cases/<reference>/retry")
@roles_required(Role.coordinator)
def retry(reference: str):
    case = _own_case_or_404(reference)
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    if runs.retry(session, case=case, actor=current_user.row.username):
        session.commit()
        flash("Der Fall wird ab dem fehlgeschlagenen Schritt fortgesetzt.", "success")
    else:
        flash("Nur Fälle mit Störung können erneut gestartet werden.", "error")
    return redirect(url_for("monitor.case_detail", reference=reference))


@bp.post("/cases/<reference>/cancel")
@roles_required(Role.coordinator)
def cancel(reference: str):
    """Two steps: the first post shows what cancelling does and asks again;
    only the post from that page (confirmed=yes) cancels."""
    case = _own_case_or_404(reference)
    if not CsrfForm().validate_on_submit():
        abort(400)
    reason = request.form.get("reason", "").strip()[:2000]
    if case.status in (CaseStatus.completed, CaseStatus.cancelled):
        flash("Der Fall ist bereits abgeschlossen.", "error")
        return redirect(url_for("monitor.case_detail", reference=reference))
    if not reason:
        flash("Bitte geben Sie einen Grund für den Abbruch an.", "error")
        return redirect(url_for("monitor.case_detail", reference=reference))
    if request.form.get("confirmed") != "yes":
        open_tasks = [
            s for s in monitoring.timeline(get_db(), case) if s["task_id"] and not s["end"]
        ]
        return render_template(
            "monitor/cancel.html",
            case=case,
            reason=reason,
            open_tasks=open_tasks,
            csrf_form=CsrfForm(),
        )
    session = get_db()
    try:
        runs.cancel(session, case=case, actor=current_user.row.username, reason=reason)
        session.commit()
        flash("Der Fall wurde abgebrochen.", "success")
    except ValueError as exc:
        session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("monitor.case_detail", reference=reference))
