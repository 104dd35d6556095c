"""Authentication and accounts (security review, issue 19): safe redirects
after login, sessions that really end, login throttling kept in the app
database, what admins may do, and tasks that follow a role change.

Each test uses its own accounts and client addresses, so lockouts and
logouts here never reach the demo users other tests log in as."""

import itertools
import uuid

import pytest
from sqlmodel import select

from models import accounts
from models.db import session_scope
from models.tables import AuditEvent, Role, User
from tests.helpers import BLUE_CARD, make_case

PASSWORD = "ein-langes-passwort"
_addresses = (f"10.19.{i // 250}.{i % 250 + 1}" for i in itertools.count())


def new_user(role: Role = Role.clerk, org: str = "abh-md") -> str:
    username = f"t.{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        accounts.create_user(
            session,
            username=username,
            full_name="Test Person",
            role=role,
            org_slug=org,
            password=PASSWORD,
            by="test",
        )
    return username


def client_from(app, address: str | None = None):
    """A test client whose requests come from its own address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or next(_addresses)
    return client


def log_in(client, username: str, password: str = PASSWORD, url: str = "/login"):
    return client.post(url, data={"username": username, "password": password})


def logged_in(app, username: str):
    client = client_from(app)
    assert log_in(client, username).status_code == 302
    return client


def user_row(username: str) -> User:
    with session_scope() as session:
        return accounts.get_user(session, username)


def audit_details(action: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEvent.detail).where(AuditEvent.action == action)
        return list(session.exec(query))


# --- 1. open redirect ----------------------------------------------------------

BAD_TARGETS = [
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
    None,
]


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_safe_next_refuses_other_sites(target):
    from webui.redirects import safe_next

    assert safe_next(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", ["/", "/inbox?status=open&page=2", "/cases/ABH-MD-2026-1#x"])
def test_safe_next_keeps_local_paths(target):
    from webui.redirects import safe_next

    assert safe_next(target, "/fallback") == target


def test_login_next_with_a_tab_stays_on_the_site(app):
    username = new_user()
    response = log_in(client_from(app), username, url="/login?next=/%09/evil.example")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    response = log_in(client_from(app), username, url="/login?next=/cases/")
    assert response.headers["Location"] == "/cases/"


def test_upload_next_with_a_tab_stays_on_the_site(app):
    case = make_case(example=BLUE_CARD, start=False)
    client = logged_in(app, new_user())
    response = client.post(
        f"/cases/{case.reference}/documents",
        data={"kind": "attachment", "next": "/\t/evil.example"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/cases/{case.reference}"
