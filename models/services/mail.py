"""Mail through an outbox: a mail is a row written in the same transaction
as what it reports (a letter), and the sweeper sends it over SMTP. A mail
server that is down loses nothing (the row waits); a sent row is marked and
never sent again. See docs/operations.md ("Mail").

At least once, not exactly once: if the process dies between the SMTP
server's acceptance and the commit of `sent_at`, that one mail goes again on
the next sweep. The conditional claim keeps two sweepers from sending the
same row at once.
"""

import email.utils
import logging
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import human_tasks, storage
from serviceplus.models.services.cases import EMAIL_SHAPE
from serviceplus.models.tables import Case, HumanTask, Letter, OutboxMail, Role, User
from serviceplus.settings import get_settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 50  # then the row stays for an operator (last_error says why)


def enqueue(
    session: Session,
    *,
    key: str,
    recipient: str,
    subject: str,
    body: str,
    case_id: int | None = None,
    attachment: tuple[str, str] | None = None,  # (storage path, file name)
) -> OutboxMail | None:
    """Queue a mail once per key; None when that key is queued already."""
    if session.exec(select(OutboxMail.id).where(OutboxMail.key == key)).first() is not None:
        return None
    row = OutboxMail(
        key=key,
        case_id=case_id,
        recipient=recipient,
        subject=subject,
        body=body,
        attachment_path=attachment[0] if attachment else None,
        attachment_name=attachment[1] if attachment else None,
    )
    session.add(row)
    return row


def letter_recipient(case: Case) -> str | None:
    """Where the employer's letters are mailed: to the representative when
    one is named (the authority turns to them, § 14 Abs. 3 VwVfG), else to
    the employer; None without an address."""
    if case.representative_name:
        return case.representative_email
    return case.employer_email


def letter_to_employer(session: Session, case: Case, letter: Letter, filename: str) -> None:
    """The employer's copy of a letter, as a PDF attachment, if an address is
    known; with a representative, the representative's copy."""
    recipient = letter_recipient(case)
    if not recipient:
        return
    enqueue(
        session,
        key=f"letter:{letter.id}",
        case_id=case.id,
        recipient=recipient,
        subject=f"{letter.title} – Aktenzeichen {case.reference}",
        body=(
            "Sehr geehrte Damen und Herren,\n\n"
            f"anbei erhalten Sie das Schreiben „{letter.title}“ zu Ihrem Verfahren "
            f"{case.reference} als PDF.\n\n"
            "Den Stand Ihres Verfahrens sehen Sie jederzeit über den persönlichen Link "
            "in unserer Eingangsbestätigung.\n\n"
            "Diese Nachricht wurde automatisch erstellt."
        ),
        attachment=(letter.storage_path, filename),
    )


class MailError(ValueError):
    """Notification settings that cannot be saved; the message is German."""


def set_notifications(session: Session, *, user: User, email: str, digest: bool) -> None:
    email = (email or "").strip()
    if email and (len(email) > 254 or not EMAIL_SHAPE.match(email)):
        raise MailError("Bitte geben Sie eine gültige E-Mail-Adresse ein.")
    user.email = email or None
    user.digest = digest
    session.add(user)


DIGEST_ROLES = (Role.clerk, Role.coordinator)


def queue_digests(session: Session, now: datetime) -> int:
    """Once a day, after digest_hour: each clerk and coordinator with an
    address and the digest on gets their tasks due soon or overdue (none:
    no mail). Keyed by user and day, so a second sweep queues nothing."""
    settings = get_settings()
    if now.hour < settings.digest_hour:
        return 0
    users = session.exec(
        select(User).where(
            User.active == True,  # noqa: E712
            User.digest == True,  # noqa: E712
            User.email.is_not(None),
            User.role.in_(DIGEST_ROLES),
        )
    )
    queued = 0
    for user in users:
        tasks = _due_soon(session, user, now + settings.digest_window)
        if tasks and _queue_digest(session, user, tasks, now):
            queued += 1
    return queued


def _due_soon(session: Session, user: User, until: datetime) -> list[tuple[HumanTask, Case]]:
    query = (
        select(HumanTask, Case)
        .join(Case, Case.id == HumanTask.case_id)
        .where(
            HumanTask.organisation_id == user.organisation_id,
            HumanTask.role == user.role,
            HumanTask.status.in_(human_tasks.ACTIVE),
            HumanTask.due_at.is_not(None),
            HumanTask.due_at <= until,
        )
        .order_by(HumanTask.due_at)
    )
    return list(session.exec(query))


