"""Benchmark: cases keep going while the parts of the stack are killed.

Starts the stack in this process (free ports, temporary data directory, the
sweeper deployment every minute), files N cases and lets simulated clerks
take every open task (the first option; four eyes by a second clerk), while
at random moments one part is killed with SIGKILL: a flow-run process, the
fork server, the worker, the web server, the Prefect server, and with
--kill-postgres the PostgreSQL cluster (immediate restart; BENCH_POSTGRES
only, never a shared production server). The launcher's healing restarts
the worker, fork server and web server; the Prefect server is started again
here, as systemd would. Then the faults stop and the run settles.

Reports: cases completed, decisions lost (saved decisions whose case did
not complete), letters duplicated, cases stuck after settling, and the
longest a case waited from a decision to its next step (recovery and queue
included). Recovery alone: after each fault, how long until any case moved
on again (the stack back at work), and after each killed flow-run process,
how long until its run was executing again (the recovery goal) and until
its case moved on (a new task, or closed), and where that time went (the
run's states: marked Crashed, scheduled again, running; whether it had
suspended already; when a clerk decided a task of the case).

Usage: .venv/bin/python -m bench.chaos [--cases 200] [--minutes 10] [--write FILE]
"""

import argparse
import atexit
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import database_label, percentile, prepare, replace_section

