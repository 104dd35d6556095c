"""The case flow: walks a case's workflow definition step by step.

Rules (docs/architecture.md, PREFECT_NOTES): the flow body only reads and
decides; every side effect, and every choice that reads the database, is a
task with a run-scoped persisted cache, so a re-execution after a resume
takes the same path and does not repeat completed steps; every human step
suspends with a stable key (step and attempt).
"""

import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, RUN_ID, CacheKeyFnPolicy
from prefect.context import get_run_context
from prefect.flow_runs import suspend_flow_run
from pydantic import ValidationError

from serviceplus.flows.steps import ACTIONS, StepRun, case_context
from serviceplus.models import contracts, db
from serviceplus.models.conditions import evaluate
from serviceplus.models.db import session_scope
from serviceplus.models.definition import CONFIRM, Definition
from serviceplus.models.services import audit, cases, human_tasks, orchestration, versions
from serviceplus.models.tables import Case, CaseStatus

MAX_VISITS = 20  # a loop that never reaches a person or an exit fails the run
MAX_REFUSED_RESUMES = 10  # forged resumes at one step before the run fails


Decision = orchestration.decision_input()


# Inputs alone would let two tasks called with the same arguments share one
# cached result (open_human_step and decision_already_saved take the same
# ones), so the task's name is part of the key too.
TASK_NAME = CacheKeyFnPolicy(cache_key_fn=lambda context, parameters: context.task.name)
# Retried only when the app database was away (PostgreSQL restarting): the
# step's transaction was rolled back, so running it again repeats nothing.
# Any other error fails the run at once and becomes an incident.
DATABASE_RETRY_DELAYS = [2, 10, 30]


def database_was_away(_task, _task_run, state) -> bool:
    return db.is_transient(state.data if isinstance(state.data, BaseException) else None)


step_task = task(
    cache_policy=RUN_ID + INPUTS + TASK_NAME,
    persist_result=True,
    retries=len(DATABASE_RETRY_DELAYS),
    retry_delay_seconds=DATABASE_RETRY_DELAYS,
    retry_condition_fn=database_was_away,
)


def _load(session, case_id: int) -> tuple[Case, Definition]:
    case = session.get(Case, case_id)
    return case, versions.load(session, case.definition_name, case.definition_version)


def _load_retrying(case_id: int) -> Definition:
    """The flow body's own read, retried like the steps' when the database
    was away: a failure here would fail the run before any step."""
    for delay in [*DATABASE_RETRY_DELAYS, None]:
        try:
            with session_scope() as session:
                return _load(session, case_id)[1]
        except db.TRANSIENT_ERRORS as error:
            if delay is None:
                raise
            name = type(error).__name__
            get_run_logger().warning("database away (%s); trying again in %s s", name, delay)
            time.sleep(delay)


@step_task(task_run_name="route-{from_key}-{attempt}")
def route(
    case_id: int, from_key: str | None, attempt: int, outcome: str | None, outcomes: dict[str, str]
) -> str:
    """The next step to run: the route for `outcome`, passing over steps
    whose condition does not hold."""
    with session_scope() as session:
        case, definition = _load(session, case_id)
        ctx = case_context(case, definition, outcomes)
        if from_key is None:
            key = definition.start
        else:
            key = definition.step(from_key).successor(outcome, ctx)
        while (step := definition.step(key)).when is not None and not evaluate(step.when, ctx):
            audit.record(
                session,
                actor="system",
                action="step_skipped",
                case_id=case_id,
                detail=step.title,
                step_key=key,
            )
            key = step.skip_to or step.next
        return key


@step_task(task_run_name="{step_key}-{attempt}")
def run_auto_step(case_id: int, step_key: str, attempt: int, reason: str = "") -> str | None:
    with session_scope() as session:  # committed first: a failing step shows where it failed
        cases.set_step(session, case_id, step_key, CaseStatus.running)
    with session_scope() as session:
        case, definition = _load(session, case_id)
        step = definition.step(step_key)
        # Recorded on every execution, so a repeated step shows in the audit log.
        audit.record(
            session,
            actor="system",
            action="step_executed",
            case_id=case_id,
            detail=step.title,
            step_key=step_key,
            attempt=attempt,
        )
        run = StepRun(session, case, step_key, attempt, step, definition, reason)
        return ACTIONS[step.action](run)


@step_task(task_run_name="open-{step_key}-{attempt}-{stage}")
def open_human_step(case_id: int, step_key: str, attempt: int, stage: str) -> int:
    flow_run_id = str(get_run_context().task_run.flow_run_id)
    opener = human_tasks.open_confirmation if stage == "confirm" else human_tasks.open_for_step
    with session_scope() as session:
        case, definition = _load(session, case_id)
        cases.set_step(session, case_id, step_key, CaseStatus.waiting)
        return opener(
            session,
            case=case,
            step_key=step_key,
            attempt=attempt,
            step=definition.step(step_key),
            flow_run_id=flow_run_id,
            definition=definition,
        ).id


@step_task(task_run_name="close-{step_key}")
def close_case(case_id: int, step_key: str, outcome: str) -> str:
    with session_scope() as session:
        cases.close(session, case_id=case_id, step_key=step_key, outcome=outcome)
    return outcome


def suspend_key(step_key: str, attempt: int, stage: str = "decide", round_: int = 0) -> str:
    # Prefect allows only lowercase letters, digits and dashes in input keys.
    key = f"{step_key.replace('_', '-')}-{attempt}-{stage}"
    return key if round_ == 0 else f"{key}-{round_}"


