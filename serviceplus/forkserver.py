"""The warm start of flow runs: a fork server.

`python -m prefect.engine` spends about 3.5 of its 4 CPU-seconds importing
Python, Prefect, the flow module and WeasyPrint before the first step runs.
This server imports all of that once and then forks one child per flow run.
The worker still starts one process per run (the deployment's command,
`python -m serviceplus.flowrun`), but that process only hands its run to the
server and waits: the run executes in a forked child with everything
imported, one OS process per run as before.

Rules that keep forking safe (Prefect's engine deadlocks in a child forked
from a process whose engine threads were running, Prefect PR 16802):
- the server imports, but never runs a flow, a task or a client call;
- it is single-threaded: it checks that no thread was started by the
  imports before it accepts its first run, and refuses to serve otherwise;
- each child runs exactly one flow run and exits.

Protocol on a Unix socket: the client sends one JSON line {"env": {...}}
with its stdin, stdout and stderr as file descriptors; the server answers
one line with the child's pid and, when the child has ended, one line with
its exit status. A child whose client goes away (the worker killed the
run's process) kills itself, as the plain engine process would have died.
"""

import contextlib
import cProfile
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from pathlib import Path

CHILD_IMPORTS = [
    "psycopg",  # the app database driver on PostgreSQL
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "prefect._internal.observers",
    "prefect.concurrency._asyncio",
    "encodings.idna",
]


def preload() -> dict:
    """Everything a flow run needs, imported once; the flows by name."""
    import sqlalchemy  # noqa: F401
    import weasyprint  # noqa: F401  (letters)
    from prefect.engine import handle_engine_signals  # noqa: F401
    from prefect.flow_engine import load_flow_run, run_flow  # noqa: F401

    # Imported on first use, which would be in every child: measured under
    # cProfile (wall clock, 12 resumes) at 0.27 s of a resume on PostgreSQL.
    for module in CHILD_IMPORTS:
        importlib.import_module(module)

    from serviceplus.flows.case_flow import case_flow
    from serviceplus.flows.letters import warm_up
    from serviceplus.flows.sweeper import sweeper

    warm_up()  # one letter rendered here, not in every child (checked: no threads)

    return {"case-flow": case_flow, "sweeper": sweeper}


def run_child(conn: socket.socket, env: dict[str, str], flows: dict) -> int:
    """In the forked child: one flow run, as `python -m prefect.engine` runs it."""
    os.environ.clear()
    os.environ.update(env)
    threading.Thread(target=_die_with_client, args=(conn,), daemon=True).start()
    from uuid import UUID

    from prefect._internal.control_listener import configure_from_env
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import flow_run_logger, load_flow, load_flow_run, run_flow

    flow_run_id = UUID(env["PREFECT__FLOW_RUN_ID"])
    configure_from_env()
    skip_outside_suspension_watch()
    # bench/profile.py: where a forked child spends its CPU (cProfile, per function).
    profile_to = env.get("SERVICEPLUS_PROFILE_CHILD")
    profiler = cProfile.Profile(time.process_time) if profile_to else None  # CPU, not waits
    if profiler:
        profiler.enable()
    try:
        with handle_engine_signals(flow_run_id):
            flow_run = load_flow_run(flow_run_id=flow_run_id)
            # The deployment names its flow (prefect.yaml): one API call less.
            name = env.get("SERVICEPLUS_FLOW") or _flow_name(flow_run)
            flow = flows.get(name) or load_flow(flow_run)
            flow_run_logger(flow_run=flow_run).debug("started by the fork server")
            run_flow(flow, flow_run=flow_run)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_to)
    return 0


def skip_outside_suspension_watch() -> None:
    """No watch for a suspension requested from outside the run.

    Prefect's engine starts a thread with an event loop and a websocket to
    the server for each deployed run, to notice someone suspending the run
    through the API, and waits for the websocket before the flow starts:
    0.14 s of a resume on PostgreSQL (cProfile, wall clock). ServicePLUS
    never suspends a run from outside; a case run suspends itself at every
    human step and runs for about a second between them. Only the forked
    child skips it; the plain engine path keeps Prefect's behaviour."""
    import prefect.flow_engine

    prefect.flow_engine.observe_flow_run_suspension = _no_watch


@contextlib.contextmanager
def _no_watch(flow_run_id, suspension_request, polling_interval: float = 10):
    yield


def _flow_name(flow_run) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow(flow_run.flow_id).name


def _die_with_client(conn: socket.socket) -> None:
    # The client never sends after its request: EOF means it is gone.
    while conn.recv(1024):
        pass
    os.kill(os.getpid(), signal.SIGKILL)


class ForkServer:
    def __init__(self, path: Path):
        self.path = path
        self.flows = preload()
        # Checked after the imports: a thread alive now would be copied into
        # every child in whatever state it holds its locks.
        if threading.active_count() != 1:
            names = [t.name for t in threading.enumerate()]
            raise RuntimeError(f"refusing to fork: threads started during imports: {names}")
        self.children: dict[int, socket.socket] = {}

    def serve(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(64)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        _log(f"fork server ready on {self.path}")
        while True:
            for _key, _mask in selector.select(timeout=0.2):
                conn, _ = listener.accept()
                self._start(conn, listener)
            self._reap()

    def _start(self, conn: socket.socket, listener: socket.socket) -> None:
        try:
            line, fds = _receive_request(conn)
            if not line:  # connected and closed: `serviceplus health --forkserver`
                conn.close()
                return
            env = json.loads(line)["env"]
        except (OSError, ValueError, KeyError) as exc:
            _log(f"bad request: {exc}")
            conn.close()
            return
        pid = os.fork()
        if pid == 0:  # the child: never returns to the loop
            code = 1
            try:
                listener.close()
                for other in self.children.values():
                    other.close()
                for fd, target in zip(fds, (0, 1, 2), strict=True):
                    os.dup2(fd, target)
                code = run_child(conn, env, self.flows)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        self.children[pid] = conn
        flow = env.get("SERVICEPLUS_FLOW", "named by the Prefect server")
        _log(f"flow run {env.get('PREFECT__FLOW_RUN_ID')}: child {pid} for {flow}")

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):  # a client gone waits for nothing
                conn.sendall(f"{code}\n".encode())
            conn.close()
            # CPU per run: the figure the warm start exists for (docs/performance.md).
            _log(f"child {pid} exited {code} after {usage.ru_utime + usage.ru_stime:.2f} CPU-s")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _receive_request(conn: socket.socket) -> tuple[bytes, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
    if not data and not fds:
        return b"", []
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            raise ValueError("request ended early")
        data += more
    if len(fds) != 3:
        raise ValueError("expected stdin, stdout and stderr")
    return data, fds


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["SERVICEPLUS_FORKSERVER_SOCKET"])
    ForkServer(path).serve()


if __name__ == "__main__":
    main()
