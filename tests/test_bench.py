"""Smoke runs of the benchmark scripts with tiny sizes: each must run end to
end against its own real stack and write its section. Figures are not
checked here (docs/performance.md holds them)."""

import re
import signal
import subprocess
import sys

from serviceplus.settings import PROJECT_ROOT


def run_bench(module: str, tmp_path, *args: str, as_background_job: bool = False) -> str:
    """`as_background_job`: started with SIGINT ignored, as a shell without
    job control starts `cmd &` (`nohup make bench &`)."""
    out = tmp_path / "performance.md"
    env_free = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    subprocess.run(
        [sys.executable, "-m", module, *args, "--write", str(out)],
        cwd=PROJECT_ROOT,
        env=env_free,
        check=True,
        timeout=600,
        capture_output=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if as_background_job
        else None,
    )
    return out.read_text()


def test_pages_bench_writes_its_section(tmp_path):
    text = run_bench("bench.pages", tmp_path, "--tasks", "300", "--requests", "25")
    assert "## Inbox and monitoring with 300 cases" in text
    assert "| inbox: first page, by due date |" in text


def test_cli_bench_writes_its_section(tmp_path):
    text = run_bench("bench.cli", tmp_path, "--cases", "20", "--runs", "1")
    assert "## Command line: commands that need no Prefect" in text
    assert "| `serviceplus case show ABH-MD-2026-000001 --json` |" in text


def test_load_bench_clerks_decide(tmp_path):
    text = run_bench("bench.load", tmp_path, "--clerks", "2", "--seconds", "20", "--cases", "2")
    decided = int(re.search(r"\| decisions saved by clerks \| (\d+) \|", text).group(1))
    assert decided >= 1  # the clerks found, claimed and decided tasks on today's pages
    assert "| saved decisions missing from their case | 0 |" in text


def test_chaos_bench_runs_end_to_end(tmp_path):
    # No faults here (--minutes 0): that the script runs and its cases finish.
    text = run_bench("bench.chaos", tmp_path, "--cases", "2", "--minutes", "0", "--settle", "300")
    assert "| cases completed | 2 of 2 | all |" in text
    assert "| decisions lost | 0 of " in text
    assert "| fault -> any case moved on, median / max | no such fault | |" in text
    assert "| killed run | suspended | ended | scheduled again | running again | decided |" in text


def test_chaos_tells_where_the_recovery_of_a_killed_run_went():
    """From the run's state history: the Running before the kill and a
    Running before the reschedule do not count; an empty history gives "–"."""
    from datetime import UTC, datetime, timedelta

    from prefect.states import Crashed, Running, Scheduled, Suspended

    from bench.chaos import run_timeline

    killed = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def at(state, seconds):
        state.timestamp = killed + timedelta(seconds=seconds)
        return state

    states = [
        at(Running(), -5),
        at(Crashed(), 1.5),
        at(Scheduled(name="Retrying"), 40),
        at(Scheduled(name="Late"), 56),
        at(Running(), 70),
    ]
    moved = [killed.timestamp() - 30, killed.timestamp() + 75]
    decided = [killed.timestamp() - 60, killed.timestamp() + 72]
    timeline = run_timeline(killed.timestamp(), states, moved, decided)
    assert timeline == {
        "suspended": False,
        "ended": 1.5,
        "scheduled": 40.0,
        "running": 70.0,
        "decided": 72.0,
        "moved": 75.0,
    }
    before = run_timeline(killed.timestamp(), states[:2], [])
    assert before == {
        "suspended": False,
        "ended": 1.5,
        "scheduled": None,
        "running": None,
        "decided": None,
        "moved": None,
    }
    # Killed after the run had suspended: nothing to recover.
    suspended = [at(Running(), -5), at(Suspended(), -1)]
    assert run_timeline(killed.timestamp(), suspended, [])["suspended"]


def test_throughput_bench_writes_its_section(tmp_path):
    text = run_bench("bench.throughput", tmp_path, "--cases", "2", "--settle", "0")
    assert "| case flow: 2 cases to their first human task |" in text
    assert "| overhead: case flow / bare Prefect (time) |" in text
    assert "memory worker: at rest / after the runs" in text
    assert "memory Prefect server: at rest / after the runs" in text


def test_foundation_and_knobs_benches_write_their_sections(tmp_path):
    # It stops its first stack with Ctrl-C while the demo cases are still
    # being seeded: `serviceplus run` must stop then too, even when it
    # inherited SIGINT ignored (it ran on for good, and the benchmark failed).
    text = run_bench("bench.foundation", tmp_path, "--cases", "1", as_background_job=True)
    assert "decision saved -> next task opened" in text
    text = run_bench(
        "bench.knobs",
        tmp_path,
        "--cases",
        "1",
        "--resumes",
        "1",
        "--settings",
        "1",
        "--settle",
        "0",
    )
    assert "## Knobs: query interval, worker limit, database" in text
    assert "| 1 s | 10 | SQLite |" in text
    assert "## Foundation: start-up and resume latency" in text  # kept, not replaced


def test_profile_bench_writes_its_section(tmp_path):
    text = run_bench("bench.profile", tmp_path)
    assert "## Profile: one flow-run process" in text
    assert "| interpreter start, `import prefect` and the engine |" in text
    assert "| **warm path: CPU of the forked child** (kernel, not sampled) |" in text
