"""status page and mail: status_link, status_request, employer_answer, outbox_mail;
case.employer_email, user.email, user.digest

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 04:00:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "status_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=80), nullable=True),
    )
    op.create_index("ix_status_link_case_id", "status_link", ["case_id"])
    op.create_table(
        "status_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
    )
    op.create_index("ix_status_request_address", "status_request", ["address", "at"])
    op.create_table(
        "employer_answer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("human_task.id"), nullable=False),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("document.id"), nullable=True),
        sa.Column("option", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_employer_answer_case_id", "employer_answer", ["case_id"])
    op.create_index("ix_employer_answer_task_id", "employer_answer", ["task_id"])
    op.create_table(
        "outbox_mail",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=120), nullable=False, unique=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachment_path", sa.String(length=400), nullable=True),
        sa.Column("attachment_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_outbox_mail_case_id", "outbox_mail", ["case_id"])
    op.create_index("ix_outbox_mail_sent_at", "outbox_mail", ["sent_at"])
    # Nullable: plain add_column (no batch mode on SQLite).
    op.add_column("case", sa.Column("employer_email", sa.String(length=254), nullable=True))
    op.add_column("user", sa.Column("email", sa.String(length=254), nullable=True))
    op.add_column(
        "user", sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("digest")
        batch_op.drop_column("email")
    with op.batch_alter_table("case") as batch_op:
        batch_op.drop_column("employer_email")
    op.drop_table("outbox_mail")
    op.drop_table("employer_answer")
    op.drop_table("status_request")
    op.drop_table("status_link")
