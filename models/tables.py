"""The app database: SQLModel tables.

Timestamps are timezone-aware UTC. SQLite forgets the zone, so UTCDateTime
puts it back on load.
"""

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from serviceplus.models import clock


def utcnow() -> datetime:
    return clock.now()  # the one clock (models/clock.py)


class UTCDateTime(sa.TypeDecorator):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def ts_field(**kwargs: Any) -> Any:
    nullable = kwargs.pop("nullable", True)
    return Field(sa_type=UTCDateTime, sa_column_kwargs={"nullable": nullable}, **kwargs)


class Role(StrEnum):
    clerk = "clerk"
    coordinator = "coordinator"
    admin = "admin"
    # An adviser at an advice organisation (WelcomeCenter, IQ): pre-checks
    # files, hands them over, follows them; never decides or reads internals.
    adviser = "adviser"
    # The ServicePLUS partners' overview: figures across all authorities only.
    network = "network"


class CaseStatus(StrEnum):
    running = "running"
    waiting = "waiting"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


# A case whose run goes on (or waits for a person); with failed, every case
# that is not closed.
OPEN_CASE = (CaseStatus.running, CaseStatus.waiting)
NOT_CLOSED = (*OPEN_CASE, CaseStatus.failed)


class TaskStatus(StrEnum):
    open = "open"
    claimed = "claimed"
    completed = "completed"
    cancelled = "cancelled"


def _setting(max_length: int):
    """An organisation's letter setting: text, empty until an admin fills it."""
    return Field(default="", max_length=max_length, sa_column_kwargs={"server_default": ""})


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=40)  # abh, recognition, ba, advice
    address: str = Field(default="", max_length=400)
    # Letter settings (flows/letters.py): the named contact in the letterhead,
    # the bank account and the legal remedy printed on every Bescheid.
    contact_name: str = _setting(200)
    contact_phone: str = _setting(60)
    contact_email: str = _setting(200)
    bank_name: str = _setting(200)
    iban: str = _setting(40)
    bic: str = _setting(20)
    # "widerspruch" (objection to the authority) or "klage" (action at the court)
    legal_remedy: str = _setting(20)
    # Where the remedy is lodged, in the dative after "bei":
    # "dem Verwaltungsgericht Magdeburg, Breiter Weg 203–206, 39104 Magdeburg".
    remedy_address: str = _setting(400)
    # Takes part in ServicePLUS: users log in, cases are opened here. The
    # other foreigners' authorities of Sachsen-Anhalt are listed (routing
    # names them) but inactive (models/services/authorities.py).
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # Four eyes with fewer than two people of the role: who confirms instead,
    # "coordinator" (the organisation's coordination) or a partner
    # organisation's slug (its clerks); empty: a second person of the role.
    four_eyes_confirmer: str = _setting(40)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=80)
    full_name: str = Field(max_length=200)
    password_hash: str
    role: Role = Field(sa_type=sa.String(20))
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    active: bool = True
    # Stored in each login's session; bumping it ends all of the user's
    # sessions (logout, password or role change).
    session_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Notifications (models/services/mail.py): the user's own address, and
    # whether they want the daily digest of tasks due soon or overdue.
    email: str | None = Field(default=None, max_length=254)
    digest: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # Set by an admin's password reset: the user must choose a new password
    # before anything else (webui/auth.py).
    must_change_password: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    # ... within a few days (accounts.TEMPORARY_PASSWORD_DAYS); after that
    # the temporary password no longer logs in.
    temporary_password_until: datetime | None = ts_field(default=None)


