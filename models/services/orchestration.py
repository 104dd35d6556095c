"""The two calls the app makes to Prefect: start a case's flow run, resume it.

Prefect is imported lazily: the web UI and the CLI must set PREFECT_API_URL
before Prefect reads its settings, and pages that never talk to Prefect
should not pay for the import.
"""

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID

from serviceplus.settings import get_settings

log = logging.getLogger(__name__)


def start_flow_run(*, reference: str, parameters: dict[str, Any], tags: list[str]) -> str:
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        get_settings().deployment,
        parameters=parameters,
        flow_run_name=reference,
        tags=tags,
        timeout=0,  # do not wait for the run; the worker picks it up
        idempotency_key=reference,
        as_subflow=False,
    )
    wake_worker()
    return str(flow_run.id)


def wake_worker() -> None:
    """Have this host's worker pick up a scheduled run now rather than at its
    next poll (serviceplus/worker.py). Only a hint: the poll still finds it."""
    from serviceplus.worker import nudge

    nudge(get_settings().worker_nudge_socket)


def resume_flow_run(
    flow_run_id: str,
    run_input: dict[str, Any],
    *,
    wait_for_suspend: float = 0,
    still_wanted: Callable[[], bool] = lambda: True,
) -> bool:
    """True when Prefect accepted the resume. The convenience function in
    prefect.flow_runs ignores an ABORT, so the client is used directly.

    A person can decide in the moment between the task appearing and the run
    suspending; Prefect then refuses the resume. With `wait_for_suspend` the
    resume is tried again while the run is still on its way to suspending
    (scheduled, pending or running), up to that many seconds, so the decision
    moves the case at once rather than at the next sweep. `still_wanted` is
    asked before each new try: the flow may have taken the decision from the
    app database itself and moved on to its next suspend, which this input
    is not for. A run whose suspension lost its input schema gets it back
    (SCHEMA_LOST); one that suspended a moment ago is about to store it.
    """
    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus

    on_its_way = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING)
    give_up_at = time.monotonic() + wait_for_suspend
    restored = False
    with get_client(sync_client=True) as client:
        while True:
            result = client.resume_flow_run(UUID(flow_run_id), run_input=run_input)
            if result.status == SetStateStatus.ACCEPT:
                wake_worker()
                return True
            state = client.read_flow_run(UUID(flow_run_id)).state
            no_schema = getattr(result.details, "reason", None) == SCHEMA_LOST
            if no_schema and not restored and schema_overdue(state):
                restored = True  # once: a schema stored again and still refused is left
                restore_input_schema(flow_run_id, state)
                continue
            waiting = (*on_its_way, StateType.PAUSED) if no_schema else on_its_way
            if state is None or state.type not in waiting or time.monotonic() > give_up_at:
                return False
            time.sleep(0.2)
            if not still_wanted():
                return False


# Prefect suspends a run first and stores the schema of its input after
# (prefect.flow_runs.suspend_flow_run). A run process, Prefect server or
# database that dies in between leaves the run Suspended, and the server
# refuses every resume with input for it with this reason (bench/chaos.py).
# A live run stores the schema a moment after; the app stores it only when it
# is overdue, as the run's own store would then fail (409) and fail the run.
# Overdue counts from the suspension, past the Prefect client's retries of a
# request to a restarting server.
SCHEMA_LOST = "Run input schema not found."
SCHEMA_OVERDUE = timedelta(seconds=30)


def schema_overdue(state) -> bool:
    return (
        state is not None
        and state.is_paused()
        and bool(state.state_details.run_input_keyset)
        and datetime.now(UTC) - state.timestamp > SCHEMA_OVERDUE
    )


@cache
def decision_input() -> type:
    """The resume input as Prefect stores and validates it: the case flow
    suspends for it, and `restore_input_schema` stores its schema again.
    Declared here, on first use, so that the web app need not import Prefect
    to start; no result pickles it (the flow passes decisions on as dicts)."""
    from prefect.input import RunInput

    from serviceplus.models import contracts

    class Decision(contracts.Decision, RunInput):
        """A person's decision on a task (models/contracts.py)."""

    return Decision


def restore_input_schema(flow_run_id: str, state) -> None:
    """Store the input schema that the run's suspension (`state`) lost, as
    the flow would have; a schema stored meanwhile is left as it is."""
    from prefect.exceptions import PrefectHTTPStatusError

    log.warning("flow run %s lost the input schema of its suspension; stored again", flow_run_id)
    keyset = state.state_details.run_input_keyset
    try:
        decision_input().save(keyset, flow_run_id=UUID(flow_run_id))
    except PrefectHTTPStatusError as error:
        if error.response.status_code != 409:  # 409: the run's own store came first
            raise


