"""user.temporary_password_until: a temporary password from an admin's
reset expires

Revision ID: 0015a
Revises: 0014e
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015a"
down_revision: Union[str, Sequence[str], None] = "0014e"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("user", sa.Column("temporary_password_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("temporary_password_until")
