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
from serviceplus.models.services import advice, audit, status_links
from serviceplus.models.services.cases import check_case_file, facts_of
from serviceplus.models.services.completeness import CompletenessResult
from serviceplus.models.tables import Case


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
    return Context(facts_of(case), outcomes, definition.thresholds, clock.now().date())


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


STATUS_LINK_LETTER = "receipt"  # the letter that carries the employer's status link


def send_letter(run: StepRun) -> None:
    extra: dict = {"reason": run.reason}
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


ACTIONS: dict[str, Action] = {
    "check_completeness": check_completeness,
    "send_letter": send_letter,
}
