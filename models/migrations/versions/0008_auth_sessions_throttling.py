"""auth: user.session_generation

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03 10:00:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
# 0007 is added in parallel on another branch; the merge sets this to "0007".
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Existing users start at 0; sessions from before have no generation and end.
    op.add_column(
        "user",
        sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("session_generation")
