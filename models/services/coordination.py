"""What a coordinator does about late work: hand a task of their own
organisation to a named person, or raise its priority. Unlike the clerks'
own actions (assignment.py) the coordinator need not hold the task's role;
they act for their organisation. Every change is conditional on the task
being as the coordinator saw it, and audited."""

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.services import audit
from serviceplus.models.services.human_tasks import ACTIVE, TaskError
from serviceplus.models.tables import HumanTask, Role, TaskStatus, User


def _own_active_task(session: Session, coordinator: User, task_id: int) -> HumanTask:
    task = session.get(HumanTask, task_id)
    if task is None or task.organisation_id != coordinator.organisation_id:
        raise TaskError("Diese Aufgabe liegt nicht bei Ihrer Organisation.")
    if task.status not in ACTIVE:
        raise TaskError("Die Aufgabe ist bereits erledigt.")
    return task


def candidates(session: Session, organisation_id: int) -> dict[str, list[User]]:
    """Active people of the organisation by role: who a task can go to."""
    query = select(User).where(
        User.organisation_id == organisation_id,
        User.active == True,  # noqa: E712
        User.role.in_([Role.clerk, Role.coordinator, Role.admin]),
    )
    people: dict[str, list[User]] = {}
    for user in session.exec(query.order_by(User.full_name)):
        people.setdefault(user.role, []).append(user)
    return people


def reassign(
    session: Session, *, coordinator: User, task_id: int, to: str, seen_assignee: str | None
) -> HumanTask:
    """Give the task to `to`, a person of its organisation with its role.
    `seen_assignee` is who had it on the coordinator's page: if that changed
    meanwhile, nothing happens."""
    task = _own_active_task(session, coordinator, task_id)
    target = session.exec(select(User).where(User.username == to)).first()
    if target is None or not target.active or target.role != task.role:
        raise TaskError("Bitte wählen Sie eine Person mit der Rolle dieser Aufgabe.")
    if target.organisation_id != task.organisation_id:
        raise TaskError("Bitte wählen Sie eine Person Ihrer Organisation.")
    if task.proposed_by == target.username:
        raise TaskError("Diese Person hat den Vorschlag gemacht; bestätigen muss eine andere.")
    changed = session.execute(
        sa.update(HumanTask)
        .where(
            HumanTask.id == task.id,
            HumanTask.status.in_(ACTIVE),
            HumanTask.assignee.is_(None)
            if seen_assignee is None
            else HumanTask.assignee == seen_assignee,
        )
        .values(
            status=TaskStatus.claimed,
            assignee=target.username,
            claimed_at=clock.now(),
            delegated_by=None,
        )
    ).rowcount
    if changed != 1:
        raise TaskError("Die Aufgabe wurde inzwischen geändert. Bitte laden Sie die Seite neu.")
    session.refresh(task)
    audit.record(
        session,
        actor=coordinator.username,
        action="task_reassigned",
        case_id=task.case_id,
        detail=f"{task.title} → {target.username} (durch die Koordination)",
    )
    return task


def set_priority(session: Session, *, coordinator: User, task_id: int, priority: int) -> HumanTask:
    if priority not in (0, 1):
        raise TaskError("Unbekannte Priorität.")
    task = _own_active_task(session, coordinator, task_id)
    task.priority = priority
    session.add(task)
    audit.record(
        session,
        actor=coordinator.username,
        action="task_priority",
        case_id=task.case_id,
        detail=f"{task.title}: {'hoch' if priority else 'normal'} (durch die Koordination)",
    )
    return task
