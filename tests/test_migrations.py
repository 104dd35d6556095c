"""Schema migrations keep every row: a database made by an earlier revision,
with data in it, upgraded to head."""

import json
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from serviceplus.models.db import alembic_config, engine_for
from serviceplus.settings import get_settings

ROWS = {
    "organisation": [{"id": 1, "slug": "abh-x", "name": "ABH X", "kind": "abh", "address": ""}],
    "user": [
        {
            "id": 1,
            "username": "u",
            "full_name": "U",
            "password_hash": "h",
            "role": "clerk",
            "organisation_id": 1,
            "active": True,
        }
    ],
    "workflowdefinition": [
        {
            "id": 1,
            "name": "s81a",
            "version": 1,
            "title": "t",
            "body": "b",
            "published_at": datetime(2026, 1, 1, tzinfo=UTC),
            "published_by": "system",
            "active": True,
        }
    ],
    "case": [
        {
            "id": 1,
            "reference": "ABH-X-2026-000001",
            "submission_key": "k",
            "organisation_id": 1,
            "applicant_name": "A",
            "applicant_birth_date": date(1990, 1, 1),
            "applicant_nationality": "n",
            "employer_name": "E",
            "employer_address": "X",
            "residence_purpose": "18a",
            "facts": {"gross_annual_salary_eur": 50000},
            "status": "waiting",
            "definition_name": "s81a",
            "definition_version": 1,
            "created_by": "t",
            "created_at": datetime(2026, 1, 2, tzinfo=UTC),
        }
    ],
    "human_task": [
        {
            "id": 1,
            "case_id": 1,
            "step_key": "decision",
            "attempt": 1,
            "title": "D",
            "organisation_id": 1,
            "role": "clerk",
            "status": "claimed",
            "form": {},
            "flow_run_id": "x",
            "assignee": "u",
            "created_at": datetime(2026, 1, 3, tzinfo=UTC),
        }
    ],
    "audit_event": [
        {
            "id": 1,
            "at": datetime(2026, 1, 2, tzinfo=UTC),
            "actor": "t",
            "action": "case_created",
            "case_id": 1,
            "detail": "d",
        }
    ],
}


@pytest.fixture
def empty_database(tmp_path):
    """A fresh database of the kind the session runs on."""
    url = get_settings().database_url
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    import psycopg

    server = url.split("://", 1)[1].rsplit("/", 1)[0]
    name = f"serviceplus_migration_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{server}/{name}"
    engine_for(f"postgresql+psycopg://{server}/{name}").dispose()
    with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_upgrade_from_the_first_release_keeps_every_row(empty_database):
    cfg = alembic_config(empty_database)
    command.upgrade(cfg, "0001")
    engine = engine_for(empty_database)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table, rows in ROWS.items():
            connection.execute(metadata.tables[table].insert(), rows)

    command.upgrade(cfg, "head")

    after = sa.MetaData()
    after.reflect(engine)
    with engine.connect() as connection:
        for table, rows in ROWS.items():
            stored = connection.execute(sa.select(after.tables[table])).mappings().all()
            assert len(stored) == len(rows), table
            for column, value in rows[0].items():
                assert _same(stored[0][column], value), (table, column, stored[0][column], value)
        # New columns got their defaults for the old rows.
        task = connection.execute(sa.text("SELECT priority FROM human_task")).one()
        assert task.priority == 0
        user = connection.execute(sa.text('SELECT session_generation FROM "user"')).one()
        assert user.session_generation == 0


def _same(got, expected) -> bool:
    if isinstance(expected, datetime):
        got = got if got.tzinfo else got.replace(tzinfo=UTC)
    if isinstance(expected, dict) and isinstance(got, str):
        got = json.loads(got)
    return got == expected
