"""human_task: the inbox index also covers the four-eyes and tab columns

Revision ID: 0014e
Revises: 0014d

The inbox counts its tabs (all, mine, group) in one query; with
proposed_by, assignee and status in ix_human_task_inbox that count reads
the index alone instead of 100,000 table rows (docs/performance.md).
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0014e"
down_revision: Union[str, Sequence[str], None] = "0014d"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD = ["organisation_id", "role", "active", "undated", "due_at"]
NEW = [*OLD, "proposed_by", "assignee", "status"]


def upgrade() -> None:
    op.drop_index("ix_human_task_inbox", table_name="human_task")
    op.create_index("ix_human_task_inbox", "human_task", NEW)


def downgrade() -> None:
    op.drop_index("ix_human_task_inbox", table_name="human_task")
    op.create_index("ix_human_task_inbox", "human_task", OLD)
