"""audit events name their step and attempt in columns, not in free text

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 00:50:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch copy: SQLite's batch mode rebuilds the
    # table and would drop the append-only triggers of revision 0004.
    op.add_column("audit_event", sa.Column("step_key", sa.String(length=80), nullable=True))
    op.add_column("audit_event", sa.Column("attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_event") as batch_op:
        batch_op.drop_column("attempt")
        batch_op.drop_column("step_key")
