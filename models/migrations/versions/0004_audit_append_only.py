"""The audit log is append-only: the database refuses UPDATE and DELETE.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END""",
]
POSTGRESQL = [
    """CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit_event is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE if dialect == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    else:
        op.execute("DROP TRIGGER audit_event_no_change ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
