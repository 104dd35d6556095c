"""competent authorities, representatives, family members:
organisation.active; case.representative_*, case.family_of, case.family_relation

Revision ID: 0014b
Revises: 0014a
Create Date: 2026-11-27 07:40:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014b"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0014a"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Nullable or with a server default: plain add_column (no batch mode on SQLite).
    op.add_column(
        "organisation",
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("case", sa.Column("representative_name", sa.String(length=200), nullable=True))
    op.add_column(
        "case", sa.Column("representative_address", sa.String(length=400), nullable=True)
    )
    op.add_column("case", sa.Column("representative_email", sa.String(length=254), nullable=True))
    op.add_column("case", sa.Column("family_of", sa.Integer(), nullable=True))
    op.add_column("case", sa.Column("family_relation", sa.String(length=20), nullable=True))
    op.create_index("ix_case_family_of", "case", ["family_of"])
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add a constraint later
        op.create_foreign_key("fk_case_family_of_case", "case", "case", ["family_of"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_case_family_of_case", "case", type_="foreignkey")
    op.drop_index("ix_case_family_of", "case")
    with op.batch_alter_table("case") as batch:
        for column in (
            "family_relation",
            "family_of",
            "representative_email",
            "representative_address",
            "representative_name",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("organisation") as batch:
        batch.drop_column("active")
