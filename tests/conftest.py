"""Test session: one data directory, one app database and one real Prefect
server for the whole session (starting a server costs ~10 s)."""

import os
import tempfile
from pathlib import Path

from serviceplus.stack import free_port

# Before anything imports Prefect or reads the settings.
DATA_DIR = Path(tempfile.mkdtemp(prefix="serviceplus-test-"))
os.environ.update(
    {
        "SERVICEPLUS_DEMO": "1",
        "SERVICEPLUS_DATA_DIR": str(DATA_DIR),
        "SERVICEPLUS_PREFECT_PORT": str(free_port()),
        "SERVICEPLUS_WEB_PORT": str(free_port()),
        "SERVICEPLUS_DEPLOYMENT": "case-flow/inprocess",
    }
)
for name in ("DATABASE_URL", "PREFECT_API_URL", "SERVICEPLUS_DATABASE_URL"):
    os.environ.pop(name, None)

# `SERVICEPLUS_TEST_DATABASE=postgresql` (the second pass of `make test`): the
# app database and the Prefect server both on fresh PostgreSQL databases.
PG_DATABASES: list[str] = []
if os.environ.get("SERVICEPLUS_TEST_DATABASE") == "postgresql":
    import psycopg

    PG = os.environ.get("SERVICEPLUS_TEST_PG", "postgres@127.0.0.1:5432")
    PG_DATABASES = [f"serviceplus_test_{os.getpid()}", f"serviceplus_test_{os.getpid()}_prefect"]
    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as connection:
        for name in PG_DATABASES:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"postgresql+psycopg://{PG}/{PG_DATABASES[0]}"
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
        f"postgresql+asyncpg://{PG}/{PG_DATABASES[1]}"
    )

from serviceplus.settings import apply_prefect_env, get_settings  # noqa: E402

apply_prefect_env()

import pytest  # noqa: E402

from serviceplus.models.db import migrate, session_scope  # noqa: E402
from serviceplus.models.services import accounts, versions  # noqa: E402
from serviceplus.stack import Stack  # noqa: E402
from tests.helpers import active_version  # noqa: E402


def pytest_report_header(config):
    from serviceplus.settings import get_settings

    return f"app database: {get_settings().database_url.split('@')[-1]}"


@pytest.fixture(scope="session")
def database():
    migrate()
    with session_scope() as session:
        versions.install_shipped(session)
        accounts.seed_demo_accounts(session)
    return get_settings().database_url


@pytest.fixture(scope="session")
def prefect_server(database):
    stack = Stack(get_settings(), web=False, log_dir=DATA_DIR / "logs")
    stack.start_server()
    yield stack
    stack.stop()
    _drop_pg_databases()


def _drop_pg_databases() -> None:
    if not PG_DATABASES:
        return
    import psycopg

    from serviceplus.models.db import get_engine

    get_engine().dispose()
    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as connection:
        for name in PG_DATABASES:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def inprocess_deployment(prefect_server):
    """A deployment without a work pool: runs are executed by the test itself."""
    from serviceplus.flows.case_flow import case_flow

    case_flow.to_deployment(name="inprocess").apply()
    return "case-flow/inprocess"


# Test modules that follow an earlier version's path pin it for the module
# (`pytestmark = pytest.mark.usefixtures("on_version_2")`); version 3, the
# active one after `serviceplus init`, starts with the agreement.
@pytest.fixture(scope="module")
def on_version_1(database):
    with active_version(1):
        yield


@pytest.fixture(scope="module")
def on_version_2(database):
    with active_version(2):
        yield


@pytest.fixture(scope="session")
def app(database):
    from serviceplus.webui import create_app

    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def login(app):
    """login(username) -> a test client logged in as that demo user."""

    def _login(username: str):
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": "demo"})
        assert response.status_code == 302, f"login of {username} failed"
        return client

    return _login
