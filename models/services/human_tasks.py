"""Human tasks: opened by the flow, worked in the inbox, resumed exactly once."""

import logging
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.conditions import Context
from serviceplus.models.contracts import Decision
from serviceplus.models.db import session_scope
from serviceplus.models.definition import CONFIRM, SEND_BACK, Definition, Step, period_delta
from serviceplus.models.services import audit, orchestration, task_fields
from serviceplus.models.services.accounts import get_organisation, get_user
from serviceplus.models.services.completeness import facts_of_case, rule_findings
from serviceplus.models.tables import (
    Case,
    CaseStatus,
    HumanTask,
    Organisation,
    PendingResume,
    Role,
    TaskStatus,
    User,
)

log = logging.getLogger(__name__)
ACTIVE = (TaskStatus.open, TaskStatus.claimed)
# How long a person's decision waits for a run that is about to suspend
# (decided in the moment between the task appearing and the suspend).
RESUME_WAIT_SECONDS = 5.0


class TaskError(ValueError):
    """An action on a task that cannot be done; the message is German."""


def open_for_step(
    session: Session,
    *,
    case: Case,
    step_key: str,
    attempt: int,
    step: Step,
    flow_run_id: str,
    definition: Definition | None = None,
) -> HumanTask:
    """The task for a human step (case, step, attempt), created once however
    often the flow asks. `definition` (the case's) lets organisation routes
    and rule findings read its thresholds."""
    now = clock.now()
    day = clock.local_date(now)
    ctx = Context(facts_of_case(case), {}, definition.thresholds if definition else {}, day)
    form: dict = {"options": [o.model_dump() for o in step.options]}
    if step.recheck_rules and definition is not None:
        # Thresholds change by year: checked again on the day the decision opens.
        form["findings"] = rule_findings(definition, ctx.facts, day)
    due_at = expires_at = expiry_remind_at = None
    if step.deadline:
        due_at = clock_start(session, case, step.deadline.from_, now) + step.deadline.duration
    if step.expires:
        # Valid through the last day the period reaches, as the letter says.
        start = clock.local_date(clock_start(session, case, step.expires.from_, now))
        last_day = start + period_delta(step.expires.period)
        # Midnight in Germany after the last day, kept in UTC like every moment.
        end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=clock.LOCAL)
        expires_at = end.astimezone(UTC)
        if step.expires.remind_before:
            expiry_remind_at = expires_at - step.expires.remind_before
    if step.fields:
        form["fields"] = [f.model_dump(by_alias=True) for f in step.fields]
    sent_back = _sent_back(session, case.id, step_key, attempt) if step.four_eyes else None
    if sent_back is not None:
        form["sent_back"] = sent_back
    task = _get_or_open(
        session,
        HumanTask(
            case_id=case.id,
            step_key=step_key,
            attempt=attempt,
            title=step.title,
            organisation_id=_organisation_id(session, case, step.organisation_for(ctx)),
            role=step.role or Role.clerk,
            flow_run_id=flow_run_id,
            due_at=due_at,
            expires_at=expires_at,
            expiry_remind_at=expiry_remind_at,
            form=form,
            created_at=now,
        ),
    )
    if (
        sent_back is not None
        and task.status == TaskStatus.open
        and _can_take(session, sent_back["to"], task)
    ):
        # A proposal sent back returns to whoever made it, not to the group.
        task.status, task.assignee = TaskStatus.claimed, sent_back["to"]
        task.claimed_at = now
        session.add(task)
    return task


def _can_take(session: Session, username: str | None, task: HumanTask) -> bool:
    """Whether the proposer can still work the task: active, in the task's
    organisation (a case handed over meanwhile has a new one) and role."""
    user = session.exec(select(User).where(User.username == username)).first()
    return (
        user is not None
        and user.active
        and user.organisation_id == task.organisation_id
        and user.role == task.role
    )