def _queue_digest(session, user: User, tasks: list[tuple[HumanTask, Case]], now: datetime):
    lines = []
    for task, case in tasks:
        due = task.due_at if task.due_at.tzinfo else task.due_at.replace(tzinfo=now.tzinfo)
        late = " – überfällig" if due < now else ""
        lines.append(
            f"- {case.reference}: {task.title}, Frist {clock.local_date(due):%d.%m.%Y}{late}"
        )
    body = (
        f"Guten Tag {user.full_name},\n\n"
        f"diese Aufgaben sind bald fällig oder überfällig ({len(tasks)}):\n\n"
        + "\n".join(lines)
        + "\n\nDie tägliche Übersicht schalten Sie unter „Passwort ändern“ ab."
    )
    return enqueue(
        session,
        key=f"digest:{user.username}:{now:%Y-%m-%d}",
        recipient=user.email,
        subject=f"ServicePLUS: {len(tasks)} Aufgaben bald fällig oder überfällig",
        body=body,
    )


def escalation(session: Session, task: HumanTask, role: str) -> int:
    """Tell the users of the role the task escalated to (the coordinators)."""
    case = session.get(Case, task.case_id)
    users = session.exec(
        select(User).where(
            User.organisation_id == task.organisation_id,
            User.role == role,
            User.active == True,  # noqa: E712
            User.email.is_not(None),
        )
    )
    queued = 0
    for user in users:
        row = enqueue(
            session,
            key=f"escalation:{task.id}:{user.username}",
            case_id=case.id,
            recipient=user.email,
            subject=f"ServicePLUS: Frist überschritten – {case.reference}",
            body=(
                f"Guten Tag {user.full_name},\n\n"
                f"die Frist der Aufgabe „{task.title}“ im Fall {case.reference} ist "
                "überschritten. Die Aufgabe liegt jetzt in Ihrem Posteingang."
            ),
        )
        queued += row is not None
    return queued


def unsent(session: Session) -> list[OutboxMail]:
    query = select(OutboxMail).where(
        OutboxMail.sent_at.is_(None), OutboxMail.attempts < MAX_ATTEMPTS
    )
    return list(session.exec(query.order_by(OutboxMail.id)))


def send_pending() -> tuple[int, int]:
    """Send what the outbox holds; returns (sent, still pending). Each mail
    is claimed, sent and marked in its own transaction."""
    settings = get_settings()
    if not settings.smtp_host:
        return 0, 0
    with session_scope() as session:
        ids = [m.id for m in unsent(session)]
    sent = 0
    for mail_id in ids:
        if _send_one(mail_id):
            sent += 1
    return sent, len(ids) - sent


def _send_one(mail_id: int) -> bool:
    with session_scope() as session:
        row = session.get(OutboxMail, mail_id)
        claimed = session.execute(
            sa.update(OutboxMail)
            .where(OutboxMail.id == mail_id, OutboxMail.sent_at.is_(None))
            .where(OutboxMail.attempts == row.attempts)
            .values(attempts=row.attempts + 1)
        ).rowcount
    if not claimed:
        return False  # another sweeper has it, or it went meanwhile
    try:
        _deliver(_message(row))
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail %s not sent, will retry: %s", mail_id, exc)
        with session_scope() as session:
            session.get(OutboxMail, mail_id).last_error = f"{type(exc).__name__}: {exc}"[:2000]
        return False
    with session_scope() as session:
        done = session.get(OutboxMail, mail_id)
        done.sent_at = clock.now()
        done.last_error = None
    return True


def _message(row: OutboxMail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = get_settings().smtp_sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = email.utils.format_datetime(row.created_at)
    message["Message-ID"] = f"<outbox-{row.id}-{row.key.replace(':', '-')}@serviceplus>"
    message.set_content(row.body)
    if row.attachment_path:
        message.add_attachment(
            storage.read_bytes(row.attachment_path),
            maintype="application",
            subtype="pdf",
            filename=row.attachment_name,
        )
    return message


def _deliver(message: EmailMessage) -> None:
    settings = get_settings()
    context = ssl.create_default_context()
    if settings.smtp_tls == "ssl":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
    with smtp:
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)
