"""The step library: the automatic actions a definition can name, and the
facts conditions read.

Each action gets the open session, the case, its step and a small context
(attempt, the reason of the decision that led here), does its work and
returns the outcome that picks the route (or None for `next`).
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from serviceplus.flows.letters import find_letter, status_link_context, write_letter
from serviceplus.models import clock
from serviceplus.models.conditions import Context
from serviceplus.models.definition import Definition, Step
from serviceplus.models.services import advice, audit, human_tasks, status_links
from serviceplus.models.services.cases import check_case_file
from serviceplus.models.services.completeness import CompletenessResult, facts_of_case
from serviceplus.models.tables import Case, Organisation


@dataclass(frozen=True)
class StepRun:
    session: Session
    case: Case
    step_key: str
    attempt: int
    step: Step
    definition: Definition
    reason: str  # the reason given with the decision that led to this step


Action = Callable[[StepRun], str | None]


def case_context(case: Case, definition: Definition, outcomes: dict[str, str]) -> Context:
    return Context(facts_of_case(case), outcomes, definition.thresholds, clock.today())


def completeness_of(session: Session, case: Case, definition: Definition) -> CompletenessResult:
    return check_case_file(session, case, definition)


def check_completeness(run: StepRun) -> str:
    # A file an adviser found complete with the same check, handed over
    # unchanged, is not checked twice.
    if run.attempt == 1 and advice.unchanged_since_precheck(run.session, run.case):
        audit.record(
            run.session,
            actor="system",
            action="precheck_accepted",
            case_id=run.case.id,
            detail="Vollständigkeit aus der Vorprüfung übernommen (Unterlagen unverändert)",
            step_key=run.step_key,
            attempt=run.attempt,
        )
    elif not completeness_of(run.session, run.case, run.definition).complete:
        return "incomplete"
    # The statutory clocks (recognition, BA) start with the complete file.
    run.case.file_complete_at = clock.now()
    run.session.add(run.case)
    return "complete"


def _last_refusal(session: Session, case: Case, step_key: str, decision: str):
    refused = [
        t
        for t in human_tasks.tasks_of_case(session, case.id)
        if t.step_key == step_key and t.decision == decision
    ]
    return refused[-1] if refused else None


def recognition_refusal(session: Session, case: Case) -> dict | None:
    """The recognition body's refusal the ABH's letters cite as that body's
    own appealable decision (its name, date, reasons); None if there is none."""
    task = _last_refusal(session, case, "recognition", "refused")
    if task is None:
        return None
    body = session.get(Organisation, task.organisation_id)
    return {
        "body": body.name,
        "decided_on": clock.local_date(task.completed_at),
        "reason": task.reason,
    }


def ba_refusal(session: Session, case: Case) -> dict | None:
    """The BA's refusal: internal, cited with its reasons, not appealable alone."""
    task = _last_refusal(session, case, "ba_approval", "refuse")
    return {"reason": task.reason} if task else None


STATUS_LINK_LETTER = "receipt"  # the letter that carries the employer's status link


def send_letter(run: StepRun) -> None:
    extra: dict = {
        "reason": run.reason,
        "recognition_refusal": recognition_refusal(run.session, run.case),
        "ba_refusal": ba_refusal(run.session, run.case),
    }
    if run.step.reply_within:
        extra["reply_by"] = clock.today() + run.step.reply_within
    if run.step.letter == "missing_documents":
        result = completeness_of(run.session, run.case, run.definition)
        extra |= {
            "missing": result.missing,
            "unreadable": result.unreadable,
            "problems": result.problems,
        }
    if run.step.letter == STATUS_LINK_LETTER and not find_letter(
        run.session, run.case.id, run.step.letter, run.step_key, run.attempt
    ):
        # Issued only when the letter is really written: the token is printed
        # once and never stored, so a repeated step must not revoke it.
        token = status_links.token_for_receipt(run.session, run.case)
        extra |= status_link_context(status_links.url_of(token))
    write_letter(
        run.session,
        case=run.case,
        kind=run.step.letter,
        step_key=run.step_key,
        attempt=run.attempt,
        definition=run.definition,
        extra=extra,
    )


def change_purpose(run: StepRun) -> None:
    """The case continues under another residence purpose (e.g. § 16d after a
    partial recognition); the documents are then checked for that purpose."""
    old = run.case.residence_purpose
    run.case.residence_purpose = run.step.purpose
    run.session.add(run.case)
    audit.record(
        run.session,
        actor="system",
        action="purpose_changed",
        case_id=run.case.id,
        detail=f"Aufenthaltszweck {old} → {run.step.purpose}",
        step_key=run.step_key,
        attempt=run.attempt,
    )


def record_note(run: StepRun) -> None:
    """An internal note in the case's history (e.g. the BA's deemed approval):
    for the file, not a letter to the employer."""
    audit.record(
        run.session,
        actor="system",
        action="internal_note",
        case_id=run.case.id,
        detail=f"{run.step.note} ({clock.now():%d.%m.%Y})",
        step_key=run.step_key,
        attempt=run.attempt,
    )


ACTIONS: dict[str, Action] = {
    "check_completeness": check_completeness,
    "send_letter": send_letter,
    "change_purpose": change_purpose,
    "record_note": record_note,
}
