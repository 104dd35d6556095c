"""Two workers, as on two hosts (own working directory, own fork server),
share the cases of one Prefect server; killing one mid-way loses nothing:
its runs are found by the sweeper and finished by the other."""

import os
import signal
from datetime import timedelta

import pytest
from sqlmodel import select

from serviceplus.models.db import session_scope
from serviceplus.models.services import human_tasks
from serviceplus.models.services.cases import get_by_reference
from serviceplus.models.services.sweeper import sweep
from serviceplus.models.tables import Case, CaseStatus, HumanTask
from serviceplus.settings import Settings
from serviceplus.stack import Stack
from tests.helpers import active_version, decide, letters_of
from tests.test_stack import start_example_case, wait_for

CASES = 4


@pytest.fixture(scope="module")
def hosts(prefect_server, tmp_path_factory):
    """Host a and host b: each a fork server and a worker of one run at a
    time, so that the cases need both. Cases follow version 2's path."""
    with active_version(2):
        yield from _hosts(tmp_path_factory)


def _hosts(tmp_path_factory):
    settings = Settings(deployment="case-flow/s81a-v1", demo=True, worker_limit=1)
    stacks = []
    for name in ("a", "b"):
        home = tmp_path_factory.mktemp(f"host-{name}")
        stack = Stack(
            settings,
            web=False,
            log_dir=home / "logs",
            work_dir=home,
            forkserver_socket=home / "forkserver.sock",
        )
        stacks.append(stack)
    try:
        stacks[0].deploy()
        for stack in stacks:
            stack.start_forkserver()
            stack.start_worker()
        yield stacks
    finally:
        for stack in stacks:
            stack.stop()


def forked_runs(stack: Stack) -> int:
    return (stack.log_dir / "forkserver.log").read_text().count(": child ")


def kill_host(stack: Stack) -> None:
    for name in ("prefect-worker", "forkserver"):  # the fork server's children with it
        (proc,) = [p for n, p in stack.procs if n == name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def active_task(reference: str, step: str):
    """The case's open task at `step`, read from the database (no CLI process
    per look: the hosts need the CPU)."""
    with session_scope() as session:
        case = get_by_reference(session, reference)
        query = select(HumanTask).where(
            HumanTask.case_id == case.id,
            HumanTask.step_key == step,
            HumanTask.status.in_(human_tasks.ACTIVE),
        )
        return session.exec(query).first()


def case_of(reference: str) -> Case:
    with session_scope() as session:
        return get_by_reference(session, reference)


def test_two_workers_share_cases_and_one_may_die_mid_way(hosts, tmp_path):
    host_a, host_b = hosts
    references = [start_example_case(host_a, tmp_path, f"two-workers-{i}") for i in range(CASES)]
    tasks = [
        wait_for(lambda r=r: active_task(r, "decision"), 300, f"decision of {r}")
        for r in references
    ]
    assert forked_runs(host_a) > 0 and forked_runs(host_b) > 0  # both hosts ran cases

    for task in tasks:
        decide(task, "approve")
    kill_host(host_a)  # while the resumed runs are on their way to the confirmation

    # Runs host a was executing stay Running without a process; the sweeper
    # crashes them after `stuck_after` and schedules them again (for host b).
    stuck_after = timedelta(seconds=30)

    def at_confirmation():
        sweep(stuck_after=stuck_after)
        checks = [active_task(r, "decision.confirm") for r in references]
        return checks if all(checks) else None

    checks = wait_for(at_confirmation, 600, "every case at the confirmation after host a died")
    for check in checks:
        decide(check, "confirm", username="sb2.magdeburg")

    def completed(reference):
        sweep(stuck_after=stuck_after)
        case = case_of(reference)
        return case if case.status == CaseStatus.completed else None

    for reference in references:
        case = wait_for(lambda r=reference: completed(r), 300, f"{reference} to complete")
        assert case.outcome == "approved"
        kinds = sorted(x.kind for x in letters_of(case))
        assert kinds == ["fee_notice", "preapproval", "receipt"], kinds  # none twice
