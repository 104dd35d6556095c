"""Benchmark: server time of the inbox and monitoring pages with many cases.

Seeds N cases (default 10,000) of one authority, each with an open decision
task and a completed earlier task, in a fresh SQLite database (in bulk,
through SQLAlchemy), then requests the pages through the Flask app as a clerk
(inbox) and a coordinator (monitoring) and reports p50/p95 of the server time.
The coordinators' overview reads precomputed figures (models/services/overview.py);
computing them once, as the sweeper does every few minutes, is timed apart.

Usage: .venv/bin/python -m bench.pages [--tasks 10000] [--requests 200] [--write FILE]
"""

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

os.environ.update(
    {
        "SERVICEPLUS_DATA_DIR": tempfile.mkdtemp(prefix="serviceplus-bench-inbox-"),
        "SERVICEPLUS_DEMO": "1",
    }
)
os.environ.pop("DATABASE_URL", None)

from bench.common import percentile, replace_section  # noqa: E402


def seed(n: int) -> None:
    import sqlalchemy as sa

    from serviceplus.models.db import migrate, session_scope
    from serviceplus.models.services import accounts, versions
    from serviceplus.models.tables import Case, HumanTask

    migrate()
    with session_scope() as session:
        accounts.seed_demo_accounts(session)
        versions.install_shipped(session)
        org = accounts.get_organisation(session, "abh-md").id
    now = datetime.now(UTC)
    cases = [
        {
            "id": i,
            "reference": f"ABH-MD-2026-{i:06d}",
            "submission_key": f"bench-{i}",
            "organisation_id": org,
            "applicant_name": f"Fachkraft {i}",
            "applicant_birth_date": date(1990, 1, 1),
            "applicant_nationality": "indisch",
            "employer_name": f"Arbeitgeber {i % 500}",
            "employer_address": "Magdeburg",
            "residence_purpose": ("18a", "18b", "18g")[i % 3],
            "facts": {},
            "status": "waiting",
            "definition_name": "s81a",
            "definition_version": 1,
            "created_by": "bench",
            "created_at": now,
        }
        for i in range(1, n + 1)
    ]
    tasks = [
        {
            "case_id": i,
            "step_key": "decision",
            "attempt": 1,
            "title": "Entscheidung",
            "organisation_id": org,
            "role": "clerk",
            "status": "open",
            "form": {"options": []},
            "flow_run_id": "-",
            "priority": 0,
            "due_at": now + timedelta(minutes=(i * 37) % (60 * 24 * 30)),
            "created_at": now,
        }
        for i in range(1, n + 1)
    ]
    done = [
        {
            **t,
            "step_key": "ba_approval",
            "status": "completed",
            "completed_by": "ba",
            "created_at": now - timedelta(days=10),
            "completed_at": now - timedelta(days=i % 9),
        }
        for i, t in enumerate(tasks)
    ]
    with session_scope() as session:
        for chunk in range(0, n, 5000):
            session.execute(sa.insert(Case), cases[chunk : chunk + 5000])
            session.execute(sa.insert(HumanTask), done[chunk : chunk + 5000])
            session.execute(sa.insert(HumanTask), tasks[chunk : chunk + 5000])


def refresh_overview() -> float:
    """Seconds the sweeper's refresh of the coordinators' figures takes for
    the seeded authority (also stores them, so the page reads them)."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import accounts, overview

    with session_scope() as session:
        org = accounts.get_organisation(session, "abh-md").id
        started = time.perf_counter()
        overview.refresh(session, org)
        return time.perf_counter() - started


def measure(url: str, requests: int, username: str) -> list[float]:
    from serviceplus.webui import create_app

    client = create_app({"WTF_CSRF_ENABLED": False}).test_client()
    client.post("/login", data={"username": username, "password": "demo"})
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return timings[5:]  # the first requests warm caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()
    started = time.perf_counter()
    seed(args.tasks)
    seeded = time.perf_counter() - started
    refresh = refresh_overview()
    load_before = os.getloadavg()[0]
    rows = []
    for label, url, user in [
        ("inbox: first page, by due date", "/inbox", "sb.magdeburg"),
        ("inbox: text search", "/inbox?q=Arbeitgeber+42", "sb.magdeburg"),
        ("inbox: due within 7 days", "/inbox?due=7", "sb.magdeburg"),
        ("monitoring: overview (precomputed figures, live late list)", "/monitor/", "koordination"),
        ("monitoring: one figure as CSV", "/monitor/figures/bottlenecks.csv", "koordination"),
        ("monitoring: case list", "/monitor/cases", "koordination"),
        ("monitoring: one case's timeline", "/monitor/cases/ABH-MD-2026-000042", "koordination"),
    ]:
        timings = measure(url, args.requests, user)
        rows.append(
            f"| {label} | {statistics.median(timings):.1f} ms | {percentile(timings, 95):.1f} ms |"
        )
    load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    text = "\n".join(
        [
            f"## Inbox and monitoring with {args.tasks:,} cases",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.pages "
            f"--tasks {args.tasks} --requests {args.requests}` on {platform.node()} "
            f"({os.cpu_count()} cores, SQLite; seeding took {seeded:.1f} s; {load}). "
            "Each case has one open and one completed task. Server time per request "
            "through the Flask app (no network); the inbox shows 50 rows per page. "
            "The overview reads the figures the sweeper precomputes (`overview_snapshot`) "
            "and lists the first 100 late tasks live; computing the figures once, as the "
            "sweeper does, is the last row.",
            "",
            "| request | p50 | p95 |",
            "|---|---|---|",
            *rows,
            f"| sweeper: computing the overview figures (once) | {refresh * 1000:.0f} ms | – |",
            "",
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
