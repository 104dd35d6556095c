"""Hand-over of a case between foreigners' authorities: a case filed at the
wrong authority goes to the competent one with everything it has
(documents, letters, comments, history, status link) and its running flow.

The case's authority is Case.organisation_id: every page, download and list
checks it, and the flow opens each later task of the authority ("case" in
the definition) for whichever authority holds the case then. The hand-over
therefore changes that one column and moves the authority's tasks (open
ones back to the new authority's group, done ones for the record); the
suspended flow run is not touched and resumes as before.
"""

import logging

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models.services import audit, authorities, orchestration
from serviceplus.models.services.cases import family_of_case
from serviceplus.models.tables import (
    Case,
    CaseStatus,
    HumanTask,
    Organisation,
    Role,
    TaskStatus,
    User,
)

log = logging.getLogger(__name__)
REASON_MAX = 2000
CLOSED = (CaseStatus.completed, CaseStatus.cancelled)


class TransferError(ValueError):
    """A hand-over that cannot be done; the message is German."""


def targets(session: Session, case: Case) -> list[Organisation]:
    """The authorities a case can be handed over to: all that take part, but its own."""
    return [o for o in authorities.active_authorities(session) if o.id != case.organisation_id]


def hand_over(session: Session, *, case: Case, user: User, to: str, reason: str) -> list[Case]:
    """Hand the case, and the open cases of its family (§ 81a Abs. 4: joined
    cases stay together), over to the authority `to` (slug). Returns the
    cases handed over. Raises TransferError and changes nothing when not allowed."""
    reason = (reason or "").strip()
    if user.role != Role.clerk or user.organisation_id != case.organisation_id:
        raise TransferError("Abgeben kann nur die Sachbearbeitung der zuständigen Behörde.")
    if case.status in CLOSED:
        raise TransferError("Ein abgeschlossener Fall kann nicht abgegeben werden.")
    target = next((o for o in targets(session, case) if o.slug == to), None)
    if target is None:
        raise TransferError("Bitte wählen Sie eine andere teilnehmende Ausländerbehörde.")
    if not reason:
        raise TransferError("Bitte begründen Sie die Abgabe.")
    if len(reason) > REASON_MAX:
        raise TransferError(f"Die Begründung ist zu lang (höchstens {REASON_MAX} Zeichen).")
    source = session.get(Organisation, case.organisation_id)
    family = [c for c in family_of_case(session, case) if c.id != case.id]
    moved = [case] + [
        c for c in family if c.organisation_id == source.id and c.status not in CLOSED
    ]
    for row in moved:
        _move(session, row, source, target, user.username, reason)
    return moved


def _move(
    session: Session,
    case: Case,
    source: Organisation,
    target: Organisation,
    actor: str,
    reason: str,
) -> None:
    # Moved only from where it still is: of two clerks handing it over at
    # once, the second finds it gone (a conditional write; both databases).
    moved = session.execute(
        sa.update(Case)
        .where(Case.id == case.id, Case.organisation_id == source.id)
        .values(organisation_id=target.id)
    ).rowcount
    if moved != 1:
        raise TransferError(f"Der Fall {case.reference} wurde inzwischen abgegeben.")
    session.refresh(case)
    # Open tasks go back to the new authority's group (nobody there has
    # claimed them); done ones move for the record, so the old authority
    # keeps no task, and with it no view, on the case.
    open_tasks = session.execute(
        sa.update(HumanTask)
        .where(
            HumanTask.case_id == case.id,
            HumanTask.organisation_id == source.id,
            HumanTask.status.in_((TaskStatus.open, TaskStatus.claimed)),
        )
        .values(
            organisation_id=target.id,
            status=TaskStatus.open,
            assignee=None,
            claimed_at=None,
            delegated_by=None,
        )
    ).rowcount
    session.execute(
        sa.update(HumanTask)
        .where(HumanTask.case_id == case.id, HumanTask.organisation_id == source.id)
        .values(organisation_id=target.id)
    )
    audit.record(
        session,
        actor=actor,
        action="case_handed_over",
        case_id=case.id,
        detail=f"von {source.name} ({source.slug}) an {target.name} ({target.slug}), "
        f"{open_tasks} offene Aufgaben: {reason}",
    )
    audit.record(
        session,
        actor="system",
        action="case_received",
        case_id=case.id,
        detail=f"übernommen von {source.name} ({source.slug}): {reason}",
    )
    session.flush()


def retag_runs(moved: list[Case], source: str, target: str) -> None:
    """Give the flow runs of cases handed over from `source` to `target`
    (slugs) the new authority's tag, for filters in the Prefect UI. Call it
    after the hand-over is committed: on SQLite a write holds the database's
    one write lock, and a call to a Prefect server that went away takes
    about a minute (its client retries)."""
    for case in moved:
        if not case.flow_run_id:
            continue
        try:
            orchestration.retag_flow_run(case.flow_run_id, source, target)
        except Exception:
            log.warning("could not retag flow run %s of %s", case.flow_run_id, case.reference)


def open_task_ids(session: Session, case: Case) -> list[int]:
    query = select(HumanTask.id).where(
        HumanTask.case_id == case.id, HumanTask.status.in_((TaskStatus.open, TaskStatus.claimed))
    )
    return list(session.exec(query))
