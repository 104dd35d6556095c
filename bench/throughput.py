"""Benchmark: case start throughput against bare Prefect, letters, memory.

Runs `serviceplus run` (free ports, temporary data directory), then in
the same run: N cases from creation to their first human task, and N runs of
a bare Prefect flow with the same number of tasks and one suspend on the same
work pool and worker; the ratio of the two. Also milliseconds and bytes per
letter, and the resident memory of server, worker and web processes at rest
and after the runs.

Usage: .venv/bin/python -m bench.throughput [--cases 100] [--write FILE]
Knobs (see bench/knobs.py): PREFECT_WORKER_QUERY_SECONDS, SERVICEPLUS_WORKER_LIMIT,
BENCH_POSTGRES=user@host:port for PostgreSQL.
"""

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    cases_to_first_task,
    database_label,
    database_locked_count,
    prepare,
    replace_section,
    start_stack,
    stop_stack,
    wait_until,
)
from serviceplus.settings import PROJECT_ROOT, get_settings


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
        for label, marker in (("Prefect server", "serviceplus.prefect_server"),
                              ("worker", "serviceplus.worker"),
                              ("web (gunicorn)", "gunicorn")):  # fmt: skip
            if marker in cmd:
                parts[label] = _tree_rss_mb(int(proc.name))
    return parts


def bare_runs(n: int, *, direct: bool) -> float:
    """Seconds for `n` runs of the bare flow to reach their suspend. `direct`
    starts the engine as our deployments do (prefect.yaml); otherwise with
    Prefect's default (a workspace supervisor process first)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterStateName,
    )

    from bench.bare_flow import bare_flow

    source = bare_flow.from_source(
        source=str(PROJECT_ROOT), entrypoint="bench/bare_flow.py:bare_flow"
    )
    name = "direct" if direct else "default"
    engine = {"command": f"{sys.executable} -m prefect.engine"} if direct else {}
    deployment_id = source.deploy(
        name=name, work_pool_name="cases", job_variables=engine, print_next_steps=False
    )
    started = time.monotonic()
    for i in range(n):
        _create_run(f"bare-flow/{name}", i)
    ours = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    suspended = FlowRunFilter(state=dict(name=FlowRunFilterStateName(any_=["Suspended"])))

    def all_suspended():
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=ours, flow_run_filter=suspended, limit=n + 10
            )
            return len(runs) >= n

    wait_until(all_suspended, timeout=1800)
    return time.monotonic() - started


def _create_run(deployment: str, number: int) -> None:
    """Ours go through the app, which saves a case even when Prefect refuses
    (the sweeper starts it later); the bare flow has no such path, so a
    refusal from a busy SQLite server (HTTP 503 after the client's retries)
    is retried here."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import PrefectHTTPStatusError

    for attempt in range(5):
        try:
            run_deployment(deployment, parameters={"number": number}, timeout=0, as_subflow=False)
            return
        except PrefectHTTPStatusError as error:
            if error.response.status_code != 503 or attempt == 4:
                raise
            time.sleep(5)


def letters(count: int = 10) -> tuple[float, float]:
    from serviceplus.flows.letters import letter_context, render_html, render_pdf
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import versions
    from serviceplus.models.tables import Case

    with session_scope() as session:
        case = session.get(Case, 1)
        _row, definition = versions.active_definition(session, case.definition_name)
        context = letter_context(session, case=case, definition=definition)
    context["reason"] = "Begründung"
    render_pdf(render_html("preapproval", context))  # warm: fonts, imports
    started, sizes = time.perf_counter(), []
    for _ in range(count):
        sizes.append(len(render_pdf(render_html("preapproval", context))))
    return (time.perf_counter() - started) * 1000 / count, sum(sizes) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument(
        "--settle",
        type=float,
        default=15,
        help="seconds for the demo cases to reach a person before measuring",
    )
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    prepare("serviceplus-bench-throughput-")
    proc, _ = start_stack()
    try:
        time.sleep(args.settle)  # let the demo cases reach their first human step
        at_rest = memory(proc.pid)
        ours = cases_to_first_task(args.cases)
        bare = bare_runs(args.cases, direct=True)
        bare_default = bare_runs(args.cases, direct=False)
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
        f"| bare Prefect flow, Prefect's default process start (workspace supervisor): "
        f"{n} runs | {bare_default:.1f} s, {60 * n / bare_default:.1f} per minute |",
        f"| letter (pre-approval, tagged PDF/A-3a, warm) | {letter_ms:.0f} ms, "
        f"{letter_bytes / 1024:.0f} KiB |",
    ]
    rows.append(f'| "database is locked" in the logs | {database_locked_count()} |')
    for label in at_rest:
        rows.append(f"| memory {label}: at rest / after the runs | "
                    f"{at_rest[label]:.0f} / {after.get(label, 0):.0f} MB |")  # fmt: skip
    text = "\n".join([
        "## Throughput against bare Prefect, letters, memory",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.throughput "
        f"--cases {n}` on {platform.node()} ({os.cpu_count()} cores, {database_label()}, "
        f"one process worker with --limit {get_settings().worker_limit} polling every "
        f"{os.environ.get('PREFECT_WORKER_QUERY_SECONDS', '1')} s; all kinds of run on the "
        "same worker, one after the other; the engine started directly unless noted). "
        "Memory is the resident set of each part's process tree (the worker's includes its "
        "flow-run subprocesses at that moment).",
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
