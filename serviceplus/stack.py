"""Start the moving parts (Prefect server, worker, web UI) as subprocesses,
each after the one it needs is healthy, and stop them all on Ctrl-C."""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from serviceplus.settings import PROJECT_ROOT, Settings

BIN = Path(sys.executable).parent


def _exe(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else shutil.which(name) or name


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Run in a child between fork and exec: the kernel sends it SIGTERM when
    the process that started it dies, however it dies (even kill -9), so an
    interrupted launcher, test or benchmark leaves no parts behind. Each part
    stops its own children on SIGTERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stack_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.prefect_env())
    env.update(
        {
            "SERVICEPLUS_ROOT": str(PROJECT_ROOT),
            # The deployments start `python -m prefect.engine` (prefect.yaml).
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "SERVICEPLUS_DATA_DIR": str(settings.data_dir),
            "SERVICEPLUS_DATABASE_URL": settings.database_url,
            "SERVICEPLUS_STORAGE_DIR": str(settings.storage_dir),
            "SERVICEPLUS_DEMO": "1" if settings.demo else "0",
            "SERVICEPLUS_SECRET_KEY": settings.secret_key,
            "SERVICEPLUS_DEPLOYMENT": settings.deployment,
            "SERVICEPLUS_WEB_PORT": str(settings.web_port),
            "SERVICEPLUS_PREFECT_PORT": str(settings.prefect_port),
            # Poll for new and resumed runs every second (default 10 s).
            "PREFECT_WORKER_QUERY_SECONDS": env.get("PREFECT_WORKER_QUERY_SECONDS", "1"),
            "PREFECT_WORKER_PREFETCH_SECONDS": env.get("PREFECT_WORKER_PREFETCH_SECONDS", "1"),
        }
    )
    if settings.warm_start:
        env["SERVICEPLUS_FORKSERVER_SOCKET"] = str(settings.forkserver_socket)
    else:
        env.pop("SERVICEPLUS_FORKSERVER_SOCKET", None)
    return env


def wait_socket(path: Path, timeout: float, proc: subprocess.Popen) -> None:
    """Until something accepts connections on the Unix socket `path`."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{path.name}: its server exited with {proc.returncode}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {path} after {timeout} s")


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout:.0f} s")


def free_port() -> int:
    """A port nobody listens on now, for tests and benchmarks that start
    their own stack beside whatever else runs on the machine."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


# Seconds before the n-th restart of a part that died (the last one repeats).
RESTART_BACKOFF = (1, 2, 5, 10, 30, 60)
# A part that ran this long without dying starts its back-off from the beginning.
RESTART_RESET_AFTER = 600


