"""Benchmark: where one flow-run process spends its time, sampled by py-spy.

Starts a Prefect server without a worker (a free port, temporary data
directory), creates one case, and runs the process a worker would start for
it (`python -m prefect.engine`, as prefect.yaml configures) under
`py-spy record --gil` twice: the case start up to its first human task, and
the re-execution after the decision up to the next task. Reports the wall
time of each process and its samples holding the GIL (Python on the CPU)
grouped by phase.

Usage: .venv/bin/python -m bench.profile [--write FILE]
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.common import prepare, replace_section
from serviceplus.settings import PROJECT_ROOT

RATE = 250  # samples per second
IMPORT_PHASES = [  # first match wins, for samples inside an import
    ("import WeasyPrint (first letter in the process)", "weasyprint"),
    ("import the flow module (flows, models, SQLModel)", "load_flow"),
    ("imports inside steps (pypdf, Pillow ...)", "(flows/"),
]
CODE_PHASES = [  # by the innermost frame that is one of these
    ("letters: rendering PDF/A", "weasyprint"),
    ("our code: steps, app database (with SQLAlchemy)", "(flows/"),
    ("our code: steps, app database (with SQLAlchemy)", "(models/"),
    ("Prefect: engine, states, task runs, results, API calls", "(prefect/"),
]
PRELUDE = "interpreter start, `import prefect` and the engine"
NATIVE = "no Python frame (interpreter start-up and shut-down, C code)"
OTHER = "other (libraries outside the above)"
LABELS = [*(label for label, _ in IMPORT_PHASES), PRELUDE, *dict(CODE_PHASES), NATIVE, OTHER]


def phase_of(stack: str) -> str:
    if not stack.strip():
        return NATIVE
    frames = stack.split(";")
    if any("_find_and_load" in frame for frame in frames):
        return next((label for label, mark in IMPORT_PHASES if mark in stack), PRELUDE)
    for frame in reversed(frames):
        for label, mark in CODE_PHASES:
            if mark in frame:
                return label
    return OTHER


def profile_engine(flow_run_id: str, env: dict[str, str], out: Path) -> tuple[float, Counter]:
    started = time.monotonic()
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--gil", "-r", str(RATE), "-f", "raw", "-o", str(out),
               "--", sys.executable, "-m", "prefect.engine"]  # fmt: skip
    subprocess.run(command, env=dict(env, PREFECT__FLOW_RUN_ID=flow_run_id), cwd=PROJECT_ROOT,
                   check=True, capture_output=True)  # fmt: skip
    wall = time.monotonic() - started
    phases: Counter = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        phases[phase_of(stack)] += int(count)
    return wall, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    prepare("serviceplus-bench-profile-")
    from bench.common import follow_version_2, open_task
    from serviceplus.demo import submit_example
    from serviceplus.models.db import migrate, session_scope
    from serviceplus.models.services import accounts, versions
    from serviceplus.models.services.human_tasks import decide_and_resume
    from serviceplus.settings import get_settings
    from serviceplus.stack import Stack

    migrate()
    with session_scope() as session:
        accounts.seed_demo_accounts(session)
        versions.install_shipped(session)
    follow_version_2()
    stack = Stack(get_settings(), web=False)
    samples = Path(tempfile.mkdtemp(prefix="serviceplus-bench-profile-samples-"))
    try:
        stack.start_server()
        stack.deploy()  # no worker: this script plays its part
        case = submit_example()
        start = profile_engine(case.flow_run_id, stack.env, samples / "start.txt")
        task = open_task(case)
        assert decide_and_resume(task_id=task.id, username="sb.magdeburg", decision="approve")
        resume = profile_engine(case.flow_run_id, stack.env, samples / "resume.txt")
        assert open_task(case).step_key == "decision.confirm"
    finally:
        stack.stop()
    text = report(start, resume)
    print(text)
    if args.write:
        replace_section(args.write, text)


def report(start: tuple[float, Counter], resume: tuple[float, Counter]) -> str:
    rows = [
        f"| {label} | {start[1][label] / RATE:.2f} s | {resume[1][label] / RATE:.2f} s |"
        for label in LABELS
        if start[1][label] or resume[1][label]
    ]
    total = [sum(part[1].values()) / RATE for part in (start, resume)]
    return "\n".join([
        "## Profile: one flow-run process",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.profile` on "
        f"{platform.node()} ({os.cpu_count()} cores, SQLite): `py-spy record --gil` at {RATE} "
        "Hz of the engine process a worker starts, for a Blue Card case from creation to its "
        "first human task (start) and from the decision to the four-eyes task (resume). "
        "Sampling slows the process somewhat; compare the rows, not the absolute sums.",
        "",
        "| phase | start | resume |",
        "|---|---|---|",
        *rows,
        f"| **Python on the CPU, total** | {total[0]:.2f} s | {total[1]:.2f} s |",
        f"| wall time of the process | {start[0]:.2f} s | {resume[0]:.2f} s |",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
