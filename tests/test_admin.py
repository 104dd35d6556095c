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
    advance,
    decide,
    drive,
    make_case,
    open_task_of,
    reload,
)

# Cases start on version 1 here; the admin's own version is 4 (2 and 3 are shipped).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_1")
V1 = (versions.SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")


def v2_text() -> str:
    """The admin's version 4: version 1's decision without four eyes, a
    longer deadline. (Named after its role in these tests: the next version.)"""
    text = V1.replace("version: 1\n", "version: 4\n", 1)
    text = text.replace("    four_eyes: true\n    deadline: P2W", "    deadline: P3W", 1)
    assert text.count("version: 4") == 1 and "P3W" in text
    return text


@pytest.fixture(scope="module")
def v2(database):
    with session_scope() as session:
        row = versions.save_draft(session, name="s81a", text=v2_text(), by="admin")
        versions.publish_draft(session, row=row, by="admin")
    return 4


def test_draft_with_errors_is_refused_with_lines(login):
    client = login("admin")
    assert (
        "version: 4" in client.get("/admin/definitions/s81a/draft").get_data(as_text=True) or True
    )
    bad = (
        v2_text()
        .replace("letter: preapproval", "letter: nonsense")
        .replace("version: 4", "version: 9")
    )
    response = client.post("/admin/definitions/s81a/draft", data={"text": bad})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Der Entwurf wurde nicht gespeichert" in page
    line = bad.splitlines().index("    letter: nonsense") + 1
    assert (
        f'<a href="#line-{line}">Zeile {line}</a>: Schritt „preapproval“ › letter: '
        "Unbekannte Briefvorlage „nonsense“." in page
    )
    assert f'<span id="line-{line}" class="error-line">{line}</span>' in page
    assert "unknown letter template" not in page


def _problems(text: str):
    from serviceplus.models.definition import parse_definition
    from serviceplus.models.services import definition_messages

    with pytest.raises(DefinitionError) as caught:
        parse_definition(text)
    return definition_messages.problems(text, caught.value)


def test_one_unknown_step_is_one_german_error():
    typo = V1.replace("next: fee_notice", "next: fee_notise")
    line = typo.splitlines().index("    next: fee_notise") + 1
    assert [(p.line, p.message) for p in _problems(typo)] == [
        (line, "Weg zu einem Schritt „fee_notise“, den es nicht gibt.")
    ]  # the checker itself also reports every step after it as unreachable


def test_yaml_and_field_errors_in_german_with_their_line():
    colon = V1.replace("title: Eingang bestätigen", "title: Eingang: bestätigen")
    line = colon.splitlines().index("    title: Eingang: bestätigen") + 1
    (problem,) = _problems(colon)
    assert problem.line == line and problem.message.startswith("Doppelpunkt an unerwarteter")
    misspelt = V1.replace("    title: Eingang bestätigen", "    titel: Eingang bestätigen")
    (problem,) = _problems(misspelt)  # not also "title missing"
    assert problem.message == "Unbekannter Eintrag „titel“ – gemeint ist wohl „title“."
    kind = V1.replace("kind: human", "kind: humane", 1)
    assert _problems(kind)[0].message == "Erlaubt ist: „auto“, „human“ oder „end“."


def test_published_version_is_immutable(v2):
    with session_scope() as session:
        row = versions.load_row(session, "s81a", 4)
        with pytest.raises(DefinitionError, match="bereits veröffentlicht"):
            versions.publish_draft(session, row=row, by="admin")
        with pytest.raises(DefinitionError, match="a change needs a new version"):
            versions.publish(session, text=v2_text().replace("P3W", "P4W"), by="admin")
        with pytest.raises(DefinitionError, match="name and version must be s81a and 5"):
            versions.save_draft(session, name="s81a", text=v2_text(), by="admin")
    with session_scope() as session:
        assert versions.load_row(session, "s81a", 4).body == v2_text()


def test_case_started_on_v1_finishes_on_v1_after_v2_is_activated(v2):
    old = make_case(example=BLUE_CARD)
    drive(old)
    with session_scope() as session:
        versions.activate(session, versions.load_row(session, "s81a", 4))
    try:
        new = make_case(example=BLUE_CARD)
        drive(new)
        assert reload(new).definition_version == 4
        assert (
            advance(new, "decision", "sb.magdeburg", "approve") == "Completed"
        )  # v4: no four eyes
        assert advance(old, "decision", "sb.magdeburg", "approve") == "Suspended"  # still four eyes
        assert advance(old, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"
        assert reload(old).definition_version == 1
    finally:
        with session_scope() as session:
            versions.activate(session, versions.load_row(session, "s81a", 1))


def test_diff_by_line_and_step(v2, login):
    page = login("admin").get("/admin/definitions/s81a/diff?a=1&b=4").get_data(as_text=True)
    assert "-    four_eyes: true" in page and "+    deadline: P3W" in page
    title = "Schritt „Entscheidung über die Vorabzustimmung“"
    assert f"{title}: Frist 2 Wochen → 3 Wochen" in page
    assert f"{title}: Vier-Augen-Prinzip ja → nein" in page


def test_diff_in_words_names_fee_threshold_and_documents():
    from serviceplus.models.definition import parse_definition

    changed = (
        V1.replace("fee_eur: 411", "fee_eur: 450")
        .replace("2026: 50700", "2026: 51000")
        .replace("version: 1", "version: 2")
    )
    described = versions.describe_changes(parse_definition(V1), parse_definition(changed))
    assert described == [
        "Gebühr: 411 € → 450 €",
        "Schwellenwert „blue_card_salary“ 2026: 50.700 → 51.000",
    ]


def test_migration_dry_run_then_migrate_keeps_the_task(v2, login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    client = login("admin")
    page = client.get("/admin/definitions/s81a/migrate?source=1&target=4").get_data(as_text=True)
    changed = "Geänderte oder neue Schritte: Entscheidung über die Vorabzustimmung"
    assert case.reference in page and changed in page
    assert reload(case).definition_version == 1  # the dry run changed nothing
    client.post(
        "/admin/definitions/s81a/migrate",
        data={"source": 1, "target": 4, "cases": [case.reference]},
    )
    assert reload(case).definition_version == 4
    assert open_task_of(case).id == task.id  # kept its task
    assert decide(task, "approve")
    assert drive(case) == "Completed"  # v4: no confirmation needed


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
        assert not check.can_move and "Vereinbarung und Gebührenbescheid" in check.reason
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


def _draft_of_next_version(client) -> int:
    with session_scope() as session:
        draft = session.exec(
            select(WorkflowDefinition).where(
                WorkflowDefinition.name == "s81a", WorkflowDefinition.published_at.is_(None)
            )
        ).first()  # an earlier test may have left one: a name has one draft at most
        number = draft.version if draft else versions.next_version(session, "s81a")
    text = V1.replace("version: 1\n", f"version: {number}\n", 1)
    response = client.post("/admin/definitions/s81a/draft", data={"text": text})
    assert response.status_code == 302
    return number


def test_publish_and_activate_ask_first_and_list_their_effect(v2, login):
    client = login("admin")
    number = _draft_of_next_version(client)
    url = f"/admin/definitions/s81a/{number}"
    asked = client.post(f"{url}/publish")
    assert asked.status_code == 200 and "wird unveränderlich" in asked.get_data(as_text=True)
    with session_scope() as session:
        assert versions.load_row(session, "s81a", number).published_at is None
    client.post(f"{url}/publish", data={"confirmed": "yes"})
    asked = client.post(f"{url}/activate").get_data(as_text=True)
    assert "Alle neuen Fälle folgen ab sofort" in asked and "Ihrer Behörde" in asked
    with session_scope() as session:
        row = versions.load_row(session, "s81a", number)
        assert row.published_at is not None and not row.active
    client.post(f"{url}/activate", data={"confirmed": "yes"})
    with session_scope() as session:
        assert versions.load_row(session, "s81a", number).active
        versions.activate(session, versions.load_row(session, "s81a", 1))


def _running_case(session, org_id: int, n: int, status: str = "waiting"):
    from datetime import date

    from serviceplus.models.tables import Case

    case = Case(
        reference=f"EFF-{org_id}-{n}",
        submission_key=f"eff-{org_id}-{n}",
        organisation_id=org_id,
        applicant_name="A",
        applicant_birth_date=date(1990, 1, 1),
        applicant_nationality="x",
        employer_name="E",
        employer_address="X",
        residence_purpose="18a",
        status=status,
        current_step="decision",
        definition_name="s81a",
        definition_version=1,
        created_by="t",
    )
    session.add(case)
    return case


def test_effect_and_migration_dry_run_only_over_the_own_authority(v2, login):
    from serviceplus.models.tables import Organisation, Role

    with session_scope() as session:
        own, other = (Organisation(slug=s, name=s, kind="abh") for s in ("abh-eff", "abh-eff2"))
        session.add_all([own, other])
        session.flush()
        _running_case(session, own.id, 1)
        _running_case(session, own.id, 2, status="running")
        _running_case(session, own.id, 3, status="completed")  # not running: not counted
        _running_case(session, other.id, 1)
        for username, role in (("admin.eff", Role.admin), ("netz.eff", Role.network)):
            session.add(
                User(
                    username=username,
                    full_name=username,
                    role=role,
                    organisation_id=own.id,
                    password_hash=accounts.hash_password("demo"),
                )
            )
        session.flush()
        row = versions.load_row(session, "s81a", 2)
        assert versions.effect_of(session, row, own.id) == versions.Effect({1: 2}, 2)
        assert versions.effect_of(session, row, other.id) == versions.Effect({1: 1}, 1)
        other_id, own_id = other.id, own.id
    page = login("admin").get("/admin/definitions/s81a/migrate?source=1&target=2")
    text = page.get_data(as_text=True)
    assert f"EFF-{other_id}-1" not in text and f"EFF-{own_id}-1" not in text
    assert "nur die Fälle Ihrer Behörde" in text
    # A network user in the admin's organisation widens nothing: any admin
    # could create one.
    text = login("admin.eff").get("/admin/definitions/s81a/migrate?source=1&target=2")
    text = text.get_data(as_text=True)
    assert f"EFF-{own_id}-2" in text and f"EFF-{other_id}-1" not in text
    moved = login("admin").post(
        "/admin/definitions/s81a/migrate",
        data={"source": 1, "target": 2, "cases": [f"EFF-{other_id}-1"]},
        follow_redirects=True,
    )
    assert "0 Fall/Fälle" in moved.get_data(as_text=True)  # another authority's: refused
