"""Figures for coordinators, from our own tables (fast, and Prefect keeps no
roles or deadlines): where cases stand, what is late, how long steps take,
where they pile up. Each function returns plain rows, ready for a page or CSV."""

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.services import audit, human_tasks, orchestration, versions
from serviceplus.models.tables import (
    NOT_CLOSED,
    Case,
    HumanTask,
    Organisation,
    TaskStatus,
    User,
)
from serviceplus.settings import get_settings


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _days(delta: timedelta) -> float:
    # Four places (about nine seconds): pages show hours where days would
    # round everything to 0.
    return round(delta.total_seconds() / 86400, 4)


def step_titles(session: Session) -> dict[str, str]:
    """German title of every step key in any published version (the newest
    version's title wins), and of each four-eyes confirmation task."""
    titles: dict[str, str] = {}
    for definition in versions.published_definitions(session):
        for key, step in definition.steps.items():
            titles[key] = step.title
            titles[human_tasks.confirmation_key(key)] = f"{step.title} (Bestätigung)"
    return titles


def cases_by_step(session: Session, org_id: int) -> list[tuple[str, int]]:
    query = (
        select(Case.current_step, sa.func.count())
        .where(Case.organisation_id == org_id, Case.status.in_(NOT_CLOSED))
        .group_by(Case.current_step)
        .order_by(sa.func.count().desc())
    )
    return [(step or "–", n) for step, n in session.exec(query)]


def _case_tasks(org_id: int, *columns):
    """Columns of the tasks on the organisation's cases, whoever must act on them."""
    return (
        select(*columns)
        .join(Case, Case.id == HumanTask.case_id)
        .where(Case.organisation_id == org_id)
    )


def _org_names(session: Session) -> dict[int, str]:
    return dict(session.exec(select(Organisation.id, Organisation.name)).all())


def open_tasks_by_role(session: Session, org_id: int, now: datetime) -> list[tuple]:
    late = sa.func.sum(sa.case((HumanTask.due_at < now, 1), else_=0))
    query = (
        _case_tasks(org_id, HumanTask.organisation_id, HumanTask.role, sa.func.count(), late)
        .where(HumanTask.status.in_(human_tasks.ACTIVE))
        .group_by(HumanTask.organisation_id, HumanTask.role)
    )
    names = _org_names(session)
    return sorted((names[o], role, n, int(k or 0)) for o, role, n, k in session.exec(query))


def compliance(session: Session, org_id: int, now: datetime, days: int) -> list[tuple]:
    """Per step: tasks completed in the window, and the share done in time."""
    in_time = sa.func.sum(sa.case((HumanTask.completed_at <= HumanTask.due_at, 1), else_=0))
    query = (
        _case_tasks(org_id, HumanTask.step_key, sa.func.count(), in_time)
        .where(
            HumanTask.status == TaskStatus.completed,
            HumanTask.completed_at >= now - timedelta(days=days),
            HumanTask.due_at.is_not(None),
        )
        .group_by(HumanTask.step_key)
        .order_by(HumanTask.step_key)
    )
    return [(step, n, round(100 * (ok or 0) / n, 1)) for step, n, ok in session.exec(query)]


def step_cycle_times(session: Session, org_id: int) -> list[tuple]:
    """Per step: days from a task's opening to its completion, median and p90."""
    per_step: dict[str, list[float]] = defaultdict(list)
    query = _case_tasks(
        org_id, HumanTask.step_key, HumanTask.created_at, HumanTask.completed_at
    ).where(HumanTask.status == TaskStatus.completed)
    for step, created, completed in session.exec(query):
        per_step[step].append(_days(completed - created))
    return [
        (step, len(v), statistics.median(v), percentile(v, 90))
        for step, v in sorted(per_step.items())
    ]


def case_cycle_times(session: Session, org_id: int) -> tuple[int, float | None, float | None]:
    query = select(Case.created_at, Case.closed_at).where(
        Case.organisation_id == org_id, Case.closed_at.is_not(None)
    )
    values = [_days(closed - created) for created, closed in session.exec(query)]
    return len(values), (statistics.median(values) if values else None), percentile(values, 90)


