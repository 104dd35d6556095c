"""Authentication and accounts (security review, issue 19): safe redirects
after login, sessions that really end, login throttling kept in the app
database, what admins may do, and tasks that follow a role change.

Each test uses its own accounts and client addresses, so lockouts and
logouts here never reach the demo users other tests log in as."""

import itertools
import time
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts
from serviceplus.models.tables import AuditEvent, HumanTask, Organisation, Role, TaskStatus, User
from serviceplus.settings import get_settings
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
    from serviceplus.webui.redirects import safe_next

    assert safe_next(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", ["/", "/inbox?status=open&page=2", "/cases/ABH-MD-2026-1#x"])
def test_safe_next_keeps_local_paths(target):
    from serviceplus.webui.redirects import safe_next

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


# --- 2. sessions ----------------------------------------------------------------


def test_logout_ends_a_copied_session(app):
    client = logged_in(app, new_user())
    thief = client_from(app)
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get("/inbox").status_code == 200
    client.post("/logout")
    assert client.get("/inbox").status_code == 302
    response = thief.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def _age_session(client, **ages: timedelta) -> None:
    with client.session_transaction() as session:
        for key, age in ages.items():
            session[key] = (clock.now() - age).timestamp()


def _expired(client) -> bool:
    response = client.get("/inbox", follow_redirects=True)
    return "Ihre Sitzung ist abgelaufen" in response.get_data(as_text=True)


def test_idle_session_expires_after_30_minutes(app):
    assert get_settings().session_idle_timeout == timedelta(minutes=30)
    client = logged_in(app, new_user())
    _age_session(client, seen_at=timedelta(minutes=29))
    assert client.get("/inbox").status_code == 200
    _age_session(client, seen_at=timedelta(minutes=31))
    assert _expired(client)
    assert client.get("/inbox").status_code == 302  # stays logged out


def test_a_live_page_polling_by_itself_does_not_keep_the_session_alive(app):
    client = logged_in(app, new_user())
    _age_session(client, seen_at=timedelta(minutes=29))
    assert client.get("/inbox/live", headers={"HX-Request": "true"}).status_code in (200, 204)
    _age_session(client)  # nothing changed: the poll did not count as work
    with client.session_transaction() as session:
        idle = clock.now().timestamp() - session["seen_at"]
    assert idle > 28 * 60
    _age_session(client, seen_at=timedelta(minutes=31))
    assert _expired(client)


def test_session_expires_8_hours_after_login_even_when_busy(app):
    assert get_settings().session_absolute_timeout == timedelta(hours=8)
    client = logged_in(app, new_user())
    _age_session(client, login_at=timedelta(hours=7, minutes=59))
    assert client.get("/inbox").status_code == 200
    _age_session(client, login_at=timedelta(hours=8, minutes=1))
    assert _expired(client)


def test_password_change_ends_every_session(app):
    username = new_user()
    first, second = logged_in(app, username), logged_in(app, username)
    with session_scope() as session:
        user = accounts.get_user(session, username)
        with pytest.raises(accounts.AccountError, match="mindestens 12 Zeichen"):
            accounts.set_password(session, user=user, password="kurz", by=username)
        accounts.set_password(session, user=user, password="ein-neues-passwort", by=username)
    assert first.get("/inbox").status_code == 302
    assert second.get("/inbox").status_code == 302
    assert log_in(client_from(app), username).status_code == 200  # old password
    assert log_in(client_from(app), username, "ein-neues-passwort").status_code == 302
    assert any(username in d for d in audit_details("password_changed"))


# --- 3. login throttling ----------------------------------------------------------


def test_five_failures_lock_the_account_for_that_address_only(app):
    username = new_user()
    guesser = client_from(app)
    for _ in range(5):
        assert log_in(guesser, username, "falsch").status_code == 200
    locked = log_in(guesser, username)  # even the right password
    assert locked.status_code == 429
    assert "Zu viele fehlgeschlagene Anmeldeversuche" in locked.get_data(as_text=True)
    assert "Retry-After" in locked.headers
    # Another account from the same address is not locked out.
    assert log_in(guesser, new_user()).status_code == 302
    # The owner, from another address, still gets in.
    assert log_in(client_from(app), username).status_code == 302
    assert any(username in d for d in audit_details("login_locked"))


def test_lock_delay_doubles_with_each_further_failure_and_is_capped(database):
    from serviceplus.models.services import throttle

    username, address = new_user(), "10.19.200.1"
    start = clock.now()
    with session_scope() as session:
        for i in range(5):
            throttle.record_failure(session, username, address, now=start + timedelta(seconds=i))
    last = start + timedelta(seconds=4)
    with session_scope() as session:
        assert throttle.wait_for(session, username, address, now=last) == timedelta(minutes=1)
        assert throttle.wait_for(session, "someone.else", address, now=last) == timedelta(0)
        assert throttle.wait_for(session, username, "10.19.200.2", now=last) == timedelta(0)
        later = last + timedelta(minutes=1)
        assert throttle.wait_for(session, username, address, now=later) == timedelta(0)
        throttle.record_failure(session, username, address, now=later)
        assert throttle.wait_for(session, username, address, now=later) == timedelta(minutes=2)
        for _ in range(10):
            throttle.record_failure(session, username, address, now=later)
        assert throttle.wait_for(session, username, address, now=later) == timedelta(minutes=15)


def test_thirty_failures_from_one_address_refuse_every_user_name(app):
    address, username = next(_addresses), new_user()
    for i in range(30):
        response = log_in(client_from(app, address), f"niemand.{uuid.uuid4().hex[:6]}", "x")
        assert response.status_code == 200, i
    refused = log_in(client_from(app, address), username)
    assert refused.status_code == 429
    assert "Zu viele fehlgeschlagene Anmeldeversuche" in refused.get_data(as_text=True)
    assert any(address in d for d in audit_details("login_locked"))
    assert log_in(client_from(app), username).status_code == 302  # other addresses go on


def test_guesses_from_many_addresses_slow_the_account_but_never_lock_it(app, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_account_limit", 10)
    monkeypatch.setattr(get_settings(), "login_account_delay", timedelta(seconds=0.5))
    username = new_user()
    for _ in range(12):
        assert log_in(client_from(app), username, "falsch").status_code == 200
    started = time.monotonic()
    assert log_in(client_from(app), username).status_code == 302
    assert time.monotonic() - started >= 0.5


# --- 5. what admins may do ------------------------------------------------------


def test_admin_creates_users_only_in_own_organisation(app):
    admin = logged_in(app, new_user(Role.admin, "abh-md"))
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "Ausländerbehörde Halle" not in page and "sb.halle" not in page
    foreign = f"t.{uuid.uuid4().hex[:10]}"
    form = {"username": foreign, "full_name": "F", "role": "clerk", "password": PASSWORD}
    admin.post("/admin/users", data={**form, "organisation": "abh-hal"})
    assert user_row(foreign) is None
    admin.post("/admin/users", data=form)
    with session_scope() as session:
        created = accounts.get_user(session, foreign)
        assert session.get(Organisation, created.organisation_id).slug == "abh-md"


def test_admin_cannot_change_users_of_another_organisation(app):
    admin = logged_in(app, new_user(Role.admin, "abh-md"))
    halle = user_row(new_user(Role.clerk, "abh-hal"))
    changed = admin.post(f"/admin/users/{halle.id}/role", data={"role": "coordinator"})
    assert changed.status_code == 404
    assert admin.post(f"/admin/users/{halle.id}/deactivate").status_code == 404
    after = user_row(halle.username)
    assert (after.role, after.active) == (Role.clerk, True)


def test_admin_cannot_change_own_role(app):
    username = new_user(Role.admin)
    admin = logged_in(app, username)
    admin.post(f"/admin/users/{user_row(username).id}/role", data={"role": "clerk"})
    assert user_row(username).role == Role.admin
    assert "nicht selbst" in admin.get("/admin/users").get_data(as_text=True)


def test_admin_reads_no_case_data(app):
    case = make_case(example=BLUE_CARD, start=False)
    admin = logged_in(app, new_user(Role.admin))
    assert admin.get("/inbox").status_code == 403
    assert admin.get(f"/cases/{case.reference}").status_code == 403
    assert admin.get("/cases/").status_code == 403


# --- 7. role change releases claimed tasks ----------------------------------------


def test_role_change_returns_claimed_tasks_to_the_group(app):
    clerk = new_user(Role.clerk)
    case = make_case(example=BLUE_CARD, start=False)
    with session_scope() as session:
        task = HumanTask(
            case_id=case.id,
            step_key="decision",
            attempt=1,
            title="Entscheidung",
            organisation_id=case.organisation_id,
            role=Role.clerk,
            status=TaskStatus.claimed,
            assignee=clerk,
            flow_run_id="none",
        )
        session.add(task)
    admin = logged_in(app, new_user(Role.admin))
    admin.post(f"/admin/users/{user_row(clerk).id}/role", data={"role": "coordinator"})
    assert user_row(clerk).role == Role.coordinator
    with session_scope() as session:
        task = session.exec(select(HumanTask).where(HumanTask.id == task.id)).one()
        assert (task.status, task.assignee) == (TaskStatus.open, None)
    assert any(clerk in d and "1 Aufgabe(n)" in d for d in audit_details("user_role_changed"))


def test_every_user_changes_their_own_password_and_all_sessions_end(app):
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import accounts

    with session_scope() as session:
        accounts.create_user(
            session,
            username="pw.wechsel",
            full_name="Paula Wechsel",
            role="clerk",
            org_slug="abh-md",
            password="altes-passwort-123",
            by="test",
        )
    client, other = app.test_client(), app.test_client()
    for c in (client, other):
        login = c.post("/login", data={"username": "pw.wechsel", "password": "altes-passwort-123"})
        assert login.status_code == 302

    def change(current, new, repeat):
        data = {"current": current, "new": new, "repeat": repeat}
        return client.post("/password", data=data)

    assert "bisherige Passwort ist falsch" in change("falsch", "x" * 12, "x" * 12).text
    assert "mindestens 12 Zeichen" in change("altes-passwort-123", "kurz", "kurz").text
    assert "stimmen nicht überein" in change("altes-passwort-123", "a" * 12, "b" * 12).text
    done = change("altes-passwort-123", "neues-passwort-456", "neues-passwort-456")
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert other.get("/inbox").status_code == 302  # the other session ended too
    again = app.test_client().post(
        "/login", data={"username": "pw.wechsel", "password": "neues-passwort-456"}
    )
    assert again.status_code == 302


def test_wrong_current_password_changes_nothing(app):
    username = new_user()
    client, other = logged_in(app, username), logged_in(app, username)
    before = user_row(username)
    for current in ("falsch-falsch-falsch", ""):
        data = {"current": current, "new": "neues-passwort-456", "repeat": "neues-passwort-456"}
        response = client.post("/password", data=data)
        assert response.status_code == 200 and "Passwort" in response.text
    after = user_row(username)
    assert after.password_hash == before.password_hash
    assert after.session_generation == before.session_generation
    assert other.get("/inbox").status_code == 200  # no session ended
    assert not any(username in d for d in audit_details("password_changed"))
    assert log_in(client_from(app), username).status_code == 302  # the old one still works
    same = {"current": PASSWORD, "new": PASSWORD, "repeat": PASSWORD}
    assert "vom bisherigen unterscheiden" in client.post("/password", data=same).text
    assert user_row(username).password_hash == before.password_hash


def test_admin_resets_a_password_of_their_own_organisation_only(app):
    clerk = new_user(Role.clerk, "abh-md")
    clerk_session = logged_in(app, clerk)
    foreign_admin = logged_in(app, new_user(Role.admin, "abh-hal"))
    before = user_row(clerk)
    refused = foreign_admin.post(f"/admin/users/{before.id}/password")
    assert refused.status_code == 404
    assert user_row(clerk).password_hash == before.password_hash
    assert clerk_session.get("/inbox").status_code == 200

    own_admin_name = new_user(Role.admin, "abh-md")
    own_admin = logged_in(app, own_admin_name)
    self_reset = own_admin.post(f"/admin/users/{user_row(own_admin_name).id}/password")
    assert "„Passwort ändern“" in own_admin.get(self_reset.headers["Location"]).text
    shown = own_admin.post(f"/admin/users/{before.id}/password")
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    temporary = shown.text.split('id="temporary-password">')[1].split("<")[0]
    assert len(temporary) >= accounts.MIN_PASSWORD_LENGTH
    assert temporary not in own_admin.get("/admin/users").text  # shown once only
    assert user_row(clerk).must_change_password
    assert clerk_session.get("/inbox").status_code == 302  # their sessions ended
    assert log_in(client_from(app), clerk).status_code == 200  # old password gone
    assert [d for d in audit_details("password_reset") if d == clerk] == [clerk]

    client = client_from(app)
    assert log_in(client, clerk, temporary).status_code == 302
    forced = client.get("/inbox")
    assert forced.status_code == 302 and forced.headers["Location"].endswith("/password")
    assert "vorläufige Passwort" in client.get("/password").text
    data = {"current": temporary, "new": "mein-eigenes-passwort", "repeat": "mein-eigenes-passwort"}
    assert client.post("/password", data=data).headers["Location"].endswith("/login")
    assert not user_row(clerk).must_change_password
    fresh = client_from(app)
    assert log_in(fresh, clerk, "mein-eigenes-passwort").status_code == 302
    assert fresh.get("/inbox").status_code == 200


def test_a_temporary_password_expires(app):
    from datetime import timedelta

    from serviceplus.models import clock

    clerk, admin = new_user(Role.clerk, "abh-md"), new_user(Role.admin, "abh-md")
    with session_scope() as session:
        user = accounts.get_user(session, clerk)
        temporary = accounts.reset_password(
            session, user=user, admin=accounts.get_user(session, admin)
        )
        until = user.temporary_password_until
    assert until - clock.now() > timedelta(days=accounts.TEMPORARY_PASSWORD_DAYS - 1)
    with session_scope() as session:
        user = accounts.get_user(session, clerk)
        user.temporary_password_until = clock.now() - timedelta(minutes=1)
        session.add(user)
    client = client_from(app)
    refused = log_in(client, clerk, temporary)
    assert refused.status_code == 200
    assert "Ihr vorläufiges Passwort ist abgelaufen" in refused.text
    assert client.get("/inbox").status_code == 302  # no session


def test_reset_password_service_refuses_another_organisation():
    clerk, foreign = new_user(Role.clerk, "abh-md"), new_user(Role.admin, "abh-hal")
    with session_scope() as session:
        user, admin = accounts.get_user(session, clerk), accounts.get_user(session, foreign)
        with pytest.raises(accounts.AccountError, match="eigenen Organisation"):
            accounts.reset_password(session, user=user, admin=admin)
    assert not user_row(clerk).must_change_password
