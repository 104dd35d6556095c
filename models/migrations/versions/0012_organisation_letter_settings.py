"""organisation: letter settings (contact, bank account, legal remedy)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 04:00:00

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
# Other revisions are added in parallel; the merge chains this one.
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = [
    ("contact_name", 200),
    ("contact_phone", 60),
    ("contact_email", 200),
    ("bank_name", 200),
    ("iban", 40),
    ("bic", 20),
    ("legal_remedy", 20),
    ("remedy_address", 400),
]


def upgrade() -> None:
    with op.batch_alter_table("organisation") as batch:
        for name, length in COLUMNS:
            batch.add_column(
                sa.Column(name, sa.String(length=length), nullable=False, server_default="")
            )


def downgrade() -> None:
    with op.batch_alter_table("organisation") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
