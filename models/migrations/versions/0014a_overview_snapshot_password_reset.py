"""overview_snapshot (precomputed coordinator figures), ix_human_task_due;
user.must_change_password

Revision ID: 0014a
Revises: 0013
Create Date: 2026-11-27 07:30:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014a"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "overview_snapshot",
        sa.Column(
            "organisation_id",
            sa.Integer(),
            sa.ForeignKey("organisation.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
    )
    op.create_index("ix_human_task_due", "human_task", ["active", "due_at", "id"])
    op.add_column(
        "user",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("must_change_password")
    op.drop_index("ix_human_task_due", table_name="human_task")
    op.drop_table("overview_snapshot")
