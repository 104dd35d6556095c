"""The audit log: append-only records of who did what, when."""

from sqlmodel import Session, select

from serviceplus.models.tables import AuditEvent


def record(session: Session, *, actor: str, action: str, case_id: int | None, detail: str = ""):
    session.add(AuditEvent(actor=actor, action=action, case_id=case_id, detail=detail))


def events_for_case(session: Session, case_id: int) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.id)
    return list(session.exec(query))
