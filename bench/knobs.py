"""Benchmark: what the operator's knobs do to case start throughput and
resume latency.

For each setting (worker query interval, worker limit, SQLite or PostgreSQL
for both databases) a fresh `serviceplus run` (free ports, temporary data
directory; PostgreSQL at BENCH_POSTGRES, default postgres@127.0.0.1:5432)
takes N cases to their first human task, then measures the resume latency of
M decisions one after the other. Each setting runs in its own process.

Usage: .venv/bin/python -m bench.knobs [--cases 30] [--resumes 10] [--settings K] [--write FILE]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import percentile, replace_section

# (query seconds, worker limit, database): the shipped default first, then one
# knob changed at a time.
SETTINGS = [
    (1, 10, "SQLite"),
    (1, 2, "SQLite"),
    (1, 4, "SQLite"),
    (0.5, 4, "SQLite"),
    (5, 4, "SQLite"),
    (10, 4, "SQLite"),
    (1, 4, "PostgreSQL"),
    (1, 10, "PostgreSQL"),
]
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres@127.0.0.1:5432")


def measure_one(cases: int, resumes: int, settle: float) -> dict:
    """In this process: one stack with the knobs from the environment."""
    from bench.common import (
        cases_to_first_task,
        prepare,
        resume_latencies,
        start_stack,
        stop_stack,
    )

    prepare("serviceplus-bench-knobs-")
    proc, _ = start_stack()
    try:
        time.sleep(settle)  # let the demo cases reach their first human step
        seconds = cases_to_first_task(cases)
        latencies = resume_latencies(resumes)
    finally:
        stop_stack(proc)
    return {
        "per_minute": 60 * cases / seconds,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
    }


def measure(
    query: float, limit: int, database: str, cases: int, resumes: int, settle: float
) -> dict:
    env = dict(os.environ, PREFECT_WORKER_QUERY_SECONDS=str(query),
               SERVICEPLUS_WORKER_LIMIT=str(limit))  # fmt: skip
    env.pop("BENCH_POSTGRES", None)
    if database == "PostgreSQL":
        env["BENCH_POSTGRES"] = POSTGRES
    sizes = ["--cases", str(cases), "--resumes", str(resumes), "--settle", str(settle)]
    command = [sys.executable, "-m", "bench.knobs", "--one", *sizes]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(results: list[tuple[tuple, dict]], cases: int, resumes: int) -> str:
    rows = [
        f"| {query} s | {limit} | {database} | {r['per_minute']:.1f} | "
        f"{r['p50']:.2f} s | {r['p95']:.2f} s |"
        for (query, limit, database), r in results
    ]
    return "\n".join([
        "## Knobs: query interval, worker limit, database",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.knobs --cases "
        f"{cases} --resumes {resumes}` on {platform.node()} ({os.cpu_count()} cores). Each row "
        "is a fresh `serviceplus run` with one process worker: throughput is "
        f"{cases} cases from creation to their first human task; resume latency is a decision "
        "saved until the next task is open, back to back (the next decision as soon as the "
        "previous run suspended).",
        "",
        "| `PREFECT_WORKER_QUERY_SECONDS` | `SERVICEPLUS_WORKER_LIMIT` | databases "
        "| cases per minute | resume p50 | resume p95 |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--resumes", type=int, default=10)
    parser.add_argument(
        "--settle",
        type=float,
        default=10,
        help="seconds for the demo cases to reach a person before measuring",
    )
    parser.add_argument(
        "--settings",
        type=int,
        default=len(SETTINGS),
        help="measure only the first K settings of the list",
    )
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.cases, args.resumes, args.settle)))
        return
    results = []
    for setting in SETTINGS[: args.settings]:
        results.append((setting, measure(*setting, args.cases, args.resumes, args.settle)))
        print(setting, results[-1][1], flush=True)
    text = report(results, args.cases, args.resumes)
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
