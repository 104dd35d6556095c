"""inbox sort columns: active, undated (computed) and their index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 08:35:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# Copied, not imported: a revision must not change when today's tables do.
ACTIVE_SQL = "status IN ('open', 'claimed')"
UNDATED_SQL = "due_at IS NULL"

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # SQLite can add only virtual generated columns; PostgreSQL (before 18)
    # only stored ones.
    stored = op.get_bind().dialect.name != "sqlite"
    for name, expression in (("active", ACTIVE_SQL), ("undated", UNDATED_SQL)):
        op.add_column(
            "human_task",
            sa.Column(name, sa.Boolean(), sa.Computed(expression, persisted=stored)),
        )
    op.create_index(
        "ix_human_task_inbox",
        "human_task",
        ["organisation_id", "role", "active", "undated", "due_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_human_task_inbox", table_name="human_task")
    with op.batch_alter_table("human_task") as batch_op:
        batch_op.drop_column("undated")
        batch_op.drop_column("active")
