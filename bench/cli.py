"""Benchmark: how fast the command line answers when it needs no Prefect.

Seeds N cases (default 1,000) with their tasks in a fresh SQLite database
(as bench.pages does), then runs each read-only command several times as a
user would, `serviceplus ...` in a new process, and reports the median and
the slowest wall time and the CPU time of the process (user + system).
Commands that start or resume flow runs import Prefect and are not timed here.

Usage: .venv/bin/python -m bench.cli [--cases 1000] [--runs 7] [--write FILE]
"""

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# Importing bench.pages gives this process a fresh data directory in demo mode.
from bench.common import replace_section
from bench.pages import seed

CLI = str(Path(sys.executable).parent / "serviceplus")
COMMANDS = [
    ["--help"],
    ["cases", "--json"],
    ["tasks", "--json", "--org", "abh-md"],
    ["case", "show", "ABH-MD-2026-000001", "--json"],
]


def time_command(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `runs` executions of `serviceplus args`."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([CLI, *args], check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def report(rows: list[tuple[str, list[float], list[float]]], cases: int, runs: int) -> str:
    lines = [
        "## Command line: commands that need no Prefect",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.cli --cases "
        f"{cases} --runs {runs}` on {platform.node()} ({os.cpu_count()} cores, SQLite, "
        f"{cases} cases with two tasks each). Each command is a new `serviceplus` process, "
        "as a user types it; issue 20 asks for well under a second.",
        "",
        "| command | wall p50 | wall max | CPU p50 |",
        "|---|---|---|---|",
    ]
    for command, walls, cpus in rows:
        lines.append(
            f"| `serviceplus {command}` | {statistics.median(walls):.2f} s | "
            f"{max(walls):.2f} s | {statistics.median(cpus):.2f} s |"
        )
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    seed(args.cases)
    rows = [(" ".join(command), *time_command(command, args.runs)) for command in COMMANDS]
    text = report(rows, args.cases, args.runs)
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
