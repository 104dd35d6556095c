"""Coordinators: figures, case timelines, incidents, retry and cancel.
Figures come from our tables; run states and incidents from Prefect."""

import csv
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from serviceplus.models import clock
from serviceplus.models.services import cases, monitoring, orchestration
from serviceplus.models.tables import Case, Role
from serviceplus.webui.auth import roles_required
from serviceplus.webui.db import get_db
from serviceplus.webui.inbox import CsrfForm

bp = Blueprint("monitor", __name__, url_prefix="/monitor")

# name: (German title, column headings, function(session, org_id, now) -> rows)
FIGURES = {
    "cases_by_step": (
        "Offene Fälle nach Schritt",
        ["Schritt", "Fälle"],
        lambda s, o, now: monitoring.cases_by_step(s, o),
    ),
    "open_tasks": (
        "Offene Aufgaben nach Rolle",
        ["Organisation", "Rolle", "offen", "überfällig"],
        monitoring.open_tasks_by_role,
    ),
    "compliance_30": (
        "Fristtreue, letzte 30 Tage",
        ["Schritt", "erledigt", "in Frist (%)"],
        lambda s, o, now: monitoring.compliance(s, o, now, 30),
    ),
    "compliance_90": (
        "Fristtreue, letzte 90 Tage",
        ["Schritt", "erledigt", "in Frist (%)"],
        lambda s, o, now: monitoring.compliance(s, o, now, 90),
    ),
    "step_cycle": (
        "Bearbeitungszeit je Schritt (Tage)",
        ["Schritt", "Anzahl", "Median", "90. Perzentil"],
        lambda s, o, now: monitoring.step_cycle_times(s, o),
    ),
    "case_cycle": (
        "Durchlaufzeit je Fall (Tage)",
        ["abgeschlossene Fälle", "Median", "90. Perzentil"],
        lambda s, o, now: [monitoring.case_cycle_times(s, o)],
    ),
    "weekly": (
        "Fälle je Woche",
        ["Woche", "begonnen", "abgeschlossen"],
        monitoring.weekly_throughput,
    ),
    "bottlenecks": (
        "Engpässe",
        ["Schritt", "Organisation", "Rolle", "wartend", "Median (Tage)", "längste (Tage)"],
        monitoring.bottlenecks,
    ),
}


def _figure(name: str) -> tuple[str, list[str], list[tuple]]:
    title, headings, compute = FIGURES[name]
    return title, headings, compute(get_db(), current_user.row.organisation_id, clock.now())


@bp.get("/")
@roles_required(Role.coordinator)
def index():
    figures = {name: _figure(name) for name in FIGURES}
    return render_template("monitor/index.html", figures=figures)


@bp.get("/figures/<name>.csv")
@roles_required(Role.coordinator)
def figure_csv(name: str):
    if name not in FIGURES:
        abort(404)
    _title, headings, rows = _figure(name)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headings)
    writer.writerows(rows)
    disposition = f"attachment; filename={name}.csv"
    return Response(
        out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": disposition}
    )


@bp.get("/cases")
@roles_required(Role.coordinator)
def case_list():
    status, q = request.args.get("status", ""), request.args.get("q", "").strip()[:100]
    rows = monitoring.case_list(get_db(), current_user.row.organisation_id, status, q)
    return render_template("monitor/cases.html", cases=rows, status=status, q=q)


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
        run_state = orchestration.flow_run_state(case.flow_run_id) if case.flow_run_id else None
    except Exception:  # Prefect unreachable: the page still shows our figures
        run_state = "nicht erreichbar"
    return render_template(
        "monitor/case.html",
        case=case,
        steps=monitoring.timeline(get_db(), case),
        run_state=run_state,
        run_url=orchestration.prefect_ui_url(case.flow_run_id) if case.flow_run_id else None,
        csrf_form=CsrfForm(),
    )


@bp.get("/incidents")
@roles_required(Role.coordinator)
def incidents():
    try:
        rows, error = monitoring.incidents(get_db(), current_user.organisation.slug), None
    except Exception:
        rows, error = [], "Die Prozesssteuerung ist nicht erreichbar."
    return render_template(
        "monitor/incidents.html", incidents=rows, error=error, csrf_form=CsrfForm()
    )


@bp.post("/cases/<reference>/retry")
@roles_required(Role.coordinator)
def retry(reference: str):
    case = _own_case_or_404(reference)
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    if monitoring.retry(session, case=case, actor=current_user.row.username):
        session.commit()
        flash("Der Fall wird ab dem fehlgeschlagenen Schritt fortgesetzt.", "success")
    else:
        flash("Nur Fälle mit Störung können erneut gestartet werden.", "error")
    return redirect(url_for("monitor.case_detail", reference=reference))


@bp.post("/cases/<reference>/cancel")
@roles_required(Role.coordinator)
def cancel(reference: str):
    case = _own_case_or_404(reference)
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    try:
        monitoring.cancel(
            session,
            case=case,
            actor=current_user.row.username,
            reason=request.form.get("reason", ""),
        )
        session.commit()
        flash("Der Fall wurde abgebrochen.", "success")
    except ValueError as exc:
        session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("monitor.case_detail", reference=reference))
