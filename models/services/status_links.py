"""The employer's status page: private links, what the page may show, and
the employer's answers (documents or a choice) to a task waiting for them.

A link is a random token of 256 bits; the database holds only its sha256
(the archived receipt letter prints the token itself). A case has at most one working link:
issuing a new one revokes the old. See docs/security.md.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.definition import Step
from serviceplus.models.services import audit, cases, human_tasks, versions
from serviceplus.models.tables import (
    AuditEvent,
    Case,
    EmployerAnswer,
    HumanTask,
    Letter,
    Organisation,
    PendingResume,
    StatusLink,
)
from serviceplus.settings import get_settings

EMPLOYER = "employer"  # the actor name of what arrives through the status page
TOKEN_BYTES = 32
# token_urlsafe(32) gives 43 characters of [A-Za-z0-9_-]; anything else is no token.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Who acts, from the kind of the organisation that holds the open task.
ACTOR_OF_KIND = {"abh": "authority", "recognition": "recognition", "ba": "ba"}

# The letters addressed to the employer: on the status page and mailed.
# Not the BA's deemed approval (an internal file note).
EMPLOYER_LETTERS = (
    "receipt",
    "fee_notice",
    "missing_documents",
    "partial_recognition",
    "hearing",
    "preapproval",
    "refusal",
    "agreement",
    "agreement_reminder",
    "fee_assessment",
)


class AnswerError(ValueError):
    """An employer's answer that cannot be taken; one Problem (de/en) each."""

    def __init__(self, problems: list[cases.Problem]):
        super().__init__("; ".join(p.en for p in problems))
        self.problems = problems


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url_of(token: str) -> str:
    return f"{get_settings().public_url}/status/{token}"