def _sent_back(session: Session, case_id: int, step_key: str, attempt: int) -> dict | None:
    """The send-back of the previous attempt's confirmation, if it was one:
    who proposed (the new attempt returns to them), who sent back and why."""
    check = session.exec(
        select(HumanTask).where(
            HumanTask.case_id == case_id,
            HumanTask.step_key == confirmation_key(step_key),
            HumanTask.attempt == attempt - 1,
            HumanTask.decision == SEND_BACK,
        )
    ).first()
    if check is None:
        return None
    return {"to": check.proposed_by, "by": check.completed_by, "reason": check.reason or ""}


def clock_start(session: Session, case: Case, origin: str, now: datetime) -> datetime:
    """Where a deadline counts from (models/definition.py DEADLINE_FROM);
    `now` when that moment is not known (yet)."""
    if origin == "file_complete":
        return case.file_complete_at or now
    if origin.startswith("step:"):
        ran = [
            e.at
            for e in audit.events_for_case(session, case.id)
            if e.step_key == origin[5:] and e.action == "step_executed"
        ]
        ran += [
            t.completed_at
            for t in tasks_of_case(session, case.id)
            if t.step_key == origin[5:] and t.completed_at
        ]
        return max(ran, default=now)
    if origin.startswith("fact:"):
        try:
            day = date.fromisoformat(str(case.facts.get(origin[5:]))[:10])
        except ValueError:
            return now
        # The start of that day in Germany.
        return datetime.combine(day, time.min, tzinfo=clock.LOCAL).astimezone(UTC)
    return now


def open_confirmation(
    session: Session,
    *,
    case: Case,
    step_key: str,
    attempt: int,
    step: Step,
    flow_run_id: str,
    definition: Definition | None = None,
) -> HumanTask:
    """Four eyes: the task that confirms the proposal made on (step, attempt)."""
    proposal = session.exec(
        select(HumanTask).where(
            HumanTask.case_id == case.id,
            HumanTask.step_key == step_key,
            HumanTask.attempt == attempt,
        )
    ).one()
    label = next(o["label"] for o in proposal.form["options"] if o["value"] == proposal.decision)
    now = clock.now()
    organisation_id, role = confirmer(session, proposal)
    return _get_or_open(
        session,
        HumanTask(
            case_id=case.id,
            step_key=confirmation_key(step_key),
            attempt=attempt,
            title=f"Bestätigung (Vier-Augen-Prinzip): {step.title}",
            organisation_id=organisation_id,
            role=role,
            flow_run_id=flow_run_id,
            created_at=now,
            due_at=now + step.deadline.duration if step.deadline else None,
            proposed_by=proposal.completed_by,
            proposal=proposal.decision,
            proposal_reason=proposal.reason,
            form={
                "options": [
                    {
                        "value": CONFIRM,
                        "label": f"Vorschlag bestätigen: {label}",
                        "reason_required": False,
                    },
                    {
                        "value": SEND_BACK,
                        "label": "Zur Überarbeitung zurückgeben",
                        "reason_required": True,
                    },
                ]
            },
        ),
    )


COORDINATOR = "coordinator"


def people_with_role(session: Session, organisation_id: int, role: str) -> int:
    query = select(sa.func.count()).where(
        User.organisation_id == organisation_id,
        User.role == role,
        User.active == True,  # noqa: E712
    )
    return session.exec(query).one()


def confirmer(session: Session, proposal: HumanTask) -> tuple[int, Role]:
    """Who confirms a proposal: a second person of the same organisation and
    role; where there is no second person, whom the organisation's setting
    names (its coordination, or a partner organisation's clerks)."""
    org = session.get(Organisation, proposal.organisation_id)
    setting = org.four_eyes_confirmer
    if not setting or people_with_role(session, org.id, proposal.role) >= 2:
        return org.id, proposal.role
    if setting == COORDINATOR:
        return org.id, Role.coordinator
    partner = get_organisation(session, setting)
    return (partner.id, Role.clerk) if partner else (org.id, proposal.role)


