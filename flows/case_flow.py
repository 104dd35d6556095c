"""The case flow: walks a case's workflow definition step by step.

Rules (see docs/architecture.md and PREFECT_NOTES): the flow body only
reads and decides; every side effect is a task with a run-scoped persisted
cache, so a re-execution after a resume does not repeat completed steps;
every human step suspends with a stable key (step and attempt).
"""

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.context import get_run_context
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput

from flows.steps import ACTIONS
from models import audit, cases, tasks, workflows
from models.db import session_scope
from models.tables import Case, CaseStatus

MAX_VISITS = 20  # a loop that never reaches a person or an exit fails the run


class Decision(RunInput):
    """What a person decided on a human task (sent with the resume)."""

    outcome: str
    by: str
    reason: str = ""
    task_id: int


step_task = task(cache_policy=RUN_ID + INPUTS, persist_result=True, retries=0)


@step_task(task_run_name="{step_key}-{attempt}")
def run_auto_step(case_id: int, step_key: str, attempt: int) -> str | None:
    with session_scope() as session:
        case = session.get(Case, case_id)
        definition = workflows.load(session, case.definition_name, case.definition_version)
        step = definition.step(step_key)
        cases.set_step(session, case_id, step_key, CaseStatus.running)
        # Recorded on every execution, so a repeated step shows in the audit log.
        audit.record(
            session,
            actor="system",
            action="step_executed",
            case_id=case_id,
            detail=f"{step_key}#{attempt}: {step.title}",
        )
        return ACTIONS[step.action](session, case, step_key, attempt, step, definition)


@step_task(task_run_name="open-{step_key}-{attempt}")
def open_human_step(case_id: int, step_key: str, attempt: int) -> int:
    flow_run_id = str(get_run_context().task_run.flow_run_id)
    with session_scope() as session:
        case = session.get(Case, case_id)
        step = workflows.load(session, case.definition_name, case.definition_version).step(step_key)
        cases.set_step(session, case_id, step_key, CaseStatus.waiting)
        return tasks.open_task(
            session,
            case=case,
            step_key=step_key,
            attempt=attempt,
            step=step,
            flow_run_id=flow_run_id,
        ).id


@step_task(task_run_name="close-{step_key}")
def close_case(case_id: int, step_key: str, outcome: str) -> str:
    with session_scope() as session:
        cases.close(session, case_id=case_id, step_key=step_key, outcome=outcome)
    return outcome


def suspend_key(step_key: str, attempt: int) -> str:
    # Prefect allows only lowercase letters, digits and dashes in input keys.
    return f"{step_key.replace('_', '-')}-{attempt}"


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
    with session_scope() as session:
        case = session.get(Case, case_id)
        definition = workflows.load(session, case.definition_name, definition_version)
    logger = get_run_logger()
    visits: dict[str, int] = {}
    key = definition.start
    while True:
        step = definition.step(key)
        attempt = visits[key] = visits.get(key, 0) + 1
        if attempt > MAX_VISITS:
            raise RuntimeError(f"step {key} visited {attempt} times; definition loops")
        if step.kind == "end":
            return close_case(case_id, key, step.outcome)
        if step.kind == "auto":
            outcome = run_auto_step(case_id, key, attempt)
        else:
            open_human_step(case_id, key, attempt)
            decision = suspend_flow_run(
                wait_for_input=Decision, key=suspend_key(key, attempt), timeout=None
            )
            outcome = decision.outcome
        logger.info("step %s#%s -> %s", key, attempt, outcome)
        key = step.successor(outcome)
