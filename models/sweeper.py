"""The sweeper: acts on passed deadlines and delivers what could not be
delivered at once.

A decision saved while Prefect was down, or a case saved while its flow
could not be started, is finished here; overdue tasks get their definition's
on-timeout rule. Called by the scheduled `sweeper` deployment and by
`serviceplus sweep`.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from models import cases, clock, deadlines, tasks
from models.db import session_scope


@dataclass
class SweepReport:
    deadlines: int = 0
    resumed: int = 0
    resume_pending: int = 0
    started: int = 0
    start_pending: int = 0


def sweep(now: datetime | None = None, grace: timedelta = timedelta(seconds=5)) -> SweepReport:
    """`grace` leaves fresh rows to the request that created them."""
    now = now or clock.now()
    report = SweepReport()
    with session_scope() as session:
        decided, report.deadlines = deadlines.apply(session, now)
    with session_scope() as session:
        queue = {p.id: session.merge(p) for p in decided}
        queue.update({p.id: p for p in tasks.undelivered(session, older_than=grace, now=now)})
        for pending in queue.values():
            if tasks.deliver(session, pending):
                report.resumed += 1
            else:
                report.resume_pending += 1
        for case in cases.cases_without_run(session):
            if case.created_at <= now - grace:
                if cases.start_case_flow(session, case):
                    report.started += 1
                else:
                    report.start_pending += 1
    return report