def flow_run_state(flow_run_id: str) -> str | None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
    return flow_run.state.name if flow_run.state else None


PAGE = 200  # flow runs per request to the Prefect server


def case_runs(client, *states: str, limit: int, sort=None, **run_filter) -> list:
    """Runs of the case flow in any of `states` (Prefect state types, e.g.
    "CRASHED"), narrowed by further FlowRunFilter fields: all of them, page
    by page, up to `limit` (a bound for the caller's work, not a cut-off
    that a busy day reaches), in the order `sort` (a FlowRunSort) asks."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    types = FlowRunFilterStateType(any_=[StateType[state] for state in states])
    flows = FlowFilter(name=FlowFilterName(any_=["case-flow"]))
    runs_filter = FlowRunFilter(state=dict(type=types), **run_filter)
    found: list = []
    while len(found) < limit:
        page = client.read_flow_runs(
            flow_filter=flows,
            flow_run_filter=runs_filter,
            sort=sort,
            limit=PAGE,
            offset=len(found),
        )
        found += page
        if len(page) < PAGE:
            break
    return found[:limit]


# A failed run's exception is only text in its state message. The Prefect
# server answers 5xx while its own database is away (PostgreSQL restarting).
PREFECT_SERVER_ERROR = re.compile(r"PrefectHTTPStatusError: Server error '5\d\d")


def went_away(message: str | None) -> bool:
    """Whether a failed run's message names the app database or the Prefect
    server being away for a moment: the same run, scheduled again, may pass."""
    from serviceplus.models.db import TRANSIENT_ERROR_NAMES

    text = message or ""
    return bool(TRANSIENT_ERROR_NAMES.search(text) or PREFECT_SERVER_ERROR.search(text))


def recoverable_case_runs(limit: int = 100) -> list:
    """Case flow runs worth running again: those whose process died (worker
    or machine killed), and those that failed in the last day because the app
    database or the Prefect server was away longer than the retries wait
    (`went_away`).

    Newest end first: runs the sweeper judged before and left alone (over
    their retries, or failed in their code) stay Crashed or Failed, and must
    not crowd out the new ones. Prefect cannot filter by message, so one page
    of the day's newest failures is read and filtered here: the sweeper runs
    every minute, so a failure it has not judged yet is among them."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilterEndTime
    from prefect.client.schemas.sorting import FlowRunSort

    newest = FlowRunSort.END_TIME_DESC
    day_ago = datetime.now(UTC) - timedelta(days=1)
    with get_client(sync_client=True) as client:
        crashed = case_runs(client, "CRASHED", limit=limit, sort=newest)
        failed = case_runs(
            client,
            "FAILED",
            limit=PAGE,
            sort=newest,
            end_time=FlowRunFilterEndTime(after_=day_ago),
        )
    return crashed + [run for run in failed if went_away(run.state.message)][:limit]


def failed_runs(limit: int = 10_000) -> list:
    """Failed or crashed case flow runs."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return case_runs(client, "FAILED", "CRASHED", limit=limit)


def cancelled_case_runs(since: datetime, limit: int = 10_000) -> list:
    """Case flow runs cancelled after `since` (their end time)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilterEndTime

    with get_client(sync_client=True) as client:
        return case_runs(
            client, "CANCELLED", limit=limit, end_time=FlowRunFilterEndTime(after_=since)
        )


def stuck_case_runs(older_than: timedelta, tag: str | None = None, limit: int = 10_000) -> list:
    """Case flow runs Pending or Running for longer than `older_than` with
    neither a state change nor a heartbeat in that time: their process is
    gone (a worker or machine killed mid-run). A live run sends a heartbeat
    event every `heartbeat_seconds` (PREFECT_FLOWS_HEARTBEAT_FREQUENCY), even
    in a long step; Prefect alone would leave a dead one Running forever."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilterTags

    tags = FlowRunFilterTags(all_=[tag]) if tag else None
    cutoff = datetime.now(UTC) - older_than
    with get_client(sync_client=True) as client:
        found = case_runs(client, "PENDING", "RUNNING", limit=limit, tags=tags)
        quiet = [run for run in found if run.state and run.state.timestamp <= cutoff]
        alive = heartbeats_since(client, quiet, cutoff) if quiet else set()
    return [run for run in quiet if run.id not in alive]


HEARTBEAT = "prefect.flow-run.heartbeat"


def heartbeats_since(client, runs: list, since: datetime) -> set[UUID]:
    """The runs among `runs` that sent a heartbeat event after `since`."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    page = client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=since),
            event=EventNameFilter(name=[HEARTBEAT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}" for run in runs]),
        ),
        limit=50,  # the server's maximum per page
    )
    alive = set()
    while True:
        alive.update(UUID(e.resource.id.removeprefix("prefect.flow-run.")) for e in page.events)
        if not page.next_page:
            return alive
        page = client.read_events_page(str(page.next_page))


