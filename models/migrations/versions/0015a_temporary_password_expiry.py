"""user.temporary_password_until: a temporary password from an admin's
reset expires

Revision ID: 0015a
Revises: 0014e
"""

from datetime import UTC, datetime, timedelta
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015a"
down_revision: Union[str, Sequence[str], None] = "0014e"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("user", sa.Column("temporary_password_until", sa.DateTime(timezone=True)))
    # Temporary passwords handed out before this revision expire like new ones.
    user = sa.table("user", sa.column("must_change_password"), sa.column("temporary_password_until"))
    until = datetime.now(UTC) + timedelta(days=3)
    op.execute(user.update().where(user.c.must_change_password).values(temporary_password_until=until))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("temporary_password_until")
