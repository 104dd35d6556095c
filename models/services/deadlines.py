"""What happens when a task's deadline passes, as its definition says:
decide a given outcome (e.g. the BA's deemed approval), remind, or escalate
to another role. Run by the sweeper; `now` comes from the one clock."""

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.definition import OnTimeout
from serviceplus.models.services import audit, human_tasks, mail, versions
from serviceplus.models.tables import Case, HumanTask, PendingResume, User


def overdue(session: Session, now: datetime) -> list[HumanTask]:
    query = select(HumanTask).where(
        HumanTask.status.in_(human_tasks.ACTIVE), HumanTask.due_at < now
    )
    return list(session.exec(query.order_by(HumanTask.due_at)))


def apply(session: Session, now: datetime) -> tuple[list[PendingResume], int]:
    """Apply every overdue task's rule once. Returns the resumes to deliver
    and how many tasks were acted on."""
    pending, acted = [], 0
    for task in overdue(session, now):
        rule = _rule_for(session, task)
        if rule is None:
            continue
        is_confirmation = task.proposed_by is not None
        if rule.action == "decide" and not is_confirmation:  # never auto-confirm four eyes
            pending.append(_decide(session, task, rule))
            acted += 1
        elif rule.action == "remind" and task.reminded_at is None:
            task.reminded_at = now
            audit.record(
                session,
                actor="system",
                action="task_reminder",
                case_id=task.case_id,
                detail=f"Frist überschritten: {task.title}",
            )
            acted += 1
        elif rule.action in ("escalate", "decide") and task.escalated_at is None:
            _escalate(session, task, rule, now)
            acted += 1
    expired, reminded = _apply_expiries(session, now)
    return pending + expired, acted + len(expired) + reminded


def _apply_expiries(session: Session, now: datetime) -> tuple[list[PendingResume], int]:
    """A step's second clock (`expires`, e.g. the pre-approval's validity):
    one reminder before it runs out, then the task is decided as it says."""
    active = HumanTask.status.in_(human_tasks.ACTIVE)
    reminded = 0
    due = select(HumanTask).where(
        active, HumanTask.expiry_remind_at < now, HumanTask.expiry_reminded_at.is_(None)
    )
    for task in session.exec(due.order_by(HumanTask.expiry_remind_at)):
        task.expiry_reminded_at = now
        session.add(task)
        audit.record(
            session,
            actor="system",
            action="task_reminder",
            case_id=task.case_id,
            detail=f"{task.title}: läuft am {last_valid_day(task):%d.%m.%Y} ab",
        )
        reminded += 1
    pending = []
    for task in list(session.exec(select(HumanTask).where(active, HumanTask.expires_at < now))):
        expiry = _step_for(session, task).expires
        if expiry is None or task.proposed_by is not None:
            continue
        pending.append(
            human_tasks.record(
                session,
                task=task,
                actor="system",
                decision=expiry.outcome,
                reason=expiry.note,
                label=f"abgelaufen mit dem {last_valid_day(task):%d.%m.%Y}",
            )
        )
    return pending, reminded


def last_valid_day(task: HumanTask) -> date:
    """The last German calendar day of a validity (it expires at the next midnight)."""
    return clock.local_date(task.expires_at) - timedelta(days=1)


def _step_for(session: Session, task: HumanTask):
    case = session.get(Case, task.case_id)
    definition = versions.load(session, case.definition_name, case.definition_version)
    return definition.steps.get(human_tasks.step_of(task.step_key))


def _rule_for(session: Session, task: HumanTask) -> OnTimeout | None:
    step = _step_for(session, task)
    return step.on_timeout if step else None


def _decide(session: Session, task: HumanTask, rule: OnTimeout) -> PendingResume:
    # Recorded like a person's decision, by "system", with the date it took effect.
    return human_tasks.record(
        session,
        task=task,
        actor="system",
        decision=rule.outcome,
        reason=rule.note,
        label=f"Fristablauf – {rule.outcome}",
    )


def _escalate(session: Session, task: HumanTask, rule: OnTimeout, now: datetime) -> None:
    role = rule.role or "coordinator"
    session.execute(
        sa.update(HumanTask)
        .where(HumanTask.id == task.id)
        .values(role=role, escalated_at=now, status=human_tasks.TaskStatus.open, assignee=None)
    )
    audit.record(
        session,
        actor="system",
        action="task_escalated",
        case_id=task.case_id,
        detail=f"Frist überschritten: {task.title} → {role}",
    )
    mail.escalation(session, task, role)


def extension_of(session: Session, task: HumanTask):
    """How much longer the task's deadline may be made (the definition's
    `deadline.extension`), or None when it cannot be extended (any more)."""
    if task.deadline_extended_at is not None or task.due_at is None:
        return None
    if task.status not in human_tasks.ACTIVE or human_tasks.is_confirmation(task.step_key):
        return None
    case = session.get(Case, task.case_id)
    definition = versions.load(session, case.definition_name, case.definition_version)
    step = definition.steps.get(task.step_key)
    return step.deadline.extension if step and step.deadline else None


def extend(session: Session, *, task: HumanTask, user: User, reason: str) -> None:
    """The acting body extends the task's deadline once, with a reason;
    the new due date is what the inbox and the clock show from then on."""
    if not human_tasks.can_act(user, task):
        raise human_tasks.TaskError("Diese Aufgabe ist nicht an Sie gerichtet.")
    extension = extension_of(session, task)
    if extension is None:
        raise human_tasks.TaskError("Die Frist dieser Aufgabe kann nicht (mehr) verlängert werden.")
    reason = (reason or "").strip()
    if not reason:
        raise human_tasks.TaskError("Bitte begründen Sie die Fristverlängerung.")
    task.due_at = task.due_at + extension
    task.deadline_extended_at = clock.now()
    task.deadline_extension_reason = reason
    session.add(task)
    new_day = clock.local_date(task.due_at)
    audit.record(
        session,
        actor=user.username,
        action="deadline_extended",
        case_id=task.case_id,
        detail=f"{task.title}: Frist verlängert bis {new_day:%d.%m.%Y} – {reason}",
    )
