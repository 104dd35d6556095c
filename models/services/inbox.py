"""The inbox: one named query (`queue_for`) with its filters, and saved views."""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, or_, select

from serviceplus.models import clock
from serviceplus.models.definition import Definition
from serviceplus.models.services.human_tasks import confirmation_key
from serviceplus.models.tables import Case, HumanTask, SavedView, TaskStatus, User

PAGE_SIZE = 50


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox shows; every field is optional. Parsed from the query
    string and stored as a saved view."""

    view: str = "all"  # all | mine | group (unclaimed)
    step: str = ""
    purpose: str = ""
    due: str = ""  # "" | overdue | 7 | 30 (days)
    assignee: str = ""
    q: str = ""  # text in reference, applicant or employer

    @classmethod
    def from_args(cls, args) -> "InboxFilter":
        values = {k: str(args.get(k, "")).strip()[:100] for k in cls.__dataclass_fields__}
        if values["view"] not in ("all", "mine", "group"):
            values["view"] = "all"
        if values["due"] not in ("", "overdue", "7", "30"):
            values["due"] = ""
        return cls(**values)

    def params(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v and not (k == "view" and v == "all")}


@dataclass
class InboxPage:
    rows: list[tuple[HumanTask, Case]]
    total: int
    page: int
    pages: int


def queue_for(
    session: Session,
    user: User,
    flt: InboxFilter = InboxFilter(),
    page: int = 1,
    now: datetime | None = None,
    total: int | None = None,
) -> InboxPage:
    """Active tasks addressed to the user's organisation and role, filtered,
    by due date (undated last, then priority), one page at a time.

    Walks ix_human_task_inbox in due order, so a page costs the same with
    100,000 open tasks as with 100 (see docs/performance.md)."""
    now = now or clock.now()
    query = _apply(select(HumanTask, Case).join(Case).where(*_addressed_to(user)), flt, user, now)
    if total is None:  # known when the tab counts were taken (counts_for)
        total = _total(session, user, flt, now)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    ordered = query.order_by(
        HumanTask.undated, HumanTask.due_at, HumanTask.priority.desc(), HumanTask.id
    )
    rows = session.exec(ordered.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return InboxPage(rows=[tuple(r) for r in rows], total=total, page=page, pages=pages)


def _addressed_to(user: User) -> tuple:
    return (
        HumanTask.organisation_id == user.organisation_id,
        HumanTask.role == user.role,
        HumanTask.active == True,  # noqa: E712 (SQL, not Python)
        # Four eyes: the proposer never sees the confirmation of their proposal.
        or_(HumanTask.proposed_by.is_(None), HumanTask.proposed_by != user.username),
    )


def _total(session: Session, user: User, flt: InboxFilter, now: datetime) -> int:
    # Count without the join unless a filter needs the case: an index-only count.
    mine = _addressed_to(user)
    if flt.purpose or flt.q:
        counted = _apply(select(HumanTask.id).join(Case).where(*mine), flt, user, now)
    else:
        counted = _apply(select(HumanTask.id).where(*mine), flt, user, now)
    return session.exec(select(sa.func.count()).select_from(counted.subquery())).one()


def _apply(query, flt: InboxFilter, user: User, now: datetime):
    if flt.view == "mine":
        query = query.where(HumanTask.assignee == user.username)
    elif flt.view == "group":
        query = query.where(HumanTask.status == TaskStatus.open)
    if flt.step:
        query = query.where(HumanTask.step_key == flt.step)
    if flt.purpose:
        query = query.where(Case.residence_purpose == flt.purpose)
    if flt.assignee:
        query = query.where(HumanTask.assignee == flt.assignee)
    if flt.due == "overdue":
        query = query.where(HumanTask.due_at < now)
    elif flt.due:
        query = query.where(HumanTask.due_at < now + timedelta(days=int(flt.due)))
    if flt.q:
        pattern = f"%{flt.q.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(
                Case.reference.ilike(pattern),
                Case.applicant_name.ilike(pattern),
                Case.employer_name.ilike(pattern),
            )
        )
    return query


def save_view(
    session: Session, *, user: User, name: str, flt: InboxFilter, shared: bool
) -> SavedView:
    view = SavedView(
        organisation_id=user.organisation_id,
        owner=user.username,
        name=name.strip()[:80],
        params=flt.params(),
        shared=shared,
    )
    session.add(view)
    session.flush()
    return view


def views_for(session: Session, user: User) -> list[SavedView]:
    """The user's own views and those shared within the organisation."""
    query = select(SavedView).where(
        SavedView.organisation_id == user.organisation_id,
        or_(SavedView.owner == user.username, SavedView.shared == True),  # noqa: E712
    )
    return list(session.exec(query.order_by(SavedView.name)))


def delete_view(session: Session, *, user: User, view_id: int) -> bool:
    view = session.get(SavedView, view_id)
    if view is None or view.owner != user.username:
        return False
    session.delete(view)
    return True


def step_choices(definition: Definition) -> list[tuple[str, str]]:
    """The inbox's step filter: each human step, and its four-eyes confirmation."""
    choices = []
    for key, step in definition.steps.items():
        if step.kind == "human":
            choices.append((key, step.title))
            if step.four_eyes:
                choices.append((confirmation_key(key), f"Bestätigung (Vier Augen): {step.title}"))
    return choices


def counts_for(
    session: Session, user: User, flt: InboxFilter = InboxFilter(), now: datetime | None = None
) -> dict[str, int]:
    """How many tasks each inbox tab (all, mine, group) holds under the other
    filters, for the numbers beside the tabs: one pass over the inbox index."""
    everything = InboxFilter(**{**asdict(flt), "view": "all"})
    mine = sa.func.sum(sa.case((HumanTask.assignee == user.username, 1), else_=0))
    group = sa.func.sum(sa.case((HumanTask.status == TaskStatus.open, 1), else_=0))
    query = select(sa.func.count(HumanTask.id), mine, group).select_from(HumanTask)
    if flt.purpose or flt.q:
        query = query.join(Case)
    query = _apply(query.where(*_addressed_to(user)), everything, user, now or clock.now())
    total, mine_count, group_count = session.exec(query).one()
    return {"all": total, "mine": mine_count or 0, "group": group_count or 0}