def issue(session: Session, *, case_id: int, actor: str) -> str:
    """A new link for the case (the old one stops working); returns the token,
    which is shown once and never stored."""
    revoke(session, case_id=case_id, actor=actor, quiet=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = clock.now()
    link = StatusLink(
        case_id=case_id,
        token_hash=hash_token(token),
        created_by=actor,
        created_at=now,
        expires_at=now + get_settings().status_link_lifetime,
    )
    session.add(link)
    audit.record(
        session,
        actor=actor,
        action="status_link_issued",
        case_id=case_id,
        detail=f"Statuslink gültig bis {link.expires_at:%d.%m.%Y}",
    )
    return token


def revoke(session: Session, *, case_id: int, actor: str, quiet: bool = False) -> int:
    """Revoke the case's working links; returns how many."""
    now = clock.now()
    result = session.execute(
        sa.update(StatusLink)
        .where(StatusLink.case_id == case_id, StatusLink.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor)
    )
    if result.rowcount and not quiet:
        audit.record(
            session,
            actor=actor,
            action="status_link_revoked",
            case_id=case_id,
            detail="Statuslink gesperrt",
        )
    return result.rowcount


def working_link(session: Session, case_id: int) -> StatusLink | None:
    query = select(StatusLink).where(
        StatusLink.case_id == case_id,
        StatusLink.revoked_at.is_(None),
        StatusLink.expires_at > clock.now(),
    )
    return session.exec(query).first()


def case_for_token(session: Session, token: str) -> Case | None:
    """The case of a working link; None for anything else (wrong, revoked,
    expired, malformed), so the page cannot tell them apart."""
    if not TOKEN_SHAPE.match(token or ""):
        return None
    link = session.exec(
        select(StatusLink).where(StatusLink.token_hash == hash_token(token))
    ).first()
    if link is None or link.revoked_at is not None or link.expires_at <= clock.now():
        return None
    return session.get(Case, link.case_id)


def token_for_receipt(session: Session, case: Case) -> str:
    """The link printed in the receipt letter: issued by the system when the
    letter is written (once, the letter is guarded by its natural key)."""
    return issue(session, case_id=case.id, actor="system")


# --- what the page shows ----------------------------------------------------


@dataclass(frozen=True)
class PastStep:
    key: str
    actor: str  # who acted: authority, recognition, ba, employer, system
    at: datetime


@dataclass(frozen=True)
class OpenStep:
    key: str
    title: str  # the definition's German title, for a step without a public text
    actor: str  # who must act now: employer, authority, recognition, ba
    due_at: datetime | None
    task_id: int | None
    answer: str | None  # "documents", "options" or None
    options: list[tuple[str, str]]  # (value, label) the employer may choose
    documents: dict[str, str]  # kind -> label the employer may upload


@dataclass(frozen=True)
class PublicStatus:
    """Everything the status page shows, and nothing more: no comments, no
    reasons, no clerks' names, no documents, only letters to the employer."""

    reference: str
    authority: str
    completed: bool
    outcome: str | None
    current: OpenStep | None
    past: list[PastStep]
    letters: list[Letter]
    answers: list[EmployerAnswer]


def status_of(session: Session, case: Case) -> PublicStatus:
    definition = versions.load(session, case.definition_name, case.definition_version)
    authority = session.get(Organisation, case.organisation_id)
    open_task = _open_task(session, case.id)
    current = None
    if case.closed_at is None:
        current = _open_step(session, case, definition, open_task)
    return PublicStatus(
        reference=case.reference,
        authority=authority.name,
        completed=case.closed_at is not None,
        outcome=case.outcome,
        current=current,
        past=_past_steps(session, case, definition),
        letters=employer_letters(session, case.id),
        answers=answers_for_task(session, open_task.id) if open_task else [],
    )


def _open_task(session: Session, case_id: int) -> HumanTask | None:
    query = (
        select(HumanTask)
        .where(HumanTask.case_id == case_id, HumanTask.status.in_(human_tasks.ACTIVE))
        .order_by(HumanTask.id.desc())
    )
    return session.exec(query).first()


def _open_step(session: Session, case: Case, definition, task: HumanTask | None) -> OpenStep:
    if task is None:  # an automatic step is running, or the run has not started
        key = case.current_step or definition.start
        step = definition.steps.get(key)
        return OpenStep(key, step.title if step else "", "authority", None, None, None, [], {})
    key = human_tasks.step_of(task.step_key)
    step = definition.steps.get(key) or definition.steps.get(task.step_key)
    answer = (
        step.employer_answer if step and not human_tasks.is_confirmation(task.step_key) else None
    )
    actor = EMPLOYER if answer else _actor_of(session, task.organisation_id)
    return OpenStep(
        key=key,
        title=step.title if step else task.title,
        actor=actor,
        due_at=task.due_at,
        task_id=task.id,
        answer=answer,
        options=_employer_options(step) if answer == "options" else [],
        documents=dict(definition.documents) if answer == "documents" else {},
    )


def _employer_options(step: Step) -> list[tuple[str, str]]:
    return [(o.value, o.label) for o in step.options if o.value in step.employer_options]


def _actor_of(session: Session, organisation_id: int) -> str:
    org = session.get(Organisation, organisation_id)
    return ACTOR_OF_KIND.get(org.kind, "authority")


def _past_steps(session: Session, case: Case, definition) -> list[PastStep]:
    """Automatic steps executed and human steps completed, with their dates;
    not who decided, nor what, nor why."""
    past = []
    events = select(AuditEvent).where(
        AuditEvent.case_id == case.id, AuditEvent.action == "step_executed"
    )
    for event in session.exec(events.order_by(AuditEvent.id)):
        past.append(PastStep(event.step_key or "", "authority", event.at))
    done = select(HumanTask).where(
        HumanTask.case_id == case.id,
        HumanTask.completed_at.is_not(None),
    )
    for task in session.exec(done):
        if human_tasks.is_confirmation(task.step_key):
            continue  # the second signature is internal
        actor = _actor_of(session, task.organisation_id)
        past.append(PastStep(task.step_key, actor, task.completed_at))
    return sorted(past, key=lambda p: p.at)


def employer_letters(session: Session, case_id: int) -> list[Letter]:
    return [x for x in cases.letters_of(session, case_id) if x.kind in EMPLOYER_LETTERS]


def letter_for(session: Session, case: Case, letter_id: int) -> Letter | None:
    return next((x for x in employer_letters(session, case.id) if x.id == letter_id), None)


def answers_for_task(session: Session, task_id: int) -> list[EmployerAnswer]:
    query = select(EmployerAnswer).where(EmployerAnswer.task_id == task_id)
    return list(session.exec(query.order_by(EmployerAnswer.id)))


# --- the employer's answers -------------------------------------------------


NOT_EXPECTED = cases.Problem(
    "Ihr Fall wartet derzeit nicht auf diese Antwort.",
    "Your case is not waiting for this answer at the moment.",
)


def _waiting_task(session: Session, case: Case, answer: str) -> tuple[HumanTask, Step]:
    current = status_of(session, case).current
    if current is None or current.answer != answer:
        raise AnswerError([NOT_EXPECTED])
    task = session.get(HumanTask, current.task_id)
    definition = versions.load(session, case.definition_name, case.definition_version)
    return task, definition.steps[current.key]


def add_documents(
    session: Session, *, case: Case, documents: list[cases.NewDocument], max_bytes: int
) -> PendingResume | None:
    """The employer's documents for the waiting task: the clerk's checks
    (type by content, size, readable); all or nothing. Where the step says
    `employer_recheck`, that option is recorded for the employer at once and
    the returned resume (to deliver after the commit) re-runs the check."""
    task, step = _waiting_task(session, case, "documents")
    if not documents:
        raise AnswerError([cases.Problem("Bitte wählen Sie eine Datei.", "choose a file")])
    kinds = set(versions.load(session, case.definition_name, case.definition_version).documents)
    problems = cases.check_new_documents(documents, max_bytes, kinds)
    if problems:
        raise AnswerError(problems)
    answers = []
    kinds_labels = cases.document_labels(session, case)
    for doc in documents:
        row = cases.add_document(session, case=case, doc=doc, actor=EMPLOYER)
        session.flush()
        answers.append(EmployerAnswer(case_id=case.id, task_id=task.id, document_id=row.id))
        audit.record(
            session,
            actor=EMPLOYER,
            action="employer_document_added",
            case_id=case.id,
            detail=f"{kinds_labels.get(doc.kind, doc.kind)}: {cases.safe_filename(doc.filename)}"
            " (über den Statuslink)",
        )
    session.add_all(answers)
    if not step.employer_recheck:
        return None
    try:
        return human_tasks.record(
            session,
            task=task,
            actor=EMPLOYER,
            decision=step.employer_recheck,
            reason="Unterlagen über den Statuslink nachgereicht",
            label=step.option(step.employer_recheck).label,
        )
    except human_tasks.TaskError:  # a clerk decided a moment earlier
        raise AnswerError([NOT_EXPECTED]) from None


def deliver_resume(pending: PendingResume | None) -> None:
    """After the commit: resume the flow now; if Prefect cannot take it, the
    sweeper delivers it later."""
    if pending is None:
        return
    with session_scope() as session:
        pending = session.merge(pending)  # it belongs to the request's session
        human_tasks.deliver(session, pending, wait_for_suspend=human_tasks.RESUME_WAIT_SECONDS)


def choose(session: Session, *, case: Case, option: str) -> EmployerAnswer:
    """The employer's choice, kept for the clerk to confirm in the task."""
    task, step = _waiting_task(session, case, "options")
    if option not in step.employer_options:
        raise AnswerError(
            [cases.Problem("Bitte wählen Sie eine der angebotenen Antworten.", "unknown option")]
        )
    answer = EmployerAnswer(case_id=case.id, task_id=task.id, option=option)
    session.add(answer)
    audit.record(
        session,
        actor=EMPLOYER,
        action="employer_answered",
        case_id=case.id,
        detail=f"Antwort über den Statuslink: {step.option(option).label}",
    )
    return answer