def nobody_confirms(session: Session, organisation: Organisation, role: str) -> bool:
    """Whether a four-eyes proposal made in `organisation` would wait for a
    confirmation nobody can give (for the admin's warning)."""
    if people_with_role(session, organisation.id, role) >= 2:
        return False
    setting = organisation.four_eyes_confirmer
    if setting == COORDINATOR:
        return people_with_role(session, organisation.id, Role.coordinator) == 0
    partner = get_organisation(session, setting) if setting else None
    return partner is None or people_with_role(session, partner.id, Role.clerk) == 0


CONFIRMATION_SUFFIX = ".confirm"


def confirmation_key(step_key: str) -> str:
    """The task key of the four-eyes confirmation of `step_key`."""
    return f"{step_key}{CONFIRMATION_SUFFIX}"


def step_of(task_key: str) -> str:
    """The definition step a task belongs to (a confirmation belongs to its step)."""
    return task_key.removesuffix(CONFIRMATION_SUFFIX)


def is_confirmation(task_key: str) -> bool:
    return task_key.endswith(CONFIRMATION_SUFFIX)


def _organisation_id(session: Session, case: Case, organisation: str) -> int:
    if organisation == "case":
        return case.organisation_id
    return get_organisation(session, organisation).id


def _get_or_open(session: Session, task: HumanTask) -> HumanTask:
    existing = session.exec(
        select(HumanTask).where(
            HumanTask.case_id == task.case_id,
            HumanTask.step_key == task.step_key,
            HumanTask.attempt == task.attempt,
        )
    ).first()
    if existing is not None:
        return existing
    session.add(task)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="task_opened",
        case_id=task.case_id,
        detail=f"{task.title} (Aufgabe {task.id})",
    )
    return task


def tasks_of_case(session: Session, case_id: int) -> list[HumanTask]:
    query = select(HumanTask).where(HumanTask.case_id == case_id).order_by(HumanTask.id)
    return list(session.exec(query))


def can_act(user: User, task: HumanTask) -> bool:
    return task.organisation_id == user.organisation_id and task.role == user.role


OWN_PROPOSAL = "Sie haben diesen Vorschlag selbst gemacht. Bestätigen muss eine zweite Person."


def complete(
    session: Session,
    *,
    task: HumanTask,
    user: User,
    decision: str,
    reason: str = "",
    values: dict[str, str] | None = None,
    files: dict | None = None,
) -> PendingResume:
    """A person's decision: checked, then stored with its resume (record).
    `values` and `files` (name -> NewDocument) fill the step's fields."""
    if not can_act(user, task):
        raise TaskError("Diese Aufgabe ist nicht an Sie gerichtet.")
    option = next((o for o in task.form.get("options", []) if o["value"] == decision), None)
    if option is None:
        raise TaskError("Bitte wählen Sie eine der angebotenen Entscheidungen.")
    reason = (reason or "").strip()
    if option.get("reason_required") and not reason:
        raise TaskError(f"Für „{option['label']}“ ist eine Begründung erforderlich.")
    if task.status == TaskStatus.claimed and task.assignee != user.username:
        raise TaskError(f"Die Aufgabe ist von {task.assignee} übernommen.")
    if task.proposed_by == user.username:
        raise TaskError(OWN_PROPOSAL)
    case = session.get(Case, task.case_id)
    try:
        facts, documents = task_fields.checked(
            session, task=task, case=case, decision=decision, values=values or {}, files=files or {}
        )
    except task_fields.FieldError as exc:
        raise TaskError(str(exc)) from None
    pending = record(
        session,
        task=task,
        actor=user.username,
        decision=decision,
        reason=reason,
        label=option["label"],
    )
    # After record: a decision that lost the race stores no values either.
    task_fields.store(
        session, task=task, case=case, facts=facts, documents=documents, actor=user.username
    )
    return pending