def mark_crashed(flow_run_id: str, message: str) -> bool:
    """Declare a run's process dead, so the usual crash recovery takes it."""
    from prefect import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        result = client.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)
    return result.status == SetStateStatus.ACCEPT


RETRYING = "Retrying"  # the name of the app's own reschedules (retry_flow_run)
# Prefect's server renames a scheduled run that waited in the queue for more
# than 15 s (PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS): not a new scheduling.
LATE = "Late"


def rescheduled_by_app(flow_run_id: str) -> bool:
    """Whether the run's last scheduling came from the app (a coordinator's
    retry, the sweeper's crash recovery) rather than from a resume."""
    from prefect import get_client
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(flow_run_id))
    scheduled = [s for s in states if s.type == StateType.SCHEDULED and s.name != LATE]
    return bool(scheduled) and max(scheduled, key=lambda s: s.timestamp).name == RETRYING


def retry_flow_run(flow_run_id: str) -> bool:
    """Schedule a failed run again. The flow re-executes from the top and
    completed steps come back from the run-scoped cache.

    The run keeps its place in the line: it is scheduled for the time it was
    last scheduled (its start or its last resume), not for now. Workers take
    the earliest scheduled run first, so a run that crashed is not put behind
    every resume that came after it; under a backlog that was minutes. Prefect
    renames it "Late" (LATE) when that time is over 15 s ago."""
    from prefect import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        place = _last_scheduled_time(client.read_flow_run_states(UUID(flow_run_id)))
        state = Scheduled(name=RETRYING, scheduled_time=place)
        result = client.set_flow_run_state(UUID(flow_run_id), state, force=True)
    accepted = result.status == SetStateStatus.ACCEPT
    if accepted:
        wake_worker()
    return accepted


def _last_scheduled_time(states: list) -> datetime | None:
    from prefect.client.schemas.objects import StateType

    scheduled = [s for s in states if s.type == StateType.SCHEDULED]
    if not scheduled:
        return None  # Prefect's default: now
    return max(scheduled, key=lambda s: s.timestamp).state_details.scheduled_time


# The name of the app's own cancels (a coordinator's "Fall abbrechen"): the
# sweeper undoes only cancels from outside ServicePLUS, whatever the timing.
APP_CANCELLED = "Cancelled by ServicePLUS"


def cancel_flow_run(flow_run_id: str, reason: str) -> None:
    """A run with a process (Pending, Running) goes to Cancelling: the worker
    that started it stops the process (SIGTERM, through serviceplus.flowrun to
    the fork server's child) and marks the run Cancelled. Set Cancelled at
    once, it would run on to its next state change. A run without a process
    (scheduled, suspended, or one that ended meanwhile: Prefect then refuses
    the Cancelling) is Cancelled at once, under the app's own name."""
    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled, Cancelling

    run_id = UUID(flow_run_id)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
        if state is not None and state.type in (StateType.PENDING, StateType.RUNNING):
            result = client.set_flow_run_state(run_id, Cancelling(message=reason))
            if result.status == SetStateStatus.ACCEPT:
                return
        cancelled = Cancelled(name=APP_CANCELLED, message=reason)
        client.set_flow_run_state(run_id, cancelled, force=True)


def prefect_ui_url(flow_run_id: str) -> str:
    from serviceplus.settings import get_settings

    api = get_settings().prefect_api_url
    return f"{api.removesuffix('/api')}/runs/flow-run/{flow_run_id}"


def retag_flow_run(flow_run_id: str, old: str, new: str) -> None:
    """Replace the organisation tag of a run (a case handed over to another
    authority), so filters by tag in the Prefect UI find it there."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        tags = [new if tag == old else tag for tag in run.tags]
        client.update_flow_run(UUID(flow_run_id), tags=list(dict.fromkeys(tags)))
