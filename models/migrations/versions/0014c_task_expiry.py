"""task expiry: human_task.expires_at, expiry_remind_at, expiry_reminded_at

Revision ID: 0014c
Revises: 0014b
Create Date: 2026-11-27 07:45:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014c"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0014b"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ("expires_at", "expiry_remind_at", "expiry_reminded_at")


# Plain ADD/DROP COLUMN: a batch copy of human_task would have to rebuild
# its computed columns (0006).
def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("human_task", sa.Column(name, sa.DateTime(timezone=True)))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("human_task", name)