def record(
    session: Session, *, task: HumanTask, actor: str, decision: str, reason: str, label: str
) -> PendingResume:
    """Store the decision and queue the resume in one transaction.

    The conditional UPDATE makes exactly one of two simultaneous completions
    win; the loser gets a TaskError and changes nothing.
    """
    changed = session.execute(
        sa.update(HumanTask)
        .where(HumanTask.id == task.id, HumanTask.status.in_(ACTIVE))
        .values(
            status=TaskStatus.completed,
            decision=decision,
            reason=reason or None,
            completed_by=actor,
            completed_at=clock.now(),
            assignee=actor,
        )
    ).rowcount
    if changed != 1:
        raise TaskError(
            "Diese Aufgabe wurde bereits erledigt. Ihre Eingabe wurde nicht gespeichert."
        )
    pending = PendingResume(
        task_id=task.id,
        flow_run_id=task.flow_run_id,
        run_input=Decision(outcome=decision, by=actor, reason=reason, task_id=task.id).model_dump(),
    )
    session.add(pending)
    session.execute(
        sa.update(Case).where(Case.id == task.case_id).values(status=CaseStatus.running)
    )
    audit.record(
        session,
        actor=actor,
        action="task_completed",
        case_id=task.case_id,
        detail=f"{task.title}: {label}" + (f" – {reason}" if reason else ""),
    )
    session.flush()
    return pending


def accepts_resume(
    session: Session, *, case_id: int, task_key: str, attempt: int, decision: Decision
) -> bool:
    """Whether `decision` is what the app saved for the task (case, key,
    attempt): the flow goes on only with that. A mismatch is audited."""
    task = session.exec(
        select(HumanTask).where(
            HumanTask.case_id == case_id,
            HumanTask.step_key == task_key,
            HumanTask.attempt == attempt,
        )
    ).first()
    saved = (
        task is not None
        and task.status == TaskStatus.completed
        and task.id == decision.task_id
        and task.decision == decision.outcome
        and task.completed_by == decision.by
    )
    if not saved:
        refuse_resume(
            session,
            case_id=case_id,
            task_key=task_key,
            attempt=attempt,
            detail=f"{_option_label(task, decision.outcome)} von {decision.by}",
        )
    return saved


def _option_label(task: HumanTask | None, value: str) -> str:
    """The German label of an option, for the history (the value if unknown)."""
    options = task.form.get("options", []) if task is not None else []
    return next((o["label"] for o in options if o["value"] == value), value)


def refuse_resume(
    session: Session, *, case_id: int, task_key: str, attempt: int, detail: str
) -> None:
    """Audit a resume from outside the app (the Prefect UI or API) that the
    flow refused; the run waits again for the task's decision."""
    audit.record(
        session,
        actor="system",
        action="resume_refused",
        case_id=case_id,
        detail=detail,
        step_key=task_key,
        attempt=attempt,
    )


def decide_and_resume(
    *,
    task_id: int,
    username: str,
    decision: str,
    reason: str = "",
    values: dict[str, str] | None = None,
    files: dict | None = None,
) -> bool:
    """A person's decision, end to end: saved and committed first, then the
    flow run resumed. True if Prefect took the resume now; False if the
    sweeper delivers it later. Raises TaskError (German) and saves nothing
    when the decision is not allowed.

    It opens its own sessions, unlike other services, because the decision
    must be committed before Prefect is called: once saved it is never lost.
    """
    with session_scope() as session:
        user = get_user(session, username)
        task = session.get(HumanTask, task_id)
        if user is None or not user.active or task is None:
            raise TaskError("Diese Aufgabe ist nicht an Sie gerichtet.")
        pending = complete(
            session,
            task=task,
            user=user,
            decision=decision,
            reason=reason,
            values=values,
            files=files,
        )
    with session_scope() as session:
        session.add(pending)
        return deliver(session, pending, wait_for_suspend=RESUME_WAIT_SECONDS)


def deliver(session: Session, pending: PendingResume, *, wait_for_suspend: float = 0) -> bool:
    """Resume the flow run of one saved decision; True once Prefect accepted it.
    `wait_for_suspend`: see orchestration.resume_flow_run."""
    if pending.delivered_at is not None:
        return True
    pending.attempts += 1
    try:
        accepted = orchestration.resume_flow_run(
            pending.flow_run_id,
            pending.run_input,
            wait_for_suspend=wait_for_suspend,
            still_wanted=lambda: not _flow_moved_on_committed(pending),
        )
        pending.last_error = None if accepted else "resume not accepted (run not paused yet?)"
    except Exception as exc:  # Prefect down: keep the row, the sweeper retries
        log.warning("resume of flow run %s failed: %s", pending.flow_run_id, exc)
        accepted, pending.last_error = False, f"{type(exc).__name__}: {exc}"
    if accepted or _flow_moved_on(session, pending):
        pending.delivered_at = clock.now()
    session.add(pending)
    return pending.delivered_at is not None


