"""Benchmark: case start throughput against bare Prefect, letters, memory.

Runs `serviceplus run` (ports 5300/4500, temporary data directory), then in
the same run: N cases from creation to their first human task, and N runs of
a bare Prefect flow with the same number of tasks and one suspend on the same
work pool and worker; the ratio of the two. Also milliseconds and bytes per
letter, and the resident memory of server, worker and web processes at rest
and after the runs.

Usage: .venv/bin/python -m bench.throughput [--cases 20] [--write FILE]
Knobs for operators: PREFECT_WORKER_QUERY_SECONDS (default 1 here), and the
worker's --limit (10, in serviceplus/stack.py).
"""

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DATA_DIR = Path(tempfile.mkdtemp(prefix="serviceplus-bench-throughput-"))
os.environ.update(SERVICEPLUS_DATA_DIR=str(DATA_DIR), SERVICEPLUS_DEMO="1",
                  SERVICEPLUS_WEB_PORT="5300", SERVICEPLUS_PREFECT_PORT="4500")  # fmt: skip
for name in ("DATABASE_URL", "PREFECT_API_URL", "SERVICEPLUS_DATABASE_URL"):
    os.environ.pop(name, None)

from bench.common import replace_section, wait_until  # noqa: E402
from serviceplus.settings import PROJECT_ROOT, apply_prefect_env  # noqa: E402

apply_prefect_env()


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total / 1024


def memory(run_pid: int) -> dict[str, float]:
    """RSS per part, found as the children of `serviceplus run`."""
    parts = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid != run_pid:
            continue
        for label, marker in (("Prefect server", "server start"), ("worker", "worker start"),
                              ("web (gunicorn)", "gunicorn")):  # fmt: skip
            if marker in cmd:
                parts[label] = _tree_rss_mb(int(proc.name))
    return parts


def our_cases(n: int) -> float:
    from sqlmodel import func, select

    from models.db import session_scope
    from models.tables import HumanTask
    from tests.helpers import BLUE_CARD, make_case

    with session_scope() as session:
        before = session.exec(select(func.count()).select_from(HumanTask)).one()
    started = time.monotonic()
    for _ in range(n):
        make_case(example=BLUE_CARD)

    def all_waiting():
        with session_scope() as session:
            return session.exec(select(func.count()).select_from(HumanTask)).one() >= before + n

    wait_until(all_waiting, timeout=1800)
    return time.monotonic() - started


def bare_runs(n: int) -> float:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStateName,
    )
    from prefect.deployments import run_deployment

    from bench.bare_flow import bare_flow

    source = bare_flow.from_source(
        source=str(PROJECT_ROOT), entrypoint="bench/bare_flow.py:bare_flow"
    )
    source.deploy(name="bare", work_pool_name="cases", print_next_steps=False)
    started = time.monotonic()
    for i in range(n):
        run_deployment("bare-flow/bare", parameters={"number": i}, timeout=0, as_subflow=False)
    flows = FlowFilter(name=FlowFilterName(any_=["bare-flow"]))
    suspended = FlowRunFilter(state=dict(name=FlowRunFilterStateName(any_=["Suspended"])))

    def all_suspended():
        with get_client(sync_client=True) as client:
            return len(client.read_flow_runs(flow_filter=flows, flow_run_filter=suspended,
                                             limit=n + 10)) >= n  # fmt: skip

    wait_until(all_suspended, timeout=1800)
    return time.monotonic() - started


def letters(count: int = 10) -> tuple[float, float]:
    from flows.letters import render_html, render_pdf
    from models.db import session_scope
    from models.definition import parse_definition
    from models.tables import Case, Organisation

    with session_scope() as session:
        case = session.get(Case, 1)
        org = session.get(Organisation, case.organisation_id)
    definition = parse_definition((PROJECT_ROOT / "flows/definitions/s81a.yaml").read_text())
    context = {"case": case, "organisation": org, "purpose": "18g", "definition": definition,
               "today": datetime.now(UTC).date(), "reply_by": datetime.now(UTC).date(),
               "valid_until": datetime.now(UTC).date(), "reason": "Begründung"}  # fmt: skip
    render_pdf(render_html("preapproval", context))  # warm: fonts, imports
    started, sizes = time.perf_counter(), []
    for _ in range(count):
        sizes.append(len(render_pdf(render_html("preapproval", context))))
    return (time.perf_counter() - started) * 1000 / count, sum(sizes) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    from bench.common import start_stack, stop_stack

    proc, _ = start_stack()
    try:
        time.sleep(15)  # let the demo cases reach their first human step
        at_rest = memory(proc.pid)
        ours = our_cases(args.cases)
        bare = bare_runs(args.cases)
        after = memory(proc.pid)
        letter_ms, letter_bytes = letters()
    finally:
        stop_stack(proc)
    n = args.cases
    rows = [
        f"| case flow: {n} cases to their first human task | {ours:.1f} s, "
        f"{60 * n / ours:.1f} per minute |",
        f"| bare Prefect flow (8 tasks + 1 suspend): {n} runs | {bare:.1f} s, "
        f"{60 * n / bare:.1f} per minute |",
        f"| overhead: case flow / bare Prefect (time) | {ours / bare:.2f} |",
        f"| letter (pre-approval, PDF/A-3b, warm) | {letter_ms:.0f} ms, "
        f"{letter_bytes / 1024:.0f} KiB |",
    ]
    for label in at_rest:
        rows.append(f"| memory {label}: at rest / after the runs | "
                    f"{at_rest[label]:.0f} / {after.get(label, 0):.0f} MB |")  # fmt: skip
    text = "\n".join([
        "## Throughput against bare Prefect, letters, memory",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.throughput "
        f"--cases {n}` on {platform.node()} ({os.cpu_count()} cores, SQLite, one process "
        "worker with --limit 10 polling every second; both kinds of run on the same worker, "
        "one after the other). Memory is the resident set of each part's process tree "
        "(the worker's includes its flow-run subprocesses at that moment).",
        "",
        "| figure | value |",
        "|---|---|",
        *rows,
        "",
    ])  # fmt: skip
    print(text)
    if args.write:
        replace_section(args.write, text)


if __name__ == "__main__":
    main()