class WorkflowDefinition(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    version: int
    title: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    # A draft has no published_at; once published, the row never changes.
    published_at: datetime | None = ts_field(default=None)
    published_by: str = Field(default="system", max_length=80)
    active: bool = False


class Case(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    reference: str | None = Field(default=None, unique=True, max_length=40)
    # Natural key of a submission: the same key twice yields the same case.
    submission_key: str = Field(unique=True, max_length=80)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    applicant_name: str = Field(max_length=200)
    applicant_birth_date: date
    applicant_nationality: str = Field(max_length=80)
    passport_valid_until: date | None = None
    employer_name: str = Field(max_length=200)
    employer_address: str = Field(max_length=400)
    # Where the employer gets each letter as a PDF (optional).
    employer_email: str | None = Field(default=None, max_length=254)
    residence_purpose: str = Field(max_length=20)
    planned_entry: date | None = None
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: CaseStatus = Field(default=CaseStatus.running, sa_type=sa.String(20), index=True)
    outcome: str | None = Field(default=None, max_length=40)
    current_step: str | None = Field(default=None, max_length=80)
    definition_name: str = Field(max_length=80)
    definition_version: int
    flow_run_id: str | None = Field(default=None, max_length=40)
    # When the file was last found complete: statutory clocks count from here.
    file_complete_at: datetime | None = ts_field(default=None)
    created_by: str = Field(max_length=80)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)
    closed_at: datetime | None = ts_field(default=None)
    # Handed over from an adviser's pre-check (models/services/advice.py).
    precheck_id: int | None = Field(default=None)
    prechecked_by: str | None = Field(default=None, max_length=200)  # the adviser organisation
    # The employer's representative (lawyer, agency): letters go to them
    # (§ 14 Abs. 3 VwVfG), "c/o" on the employer's name.
    representative_name: str | None = Field(default=None, max_length=200)
    representative_address: str | None = Field(default=None, max_length=400)
    representative_email: str | None = Field(default=None, max_length=254)
    # A family member's case joined to the principal's (§ 81a Abs. 4 AufenthG):
    # its own documents and pre-approval, no second fee (fact family_member).
    family_of: int | None = Field(default=None, foreign_key="case.id", index=True)
    family_relation: str | None = Field(default=None, max_length=20)  # spouse, child


class Document(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=60)
    original_name: str = Field(max_length=255)
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    storage_path: str = Field(max_length=400)
    uploaded_by: str = Field(max_length=80)
    uploaded_at: datetime = ts_field(default_factory=utcnow, nullable=False)


class Precheck(SQLModel, table=True):
    """An adviser's pre-check of a file ("Vorprüfung"): the same input as a
    case, owned by the advice organisation; no fee, no clock, and no
    authority sees it. A hand-over turns it into a case (case_id)."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)  # the adviser's
    authority_id: int = Field(foreign_key="organisation.id")  # where the case will be opened
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # CaseCreate as JSON
    note: str = Field(default="", sa_type=sa.Text)  # the adviser's note for the authority
    complete: bool = False  # the last check's result
    created_by: str = Field(max_length=80)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)
    case_id: int | None = Field(default=None, foreign_key="case.id")
    handed_over_by: str | None = Field(default=None, max_length=80)
    handed_over_at: datetime | None = ts_field(default=None)


class PrecheckDocument(SQLModel, table=True):
    __tablename__ = "precheck_document"
    id: int | None = Field(default=None, primary_key=True)
    precheck_id: int = Field(foreign_key="precheck.id", index=True)
    kind: str = Field(max_length=60)
    original_name: str = Field(max_length=255)
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    storage_path: str = Field(max_length=400)
    uploaded_by: str = Field(max_length=80)
    uploaded_at: datetime = ts_field(default_factory=utcnow, nullable=False)


ACTIVE_SQL = "status IN ('open', 'claimed')"
UNDATED_SQL = "due_at IS NULL"


class HumanTask(SQLModel, table=True):
    __tablename__ = "human_task"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "step_key", "attempt"),
        sa.Index("ix_human_task_queue", "organisation_id", "role", "status", "due_at"),
        # The inbox query walks this index in due order and stops after a page.
        # proposed_by, assignee, status: the tab counts read the index alone.
        sa.Index(
            "ix_human_task_inbox",
            "organisation_id",
            "role",
            "active",
            "undated",
            "due_at",
            "proposed_by",
            "assignee",
            "status",
        ),
        # The coordinators' late-work list walks this in due order (overview.py).
        sa.Index("ix_human_task_due", "active", "due_at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    step_key: str = Field(max_length=80)
    attempt: int
    title: str = Field(max_length=200)
    organisation_id: int = Field(foreign_key="organisation.id")
    role: Role = Field(sa_type=sa.String(20))
    status: TaskStatus = Field(default=TaskStatus.open, sa_type=sa.String(20))
    form: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    flow_run_id: str = Field(max_length=40)
    assignee: str | None = Field(default=None, max_length=80)
    due_at: datetime | None = ts_field(default=None)
    decision: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    completed_by: str | None = Field(default=None, max_length=80)
    # Four eyes: a confirmation task carries the proposal it confirms.
    proposed_by: str | None = Field(default=None, max_length=80)
    proposal: str | None = Field(default=None, max_length=40)
    proposal_reason: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)
    claimed_at: datetime | None = ts_field(default=None)
    completed_at: datetime | None = ts_field(default=None)
    cancelled_at: datetime | None = ts_field(default=None)
    reminded_at: datetime | None = ts_field(default=None)
    # A second clock (the step's `expires`, e.g. a pre-approval's validity):
    # decided when it runs out, with one reminder before (migration 0014c).
    expires_at: datetime | None = ts_field(default=None)
    expiry_remind_at: datetime | None = ts_field(default=None)
    expiry_reminded_at: datetime | None = ts_field(default=None)
    escalated_at: datetime | None = ts_field(default=None)
    # The acting body's one extension of the deadline, with its reason.
    deadline_extended_at: datetime | None = ts_field(default=None)
    deadline_extension_reason: str | None = Field(default=None, sa_type=sa.Text)
    priority: int = 0  # 0 normal, 1 high
    delegated_by: str | None = Field(default=None, max_length=80)  # who can take it back
    # Computed by the database (migration 0006) so the inbox can sort by an
    # index: "open or claimed" and "no due date" (sorted last).
    active: bool | None = Field(
        default=None, sa_column=Column(sa.Boolean, sa.Computed(ACTIVE_SQL), nullable=True)
    )
    undated: bool | None = Field(
        default=None, sa_column=Column(sa.Boolean, sa.Computed(UNDATED_SQL), nullable=True)
    )


class PendingResume(SQLModel, table=True):
    """Outbox: a saved decision whose flow run still has to be resumed."""

    __tablename__ = "pending_resume"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="human_task.id", unique=True)
    flow_run_id: str = Field(max_length=40)
    run_input: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)
    delivered_at: datetime | None = ts_field(default=None, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class Letter(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("case_id", "kind", "step_key", "attempt"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=60)
    step_key: str = Field(max_length=80)
    attempt: int
    title: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    storage_path: str = Field(max_length=400)
    size: int
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts_field(default_factory=utcnow, nullable=False)
    actor: str = Field(max_length=80)
    action: str = Field(max_length=60)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    detail: str = Field(default="", sa_type=sa.Text)
    step_key: str | None = Field(default=None, max_length=80)  # for step events
    attempt: int | None = None


class Comment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    task_id: int | None = Field(default=None, foreign_key="human_task.id")
    author: str = Field(max_length=80)
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)


class SavedView(SQLModel, table=True):
    """A saved inbox filter; shared views are visible to the whole organisation."""

    __tablename__ = "saved_view"
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    owner: str = Field(max_length=80)
    name: str = Field(max_length=80)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    shared: bool = False
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)


class LoginAttempt(SQLModel, table=True):
    """A failed login, kept only for the throttling window (models/throttle.py)."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_account", "username", "address", "at"),
        sa.Index("ix_login_attempt_address", "address", "at"),
        sa.Index("ix_login_attempt_at", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts_field(default_factory=utcnow, nullable=False)
    username: str = Field(max_length=80)  # as typed, lower case; may name no account
    address: str = Field(max_length=64)


class StatusLink(SQLModel, table=True):
    """The employer's private link to the case's status page. Only the
    sha256 of the token is stored: the token itself is printed once, in the
    receipt letter or on the clerk's page, and cannot be read back."""

    __tablename__ = "status_link"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_by: str = Field(max_length=80)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)
    expires_at: datetime = ts_field(nullable=False)
    revoked_at: datetime | None = ts_field(default=None)
    revoked_by: str | None = Field(default=None, max_length=80)


