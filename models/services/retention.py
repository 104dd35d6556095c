"""Deleting personal data after the retention period.

Closed cases older than the period lose their documents, letters, comments
and tasks; the case row stays as a pseudonymised tombstone (reference,
organisation, dates, outcome) so that figures and the append-only audit log
stay consistent. Files are removed when no remaining row points to them.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.services import audit, storage
from serviceplus.models.tables import (
    Case,
    CaseStatus,
    Comment,
    Document,
    EmployerAnswer,
    HumanTask,
    Letter,
    OutboxMail,
    PendingResume,
    StatusLink,
)

DELETED = "[gelöscht]"


@dataclass
class RetentionReport:
    cases: list[str] = field(default_factory=list)
    files_removed: int = 0


def due_cases(session: Session, older_than: timedelta, now: datetime | None = None) -> list[Case]:
    cutoff = (now or clock.now()) - older_than
    query = select(Case).where(
        Case.status == CaseStatus.completed,
        Case.closed_at < cutoff,
        Case.applicant_name != DELETED,
    )
    return list(session.exec(query.order_by(Case.id)))


def purge(
    session: Session,
    *,
    older_than: timedelta,
    dry_run: bool,
    actor: str,
    now: datetime | None = None,
) -> RetentionReport:
    report = RetentionReport()
    paths: set[str] = set()
    for case in due_cases(session, older_than, now):
        report.cases.append(case.reference)
        if dry_run:
            continue
        paths |= _delete_case_data(session, case)
        audit.record(
            session,
            actor=actor,
            action="personal_data_deleted",
            case_id=case.id,
            detail=f"Aufbewahrungsfrist abgelaufen ({older_than.days} Tage)",
        )
    session.flush()
    for path in paths:
        if not _still_used(session, path):
            storage.resolve(path).unlink(missing_ok=True)
            report.files_removed += 1
    return report


def _delete_case_data(session: Session, case: Case) -> set[str]:
    paths = set(session.exec(select(Document.storage_path).where(Document.case_id == case.id)))
    paths |= set(session.exec(select(Letter.storage_path).where(Letter.case_id == case.id)))
    task_ids = select(HumanTask.id).where(HumanTask.case_id == case.id)
    session.execute(sa.delete(PendingResume).where(PendingResume.task_id.in_(task_ids)))
    # Answers first: they refer to documents and tasks. Mails carry the
    # employer's address and letters; the status link has nothing left to show.
    for table in (EmployerAnswer, OutboxMail, StatusLink, Comment, Document, Letter, HumanTask):
        session.execute(sa.delete(table).where(table.case_id == case.id))
    case.applicant_name = case.employer_name = DELETED
    case.applicant_birth_date = date(1900, 1, 1)
    case.applicant_nationality = case.employer_address = ""
    case.employer_email = None
    case.representative_name = case.representative_address = case.representative_email = None
    case.passport_valid_until = case.planned_entry = None
    case.facts = {}
    session.add(case)
    return paths


def _still_used(session: Session, path: str) -> bool:
    for table in (Document, Letter):
        if session.exec(select(table.id).where(table.storage_path == path)).first():
            return True
    return False
