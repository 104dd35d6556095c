"""The audit log: append-only records of who did what, when."""

from sqlmodel import Session, select

from serviceplus.models.tables import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    case_id: int | None,
    detail: str = "",
    step_key: str | None = None,
    attempt: int | None = None,
) -> None:
    """Append one event; step events name their step and attempt in columns,
    so nothing has to parse `detail`, which is for people."""
    session.add(
        AuditEvent(
            actor=actor,
            action=action,
            case_id=case_id,
            detail=detail,
            step_key=step_key,
            attempt=attempt,
        )
    )


def events_for_case(session: Session, case_id: int) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.id)
    return list(session.exec(query))
