"""Commands on a case's flow run that coordinators give from monitoring:
retry a failed run, cancel a case. Figures live in monitoring.py."""

import sqlalchemy as sa
from sqlmodel import Session

from serviceplus.models import clock
from serviceplus.models.services import audit, human_tasks, monitoring, orchestration
from serviceplus.models.tables import OPEN_CASE, Case, CaseStatus, HumanTask, TaskStatus
from serviceplus.settings import get_settings


def can_retry(case: Case, run_state: str | None, stuck: bool = False) -> bool:
    """The rule for "Erneut versuchen", on the case page, the incidents page
    and in `retry`: the case failed; or its run lost its process (`stuck`,
    see orchestration.stuck_case_runs); or its run ended without the case:
    crashed more often than the sweeper retries, cancelled outside
    ServicePLUS more often than it undoes that, or failed while the database
    was away so that the case could not be marked (`run_state`, Prefect's name)."""
    if case.status == CaseStatus.failed or stuck:
        return True
    return case.status in OPEN_CASE and run_state in ("Crashed", "Cancelled", "Failed")


def retry_facts(case: Case) -> tuple[str | None, bool]:
    """What `can_retry` needs from Prefect: the run's state name, and whether
    a Running or Pending run lost its process (asked only then: it reads
    every stuck run)."""
    if not case.flow_run_id:
        return None, False
    run_state = orchestration.flow_run_state(case.flow_run_id)
    return run_state, run_state in ("Running", "Pending") and is_stuck(case)


def retry(session: Session, *, case: Case, actor: str) -> bool:
    if not can_retry(case, *retry_facts(case)):
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


def is_stuck(case: Case) -> bool:
    """Running without a process (see orchestration.stuck_case_runs)."""
    if case.status not in OPEN_CASE or not case.flow_run_id:
        return False
    stuck = orchestration.stuck_case_runs(get_settings().stuck_after)
    return case.flow_run_id in {str(run.id) for run in stuck}


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