def wait_tcp(host: str, port: int, timeout: float, proc: subprocess.Popen) -> None:
    """Until something accepts TCP connections on host:port."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"port {port}: its server exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers on {host}:{port} after {timeout} s")


class Stack:
    """The running system. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        settings: Settings,
        *,
        web: bool = True,
        log_dir: Path | None = None,
        work_dir: Path = PROJECT_ROOT,
        forkserver_socket: Path | None = None,
    ):
        self.settings = settings
        self.web = web
        self.env = stack_env(settings)
        self.log_dir = log_dir or settings.data_dir / "logs"
        # Another working directory and socket: one more worker "host" beside
        # this one (tests/test_workers.py); results and storage stay shared.
        self.work_dir = work_dir
        self.forkserver_socket = forkserver_socket or settings.forkserver_socket
        # Only the first host's worker is woken by a resume; others poll.
        self.nudge_socket = (
            settings.worker_nudge_socket if work_dir == PROJECT_ROOT else work_dir / "worker.sock"
        )
        if settings.warm_start:
            self.env["SERVICEPLUS_FORKSERVER_SOCKET"] = str(self.forkserver_socket)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._logs: dict[int, object] = {}
        # Parts that are restarted when they die (the server and the database
        # are not: without them nothing can work, so the stack stops).
        self._restartable = {
            "mailsink": self.start_mailsink,
            "forkserver": self.start_forkserver,
            "prefect-worker": self.start_worker,
            "web": self.start_web,
        }
        self._restarts: dict[str, list[float]] = {}  # name -> restart times
        self._due: dict[str, float] = {}  # name -> when to start it again

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed in _reap)
        proc = subprocess.Popen(
            args,
            env=self.env,
            cwd=self.work_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            preexec_fn=die_with_parent,
        )
        self.procs.append((name, proc))
        self._logs[proc.pid] = log
        return proc

    def _prefect(self, *args: str) -> None:
        subprocess.run(
            [_exe("prefect"), *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    @property
    def mail_dir(self) -> Path:
        return self.settings.data_dir / "mails"

    def start_mailsink(self) -> None:
        """In demo mode without a mail server of its own: a local SMTP sink on
        a free port (serviceplus/mailsink.py), which every later part sends to."""
        if not self.settings.demo or self.settings.smtp_host:
            return
        port = int(self.env.get("SERVICEPLUS_SMTP_PORT") or 0) or free_port()
        sink = self._spawn(
            "mailsink",
            [sys.executable, "-m", "serviceplus.mailsink", str(port), str(self.mail_dir)],
        )
        wait_tcp("127.0.0.1", port, 30, sink)
        self.env.update({"SERVICEPLUS_SMTP_HOST": "127.0.0.1", "SERVICEPLUS_SMTP_PORT": str(port)})

    def start_server(self) -> None:
        s = self.settings
        server = self._spawn(
            "prefect-server",
            [
                sys.executable,
                "-m",
                "serviceplus.prefect_server",  # `prefect server start`, SQLite writes IMMEDIATE
                "--host",
                "127.0.0.1",
                "--port",
                str(s.prefect_port),
            ],
        )
        wait_http(f"{s.prefect_api_url}/health", 90, server)

    def deploy(self) -> None:
        s = self.settings
        self._prefect("work-pool", "create", s.work_pool, "--type", "process", "--overwrite")
        self._prefect("--no-prompt", "deploy", "--all")

    def start_forkserver(self) -> None:
        """The warm start of flow runs (serviceplus/forkserver.py), if on."""
        if not self.settings.warm_start:
            return
        path = self.forkserver_socket
        server = self._spawn(
            "forkserver", [sys.executable, "-m", "serviceplus.forkserver", str(path)]
        )
        wait_socket(path, 120, server)

    def start_worker(self) -> None:
        self._spawn(
            "prefect-worker",
            [
                sys.executable,
                "-m",
                "serviceplus.worker",
                "--pool",
                self.settings.work_pool,
                "--limit",
                str(self.settings.worker_limit),
                "--nudge-socket",
                str(self.nudge_socket),
            ],
        )

    def start_web(self) -> None:
        s = self.settings
        web = self._spawn(
            "web",
            [
                _exe("gunicorn"),
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"{s.host}:{s.web_port}",
                "serviceplus.webui:create_app()",
            ],
        )
        wait_http(f"http://{s.host}:{s.web_port}/login", 60, web)

    def start(self) -> "Stack":
        self.start_mailsink()
        self.start_server()
        self.deploy()
        self.start_forkserver()
        self.start_worker()
        if self.web:
            self.start_web()
        return self

    def stop(self) -> None:
        """Stop in reverse order of start: the worker still reaches the server
        while it shuts down."""
        for name, _proc in reversed(list(self.procs)):
            self.stop_process(name)

    def stop_process(self, name: str) -> None:
        for entry in [e for e in self.procs if e[0] == name]:
            if entry[1].poll() is None:
                os.killpg(entry[1].pid, signal.SIGINT)
            self._reap(entry[1])
            self.procs.remove(entry)

    def _reap(self, proc: subprocess.Popen) -> None:
        # Prefect's worker can linger after SIGINT; runs it had are resumable,
        # so it gets a few seconds and then SIGKILL.
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._logs.pop(proc.pid).close()

    def wait(self) -> None:
        """Block until Ctrl-C or SIGTERM, healing the stack meanwhile; raises
        when a part dies that cannot be restarted (the Prefect server)."""
        # Also SIGINT: a shell may start us with it ignored (background jobs).
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, interrupt)
        while True:
            self.heal()
            time.sleep(1)

    def heal(self) -> None:
        """One look at the parts: a dead worker or web server is started
        again after a back-off that grows while it keeps dying; a dead
        Prefect server stops the stack with a clear message."""
        now = time.monotonic()
        for name, proc in list(self.procs):
            if proc.poll() is None:
                continue
            if name not in self._restartable:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; the stack cannot work without "
                    f"it and stops. See {self.log_dir / name}.log"
                )
            self.procs.remove((name, proc))
            self._logs.pop(proc.pid).close()
            recent = [t for t in self._restarts.get(name, []) if now - t < RESTART_RESET_AFTER]
            delay = RESTART_BACKOFF[min(len(recent), len(RESTART_BACKOFF) - 1)]
            self._restarts[name] = recent
            self._due[name] = now + delay
            print(
                f"serviceplus: {name} exited with {proc.returncode}; restarting in {delay} s",
                file=sys.stderr,
                flush=True,
            )
        for name, when in list(self._due.items()):
            if now >= when:
                del self._due[name]
                self._restarts.setdefault(name, []).append(now)
                self._restartable[name]()
                print(f"serviceplus: {name} restarted", file=sys.stderr, flush=True)

    def __enter__(self) -> "Stack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
