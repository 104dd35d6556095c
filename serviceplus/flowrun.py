"""The command a worker starts for each flow run (prefect.yaml): hands the run
to the fork server (serviceplus/forkserver.py) and waits for it.

It imports nothing but the standard library, so it starts in milliseconds.
Without a fork server (SERVICEPLUS_FORKSERVER_SOCKET unset, or nobody
listening) it becomes `python -m prefect.engine`, the plain path. Signals
the worker sends (cancellation) go on to the run's process; its exit status
becomes this process's.
"""

import base64
import json
import os
import signal
import socket
import sys


def plain_engine() -> None:
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *sys.argv[1:]])


def main() -> None:
    path = os.environ.get("SERVICEPLUS_FORKSERVER_SOCKET", "")
    if not path:
        plain_engine()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        print("fork server not reachable; starting the plain engine", file=sys.stderr)
        plain_engine()
    request = json.dumps({"env": dict(os.environ)}).encode() + b"\n"
    socket.send_fds(conn, [request], [0, 1, 2])
    answers = conn.makefile("rb")
    child = int(answers.readline())
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _frame: os.kill(child, s))
    status = answers.readline()
    # No status: the fork server died while the run went on; the run's
    # process dies with this one (it watches the connection).
    code = int(status) if status.strip() else 1
    if code != 0 and run_is_suspended():
        # The run suspended and then its process was killed before it
        # exited: reporting the death would make the worker mark the
        # suspended run Crashed and lose the suspension.
        code = 0
    if code < 0:  # killed by a signal: die of the same one, as the worker expects
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def run_is_suspended() -> bool:
    """Whether the Prefect server has this process's flow run suspended."""
    import urllib.request  # 30 ms, needed only after the run: not before it starts

    url = f"{os.environ['PREFECT_API_URL']}/flow_runs/{os.environ['PREFECT__FLOW_RUN_ID']}"
    request = urllib.request.Request(url)
    if auth := os.environ.get("PREFECT_API_AUTH_STRING"):
        request.add_header("Authorization", f"Basic {base64.b64encode(auth.encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            state = json.load(response).get("state") or {}
    except (OSError, ValueError, KeyError):
        return False  # not known: report the death as it is
    return state.get("type") == "PAUSED"


if __name__ == "__main__":
    main()
