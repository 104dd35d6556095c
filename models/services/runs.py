"""Commands on a case's flow run that coordinators give from monitoring:
retry a failed run, cancel a case. Figures live in monitoring.py."""

import sqlalchemy as sa
from sqlmodel import Session

from serviceplus.models import clock
from serviceplus.models.services import audit, human_tasks, monitoring, orchestration
from serviceplus.models.tables import Case, CaseStatus, HumanTask, TaskStatus
from serviceplus.settings import get_settings


def retry(session: Session, *, case: Case, actor: str) -> bool:
    if case.status != CaseStatus.failed and not _is_stuck(case) and not _run_ended(case):
        return False
    if not orchestration.retry_flow_run(case.flow_run_id):
        return False
    case.status = CaseStatus.running
    session.add(case)
    step = monitoring.step_titles(session).get(case.current_step, case.current_step or "–")
    audit.record(
        session,
        actor=actor,
        action="flow_retried",
        case_id=case.id,
        step_key=case.current_step,
        detail=f"Schritt „{step}“",
    )
    return True


def _is_stuck(case: Case) -> bool:
    """Running without a process (see orchestration.stuck_case_runs)."""
    stuck = orchestration.stuck_case_runs(get_settings().stuck_after)
    return case.flow_run_id in {str(run.id) for run in stuck}


def _run_ended(case: Case) -> bool:
    """An open case whose run ended without it: crashed more often than the
    sweeper retries, or cancelled outside ServicePLUS more often than it
    undoes that."""
    if case.status not in (CaseStatus.running, CaseStatus.waiting) or not case.flow_run_id:
        return False
    return orchestration.flow_run_state(case.flow_run_id) in ("Crashed", "Cancelled")


def cancel(session: Session, *, case: Case, actor: str, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("Bitte geben Sie einen Grund für den Abbruch an.")
    if case.status in (CaseStatus.completed, CaseStatus.cancelled):
        raise ValueError("Der Fall ist bereits abgeschlossen.")
    if case.flow_run_id:
        orchestration.cancel_flow_run(case.flow_run_id, reason)
    now = clock.now()
    session.execute(
        sa.update(HumanTask)
        .where(HumanTask.case_id == case.id, HumanTask.status.in_(human_tasks.ACTIVE))
        .values(status=TaskStatus.cancelled, cancelled_at=now)
    )
    case.status, case.outcome, case.closed_at = CaseStatus.cancelled, "cancelled", now
    session.add(case)
    audit.record(session, actor=actor, action="case_cancelled", case_id=case.id, detail=reason)
