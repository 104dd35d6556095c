"""Who works on a task: claim, give back, reassign, delegate and take back,
priority, and the same for several tasks at once. Every change is
conditional on the task still being as the user saw it."""

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.services import audit
from serviceplus.models.services.human_tasks import ACTIVE, OWN_PROPOSAL, TaskError, can_act
from serviceplus.models.tables import HumanTask, TaskStatus, User


def claim(session: Session, *, task: HumanTask, user: User) -> None:
    if not can_act(user, task):
        raise TaskError("Diese Aufgabe ist nicht an Sie gerichtet.")
    if task.proposed_by == user.username:
        raise TaskError(OWN_PROPOSAL)
    _change(
        session,
        task,
        {"status": TaskStatus.open},
        {"status": TaskStatus.claimed, "assignee": user.username, "claimed_at": clock.now()},
        "Die Aufgabe wurde bereits übernommen oder erledigt.",
    )
    audit.record(
        session, actor=user.username, action="task_claimed", case_id=task.case_id, detail=task.title
    )


def _change(session: Session, task: HumanTask, expected: dict, values: dict, error: str) -> None:
    """Change the task only if it is still as the user saw it (no lost updates)."""
    query = sa.update(HumanTask).where(HumanTask.id == task.id)
    for column, value in expected.items():
        query = query.where(getattr(HumanTask, column) == value)
    if session.execute(query.values(**values)).rowcount != 1:
        raise TaskError(error)
    session.refresh(task)


def colleague(session: Session, user: User, username: str) -> User:
    """An active user of the same organisation and role, other than `user`."""
    other = session.exec(select(User).where(User.username == username)).first()
    if (
        other is None
        or not other.active
        or other.id == user.id
        or (other.organisation_id, other.role) != (user.organisation_id, user.role)
    ):
        raise TaskError("Bitte wählen Sie eine Kollegin oder einen Kollegen Ihrer Organisation.")
    return other


def colleagues(session: Session, user: User) -> list[User]:
    query = select(User).where(
        User.organisation_id == user.organisation_id,
        User.role == user.role,
        User.active == True,  # noqa: E712
        User.id != user.id,
    )
    return list(session.exec(query.order_by(User.full_name)))


def unclaim(session: Session, *, task: HumanTask, user: User) -> None:
    """Give a task back to the group."""
    _change(
        session,
        task,
        {"status": TaskStatus.claimed, "assignee": user.username},
        {"status": TaskStatus.open, "assignee": None, "claimed_at": None, "delegated_by": None},
        "Nur wer die Aufgabe übernommen hat, kann sie zurückgeben.",
    )
    audit.record(
        session,
        actor=user.username,
        action="task_unclaimed",
        case_id=task.case_id,
        detail=task.title,
    )


def reassign(session: Session, *, task: HumanTask, user: User, to: str) -> None:
    """Hand an open task, or one's own, to a colleague for good."""
    if not can_act(user, task):
        raise TaskError("Diese Aufgabe ist nicht an Sie gerichtet.")
    target = colleague(session, user, to)
    expected = {"status": task.status, "assignee": task.assignee}
    if task.status == TaskStatus.claimed and task.assignee != user.username:
        raise TaskError(f"Die Aufgabe ist von {task.assignee} übernommen.")
    _change(
        session,
        task,
        expected,
        {
            "status": TaskStatus.claimed,
            "assignee": target.username,
            "claimed_at": clock.now(),
            "delegated_by": None,
        },
        "Die Aufgabe wurde inzwischen geändert. Bitte laden Sie die Seite neu.",
    )
    audit.record(
        session,
        actor=user.username,
        action="task_reassigned",
        case_id=task.case_id,
        detail=f"{task.title} → {target.username}",
    )


def delegate(session: Session, *, task: HumanTask, user: User, to: str) -> None:
    """Let a colleague stand in on one's task; the user can take it back."""
    target = colleague(session, user, to)
    _change(
        session,
        task,
        {"status": TaskStatus.claimed, "assignee": user.username},
        {"assignee": target.username, "delegated_by": user.username},
        "Delegieren können Sie nur Aufgaben, die Sie übernommen haben.",
    )
    audit.record(
        session,
        actor=user.username,
        action="task_delegated",
        case_id=task.case_id,
        detail=f"{task.title} → {target.username} (Vertretung)",
    )


def take_back(session: Session, *, task: HumanTask, user: User) -> None:
    _change(
        session,
        task,
        {"status": TaskStatus.claimed, "delegated_by": user.username},
        {"assignee": user.username, "delegated_by": None},
        "Zurücknehmen können Sie nur Aufgaben, die Sie delegiert haben.",
    )
    audit.record(
        session,
        actor=user.username,
        action="task_taken_back",
        case_id=task.case_id,
        detail=task.title,
    )


def set_priority(session: Session, *, task: HumanTask, user: User, priority: int) -> None:
    if not can_act(user, task) or task.status not in ACTIVE:
        raise TaskError("Diese Aufgabe ist nicht an Sie gerichtet.")
    if priority not in (0, 1):
        raise TaskError("Unbekannte Priorität.")
    task.priority = priority
    session.add(task)
    audit.record(
        session,
        actor=user.username,
        action="task_priority",
        case_id=task.case_id,
        detail=f"{task.title}: {'hoch' if priority else 'normal'}",
    )


def bulk(session: Session, *, task_ids: list[int], user: User, action: str, to: str = ""):
    """Claim or reassign several tasks; each succeeds or fails on its own.
    Returns (done, failures) with failures as German messages."""
    done, failures = 0, []
    for task_id in task_ids:
        task = session.get(HumanTask, task_id)
        if task is None or task.organisation_id != user.organisation_id:
            failures.append(f"Aufgabe {task_id}: nicht gefunden.")
            continue
        try:
            with session.begin_nested():
                if action == "claim":
                    claim(session, task=task, user=user)
                else:
                    reassign(session, task=task, user=user, to=to)
            done += 1
        except TaskError as exc:
            failures.append(f"Aufgabe {task_id}: {exc}")
    return done, failures