def weekly_throughput(session: Session, org_id: int, now: datetime, weeks: int = 12):
    """(ISO week, cases started, cases finished) for the last `weeks` weeks."""
    since = now - timedelta(weeks=weeks)
    query = select(Case.created_at, Case.closed_at).where(
        Case.organisation_id == org_id,
        sa.or_(Case.created_at >= since, Case.closed_at >= since),
    )
    started, finished = Counter(), Counter()
    for created, closed in session.exec(query):
        if created >= since:
            started[_week(created)] += 1
        if closed is not None and closed >= since:
            finished[_week(closed)] += 1
    labels = sorted({_week(now - timedelta(weeks=i)) for i in range(weeks)})
    return [(w, started[w], finished[w]) for w in labels]


def compliance_trend(
    session: Session, org_id: int, now: datetime, weeks: int = 12
) -> tuple[list[str], dict[str, list[float | None]]]:
    """Deadline compliance per step and ISO week of completion: the weeks,
    and per step the share done in time each week (None: none completed)."""
    labels = sorted({_week(now - timedelta(weeks=i)) for i in range(weeks)})
    query = _case_tasks(org_id, HumanTask.step_key, HumanTask.completed_at, HumanTask.due_at).where(
        HumanTask.status == TaskStatus.completed,
        HumanTask.completed_at >= now - timedelta(weeks=weeks),
        HumanTask.due_at.is_not(None),
    )
    done: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for step, completed, due in session.exec(query):
        counts = done[(step, _week(completed))]
        counts[0] += 1
        counts[1] += completed <= due
    steps = sorted({step for step, _ in done})
    return labels, {
        step: [
            round(100 * done[(step, w)][1] / done[(step, w)][0], 1) if (step, w) in done else None
            for w in labels
        ]
        for step in steps
    }


