"""Prefect's process worker, woken at once when a case run is resumed.

A resumed run goes back to Scheduled, and Prefect's worker only finds it at
its next poll (`PREFECT_WORKER_QUERY_SECONDS`). This is the same
`ProcessWorker` that `prefect worker start --type process` runs, with its
polling loop unchanged, plus a Unix datagram socket: whoever resumes or
starts a run sends one datagram (`nudge`) and the worker polls right away.
A nudge is only a hint: lost, late or sent while no worker listens, the
regular poll still finds the run, and a run found by both is submitted once
(the worker skips runs it is already submitting, and the server lets only
one worker move a run to Pending).

The sweeper has a work queue of its own in the pool (prefect.yaml), which
the worker puts first (`put_housekeeping_first`): Prefect's workers take the
queues of a pool by priority, and within a queue the earliest scheduled run
first. The sweeper recovers crashed runs and delivers decisions; in the one
queue with the cases it would wait behind a backlog of resumes, minutes late.

Usage: python -m serviceplus.worker --pool cases --limit 4 [--nudge-socket PATH]
"""

import argparse
import logging
import os
import socket
from pathlib import Path

NUDGE = b"poll"
HOUSEKEEPING = "housekeeping"  # the sweeper's work queue (prefect.yaml)

log = logging.getLogger(__name__)


def nudge(path: Path) -> bool:
    """Ask the worker listening on `path` to poll now; False if none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(NUDGE, str(path))
        except OSError:  # no worker here (yet), or its queue is full: it polls anyway
            return False
    return True


def _bind(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # left by a worker that was killed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)  # only the service's own user may wake it
    sock.setblocking(False)
    return sock


async def _poll_on_nudge(worker, sock: socket.socket) -> None:
    import anyio

    while True:
        await anyio.wait_readable(sock)
        # Several nudges that arrived together need one poll.
        while True:
            try:
                sock.recv(64)
            except BlockingIOError:
                break
        # Before its first sync with the server the worker would poll nothing.
        while not getattr(worker, "_has_successfully_synced", True):
            await anyio.sleep(0.1)
        try:
            await worker.get_and_submit_flow_runs()
        except Exception:  # the regular poll retries; a nudge must not stop the worker
            log.exception("Poll on nudge failed")


async def put_housekeeping_first(pool: str) -> None:
    """Give the sweeper's queue priority 1 in `pool` and the others 2, 3 ...
    in their present order (Prefect shifts them only when a queue is created
    with a priority, not when one is changed); create it if `prefect deploy`
    has not yet."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            await client.read_work_queue_by_name(HOUSEKEEPING, work_pool_name=pool)
        except ObjectNotFound:
            await client.create_work_queue(HOUSEKEEPING, work_pool_name=pool, priority=1)
            return
        queues = await client.read_work_queues(work_pool_name=pool)
        queues.sort(key=lambda queue: (queue.name != HOUSEKEEPING, queue.priority))
        for priority, queue in enumerate(queues, start=1):
            if queue.priority != priority:
                await client.update_work_queue(queue.id, priority=priority)


async def serve(pool: str, limit: int, nudge_socket: Path | None) -> None:
    import anyio
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS
    from prefect.workers.process import ProcessWorker

    worker = ProcessWorker(
        work_pool_name=pool,
        limit=limit,
        heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()),
    )
    try:
        await put_housekeeping_first(pool)
    except ObjectNotFound:  # no pool yet: the worker creates it, the next start orders it
        log.warning("Work pool %s not found; sweeper queue not prioritised", pool)
    async with anyio.create_task_group() as group:
        if nudge_socket is not None:
            sock = _bind(nudge_socket)
            group.start_soon(_poll_on_nudge, worker, sock)
        await worker.start()
        group.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m serviceplus.worker",
        description="Prefect's process worker that also polls when a resume nudges it.",
    )
    parser.add_argument("--pool", required=True, help="work pool to serve")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at a time")
    parser.add_argument(
        "--nudge-socket",
        type=Path,
        help="Unix datagram socket to listen on for nudges (default: none, poll only)",
    )
    args = parser.parse_args(argv)

    import anyio
    from prefect.utilities.processutils import setup_signal_handlers_worker

    setup_signal_handlers_worker(os.getpid(), "the ServicePLUS worker", print)
    anyio.run(serve, args.pool, args.limit, args.nudge_socket)


if __name__ == "__main__":
    main()
