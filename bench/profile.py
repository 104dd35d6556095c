"""Benchmark: where one flow-run process spends its time, sampled by py-spy.

Starts a Prefect server without a worker (a free port, temporary data
directory), creates one case, and runs the process a worker would start for
it (`python -m prefect.engine`, as prefect.yaml configures) under
`py-spy record --gil` twice: the case start up to its first human task, and
the re-execution after the decision up to the next task. Reports the wall
time of each process and its samples holding the GIL (Python on the CPU)
grouped by phase.

Then the same two executions for a second case on the warm path, as the
worker runs them: `python -m serviceplus.flowrun` hands each to the fork
server (serviceplus/forkserver.py), and the CPU time of the forked child is
what the kernel reports when it exits (`wait4`, user + system, no sampling).

Usage: .venv/bin/python -m bench.profile [--write FILE]
"""

import argparse
import os
import platform
import re
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


CHILD_AREAS = [  # own CPU time of each function, by where it lives; first match wins
    ("WeasyPrint, fonts, PDF (letters)",
     ("weasyprint", "pydyf", "tinycss2", "cssselect2", "fontTools", "pypdf", "PIL", "html5lib")),
    ("our code (flows, models)", (str(PROJECT_ROOT) + "/flows", str(PROJECT_ROOT) + "/models")),
    ("SQLAlchemy, SQLModel and the app database driver",
     ("sqlalchemy", "sqlmodel", "sqlite3", "psycopg")),
    ("pydantic (validation, serialisation)", ("pydantic",)),
    ("HTTP to the Prefect server (httpx, anyio, asyncio, sockets)",
     ("httpx", "httpcore", "h11", "anyio", "asyncio", "socket", "selectors", "ssl", "websockets")),
    ("Prefect (engine, states, task runs, results, events)", ("/prefect/",)),
    ("imports still done in the child", ("importlib", "<frozen")),
    ("logging", ("logging",)),
]  # fmt: skip


def child_areas(stats_file: Path) -> Counter:
    import pstats

    areas: Counter = Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in pstats.Stats(
        str(stats_file)
    ).stats.items():
        where = f"{filename} {name}"
        label = next((lbl for lbl, marks in CHILD_AREAS if any(m in where for m in marks)), OTHER)
        areas[label] += own
    return areas


def warm_execution(
    flow_run_id: str, env: dict[str, str], log: Path, profile_to: Path | None = None
) -> tuple[float, float]:
    """Wall time of the worker's command and CPU-s of the child the fork server forked."""
    started = time.monotonic()
    env = dict(env, PREFECT__FLOW_RUN_ID=flow_run_id)
    if profile_to:
        env["SERVICEPLUS_PROFILE_CHILD"] = str(profile_to)
    subprocess.run([sys.executable, "-m", "serviceplus.flowrun"], env=env, cwd=PROJECT_ROOT,
                   check=True, capture_output=True)  # fmt: skip
    wall = time.monotonic() - started
    for _ in range(50):  # the fork server logs the child's end a moment after it
        found = re.findall(rf"flow run {flow_run_id}: child (\d+)", log.read_text())
        if found:
            ended = re.search(rf"child {found[-1]} exited 0 after ([\d.]+) CPU-s", log.read_text())
            if ended:
                return wall, float(ended.group(1))
        time.sleep(0.1)
    raise RuntimeError(f"the fork server logged no end of the child for {flow_run_id}")


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

        stack.start_forkserver()
        log = stack.log_dir / "forkserver.log"
        warm_case = submit_example()
        warm = [warm_execution(warm_case.flow_run_id, stack.env, log)]
        task = open_task(warm_case)
        assert decide_and_resume(task_id=task.id, username="sb.magdeburg", decision="approve")
        warm.append(warm_execution(warm_case.flow_run_id, stack.env, log))
        assert open_task(warm_case).step_key == "decision.confirm"
        # A third case under cProfile (slower, so not the CPU figure above).
        profiled = submit_example()
        warm_execution(profiled.flow_run_id, stack.env, log, samples / "child-start.prof")
        task = open_task(profiled)
        assert decide_and_resume(task_id=task.id, username="sb.magdeburg", decision="approve")
        warm_execution(profiled.flow_run_id, stack.env, log, samples / "child-resume.prof")
        areas = [child_areas(samples / f"child-{phase}.prof") for phase in ("start", "resume")]
    finally:
        stack.stop()
    text = report(start, resume, warm, areas)
    print(text)
    if args.write:
        replace_section(args.write, text)


def report(
    start: tuple[float, Counter],
    resume: tuple[float, Counter],
    warm: list[tuple[float, float]],
    areas: list[Counter],
) -> str:
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
        f"| **warm path: CPU of the forked child** (kernel, not sampled) | {warm[0][1]:.2f} s "
        f"| {warm[1][1]:.2f} s |",
        f"| warm path: wall time of the worker's command (`serviceplus.flowrun`) | "
        f"{warm[0][0]:.2f} s | {warm[1][0]:.2f} s |",
        "",
        "The warm rows are a second Blue Card case, executed as the worker executes it "
        "(`python -m serviceplus.flowrun` hands the run to the fork server); issue 18's goal "
        "is at most 0.8 CPU-s per execution. Where a forked child spends it, from a third "
        "case run under cProfile (own CPU time per function, grouped by where the function "
        "lives; cProfile slows Python code more than C code, so compare rows, not sums):",
        "",
        "| forked child: own time in | start | resume |",
        "|---|---|---|",
        *(f"| {label} | {areas[0][label]:.2f} s | {areas[1][label]:.2f} s |"
          for label in [*(lbl for lbl, _ in CHILD_AREAS), OTHER]
          if areas[0][label] or areas[1][label]),
        f"| **total under cProfile** | {sum(areas[0].values()):.2f} s "
        f"| {sum(areas[1].values()):.2f} s |",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
