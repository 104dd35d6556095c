"""Engine, sessions and schema migrations."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session, create_engine

from serviceplus.settings import PROJECT_ROOT, get_settings

MIGRATIONS = PROJECT_ROOT / "models" / "migrations"


@lru_cache
def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web UI read while a worker writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# A database that was away for a moment (restarted, connections dropped,
# SQLite busy past its timeout): the same work, tried again, may well pass.
TRANSIENT_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)
# Prefect keeps a failed run's exception only as text in its state message.
TRANSIENT_ERROR_NAMES = re.compile(rf"\b({'|'.join(e.__name__ for e in TRANSIENT_ERRORS)})\b")


def is_transient(error: BaseException | None) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def get_engine() -> sa.Engine:
    return engine_for(get_settings().database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str | None = None):
    from alembic.config import Config  # only needed by `serviceplus init` and tests

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().database_url)
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest migration (creates the database file)."""
    settings = get_settings()
    from alembic import command

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
