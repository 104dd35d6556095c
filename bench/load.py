"""Load: simulated clerks work the inbox of a running stack over HTTP.

Starts `serviceplus run` (gunicorn, worker, Prefect server) on free ports
with a temporary data directory, creates clerk accounts and Blue Card cases,
then lets N clerks (threads, each with its own session) for S seconds: open the
group inbox, open a task, claim it, decide it (approve, or confirm a
colleague's proposal). Bounded in time and count, loopback only.

Afterwards it checks: no error responses (5xx or unexpected 4xx), every
decision a clerk saved is in its case, and no flow run was resumed more often
than its tasks were decided.

Usage: .venv/bin/python -m bench.load [--clerks 20] [--seconds 120] [--cases 60] [--write FILE]
With BENCH_POSTGRES=postgres@127.0.0.1:5432 both databases are fresh PostgreSQL ones.
"""

import argparse
import http.cookiejar
import os
import platform
import random
import re
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from serviceplus.stack import free_port

DATA_DIR = Path(tempfile.mkdtemp(prefix="serviceplus-bench-load-"))
PG = os.environ.get("BENCH_POSTGRES")  # e.g. postgres@127.0.0.1:5432: both databases there
os.environ.update(
    SERVICEPLUS_DATA_DIR=str(DATA_DIR),
    SERVICEPLUS_DEMO="1",
    SERVICEPLUS_WEB_PORT=str(free_port()),
    SERVICEPLUS_PREFECT_PORT=str(free_port()),
)
for name in ("DATABASE_URL", "PREFECT_API_URL", "SERVICEPLUS_DATABASE_URL"):
    os.environ.pop(name, None)
if PG:
    import psycopg

    names = [f"serviceplus_load_{os.getpid()}", f"serviceplus_load_{os.getpid()}_prefect"]
    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as connection:
        for db in names:
            connection.execute(f'CREATE DATABASE "{db}"')
    os.environ["DATABASE_URL"] = f"postgresql+psycopg://{PG}/{names[0]}"
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"postgresql+asyncpg://{PG}/{names[1]}"

from bench.common import CLI, percentile, replace_section  # noqa: E402

BASE = f"http://127.0.0.1:{os.environ['SERVICEPLUS_WEB_PORT']}"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
TASK_LINK = re.compile(r'href="/tasks/(\d+)"')
OPTION = re.compile(r'name="decision"[^>]*type="radio" value="([a-z_]+)"')


