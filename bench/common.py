"""Helpers the benchmark scripts share. Importing this has no side effects:
each script sets its own environment (data directory, ports) first."""

import atexit
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLI = str(Path(sys.executable).parent / "serviceplus")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_until(check, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError


def login_url() -> str:
    return f"http://127.0.0.1:{os.environ['SERVICEPLUS_WEB_PORT']}/login"


def serves_login() -> bool:
    try:
        with urllib.request.urlopen(login_url(), timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def prepare(prefix: str) -> Path:
    """Environment for a benchmark stack: a temporary data directory, free
    ports of its own, and with BENCH_POSTGRES=user@host:port fresh PostgreSQL
    databases for the app and the Prefect server. Call before anything
    imports prefect."""
    import tempfile

    from serviceplus.stack import free_port

    web_port, prefect_port = free_port(), free_port()
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(SERVICEPLUS_DATA_DIR=str(data_dir), SERVICEPLUS_DEMO="1",
                      SERVICEPLUS_WEB_PORT=str(web_port),
                      SERVICEPLUS_PREFECT_PORT=str(prefect_port))  # fmt: skip
    for name in ("DATABASE_URL", "PREFECT_API_URL", "SERVICEPLUS_DATABASE_URL"):
        os.environ.pop(name, None)
    postgres = os.environ.get("BENCH_POSTGRES")
    if postgres:
        import psycopg

        base = data_dir.name.replace("-", "_")
        admin = f"postgresql://{postgres}/postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            for db in (f"{base}_app", f"{base}_prefect"):
                connection.execute(f'CREATE DATABASE "{db}"')
        atexit.register(_drop_databases, admin, [f"{base}_app", f"{base}_prefect"])
        os.environ["DATABASE_URL"] = f"postgresql+psycopg://{postgres}/{base}_app"
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
            f"postgresql+asyncpg://{postgres}/{base}_prefect"
        )
    from serviceplus.settings import apply_prefect_env

    apply_prefect_env()
    return data_dir


def _drop_databases(admin: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        for db in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def database_label() -> str:
    return "PostgreSQL" if os.environ.get("BENCH_POSTGRES") else "SQLite"


def cases_to_first_task(n: int) -> float:
    """Seconds from creating `n` cases (one after the other) until each has
    its first human task."""
    from sqlmodel import func, select

    from serviceplus.demo import submit_example
    from serviceplus.models.db import session_scope
    from serviceplus.models.tables import HumanTask

    with session_scope() as session:
        before = session.exec(select(func.count()).select_from(HumanTask)).one()
    started = time.monotonic()
    for _ in range(n):
        submit_example()

    def all_waiting():
        with session_scope() as session:
            return session.exec(select(func.count()).select_from(HumanTask)).one() >= before + n

    wait_until(all_waiting, timeout=1800)
    return time.monotonic() - started


def resume_latencies(n: int, gap: float = 0) -> list[float]:
    """Seconds from a decision's completion (saved, resume sent) to the case's
    next state (here: the four-eyes confirmation task opened by the resumed
    flow), one case after the other: the next decision `gap` seconds after
    the previous run suspended."""
    from sqlmodel import select

    from serviceplus.demo import submit_example
    from serviceplus.models.db import session_scope
    from serviceplus.models.services.human_tasks import decide_and_resume
    from serviceplus.models.services.orchestration import flow_run_state
    from serviceplus.models.tables import HumanTask, TaskStatus

    created = [submit_example() for _ in range(n)]

    def task_at(case, step):
        with session_scope() as session:
            query = select(HumanTask).where(
                HumanTask.case_id == case.id,
                HumanTask.step_key == step,
                HumanTask.status == TaskStatus.open,
            )
            return session.exec(query).first()

    # Every case waits at its decision before the first is timed: otherwise a
    # resumed run queues behind the starts of the others.
    waiting = [wait_until(lambda c=case: task_at(c, "decision"), 1800) for case in created]
    for task in waiting:
        wait_until(lambda t=task: flow_run_state(t.flow_run_id) == "Suspended", 1800)
    latencies = []
    for case, task in zip(created, waiting, strict=True):
        started = time.monotonic()
        assert decide_and_resume(task_id=task.id, username="sb.magdeburg", decision="approve")
        wait_until(lambda c=case: task_at(c, "decision.confirm"))
        latencies.append(time.monotonic() - started)
        # Untimed. With gap 0 the next decision meets the end of this run
        # (its process exits, the worker reports): on SQLite the resume call
        # then waits about 2 s for the Prefect server's single writer.
        wait_until(lambda t=task: flow_run_state(t.flow_run_id) == "Suspended")
        time.sleep(gap)
    return latencies


def start_stack() -> tuple[subprocess.Popen, float]:
    """`serviceplus run` with this process's environment; seconds until the
    login page is served."""
    from serviceplus.stack import die_with_parent

    started = time.monotonic()
    proc = subprocess.Popen(
        [CLI, "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # Killed or failed, a benchmark takes its stack with it.
        preexec_fn=die_with_parent,
    )
    atexit.register(_stop_if_running, proc)
    while not serves_login():
        if proc.poll() is not None:
            raise RuntimeError("serviceplus run exited early; see the logs in its data directory")
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    follow_version_2()
    return proc, elapsed


def follow_version_2() -> None:
    """New cases follow version 2 of § 81a: the benchmarks measure its path
    to the decision (version 3 first waits for the signed agreement and the
    fee payment, which a clerk enters with values)."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import versions

    with session_scope() as session:
        versions.activate(session, versions.load_row(session, "s81a", 2), by="bench")


def stop_stack(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 2)  # Ctrl-C, as a user would
    proc.wait(timeout=60)


def _stop_if_running(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        stop_stack(proc)


def database_locked_count() -> int:
    """How often this benchmark's parts logged SQLite's "database is locked"
    (the Prefect server's and the app's databases under concurrent writes)."""
    logs = Path(os.environ["SERVICEPLUS_DATA_DIR"]) / "logs"
    return sum(
        log.read_text(encoding="utf-8", errors="replace").count("database is locked")
        for log in logs.glob("*.log")
    )


def replace_section(path: Path, section: str) -> None:
    """Put `section` in place of the section with the same heading (or append it)."""
    heading = section.splitlines()[0]
    old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    before, found, rest = old.partition(heading)
    after = rest[rest.find("\n## ") + 1 :] if found and "\n## " in rest else ""
    path.write_text(before.rstrip() + "\n\n" + section + ("\n" + after if after else ""))


def open_task(case):
    """The case's one open or claimed human task."""
    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.services.human_tasks import ACTIVE
    from serviceplus.models.tables import HumanTask

    with session_scope() as session:
        query = select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status.in_(ACTIVE))
        return session.exec(query).one()
