"""The peer for the throughput benchmark: a bare Prefect flow with as many
run-scoped cached tasks as the case flow runs before its first human step
(8), then one suspend. No database, no letters."""

from prefect import flow, task
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput


class Go(RunInput):
    outcome: str


@task(cache_policy=RUN_ID + INPUTS, persist_result=True)
def step(n: int) -> int:
    return n


@flow(name="bare-flow")
def bare_flow(number: int) -> str:
    for n in range(8):
        step(n)
    return suspend_flow_run(wait_for_input=Go, key="go-1", timeout=None).outcome