def cycle_time_distribution(session: Session, org_id: int, weeks: int = 12) -> list[int]:
    """Closed cases by duration in whole weeks: entry i counts the cases
    that took at least i and less than i + 1 weeks; the last, `weeks` or more."""
    counts = [0] * (weeks + 1)
    query = select(Case.created_at, Case.closed_at).where(
        Case.organisation_id == org_id, Case.closed_at.is_not(None)
    )
    for created, closed in session.exec(query):
        counts[min(weeks, (closed - created).days // 7)] += 1
    return counts


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def bottlenecks(session: Session, org_id: int, now: datetime, limit: int = 10) -> list[tuple]:
    """Where open tasks wait: (step, organisation, role, count, median and
    longest wait in days), most waiting first."""
    names = _org_names(session)
    waits: dict[tuple, list[float]] = defaultdict(list)
    query = _case_tasks(
        org_id, HumanTask.step_key, HumanTask.organisation_id, HumanTask.role, HumanTask.created_at
    ).where(HumanTask.status.in_(human_tasks.ACTIVE))
    for step, org, role, created in session.exec(query):
        waits[(step, names[org], role)].append(_days(now - created))
    rows = [(*k, len(v), statistics.median(v), max(v)) for k, v in waits.items()]
    return sorted(rows, key=lambda r: (-r[3], -r[5]))[:limit]


@dataclass
class DueTask:
    """An open task that is overdue or due soon, for the coordinator's list."""

    task_id: int
    reference: str
    step_key: str
    organisation: str
    role: str
    assignee: str | None
    due_at: datetime
    overdue: bool
    organisation_id: int = 0
    priority: int = 0
    assignee_name: str | None = None  # the person's full name, else their login


def due_work(
    session: Session, org_id: int, now: datetime, soon: timedelta, limit: int | None = None
) -> list[DueTask]:
    """Open tasks on the organisation's cases that are overdue or fall due
    within `soon`, the most overdue first; at most `limit` of them. The
    query walks ix_human_task_due in due order, so a limited list costs the
    same however many cases there are."""
    names = _org_names(session)
    query = (
        _case_tasks(org_id, HumanTask, Case.reference, User.full_name)
        .outerjoin(User, User.username == HumanTask.assignee)
        .where(
            HumanTask.active == True,  # noqa: E712  (open or claimed, computed column)
            HumanTask.due_at < now + soon,
        )
        .order_by(HumanTask.due_at, HumanTask.id)
        .limit(limit)
    )
    return [
        DueTask(
            task_id=task.id,
            reference=reference,
            step_key=task.step_key,
            organisation=names[task.organisation_id],
            role=task.role,
            assignee=task.assignee,
            due_at=task.due_at,
            overdue=task.due_at < now,
            organisation_id=task.organisation_id,
            priority=task.priority,
            assignee_name=(full_name or task.assignee) if task.assignee else None,
        )
        for task, reference, full_name in session.exec(query)
    ]


def due_work_by(tasks: list[DueTask], key) -> list[tuple[str, int, int]]:
    """(group, overdue, due soon) per group, most overdue first; `key` maps a
    task to its group (its person, or its body)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task in tasks:
        counts[key(task)][0 if task.overdue else 1] += 1
    return sorted(
        ((g, late, soon) for g, (late, soon) in counts.items()), key=lambda r: (-r[1], -r[2], r[0])
    )


@dataclass
class RefusedResume:
    """A resume of the case's run from outside ServicePLUS that the flow refused."""

    at: datetime
    step_key: str  # the task's key ("decision", or "decision.confirm")
    without_input: bool  # else: with a decision the app had not saved


def refused_resumes(session: Session, case: Case) -> list[RefusedResume]:
    return [
        RefusedResume(e.at, e.step_key or "", e.detail == "ohne Eingabe")
        for e in audit.events_for_case(session, case.id)
        if e.action == "resume_refused"
    ]


def outside_cancels(session: Session, case: Case) -> list:
    """Cancels of the case's run from outside ServicePLUS that the sweeper undid."""
    return [e for e in audit.events_for_case(session, case.id) if e.action == "cancel_undone"]


def timeline(session: Session, case: Case) -> list[dict]:
    """The case's steps: automatic ones from the audit log, human ones from
    their tasks, with start, end, actor and the time waited (in days)."""
    titles = step_titles(session)
    rows = []
    for event in audit.events_for_case(session, case.id):
        if event.action == "step_executed":
            rows.append(
                {
                    "step_key": event.step_key,
                    "title": titles.get(event.step_key, event.step_key),
                    "attempt": event.attempt,
                    "task_id": None,
                    "start": event.at,
                    "end": event.at,
                    "actor": "automatisch",
                    "waited": None,
                }
            )
    for task in human_tasks.tasks_of_case(session, case.id):
        end = task.completed_at or task.cancelled_at
        rows.append(
            {
                "step_key": task.step_key,
                "title": task.title,
                "attempt": task.attempt,
                "task_id": task.id,
                "start": task.created_at,
                "end": end,
                "actor": task.completed_by or task.assignee or "–",
                "waited": _days((end or clock.now()) - task.created_at),
            }
        )
    return sorted(rows, key=lambda r: r["start"])


def incidents(session: Session, org_slug: str, stuck_after: timedelta | None = None) -> list[dict]:
    """Failed or crashed flow runs of the organisation's cases, and runs stuck
    without a process for longer than `stuck_after` (from Prefect). Whose
    case it is comes from the app database, not from the run's organisation
    tag, which a hand-over changes after the fact and could miss."""
    stuck_after = stuck_after if stuck_after is not None else get_settings().stuck_after
    org = session.exec(select(Organisation).where(Organisation.slug == org_slug)).one()
    rows = []
    stuck = orchestration.stuck_case_runs(stuck_after)
    for run in [*orchestration.failed_runs(), *stuck]:
        case = session.get(Case, run.parameters.get("case_id"))
        if case is None or case.organisation_id != org.id:
            continue
        rows.append(
            {
                "case": case,
                "flow_run_id": str(run.id),
                "state": run.state.name,
                "message": (run.state.message or "")[:500],
                "step": case.current_step,
                "at": run.state.timestamp,
                "url": orchestration.prefect_ui_url(str(run.id)),
                "stuck": run in stuck,
            }
        )
    return rows


def case_list(session: Session, org_id: int, status: str = "", q: str = "", limit: int = 200):
    query = select(Case).where(Case.organisation_id == org_id)
    if status:
        query = query.where(Case.status == status)
    if q:
        pattern = f"%{q.replace('%', '')}%"
        query = query.where(
            sa.or_(
                Case.reference.ilike(pattern),
                Case.applicant_name.ilike(pattern),
                Case.employer_name.ilike(pattern),
            )
        )
    return list(session.exec(query.order_by(Case.id.desc()).limit(limit)))