class Clerk:
    def __init__(self, username: str, stats: list, lock: threading.Lock):
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), NoRedirect()
        )
        self.username, self.stats, self.lock = username, stats, lock
        self.decided: list[tuple[int, str]] = []

    def request(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        started = time.perf_counter()
        try:
            with self.opener.open(BASE + path, body, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except (TimeoutError, urllib.error.URLError):
            status, text = 0, ""  # no answer within 30 s: counted as an error
        with self.lock:
            self.stats.append(
                (path.split("?")[0].split("/")[1], status, time.perf_counter() - started)
            )
        return status, text

    def login(self) -> None:
        _, page = self.request("/login")
        token = TOKEN.search(page).group(1)
        status, _ = self.request(
            "/login",
            {"csrf_token": token, "username": self.username, "password": "bench-password-1"},
        )
        assert status == 302, f"login of {self.username}: {status}"

    def work_once(self) -> None:
        _, inbox = self.request("/inbox?view=group")
        ids = TASK_LINK.findall(inbox)
        if not ids:
            time.sleep(0.5)
            return
        task_id = random.choice(ids)
        _, page = self.request(f"/tasks/{task_id}")
        if "Aufgabe übernehmen" not in page or "selbst gemacht" in page:
            return
        token = TOKEN.search(page).group(1)
        self.request(f"/tasks/{task_id}/claim", {"csrf_token": token})
        _, page = self.request(f"/tasks/{task_id}")
        if "An die Gruppe zurückgeben" not in page:
            return  # a colleague was quicker (only the assignee may give it back)
        options = OPTION.findall(page)
        if not options or "selbst gemacht" in page:
            return  # no form for this clerk (e.g. their own proposal, four eyes)
        decision = options[0]  # approve, or confirm a colleague's proposal
        status, _ = self.request(
            f"/tasks/{task_id}/complete", {"csrf_token": token, "decision": decision}
        )
        if status == 302:
            self.decided.append((int(task_id), decision))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def prepare(cases: int, clerks: int) -> None:
    from sqlmodel import func, select

    from bench.common import wait_until
    from serviceplus.demo import EXAMPLES
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import accounts
    from serviceplus.models.tables import HumanTask, Role

    with session_scope() as session:
        for i in range(clerks):
            if accounts.get_user(session, f"last.{i}") is None:
                accounts.create_user(
                    session,
                    username=f"last.{i}",
                    full_name=f"Last {i}",
                    role=Role.clerk,
                    org_slug="abh-md",
                    password="bench-password-1",
                    by="bench",
                )
    for i in range(cases):
        data = (EXAMPLES / "case-18g.json").read_text(encoding="utf-8")
        case_file = DATA_DIR / f"case-{i}.json"
        case_file.write_text(
            data.replace('"organisation"', f'"submission_key": "load-{i}", "organisation"')
        )
        subprocess.run(
            [CLI, "case", "start", str(case_file), "--documents", str(EXAMPLES)],
            check=True,
            capture_output=True,
        )

    # The clock starts when every case waits in the inbox, not while they start.
    def all_in_inbox() -> bool:
        with session_scope() as session:
            return session.exec(select(func.count()).select_from(HumanTask)).one() >= cases

    wait_until(all_in_inbox, timeout=600)


def check(clerks: list[Clerk]) -> tuple[int, int]:
    """(decisions missing from their case, runs resumed more than decided)."""
    from uuid import UUID

    from prefect import get_client
    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.tables import Case, HumanTask, TaskStatus

    missing = 0
    with session_scope() as session:
        for clerk in clerks:
            for task_id, decision in clerk.decided:
                task = session.get(HumanTask, task_id)
                missing += (task.status, task.decision, task.completed_by) != (
                    TaskStatus.completed,
                    decision,
                    clerk.username,
                )
        decided = Counter(
            t.case_id
            for t in session.exec(select(HumanTask).where(HumanTask.status == TaskStatus.completed))
        )
        runs = {c.id: c.flow_run_id for c in session.exec(select(Case)) if c.flow_run_id}
    over = 0
    with get_client(sync_client=True) as client:
        for case_id, run_id in runs.items():
            resumes = [s.name for s in client.read_flow_run_states(UUID(run_id))].count("Resuming")
            over += resumes > decided[case_id]
    return missing, over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clerks", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    from bench.common import database_locked_count, start_stack, stop_stack
    from serviceplus.settings import apply_prefect_env

    apply_prefect_env()
    proc, _ = start_stack()
    try:
        prepare(args.cases, args.clerks)
        stats, lock = [], threading.Lock()
        clerks = [Clerk(f"last.{i}", stats, lock) for i in range(args.clerks)]
        for clerk in clerks:
            clerk.login()
        stats.clear()
        stop_at = time.monotonic() + args.seconds

        def run(clerk: Clerk) -> None:
            while time.monotonic() < stop_at:
                clerk.work_once()

        threads = [threading.Thread(target=run, args=(c,)) for c in clerks]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        time.sleep(10)  # let the last resumes reach Prefect
        missing, over = check(clerks)
    finally:
        stop_stack(proc)
    statuses = Counter(status for _, status, _ in stats)
    errors = sum(
        n for status, n in statuses.items() if status >= 500 or status in (0, 400, 403, 404)
    )
    breakdown = ", ".join(f"{s or 'timeout'}: {n}" for s, n in sorted(statuses.items()))
    latencies = [d * 1000 for _, _, d in stats]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    rate = len(stats) / elapsed
    decided = sum(len(c.decided) for c in clerks)
    text = "\n".join(
        [
            f"## Load: clerks working the inbox ({'PostgreSQL' if PG else 'SQLite'})",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.load --clerks "
            f"{args.clerks} --seconds {args.seconds} --cases {args.cases}` on {platform.node()} "
            f"({os.cpu_count()} cores, {'PostgreSQL' if PG else 'SQLite'}, gunicorn 2 workers × 4 "
            "threads, one process worker; "
            "load generator on the same machine over loopback).",
            "",
            "| figure | value |",
            "|---|---|",
            f"| requests | {len(stats)} in {elapsed:.0f} s ({rate:.1f} per second) |",
            f"| latency p50 / p95 | {p50:.0f} / {p95:.0f} ms |",
            f"| error responses (5xx, 400, 403, 404, no answer in 30 s) | {errors} |",
            f"| responses by status | {breakdown} |",
            f"| decisions saved by clerks | {decided} |",
            f"| saved decisions missing from their case | {missing} |",
            f"| flow runs resumed more often than decided | {over} |",
            f'| "database is locked" in the logs | {database_locked_count()} |',
            "",
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
