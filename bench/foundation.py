"""Benchmark: seconds until `serviceplus run` serves the login page (first
start on an empty data directory, then a warm restart), and the latency from
completing a task to the case's next state, with the real server and worker.

Usage: .venv/bin/python -m bench.foundation [--cases 50] [--write docs/performance.md]
Runs its own stack on free ports with a temporary data directory.
"""

import argparse
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    database_label,
    database_locked_count,
    percentile,
    prepare,
    replace_section,
    resume_latencies,
    start_stack,
    stop_stack,
)
from serviceplus.settings import get_settings


def report(first: float, warm: float, latencies: list[float], gap: float) -> str:
    import prefect

    rows = [
        ("`serviceplus run` until the login page is served, empty data directory", first, 1),
        ("the same, warm restart reusing the data", warm, 1),
        (
            "decision saved -> next task opened (the resume wakes the worker), p50",
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
            f"--cases {len(latencies)} --gap {gap:g}` on {platform.node()} ({os.cpu_count()} "
            f"cores, Python {platform.python_version()}, Prefect {prefect.__version__}, "
            f"{database_label()}, worker limit {get_settings().worker_limit}). Resume latency: "
            f"one decision at a time, each {gap:g} s after the previous run suspended; "
            "the knob table below measures them back to back.",
            "",
            "| figure | value |",
            "|---|---|",
            *(f"| {label} | {value:.{digits}f} s |" for label, value, digits in rows),
            f'| "database is locked" in the logs of both runs | {database_locked_count()} |',
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50, help="cases for the resume latency")
    parser.add_argument(
        "--gap", type=float, default=3, help="seconds between a suspend and the next decision"
    )
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    prepare("serviceplus-bench-")
    proc, first = start_stack()
    stop_stack(proc)
    proc, warm = start_stack()
    try:
        latencies = resume_latencies(args.cases, args.gap)
    finally:
        stop_stack(proc)
    text = report(first, warm, latencies, args.gap)
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
