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


def report(first: float, warm: float, runs: dict[float, list[float]]) -> str:
    import prefect

    rows = [
        ("`serviceplus run` until the login page is served, empty data directory", first, 1),
        ("the same, warm restart reusing the data", warm, 1),
    ]
    for gap, latencies in runs.items():
        when = "back to back" if gap == 0 else f"{gap:g} s after the previous run suspended"
        rows += [
            (f"decision saved -> next task opened, {when}, p50", statistics.median(latencies), 2),
            ("the same, p95", percentile(latencies, 95), 2),
            (f"the same, max of {len(latencies)} cases", max(latencies), 2),
        ]
    cases = len(next(iter(runs.values())))
    gaps = ",".join(f"{gap:g}" for gap in runs)
    return "\n".join(
        [
            f"## Foundation: start-up and resume latency ({database_label()})",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.foundation "
            f"--cases {cases} --gaps {gaps}` on {platform.node()} ({os.cpu_count()} "
            f"cores, Python {platform.python_version()}, Prefect {prefect.__version__}, "
            f"{database_label()}, worker limit {get_settings().worker_limit}, warm start "
            f"{'on' if get_settings().warm_start else 'off'}). Resume latency: one decision "
            "at a time, for fresh cases each time; the resume wakes the worker at once.",
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
        "--gaps",
        default="0,3",
        help="seconds between a suspend and the next decision, one series each (comma-separated)",
    )
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    prepare("serviceplus-bench-")
    proc, first = start_stack()
    stop_stack(proc)
    proc, warm = start_stack()
    try:
        runs = {gap: resume_latencies(args.cases, gap) for gap in map(float, args.gaps.split(","))}
    finally:
        stop_stack(proc)
    text = report(first, warm, runs)
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
