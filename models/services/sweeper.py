"""The sweeper: acts on passed deadlines and delivers what could not be
delivered at once, including the mails of the outbox; it also keeps the
coordinators' overview figures fresh.

A decision saved while Prefect was down, or a case saved while its flow
could not be started, is finished here; overdue tasks get their definition's
on-timeout rule. Called by the scheduled `sweeper` deployment and by
`serviceplus sweep`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import (
    audit,
    cases,
    deadlines,
    human_tasks,
    mail,
    orchestration,
    overview,
)
from serviceplus.settings import get_settings

MAX_CRASH_RETRIES = 3


@dataclass
class SweepReport:
    stuck_crashed: int = 0
    cancels_undone: int = 0
    crashed_retried: int = 0
    deadlines: int = 0
    resumed: int = 0
    resume_pending: int = 0
    started: int = 0
    start_pending: int = 0
    digests: int = 0
    mails_sent: int = 0
    mails_pending: int = 0
    overviews: int = 0


# NO_LOCK_ACROSS_PREFECT: each loop below calls Prefect once per item, and
# commits what it wrote before the next call. On SQLite a write holds the
# database's one write lock until commit, and a call to a Prefect server that
# went away takes about a minute (its client retries with back-off), so
# every other writer, a clerk's login too, failed with "database is locked".


def sweep(
    now: datetime | None = None,
    grace: timedelta = timedelta(seconds=5),
    stuck_after: timedelta | None = None,
) -> SweepReport:
    """`grace` leaves fresh rows to the request that created them; runs that
    lost their process are found by wall-clock time (`stuck_after`, default
    the setting), whatever `now` says about deadlines."""
    now = now or clock.now()
    report = SweepReport()
    with session_scope() as session:
        if stuck_after is None:
            stuck_after = get_settings().stuck_after
        report.stuck_crashed = _crash_stuck(session, stuck_after)
    with session_scope() as session:
        report.cancels_undone = _undo_outside_cancels(session, grace)
    with session_scope() as session:
        report.crashed_retried = _retry_crashed(session)
    with session_scope() as session:
        decided, report.deadlines = deadlines.apply(session, now)
    with session_scope() as session:
        queue = {p.id: session.merge(p) for p in decided}
        queue.update({p.id: p for p in human_tasks.undelivered(session, older_than=grace, now=now)})
        for pending in queue.values():
            if human_tasks.deliver(session, pending):
                report.resumed += 1
            else:
                report.resume_pending += 1
            session.commit()  # NO_LOCK_ACROSS_PREFECT
        for case in cases.cases_without_run(session):
            if case.created_at <= now - grace:
                if cases.start_case_flow(session, case):
                    report.started += 1
                else:
                    report.start_pending += 1
                session.commit()  # NO_LOCK_ACROSS_PREFECT
    with session_scope() as session:
        report.digests = mail.queue_digests(session, now)
    report.mails_sent, report.mails_pending = mail.send_pending()
    with session_scope() as session:
        # Wall-clock time, like stuck runs: `now` may be a test's future for deadlines.
        report.overviews = len(overview.refresh_due(session))
    return report


def _crash_stuck(session, stuck_after: timedelta) -> int:
    """Runs Running or Pending with no process behind them are marked Crashed,
    so _retry_crashed schedules them again in the same sweep."""
    from serviceplus.models.tables import Case

    crashed = 0
    for run in orchestration.stuck_case_runs(stuck_after):
        minutes = stuck_after.total_seconds() / 60
        message = f"no process for more than {minutes:g} min (stuck in {run.state.name})"
        if orchestration.mark_crashed(str(run.id), message):
            case = session.get(Case, run.parameters.get("case_id"))
            if case is not None:
                audit.record(
                    session,
                    actor="system",
                    action="flow_stuck",
                    case_id=case.id,
                    detail=f"Prozesslauf ohne Prozess seit über {minutes:g} Minuten",
                )
                session.commit()  # NO_LOCK_ACROSS_PREFECT
            crashed += 1
    return crashed


# How far back the sweeper looks for runs cancelled outside ServicePLUS; it
# runs every minute, so a day covers any outage of the sweeper but a long one.
CANCEL_LOOKBACK = timedelta(days=1)
# After this many undone cancels of one case the run stays cancelled and the
# coordinator decides (cancel the case, or "Erneut versuchen"): every undo
# costs the flow one suspension of its open task.
MAX_CANCEL_UNDOS = 3


def _undo_outside_cancels(session, grace: timedelta) -> int:
    """A run cancelled in the Prefect UI or API while its case is open in
    ServicePLUS is scheduled again (completed steps come from the cache, the
    run waits again at its open task) and audited: a case is only cancelled
    through ServicePLUS, with a reason, its tasks cancelled too. The app's
    own cancels carry their own state name and stay; `grace` leaves a cancel
    a moment to settle (wall-clock time, like stuck runs)."""
    from serviceplus.models.tables import Case

    undone = 0
    settled = datetime.now(UTC) - grace
    for run in orchestration.cancelled_case_runs(datetime.now(UTC) - CANCEL_LOOKBACK):
        if run.state.name == orchestration.APP_CANCELLED or run.state.timestamp > settled:
            continue
        case = session.get(Case, run.parameters.get("case_id"))
        if not _open_with_run(case, str(run.id)):
            continue
        if _count_events(session, case.id, "cancel_undone") >= MAX_CANCEL_UNDOS:
            continue
        if orchestration.retry_flow_run(str(run.id)):
            message = run.state.message  # the Prefect UI sends none
            detail = f"in Prefect abgebrochen{f': {message}' if message else ''}"[:500]
            audit.record(session, actor="system", action="cancel_undone", case_id=case.id,
                         step_key=case.current_step, detail=detail)  # fmt: skip
            session.commit()  # NO_LOCK_ACROSS_PREFECT
            undone += 1
    return undone


def _open_with_run(case, flow_run_id: str) -> bool:
    from serviceplus.models.tables import OPEN_CASE

    return case is not None and case.flow_run_id == flow_run_id and case.status in OPEN_CASE


def _count_events(session, case_id: int, action: str) -> int:
    from sqlmodel import func, select

    from serviceplus.models.tables import AuditEvent

    query = select(func.count()).select_from(AuditEvent)
    query = query.where(AuditEvent.case_id == case_id, AuditEvent.action == action)
    return session.exec(query).one()


def _retries_since_progress(session, case_id: int) -> int:
    """Crash retries since the case last moved on: a task opened or decided,
    or a step run for the first time (a step is audited on every execution,
    so one that kills its process shows up again and again, not as progress)."""
    events = audit.events_for_case(session, case_id)
    first_run: dict = {}
    for index, event in enumerate(events):
        if event.action == "step_executed":
            first_run.setdefault((event.step_key, event.attempt), index)
    retries = 0
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.action in ("task_opened", "task_completed"):
            break
        if event.action == "step_executed" and first_run[(event.step_key, event.attempt)] == index:
            break
        retries += event.action == "flow_retried"
    return retries


def _retry_crashed(session) -> int:
    """A run whose process died, or whose code met a database that was away
    (not one whose code failed otherwise), is scheduled again; completed steps
    come back from the cache. At most MAX_CRASH_RETRIES in a row without
    progress, then it stays an incident for the coordinator: a run that
    crashes at the same place each time (a step that kills its process) is
    not retried for ever, while a case that moves on between crashes (the
    machine or a part of the stack dying now and then) is."""
    from serviceplus.models.tables import Case, CaseStatus

    retried = 0
    for run in orchestration.recoverable_case_runs():
        case = session.get(Case, run.parameters.get("case_id"))
        if case is None or case.flow_run_id != str(run.id):
            continue
        done = _retries_since_progress(session, case.id)
        if done < MAX_CRASH_RETRIES and orchestration.retry_flow_run(str(run.id)):
            crashed = run.state.type.value == "CRASHED"
            cause = "Absturz" if crashed else "Datenbank- oder Serverausfall"
            detail = f"automatisch nach {cause} ({run.state.message or ''})"[:500]
            audit.record(
                session, actor="system", action="flow_retried", case_id=case.id, detail=detail
            )
            if case.status == CaseStatus.failed:  # set by the run's failure hook
                case.status = CaseStatus.running
                session.add(case)
            session.commit()  # NO_LOCK_ACROSS_PREFECT
            retried += 1
    return retried
