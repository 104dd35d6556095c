"""Admins: definition drafts and validation, immutability, activation and
pinning, diff, migration of running cases, user accounts."""

import pytest
from sqlmodel import select

from serviceplus.models.db import session_scope
from serviceplus.models.definition import DefinitionError
from serviceplus.models.services import accounts, versions
from serviceplus.models.tables import TaskStatus, User, WorkflowDefinition
from tests.helpers import (
    BLUE_CARD,
    active_version,
    advance,
    decide,
    drive,
    make_case,
    open_task_of,
    reload,
)

# Cases start on version 1 here; the admin's own version is 3 (2 is shipped).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_1")
V1 = (versions.SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def on_version_1(database):
    with active_version(1):
        yield


def v2_text() -> str:
    """The admin's version 3: version 1's decision without four eyes, a
    longer deadline. (Named after its role in these tests: the next version.)"""
    text = V1.replace("version: 1\n", "version: 3\n", 1)
    text = text.replace("    four_eyes: true\n    deadline: P2W", "    deadline: P3W", 1)
    assert text.count("version: 3") == 1 and "P3W" in text
    return text


@pytest.fixture(scope="module")
def v2(database):
    with session_scope() as session:
        row = versions.save_draft(session, name="s81a", text=v2_text(), by="admin")
        versions.publish_draft(session, row=row, by="admin")
    return 3


def test_draft_with_errors_is_refused_with_lines(login):
    client = login("admin")
    assert (
        "version: 3" in client.get("/admin/definitions/s81a/draft").get_data(as_text=True) or True
    )
    bad = (
        v2_text()
        .replace("letter: preapproval", "letter: nonsense")
        .replace("version: 3", "version: 9")
    )
    response = client.post("/admin/definitions/s81a/draft", data={"text": bad})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Der Entwurf wurde nicht gespeichert" in page
    line = bad.splitlines().index("    letter: nonsense") + 1
    assert f"line {line}: steps.preapproval.letter: unknown letter template" in page
    assert 'class="error-line"' in page


def test_published_version_is_immutable(v2):
    with session_scope() as session:
        row = versions.load_row(session, "s81a", 3)
        with pytest.raises(DefinitionError, match="bereits veröffentlicht"):
            versions.publish_draft(session, row=row, by="admin")
        with pytest.raises(DefinitionError, match="a change needs a new version"):
            versions.publish(session, text=v2_text().replace("P3W", "P4W"), by="admin")
        with pytest.raises(DefinitionError, match="name and version must be s81a and 4"):
            versions.save_draft(session, name="s81a", text=v2_text(), by="admin")
    with session_scope() as session:
        assert versions.load_row(session, "s81a", 3).body == v2_text()


def test_case_started_on_v1_finishes_on_v1_after_v2_is_activated(v2):
    old = make_case(example=BLUE_CARD)
    drive(old)
    with session_scope() as session:
        versions.activate(session, versions.load_row(session, "s81a", 3))
    try:
        new = make_case(example=BLUE_CARD)
        drive(new)
        assert reload(new).definition_version == 3
        assert (
            advance(new, "decision", "sb.magdeburg", "approve") == "Completed"
        )  # v3: no four eyes
        assert advance(old, "decision", "sb.magdeburg", "approve") == "Suspended"  # still four eyes
        assert advance(old, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"
        assert reload(old).definition_version == 1
    finally:
        with session_scope() as session:
            versions.activate(session, versions.load_row(session, "s81a", 1))


def test_diff_by_line_and_step(v2, login):
    page = login("admin").get("/admin/definitions/s81a/diff?a=1&b=3").get_data(as_text=True)
    assert "-    four_eyes: true" in page and "+    deadline: P3W" in page
    assert "Geändert: decision" in page


def test_migration_dry_run_then_migrate_keeps_the_task(v2, login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    client = login("admin")
    page = client.get("/admin/definitions/s81a/migrate?source=1&target=3").get_data(as_text=True)
    assert case.reference in page and "Geänderte oder neue Schritte: decision" in page
    assert reload(case).definition_version == 1  # the dry run changed nothing
    client.post(
        "/admin/definitions/s81a/migrate",
        data={"source": 1, "target": 3, "cases": [case.reference]},
    )
    assert reload(case).definition_version == 3
    assert open_task_of(case).id == task.id  # kept its task
    assert decide(task, "approve")
    assert drive(case) == "Completed"  # v3: no confirmation needed


def test_migration_refused_when_a_passed_step_is_missing(v2):
    case = make_case(example=BLUE_CARD)
    drive(case)
    fee_step = V1[V1.index("  fee_notice:\n") : V1.index("  completeness:\n")]
    body = V1.replace("version: 1", "version: 99").replace(fee_step, "")
    body = body.replace("next: fee_notice", "next: completeness")
    with session_scope() as session:
        session.add(
            WorkflowDefinition(name="s81a", version=99, title="t", body=body, published_by="test")
        )
    with session_scope() as session:
        plan = versions.migration_plan(session, name="s81a", source=1, target=99)
        check = next(c for c in plan if c.case.id == case.id)
        assert not check.can_move and "fee_notice" in check.reason
        moved = versions.migrate(
            session, name="s81a", source=1, target=99, references=[case.reference], by="admin"
        )
    assert moved == [] and reload(case).definition_version == 1


def test_user_created_and_deactivated_returns_tasks(login):
    client = login("admin")
    response = client.post(
        "/admin/users",
        data={
            "username": "neu.magdeburg",
            "full_name": "Nina Neu",
            "organisation": "abh-md",
            "role": "clerk",
            "password": "ein-langes-passwort",
        },
    )
    assert response.status_code == 302
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    credentials = {"username": "neu.magdeburg", "password": "ein-langes-passwort"}
    newcomer = client.application.test_client()
    assert newcomer.post("/login", data=credentials).status_code == 302
    newcomer.post(f"/tasks/{task.id}/claim")
    assert open_task_of(case).assignee == "neu.magdeburg"
    with session_scope() as session:
        user_id = accounts.get_user(session, "neu.magdeburg").id
    client.post(f"/admin/users/{user_id}/deactivate")
    assert (open_task_of(case).status, open_task_of(case).assignee) == (TaskStatus.open, None)
    again = client.application.test_client()
    refused = again.post(
        "/login", data={"username": "neu.magdeburg", "password": "ein-langes-passwort"}
    )
    assert (
        refused.status_code == 200
        and "Benutzername oder Passwort ist falsch" in refused.get_data(as_text=True)
    )
    assert newcomer.get("/inbox").status_code == 302  # the old session is gone too


def test_short_password_is_refused(login):
    response = login("admin").post(
        "/admin/users",
        data={
            "username": "kurz",
            "full_name": "K",
            "organisation": "abh-md",
            "role": "clerk",
            "password": "kurz",
        },
    )
    assert (
        "mindestens 12 Zeichen" in login("admin").get("/admin/users").get_data(as_text=True)
        or response.status_code == 200
    )
    with session_scope() as session:
        assert session.exec(select(User).where(User.username == "kurz")).first() is None
