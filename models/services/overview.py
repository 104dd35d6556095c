"""The coordinators' overview, precomputed: every figure whose cost grows
with the number of cases (counts, shares, durations, trends, due work per
person and body) is computed here for one organisation and kept as one row
(`overview_snapshot`). The sweeper refreshes the rows every few minutes; the
page reads one row and shows when it was computed ("Stand"). A page that finds
no row, or one older than `overview_max_age` (no sweeper running), computes
it itself once.

What a coordinator acts on stays live: the list of late tasks is read per
request, limited to the first rows in due order (an index walk, see
`monitoring.due_work`)."""

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.services import monitoring
from serviceplus.models.tables import OverviewSnapshot, Role, User
from serviceplus.settings import get_settings

# name -> compute(session, org_id, now) -> rows of plain values; the page
# (webui/monitor.py) gives each its title and columns.
FIGURES: dict[str, Callable] = {
    "cases_by_step": lambda s, o, now: monitoring.cases_by_step(s, o),
    "open_tasks": monitoring.open_tasks_by_role,
    "compliance_30": lambda s, o, now: monitoring.compliance(s, o, now, 30),
    "compliance_90": lambda s, o, now: monitoring.compliance(s, o, now, 90),
    "step_cycle": lambda s, o, now: monitoring.step_cycle_times(s, o),
    "case_cycle": lambda s, o, now: [monitoring.case_cycle_times(s, o)],
    "weekly": monitoring.weekly_throughput,
    "bottlenecks": monitoring.bottlenecks,
}


def _person(task: monitoring.DueTask) -> tuple[str, str, str]:
    """Due work is grouped by the person's name; tasks nobody has taken by
    the role and body that should take them."""
    if task.assignee:
        return (task.assignee_name or task.assignee, "", "")
    return ("", task.role, task.organisation)


def compute(session: Session, org_id: int, now: datetime) -> dict:
    """All precomputed figures of the organisation as JSON-ready values."""
    soon = get_settings().soon_due
    due = monitoring.due_work(session, org_id, now, soon)
    weeks, by_step = monitoring.compliance_trend(session, org_id, now)
    return {
        "tables": {
            name: [list(row) for row in f(session, org_id, now)] for name, f in FIGURES.items()
        },
        "compliance_trend": {"weeks": weeks, "by_step": by_step},
        "cycle_distribution": monitoring.cycle_time_distribution(session, org_id),
        "due_by_person": [
            [*group, late, soon_n] for group, late, soon_n in monitoring.due_work_by(due, _person)
        ],
        "due_by_body": [list(row) for row in monitoring.due_work_by(due, lambda t: t.organisation)],
        "overdue": sum(t.overdue for t in due),
        "due_soon": sum(not t.overdue for t in due),
        "soon_days": soon.days,
    }


def refresh(
    session: Session, org_id: int, now: datetime | None = None, figures: dict | None = None
) -> OverviewSnapshot:
    """Keep the organisation's figures (computed now unless given); the caller commits."""
    now = now or clock.now()
    figures = figures if figures is not None else compute(session, org_id, now)
    row = session.get(OverviewSnapshot, org_id)
    if row is None:
        row = OverviewSnapshot(organisation_id=org_id, computed_at=now, figures=figures)
    else:
        row.computed_at, row.figures = now, figures
    session.add(row)
    session.flush()
    return row


def current(session: Session, org_id: int, now: datetime | None = None) -> OverviewSnapshot:
    """The organisation's snapshot, computed now if missing or too old.
    Commits a fresh one; if another request stored one at the same moment,
    that one is kept and this request still shows what it computed."""
    now = now or clock.now()
    row = session.get(OverviewSnapshot, org_id)
    if row is not None and now - row.computed_at <= get_settings().overview_max_age:
        return row
    figures = compute(session, org_id, now)
    try:
        row = refresh(session, org_id, now, figures)
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        row = OverviewSnapshot(organisation_id=org_id, computed_at=now, figures=figures)
    return row


def refresh_due(session: Session, now: datetime | None = None) -> list[int]:
    """The sweeper's part: refresh the snapshot of every organisation with a
    coordinator once it is older than half the allowed age, so a page never
    has to. Returns the organisations refreshed."""
    now = now or clock.now()
    half = get_settings().overview_max_age / 2
    coordinated = select(User.organisation_id).where(
        User.role == Role.coordinator,
        User.active == True,  # noqa: E712
    )
    computed = dict(
        session.exec(select(OverviewSnapshot.organisation_id, OverviewSnapshot.computed_at)).all()
    )
    refreshed = []
    for org_id in sorted(set(session.exec(coordinated).all())):
        if org_id not in computed or now - computed[org_id] > half:
            refresh(session, org_id, now)
            refreshed.append(org_id)
    return refreshed
