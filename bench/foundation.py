"""Benchmark: seconds until `serviceplus run` serves the login page (first
start on an empty data directory, then a warm restart), and the latency from
completing a task to the case's next state, with the real server and worker.

Usage: .venv/bin/python -m bench.foundation [--cases 10] [--write docs/performance.md]
Runs its own stack on ports 5100/4300 with a temporary data directory.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DATA_DIR = Path(tempfile.mkdtemp(prefix="serviceplus-bench-"))
os.environ.update(
    {
        "SERVICEPLUS_DATA_DIR": str(DATA_DIR),
        "SERVICEPLUS_DEMO": "1",
        "SERVICEPLUS_WEB_PORT": "5100",
        "SERVICEPLUS_PREFECT_PORT": "4300",
    }
)
for name in ("DATABASE_URL", "PREFECT_API_URL", "SERVICEPLUS_DATABASE_URL"):
    os.environ.pop(name, None)

from bench.common import (  # noqa: E402
    percentile,
    replace_section,
    start_stack,
    stop_stack,
    wait_until,
)
from serviceplus.settings import apply_prefect_env  # noqa: E402

apply_prefect_env()


def resume_latencies(n: int) -> list[float]:
    """Seconds from a decision's completion to the case's next state (here:
    the four-eyes confirmation task opened by the resumed flow)."""
    from sqlmodel import select

    from models import accounts, tasks
    from models.db import session_scope
    from models.tables import HumanTask, TaskStatus
    from tests.helpers import BLUE_CARD, make_case

    created = [make_case(example=BLUE_CARD) for _ in range(n)]

    def task_at(case, step):
        with session_scope() as session:
            query = select(HumanTask).where(
                HumanTask.case_id == case.id,
                HumanTask.step_key == step,
                HumanTask.status == TaskStatus.open,
            )
            return session.exec(query).first()

    latencies = []
    for case in created:
        task = wait_until(lambda c=case: task_at(c, "decision"))
        wait_until(lambda t=task: _suspended(t.flow_run_id))
        started = time.monotonic()
        with session_scope() as session:
            user = accounts.get_user(session, "sb.magdeburg")
            pending = tasks.complete(session, task=task, user=user, decision="approve")
        with session_scope() as session:
            session.add(pending)
            assert tasks.deliver(session, pending)
        wait_until(lambda c=case: task_at(c, "decision.confirm"))
        latencies.append(time.monotonic() - started)
    return latencies


def _suspended(flow_run_id: str) -> bool:
    from models.orchestration import flow_run_state

    return flow_run_state(flow_run_id) == "Suspended"


def report(first: float, warm: float, latencies: list[float]) -> str:
    import prefect

    rows = [
        ("`serviceplus run` until the login page is served, empty data directory", first, 1),
        ("the same, warm restart reusing the data", warm, 1),
        (
            "decision saved -> next task opened (worker polls every 1 s), p50",
            statistics.median(latencies),
            2,
        ),
        ("the same, p95", percentile(latencies, 95), 2),
        (f"the same, max of {len(latencies)} cases", max(latencies), 2),
    ]
    return "\n".join(
        [
            "## Foundation: start-up and resume latency",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.foundation "
            f"--cases {len(latencies)}` on {platform.node()} ({os.cpu_count()} cores, "
            f"Python {platform.python_version()}, Prefect {prefect.__version__}, SQLite).",
            "",
            "| figure | value |",
            "|---|---|",
            *(f"| {label} | {value:.{digits}f} s |" for label, value, digits in rows),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10, help="cases for the resume latency")
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    proc, first = start_stack()
    stop_stack(proc)
    proc, warm = start_stack()
    try:
        latencies = resume_latencies(args.cases)
    finally:
        stop_stack(proc)
    text = report(first, warm, latencies)
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