def _flow_moved_on(session: Session, pending: PendingResume) -> bool:
    """A resume that was accepted before a crash cannot be told from one not
    yet possible by Prefect's answer alone; our own rows tell: the run has
    taken the decision from the database itself (take_saved_decision), opened
    a later task or closed the case."""
    taken = select(PendingResume.delivered_at).where(PendingResume.id == pending.id)
    if session.exec(taken).first() is not None:
        return True
    task = session.get(HumanTask, pending.task_id)
    case = session.get(Case, task.case_id)
    later = select(HumanTask.id).where(HumanTask.case_id == case.id, HumanTask.id > task.id)
    return case.status == CaseStatus.completed or session.exec(later).first() is not None


def _flow_moved_on_committed(pending: PendingResume) -> bool:
    # A fresh session: the flow's rows are committed by another process.
    with session_scope() as session:
        return _flow_moved_on(session, session.get(PendingResume, pending.id))


def take_saved_decision(
    session: Session, *, case_id: int, task_key: str, attempt: int
) -> Decision | None:
    """The decision already saved for the task (case, key, attempt), if any:
    the flow takes it instead of suspending when the person was quicker. Its
    resume is then delivered: the person's request stops retrying it at once
    and the sweeper leaves it, however long the run took to get here."""
    task = session.exec(
        select(HumanTask).where(
            HumanTask.case_id == case_id,
            HumanTask.step_key == task_key,
            HumanTask.attempt == attempt,
            HumanTask.status == TaskStatus.completed,
        )
    ).first()
    if task is None:
        return None
    pending = session.exec(select(PendingResume).where(PendingResume.task_id == task.id)).first()
    if pending is not None and pending.delivered_at is None:
        pending.delivered_at = clock.now()
    return Decision(
        outcome=task.decision, by=task.completed_by, reason=task.reason or "", task_id=task.id
    )


def undelivered(
    session: Session, older_than: timedelta = timedelta(0), now: datetime | None = None
) -> list[PendingResume]:
    cutoff = (now or clock.now()) - older_than
    query = select(PendingResume).where(
        PendingResume.delivered_at == None,  # noqa: E711
        PendingResume.created_at <= cutoff,
    )
    return list(session.exec(query))


def sent_back_by(session: Session, task: HumanTask) -> HumanTask | None:
    """Four eyes: the confirmation that sent this step back for rework (the
    latest one before this task opened), whose reason the clerk must read."""
    if is_confirmation(task.step_key):
        return None
    query = (
        select(HumanTask)
        .where(
            HumanTask.case_id == task.case_id,
            HumanTask.step_key == confirmation_key(task.step_key),
            HumanTask.decision == SEND_BACK,
            HumanTask.completed_at <= task.created_at,
        )
        .order_by(HumanTask.completed_at.desc())
    )
    return session.exec(query).first()


def unconfirmable_steps(session: Session, definition: Definition) -> list[tuple[str, str]]:
    """(step title, organisation name) for each four-eyes step that would wait
    for a confirmation nobody can give: fewer than two people of the role
    and no one named in the organisation's settings."""
    found = []
    for step in definition.steps.values():
        if not step.four_eyes:
            continue
        slugs = {step.organisation, *(r.to for r in step.organisation_routes)}
        query = select(Organisation).order_by(Organisation.name)
        for org in session.exec(query):
            acts_here = org.slug in slugs or ("case" in slugs and org.kind == "abh")
            if acts_here and nobody_confirms(session, org, step.role or Role.clerk):
                found.append((step.title, org.name))
    return found
