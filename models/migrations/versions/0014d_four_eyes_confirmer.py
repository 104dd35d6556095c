"""organisation: who confirms four-eyes proposals when it has too few people

Revision ID: 0014d
Revises: 0014c

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0014d"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0014c"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("organisation") as batch:
        batch.add_column(
            sa.Column("four_eyes_confirmer", sa.String(length=40), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("organisation") as batch:
        batch.drop_column("four_eyes_confirmer")