class StatusRequest(SQLModel, table=True):
    """A request to the public status pages, kept only for the rate-limit
    window (models/services/throttle.py)."""

    __tablename__ = "status_request"
    __table_args__ = (sa.Index("ix_status_request_address", "address", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts_field(default_factory=utcnow, nullable=False)
    address: str = Field(max_length=64)


class EmployerAnswer(SQLModel, table=True):
    """What the employer sent on the status page for an open task: a
    document, or the option they chose, for the clerk to confirm."""

    __tablename__ = "employer_answer"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    task_id: int = Field(foreign_key="human_task.id", index=True)
    document_id: int | None = Field(default=None, foreign_key="document.id")
    option: str | None = Field(default=None, max_length=40)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)


class OutboxMail(SQLModel, table=True):
    """Outbox: a mail written in the same transaction as what it reports,
    sent by the sweeper (models/services/mail.py). `key` names what it is
    about (e.g. "letter:17"), so the same mail is never queued twice."""

    __tablename__ = "outbox_mail"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=120)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    recipient: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)
    attachment_path: str | None = Field(default=None, max_length=400)  # in storage
    attachment_name: str | None = Field(default=None, max_length=255)
    created_at: datetime = ts_field(default_factory=utcnow, nullable=False)
    sent_at: datetime | None = ts_field(default=None, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class OverviewSnapshot(SQLModel, table=True):
    """The coordinators' overview figures of one organisation, computed by
    the sweeper (or by a page that found them too old), so that the page
    reads one row however many cases there are (models/services/overview.py)."""

    __tablename__ = "overview_snapshot"
    organisation_id: int = Field(foreign_key="organisation.id", primary_key=True)
    computed_at: datetime = ts_field(nullable=False)
    figures: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