@step_task(task_run_name="check-{step_key}-{attempt}-{stage}-{round_}")
def decision_is_saved(
    case_id: int, step_key: str, attempt: int, stage: str, round_: int, decision: dict
) -> bool:
    """Whether a resume input is a decision the app saved: anyone holding the
    Prefect credentials could resume a run with any input."""
    with session_scope() as session:
        return human_tasks.accepts_resume(
            session,
            case_id=case_id,
            task_key=human_tasks.confirmation_key(step_key) if stage == "confirm" else step_key,
            attempt=attempt,
            decision=contracts.Decision.model_validate(decision),
        )


@step_task(task_run_name="no-input-{step_key}-{attempt}-{stage}-{round_}")
def refuse_resume_without_input(
    case_id: int, step_key: str, attempt: int, stage: str, round_: int
) -> bool:
    """A suspension that ended without an input: refused and audited when
    someone resumed the run from outside (the Prefect UI or API); False when
    the app rescheduled the run itself after a crash (a lost suspension)."""
    flow_run_id = str(get_run_context().task_run.flow_run_id)
    if orchestration.rescheduled_by_app(flow_run_id):
        return False
    with session_scope() as session:
        human_tasks.refuse_resume(
            session,
            case_id=case_id,
            task_key=human_tasks.confirmation_key(step_key) if stage == "confirm" else step_key,
            attempt=attempt,
            detail="ohne Eingabe",
        )
    return True


@step_task(task_run_name="saved-{step_key}-{attempt}-{stage}")
def decision_already_saved(case_id: int, step_key: str, attempt: int, stage: str) -> dict | None:
    """A decision saved before the run got to suspend (the person was quicker
    than the run): taken from the app database instead of waiting for a resume
    that Prefect would refuse while the run is not suspended."""
    with session_scope() as session:
        decision = human_tasks.take_saved_decision(
            session,
            case_id=case_id,
            task_key=human_tasks.confirmation_key(step_key) if stage == "confirm" else step_key,
            attempt=attempt,
        )
    return decision.model_dump() if decision else None


def wait_for_decision(case_id: int, key: str, attempt: int, stage: str) -> Decision:
    """Open the task and suspend; on re-execution, the stored decision.

    A resume whose input is not the saved decision of this task is refused:
    the run suspends again under the next key and waits for the real one.
    """
    open_human_step(case_id, key, attempt, stage)
    if saved := decision_already_saved(case_id, key, attempt, stage):
        return Decision.model_validate(saved)
    for round_ in range(MAX_REFUSED_RESUMES + 1):
        try:
            decision = suspend_flow_run(
                wait_for_input=Decision, key=suspend_key(key, attempt, stage, round_), timeout=None
            )
        except ValidationError:
            # This key's suspension ended without an input: someone resumed
            # the run from outside ServicePLUS (refused and audited), or it
            # crashed while suspended and the app scheduled it again. Either
            # way suspend anew; the sweeper delivers a saved decision to the
            # new suspension.
            if refuse_resume_without_input(case_id, key, attempt, stage, round_):
                get_run_logger().warning(
                    "refused a resume of %s#%s (%s) without input", key, attempt, stage
                )
            else:
                get_run_logger().warning(
                    "suspension %s#%s (%s) lost; suspending again", key, attempt, stage
                )
            continue
        if decision_is_saved(case_id, key, attempt, stage, round_, decision.model_dump()):
            return decision
        get_run_logger().warning(
            "refused a resume of %s#%s (%s) that matches no saved decision", key, attempt, stage
        )
    raise RuntimeError(f"{MAX_REFUSED_RESUMES} refused resumes at {key}#{attempt}")


def mark_failed(flow, flow_run, state) -> None:
    """On failure the case shows it; the coordinator retries from monitoring."""
    with session_scope() as session:
        case = session.get(Case, flow_run.parameters["case_id"])
        case.status = CaseStatus.failed
        audit.record(
            session,
            actor="system",
            action="flow_failed",
            case_id=case.id,
            detail=str(state.message or "")[:500],
        )


@flow(name="case-flow", on_failure=[mark_failed], on_crashed=[mark_failed])
def case_flow(case_id: int, definition_version: int) -> str:
    # The case's version, not the parameter: an admin may have migrated the
    # case; `definition_version` records what the run started on.
    definition = _load_retrying(case_id)
    logger = get_run_logger()
    visits: dict[str, int] = {}
    outcomes: dict[str, str] = {}
    reason = ""  # the reason of the last decision, for the letter it leads to
    key = route(case_id, None, 0, None, {})
    while True:
        step = definition.step(key)
        attempt = visits[key] = visits.get(key, 0) + 1
        if attempt > MAX_VISITS:
            raise RuntimeError(f"step {key} visited {attempt} times; definition loops")
        if step.kind == "end":
            return close_case(case_id, key, step.outcome)
        if step.kind == "auto":
            outcome = run_auto_step(case_id, key, attempt, reason)
        else:
            decision = wait_for_decision(case_id, key, attempt, "decide")
            outcome, reason = decision.outcome, decision.reason
            if step.four_eyes:
                check = wait_for_decision(case_id, key, attempt, "confirm")
                if check.outcome != CONFIRM:
                    logger.info("step %s#%s sent back: %s", key, attempt, check.reason)
                    continue  # the same step again, as a new attempt
        logger.info("step %s#%s -> %s", key, attempt, outcome)
        outcomes[key] = outcome
        key = route(case_id, key, attempt, outcome, dict(outcomes))
