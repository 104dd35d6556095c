"""The step library: the automatic actions a definition can name.

Each action gets the open session, the case and its step, does its work
and returns the outcome that picks the route (or None for `next`).
"""

from collections.abc import Callable

from sqlmodel import Session, select

from flows.letters import write_letter
from models import storage
from models.cases import documents_of
from models.completeness import CompletenessResult, check_documents
from models.definition import Definition, Step
from models.tables import Case, HumanTask, TaskStatus

Action = Callable[[Session, Case, str, int, Step, Definition], str | None]


def completeness_of(session: Session, case: Case, definition: Definition) -> CompletenessResult:
    required = definition.required_documents.get(case.residence_purpose, [])
    documents = [
        (d.kind, storage.read_bytes(d.storage_path)) for d in documents_of(session, case.id)
    ]
    return check_documents(required, documents)


def check_completeness(session, case, step_key, attempt, step, definition) -> str:
    return "complete" if completeness_of(session, case, definition).complete else "incomplete"


def send_letter(session, case, step_key, attempt, step, definition) -> None:
    extra = {}
    if step.letter == "missing_documents":
        result = completeness_of(session, case, definition)
        extra = {"missing": result.missing, "unreadable": result.unreadable}
    elif step.letter == "refusal":
        extra = {"reason": _last_reason(session, case.id)}
    write_letter(
        session,
        case=case,
        kind=step.letter,
        step_key=step_key,
        attempt=attempt,
        definition=definition,
        extra=extra,
    )


def _last_reason(session: Session, case_id: int) -> str:
    query = (
        select(HumanTask.reason)
        .where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.completed)
        .order_by(HumanTask.completed_at.desc())
    )
    return session.exec(query).first() or ""


ACTIONS: dict[str, Action] = {
    "check_completeness": check_completeness,
    "send_letter": send_letter,
}
