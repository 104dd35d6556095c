"""advice: the precheck and precheck_document tables, case.precheck_id/prechecked_by

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-10 10:00:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "precheck",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organisation_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=False
        ),
        sa.Column("authority_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=True),
        sa.Column("handed_over_by", sa.String(length=80), nullable=True),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_precheck_organisation_id", "precheck", ["organisation_id"])
    op.create_table(
        "precheck_document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("precheck_id", sa.Integer(), sa.ForeignKey("precheck.id"), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_path", sa.String(length=400), nullable=False),
        sa.Column("uploaded_by", sa.String(length=80), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_precheck_document_precheck_id", "precheck_document", ["precheck_id"])
    # Nullable: plain add_column (no batch mode on SQLite).
    op.add_column("case", sa.Column("precheck_id", sa.Integer(), nullable=True))
    op.add_column("case", sa.Column("prechecked_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case") as batch_op:
        batch_op.drop_column("prechecked_by")
        batch_op.drop_column("precheck_id")
    op.drop_table("precheck_document")
    op.drop_table("precheck")
