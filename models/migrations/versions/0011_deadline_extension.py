"""deadline extension: human_task.deadline_extended_at, deadline_extension_reason

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 04:00:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Plain ADD/DROP COLUMN: a batch copy of human_task would have to rebuild
# its computed columns (0006).
def upgrade() -> None:
    op.add_column("human_task", sa.Column("deadline_extended_at", sa.DateTime(timezone=True)))
    op.add_column("human_task", sa.Column("deadline_extension_reason", sa.Text()))


def downgrade() -> None:
    op.drop_column("human_task", "deadline_extension_reason")
    op.drop_column("human_task", "deadline_extended_at")
