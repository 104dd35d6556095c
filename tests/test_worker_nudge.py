"""The worker polls at once when a resume or a new case nudges it
(serviceplus/worker.py), instead of at its next poll."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from serviceplus.settings import PROJECT_ROOT
from serviceplus.stack import die_with_parent
from serviceplus.worker import nudge


def _state(flow_run_id) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state.name


def _wait_for_state(flow_run_id, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _state(flow_run_id) == name:
            return True
        time.sleep(0.5)
    return False


def test_a_nudge_makes_the_worker_take_a_scheduled_run_before_its_next_poll(
    prefect_server, tmp_path
):
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment

    from bench.bare_flow import bare_flow

    pool = f"nudge-{uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    bare_flow.from_source(
        source=str(PROJECT_ROOT), entrypoint="bench/bare_flow.py:bare_flow"
    ).deploy(
        name=pool,
        work_pool_name=pool,
        job_variables={"command": f"{sys.executable} -m prefect.engine"},
        print_next_steps=False,
    )
    socket_path = tmp_path / "worker.sock"
    # Polls once at start, then not for an hour: only a nudge can start the run.
    env = dict(prefect_server.env, PREFECT_WORKER_QUERY_SECONDS="3600")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serviceplus.worker",
            "--pool",
            pool,
            "--limit",
            "2",
            "--nudge-socket",
            str(socket_path),
        ],  # fmt: skip
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    try:
        deadline = time.monotonic() + 60
        while b"started" not in (tmp_path / "worker.log").read_bytes():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        flow_run = run_deployment(
            f"bare-flow/{pool}", parameters={"number": 1}, timeout=0, as_subflow=False
        )
        assert not _wait_for_state(flow_run.id, "Suspended", 5), "taken without a nudge"
        assert _state(flow_run.id) == "Scheduled"

        assert nudge(socket_path)
        assert _wait_for_state(flow_run.id, "Suspended", 120), _state(flow_run.id)
    finally:
        # Prefect's worker may linger after SIGTERM on a busy machine (seen
        # beside a chaos run); its run has ended, so it then gets SIGKILL,
        # as serviceplus run does with its own worker (Stack._reap).
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(30)
        log.close()


def test_a_nudge_without_a_worker_is_harmless(tmp_path):
    assert nudge(tmp_path / "nobody.sock") is False


def test_the_sweepers_queue_goes_first_in_its_pool(prefect_server):
    """The sweeper recovers crashed runs: a backlog of case runs scheduled
    earlier must not hold it up. The worker gives its queue priority 1 and
    Prefect hands out that queue's runs first, whatever their times."""
    import anyio
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Scheduled

    from bench.bare_flow import bare_flow
    from serviceplus.worker import HOUSEKEEPING, put_housekeeping_first

    pool = f"queues-{uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        # As `prefect deploy` leaves it: the sweeper's queue made on the way, last.
        client.create_work_queue(HOUSEKEEPING, work_pool_name=pool)
        assert client.read_work_queue_by_name(HOUSEKEEPING, work_pool_name=pool).priority == 2
    anyio.run(put_housekeeping_first, pool)

    deployments = {
        queue: bare_flow.to_deployment(
            name=f"{pool}-{queue}", work_pool_name=pool, work_queue_name=queue
        ).apply()
        for queue in ("default", HOUSEKEEPING)
    }
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        assert client.read_work_queue_by_name(HOUSEKEEPING, work_pool_name=pool).priority == 1
        assert client.read_work_queue_by_name("default", work_pool_name=pool).priority == 2
        backlog = client.create_flow_run_from_deployment(
            deployments["default"],
            parameters={"number": 1},
            state=Scheduled(scheduled_time=now - timedelta(minutes=5)),
        )
        sweep = client.create_flow_run_from_deployment(
            deployments[HOUSEKEEPING], parameters={"number": 2}, state=Scheduled(scheduled_time=now)
        )
        offered = client.get_scheduled_flow_runs_for_work_pool(
            pool, scheduled_before=now + timedelta(seconds=1)
        )
    assert [entry.flow_run.id for entry in offered] == [sweep.id, backlog.id]
