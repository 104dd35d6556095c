"""The sweeper: delivers what could not be delivered at once.

A decision saved while Prefect was down, or a case saved while its flow
could not be started, is finished here. Called by the scheduled `sweeper`
deployment and by `serviceplus sweep`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models import cases, tasks
from models.db import session_scope


@dataclass
class SweepReport:
    resumed: int = 0
    resume_pending: int = 0
    started: int = 0
    start_pending: int = 0


def sweep(grace: timedelta = timedelta(seconds=5)) -> SweepReport:
    """`grace` leaves fresh rows to the request that created them."""
    report = SweepReport()
    with session_scope() as session:
        for pending in tasks.undelivered(session, older_than=grace):
            if tasks.deliver(session, pending):
                report.resumed += 1
            else:
                report.resume_pending += 1
        for case in cases.cases_without_run(session):
            if case.created_at <= datetime.now(UTC) - grace:
                if cases.start_case_flow(session, case):
                    report.started += 1
                else:
                    report.start_pending += 1
    return report