FAULTS = ["flow-run", "forkserver", "prefect-worker", "web", "prefect-server"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10, help="how long faults are injected")
    parser.add_argument("--interval", type=float, default=20, help="mean seconds between faults")
    parser.add_argument("--settle", type=float, default=600, help="seconds to wait afterwards")
    parser.add_argument("--kill-postgres", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    args = parser.parse_args()

    prepare("serviceplus-chaos-")
    # A run without a process is found after a minute (default 5).
    os.environ.setdefault("SERVICEPLUS_STUCK_AFTER", "PT1M")
    result = run(args)
    if result["stuck"] and os.environ.get("BENCH_POSTGRES"):
        # Kept for a look at the open cases and their runs' logs in Prefect.
        from bench.common import _drop_databases

        atexit.unregister(_drop_databases)
        print(f"kept the databases: {os.environ['DATABASE_URL']}, "
              f"{os.environ['PREFECT_SERVER_DATABASE_CONNECTION_URL']}")  # fmt: skip
    text = report(args, result)
    print(text)
    if args.write:
        replace_section(args.write, text)


def run(args) -> dict:
    from bench.common import CLI, follow_version_2
    from serviceplus.demo import submit_example
    from serviceplus.settings import get_settings
    from serviceplus.stack import Stack

    subprocess.run([CLI, "init"], check=True, capture_output=True)
    follow_version_2()
    stack = Stack(get_settings())
    stack.start()
    clerks = Clerks()
    faults: Counter = Counter()
    fault_log: list[tuple[float, str, int | None]] = []  # when, what, the killed run's case
    try:
        cases = [submit_example() for _ in range(args.cases)]
        clerks.start([c.id for c in cases])
        chaos = random.Random(args.seed)
        faults_end = time.monotonic() + args.minutes * 60
        next_fault = time.monotonic() + chaos.expovariate(1 / args.interval)
        while time.monotonic() < faults_end:
            heal(stack)
            if time.monotonic() >= next_fault:
                fault = chaos.choice(FAULTS + (["postgresql"] if args.kill_postgres else []))
                if (killed := inject(stack, fault, chaos)) is not None:
                    faults[fault] += 1
                    fault_log.append((time.time(), fault, _case_of_child(stack, killed)))
                next_fault = time.monotonic() + chaos.expovariate(1 / args.interval)
            time.sleep(0.5)
        settle_end = time.monotonic() + args.settle
        while time.monotonic() < settle_end and not clerks.all_closed():
            heal(stack)
            time.sleep(1)
        describe_open_cases(clerks.case_ids)
        timelines = killed_run_timelines(fault_log, clerks)
    finally:
        clerks.stop()
        stack.stop()
    outcome = clerks.outcome() | {"faults": faults, "timelines": timelines}
    return outcome | recovery(fault_log, clerks)


def killed_run_timelines(fault_log: list, clerks: "Clerks") -> list[dict]:
    """For each killed flow-run process, where its recovery spent its time,
    from the state history of its case's run (read while the stack is up)."""
    from uuid import UUID

    from prefect import get_client

    from serviceplus.models.db import session_scope
    from serviceplus.models.tables import Case

    rows = []
    with get_client(sync_client=True) as client, session_scope() as session:
        for when, fault, case_id in fault_log:
            if fault != "flow-run" or case_id is None:
                continue
            run_id = session.get(Case, case_id).flow_run_id
            states = client.read_flow_run_states(UUID(run_id))
            moved = [t for t, c in clerks.moves if c == case_id]
            decided = [t for t, c in clerks.decisions if c == case_id]
            rows.append(run_timeline(when, states, moved, decided))
    return rows


def run_timeline(
    killed: float, states: list, moved: list[float], decided: list[float] = ()
) -> dict:
    """Seconds from the kill until the run was marked ended (Crashed or
    Failed), scheduled again (Retrying), running again after that, a clerk
    decided a task of its case, and its case moved on; None for what did not
    happen. `suspended`: the run had suspended before the kill, so there was
    nothing to recover (its process was only on its way out)."""

    def first(wanted, since: float = killed) -> float | None:
        times = [s.timestamp.timestamp() for s in states if wanted(s)]
        return min((t - killed for t in times if t >= since), default=None)

    before = [s for s in states if s.timestamp.timestamp() <= killed]
    last = max(before, key=lambda s: s.timestamp, default=None)
    scheduled = first(lambda s: s.name == "Retrying")
    return {
        "suspended": last is not None and last.type.value == "PAUSED",
        "ended": first(lambda s: s.type.value in ("CRASHED", "FAILED")),
        "scheduled": scheduled,
        "running": None
        if scheduled is None
        else first(lambda s: s.type.value == "RUNNING", killed + scheduled),
        "decided": min((t - killed for t in decided if t >= killed), default=None),
        "moved": min((t - killed for t in moved if t >= killed), default=None),
    }


def describe_open_cases(case_ids: list[int]) -> None:
    """For the log: each case still open after settling, where it stands."""
    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.services import audit, orchestration
    from serviceplus.models.tables import Case

    with session_scope() as session:
        query = select(Case).where(Case.id.in_(case_ids), Case.closed_at.is_(None))
        for case in session.exec(query):
            actions = Counter(e.action for e in audit.events_for_case(session, case.id))
            try:
                run = orchestration.flow_run_state(case.flow_run_id) if case.flow_run_id else None
            except Exception as exc:  # noqa: BLE001 (a diagnosis, whatever Prefect says)
                run = f"unknown ({exc})"
            print(f"open: {case.reference} {case.status} at {case.current_step}, run {run} "
                  f"({case.flow_run_id}), events {dict(actions)}")  # fmt: skip


def heal(stack) -> None:
    """The launcher's healing; a dead Prefect server is started again here
    (in production its systemd unit does that)."""
    try:
        stack.heal()
    except RuntimeError:
        for name, proc in list(stack.procs):
            if name == "prefect-server" and proc.poll() is not None:
                stack.procs.remove((name, proc))
                stack._logs.pop(proc.pid).close()
        stack.start_server()


def postgres_cluster() -> tuple[str, str]:
    """The local cluster (version, name) that serves BENCH_POSTGRES's port:
    only that one is restarted (a cluster of its own keeps a test suite on
    the main cluster undisturbed)."""
    port = os.environ["BENCH_POSTGRES"].rpartition(":")[2]
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        version, cluster, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, cluster
    raise RuntimeError(f"no local PostgreSQL cluster listens on port {port}")


def inject(stack, fault: str, chaos: random.Random) -> int | None:
    """Kills one part; the flow-run child's pid for a flow-run fault, 0 for
    another part, None when there was nothing to kill."""
    if fault == "postgresql":
        version, cluster = postgres_cluster()
        restart = ["pg_ctlcluster", version, cluster, "restart", "-m", "immediate"]
        subprocess.run(restart, check=True)
        return 0
    parts = dict((name, proc) for name, proc in stack.procs if proc.poll() is None)
    if fault == "flow-run":
        children = _children(parts["forkserver"].pid) if "forkserver" in parts else []
        if not children:
            return None
        child = chaos.choice(children)
        os.kill(child, signal.SIGKILL)
        return child
    if fault not in parts:
        return None
    os.killpg(parts[fault].pid, signal.SIGKILL)
    return 0


def _case_of_child(stack, pid: int) -> int | None:
    """The case whose run a fork-server child ran, from the fork server's log
    ("flow run ID: child PID for FLOW")."""
    if not pid:
        return None
    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.tables import Case

    log = (stack.log_dir / "forkserver.log").read_text(errors="replace")
    found = re.findall(rf"flow run ([0-9a-f-]+): child {pid} for", log)
    if not found:
        return None
    try:
        with session_scope() as session:
            return session.exec(select(Case.id).where(Case.flow_run_id == found[-1])).first()
    except Exception:  # noqa: BLE001 (the database may be the part that is down)
        return None


def recovery(fault_log: list, clerks: "Clerks") -> dict:
    """Seconds from each fault until any case moved on, and from each killed
    flow-run process until its case moved on (None: it never did)."""
    moves = sorted(clerks.moves)
    stack_back = [
        next((moved - when for moved, _case in moves if moved >= when), None)
        for when, _fault, _case in fault_log
    ]
    case_back = [
        next((moved - when for moved, c in moves if c == case and moved >= when), None)
        for when, fault, case in fault_log
        if fault == "flow-run" and case is not None
    ]
    return {"stack_back": stack_back, "case_back": case_back}


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def _clerk_for(task) -> str:
    """A user of the task's organisation and role; not the proposer (four eyes)."""
    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.tables import User

    with session_scope() as session:
        query = select(User.username).where(
            User.organisation_id == task.organisation_id, User.role == task.role, User.active
        )
        names = sorted(n for n in session.exec(query) if n != task.proposed_by)
    return names[0]


class Clerks:
    """Simulated clerks: take every open task of the benchmark's cases."""

    def __init__(self):
        self.case_ids: list[int] = []
        self.decided: dict[int, float] = {}  # task id -> when decided
        self.waits: list[float] = []  # decision -> next step of the case
        self._last_decision: dict[int, float] = {}  # case id -> when last decided
        self._seen: set[int] = set()  # task ids
        self._closed: set[int] = set()  # case ids
        self.moves: list[tuple[float, int]] = []  # (time.time(), case id): a new task or closed
        self.decisions: list[tuple[float, int]] = []  # (time.time(), case id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def start(self, case_ids: list[int]) -> None:
        self.case_ids = case_ids
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except Exception as error:  # the database or Prefect is down: try again
                print(f"clerks: {type(error).__name__}: {error}", flush=True)
                time.sleep(2)
            time.sleep(0.5)

    def _round(self) -> None:
        from sqlmodel import select

        from serviceplus.models.db import session_scope
        from serviceplus.models.definition import CONFIRM
        from serviceplus.models.services.human_tasks import ACTIVE, TaskError, decide_and_resume
        from serviceplus.models.tables import Case, HumanTask

        with session_scope() as session:
            query = select(HumanTask).where(
                HumanTask.case_id.in_(self.case_ids), HumanTask.status.in_(ACTIVE)
            )
            tasks = list(session.exec(query))
            closed = select(Case.id).where(Case.id.in_(self.case_ids), Case.closed_at.is_not(None))
            for case_id in set(session.exec(closed)) - self._closed:
                self._closed.add(case_id)
                self.moves.append((time.time(), case_id))
        for task in tasks:
            if task.id not in self._seen:
                self._seen.add(task.id)
                self.moves.append((time.time(), task.case_id))
            self._note_next_step(task)
            confirm = task.proposed_by is not None
            username = _clerk_for(task)
            decision = CONFIRM if confirm else task.form["options"][0]["value"]
            try:
                decide_and_resume(task_id=task.id, username=username, decision=decision)
            except TaskError:
                continue  # taken meanwhile
            self.decided[task.id] = time.monotonic()
            self.decisions.append((time.time(), task.case_id))
            self._last_decision[task.case_id] = time.monotonic()

    def _note_next_step(self, task) -> None:
        """A new open task of a case: the case moved on since its last decision."""
        started = self._last_decision.pop(task.case_id, None)
        if started is not None:
            self.waits.append(time.monotonic() - started)

    def all_closed(self) -> bool:
        from sqlmodel import func, select

        from serviceplus.models.db import session_scope
        from serviceplus.models.tables import Case

        try:
            with session_scope() as session:
                query = select(func.count()).where(
                    Case.id.in_(self.case_ids), Case.closed_at.is_(None)
                )
                return session.exec(query).one() == 0
        except Exception:
            return False

    def outcome(self) -> dict:
        from sqlmodel import select

        from serviceplus.models.db import session_scope
        from serviceplus.models.tables import Case, HumanTask, Letter

        with session_scope() as session:
            cases = list(session.exec(select(Case).where(Case.id.in_(self.case_ids))))
            letters = Counter(
                (x.case_id, x.kind, x.step_key)
                for x in session.exec(select(Letter).where(Letter.case_id.in_(self.case_ids)))
            )
            decided = list(
                session.exec(select(HumanTask).where(HumanTask.id.in_(list(self.decided))))
            )
        open_ids = {c.id for c in cases if c.closed_at is None}
        # A case still waiting after the run settled, and the wait since its
        # last decision, count as the longest wait too.
        now = time.monotonic()
        waits = self.waits + [now - t for c, t in self._last_decision.items() if c in open_ids]
        return {
            "cases": len(cases),
            "completed": sum(1 for c in cases if c.closed_at is not None),
            "decisions": len(decided),
            "decisions_lost": sum(1 for t in decided if t.case_id in open_ids),
            "letters_duplicated": sum(n - 1 for n in letters.values() if n > 1),
            "stuck": len(open_ids),
            "wait_p50": percentile(waits, 50) if waits else 0.0,
            "wait_max": max(waits, default=0.0),
        }


def report(args, r: dict) -> str:
    faults = ", ".join(f"{name} {n}" for name, n in sorted(r["faults"].items())) or "none"
    postgres = ", PostgreSQL restarted too" if args.kill_postgres else ""
    recovered = _seconds(_recovered(r["timelines"]))
    return f"""## Chaos

`python -m bench.chaos --cases {args.cases} --minutes {args.minutes:g} --interval {args.interval:g}`
({database_label()}, {os.cpu_count()} cores{postgres};
`SERVICEPLUS_STUCK_AFTER={os.environ["SERVICEPLUS_STUCK_AFTER"]}`). Faults (SIGKILL): {faults}.

| measure | result | goal |
|---|---|---|
| cases completed | {r["completed"]} of {r["cases"]} | all |
| decisions lost | {r["decisions_lost"]} of {r["decisions"]} | 0 |
| letters duplicated | {r["letters_duplicated"]} | 0 |
| cases stuck after settling | {r["stuck"]} | 0 |
| wait from a decision to the next step, median | {r["wait_p50"]:.1f} s | |
| longest wait from a decision to the next step | {r["wait_max"]:.1f} s | |
| fault -> any case moved on, median / max | {_seconds(r["stack_back"])} | |
| killed flow-run process -> its case moved on, median / max | {_seconds(r["case_back"])} | |
| killed flow-run process -> its run running again, median / max | {recovered} | under 120 s |

Each killed flow-run process: seconds from the kill until its run was marked
Crashed or Failed, scheduled again by the sweeper, running again, a clerk
decided a task of its case, and its case moved on (a new task, or closed);
"–" for what did not happen. A run that had suspended before its process was
killed needs no recovery ("suspended"). A case whose task was open at the
kill moves on only after the clerk's decision and that resume's turn in the
queue: the wait from a decision to the next step, not recovery.

| killed run | suspended | ended | scheduled again | running again | decided | case moved on |
|---|---|---|---|---|---|---|
{_timeline_rows(r["timelines"])}
"""


def _recovered(timelines: list[dict]) -> list[float | None]:
    """Kill to running again, for the runs that needed recovery."""
    return [t["running"] for t in timelines if not t["suspended"]]


def _timeline_rows(timelines: list[dict]) -> str:
    if not timelines:
        return "| none | | | | | | |"

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    return "\n".join(
        f"| {n} | {'yes' if t['suspended'] else 'no'} | {cell(t['ended'])} | "
        f"{cell(t['scheduled'])} | {cell(t['running'])} | {cell(t['decided'])} | "
        f"{cell(t['moved'])} |"
        for n, t in enumerate(timelines, start=1)
    )


def _seconds(values: list[float | None]) -> str:
    """Median and longest; a recovery that never came counts as a miss."""
    done = [v for v in values if v is not None]
    if not values:
        return "no such fault"
    text = f"{percentile(done, 50):.1f} s / {max(done):.1f} s" if done else "–"
    missed = len(values) - len(done)
    return text + (f" ({missed} of {len(values)} never)" if missed else f" ({len(values)} faults)")


if __name__ == "__main__":
    main()
