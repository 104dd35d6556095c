"""Hand-over between authorities (with a suspended flow run and an open
task), the employer's representative in letters and mail, and family
members joined to a principal's case (§ 81a Abs. 4 AufenthG)."""

import uuid
from datetime import date
from uuid import UUID

import pytest
from prefect import get_client
from sqlmodel import select

from serviceplus.models.conditions import Condition, Context, evaluate
from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, assignment, audit, cases, transfers
from serviceplus.models.services.completeness import facts_of_case
from serviceplus.models.tables import Document, HumanTask, Letter, Organisation, OutboxMail
from tests.helpers import (
    EXAMPLE,
    decide,
    drive,
    letter_text,
    make_case,
    open_task_of,
    other_writer_locked_out,
    reload,
)

# Written on version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


def org_id(slug: str) -> int:
    with session_scope() as session:
        return accounts.get_organisation(session, slug).id


def first_ids(case) -> tuple[int, int]:
    with session_scope() as session:
        doc = session.exec(select(Document).where(Document.case_id == case.id)).first()
        letter = session.exec(select(Letter).where(Letter.case_id == case.id)).first()
        return doc.id, letter.id


def status(client, url: str) -> int:
    with client.get(url) as response:  # downloads stream: close them
        return response.status_code


def actions(case) -> list[tuple[str, str]]:
    with session_scope() as session:
        return [(e.action, e.detail) for e in audit.events_for_case(session, case.id)]


def test_handover_calls_prefect_only_after_its_commit(login, monkeypatch):
    """The run's new tag is set after the hand-over is committed: Prefect's
    client retries a server that went away for about a minute, and inside
    the transaction that would lock SQLite for every other writer."""
    from serviceplus.models.services import orchestration

    case = make_case(kinds=["passport", "power_of_attorney"])
    assert drive(case) == "Suspended"
    locked_out = []
    retag = orchestration.retag_flow_run

    def retag_seen_from_outside(*args):
        locked_out.append(other_writer_locked_out())
        retag(*args)

    monkeypatch.setattr(orchestration, "retag_flow_run", retag_seen_from_outside)
    done = login("sb.magdeburg").post(
        f"/cases/{case.reference}/handover", data={"to": "abh-hal", "reason": "Wohnort Halle"}
    )
    assert done.status_code == 302 and reload(case).organisation_id == org_id("abh-hal")
    assert locked_out == [False]
    with get_client(sync_client=True) as client:
        assert "abh-hal" in client.read_flow_run(UUID(reload(case).flow_run_id)).tags

    # The command line's hand-over too (back to Magdeburg).
    from click.testing import CliRunner

    from serviceplus.cli import main

    args = ["case", "handover", case.reference, "--to", "abh-md", "--reason", "Umzug"]
    handed = CliRunner().invoke(main, [*args, "--as", "sb.halle"])
    assert handed.exit_code == 0, handed.output
    assert locked_out == [False, False]
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(UUID(reload(case).flow_run_id)).tags
    assert "abh-md" in tags and "abh-hal" not in tags


def test_handover_moves_the_case_its_open_task_and_all_access(login):
    case = make_case(kinds=["passport", "power_of_attorney"])  # incomplete: waits
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert task.step_key == "await_documents" and task.organisation_id == org_id("abh-md")
    with session_scope() as session:
        claimer = accounts.get_user(session, "sb.magdeburg")
        assignment.claim(session, task=session.get(HumanTask, task.id), user=claimer)
    doc_id, letter_id = first_ids(case)
    md, hal = login("sb.magdeburg"), login("sb.halle")
    ref = case.reference
    assert "An die zuständige Ausländerbehörde abgeben" in md.get(f"/cases/{ref}").text
    assert hal.get(f"/cases/{ref}").status_code == 404

    refused = md.post(f"/cases/{ref}/handover", data={"to": "abh-hal", "reason": ""})
    assert refused.status_code == 302 and reload(case).organisation_id == org_id("abh-md")
    assert "Bitte begründen Sie die Abgabe." in md.get(f"/cases/{ref}").text
    done = md.post(
        f"/cases/{ref}/handover",
        data={"to": "abh-hal", "reason": "Betriebsstätte liegt in Halle (Saale)"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/cases/")
    assert reload(case).organisation_id == org_id("abh-hal")
    with get_client(sync_client=True) as client:  # monitoring filters runs by this tag
        tags = client.read_flow_run(UUID(reload(case).flow_run_id)).tags
    assert "abh-hal" in tags and "abh-md" not in tags

    # The old authority: nothing left, neither pages nor downloads nor the task.
    for url in (
        f"/cases/{ref}",
        f"/cases/{ref}/documents/{doc_id}",
        f"/cases/{ref}/documents/{doc_id}/preview",
        f"/cases/{ref}/letters/{letter_id}",
        f"/tasks/{task.id}",
    ):
        assert status(md, url) == 404, url
    assert ref not in md.get("/cases/").text and ref not in md.get("/inbox").text
    # The new authority: the case with its documents, letters and history,
    # the task back in its group's inbox.
    assert status(hal, f"/cases/{ref}/letters/{letter_id}") == 200
    assert status(hal, f"/cases/{ref}/documents/{doc_id}") == 200
    assert ref in hal.get("/inbox").text
    moved = open_task_of(case)
    assert moved.id == task.id and moved.organisation_id == org_id("abh-hal")
    assert (moved.status, moved.assignee) == ("open", None)
    history = actions(case)
    assert (
        "case_handed_over",
        "von Ausländerbehörde Magdeburg (abh-md) an Ausländerbehörde "
        "Halle (Saale) (abh-hal), 1 offene Aufgaben: Betriebsstätte liegt in Halle (Saale)",
    ) in history
    assert any(a == "case_received" and "abh-md" in d for a, d in history)
    page = hal.get(f"/cases/{ref}").text
    assert "an andere Ausländerbehörde abgegeben" in page and "Fall angelegt" in page

    # The suspended run goes on; its next task is the new authority's.
    with pytest.raises(Exception, match="nicht an Sie gerichtet"):
        decide(moved, "received", username="sb.magdeburg")
    assert decide(moved, "received", username="sb.halle")
    assert drive(case) == "Suspended"
    again = open_task_of(case)
    assert (again.step_key, again.attempt) == ("await_documents", 2)
    assert again.organisation_id == org_id("abh-hal")
    with session_scope() as session:
        letters = session.exec(
            select(Letter).where(Letter.case_id == case.id, Letter.kind == "missing_documents")
        ).all()
    assert len(letters) == 2
    assert ref in hal.get("/inbox").text and ref not in md.get("/inbox").text


def test_handover_is_refused_to_others_and_for_closed_cases():
    case = make_case(start=False)
    with session_scope() as session, pytest.raises(transfers.TransferError):
        row = session.get(cases.Case, case.id)
        transfers.hand_over(
            session, case=row, user=accounts.get_user(session, "sb.halle"), to="abh-hal", reason="x"
        )
    with session_scope() as session, pytest.raises(transfers.TransferError, match="andere"):
        row = session.get(cases.Case, case.id)
        user = accounts.get_user(session, "sb.magdeburg")
        transfers.hand_over(session, case=row, user=user, to="abh-hz", reason="x")  # inactive
    assert reload(case).organisation_id == org_id("abh-md")


REPRESENTATIVE = {
    "name": "Kanzlei Weber & Partner",
    "address": "Domplatz 5, 39104 Magdeburg",
    "email": "post@kanzlei-weber.example",
}


def test_letters_go_to_the_representative(login):
    employer = {**EXAMPLE["employer"], "email": "personal@elbe-pflege.example"}
    case = make_case(representative=REPRESENTATIVE, employer=employer)
    assert drive(case) == "Suspended"
    text = letter_text(case, "fee_notice")
    assert "c/o Kanzlei Weber & Partner Domplatz 5, 39104 Magdeburg" in text
    assert "Bevollmächtigt: Kanzlei Weber & Partner" in text
    with session_scope() as session:
        mails = session.exec(select(OutboxMail).where(OutboxMail.case_id == case.id)).all()
    assert mails and {m.recipient for m in mails} == {"post@kanzlei-weber.example"}
    page = login("sb.magdeburg").get(f"/cases/{case.reference}").text
    assert "Kanzlei Weber &amp; Partner, Domplatz 5, 39104 Magdeburg" in page


def test_clerk_names_and_removes_a_representative_audited(login):
    case = make_case(start=False)
    client, url = login("sb.magdeburg"), f"/cases/{case.reference}/representative"
    bad = {
        "representative_name": "Agentur",
        "representative_address": "",
        "representative_email": "kein-mail",
    }
    client.post(url, data=bad)
    assert reload(case).representative_name is None
    assert (
        "Bevollmächtigte › Anschrift: darf nicht leer sein"
        in client.get(f"/cases/{case.reference}").text
    )
    fields = {f"representative_{k}": v for k, v in REPRESENTATIVE.items()}
    assert client.post(url, data=fields).status_code == 302
    assert reload(case).representative_email == "post@kanzlei-weber.example"
    client.post(url, data={k: "" for k in fields})
    assert reload(case).representative_name is None
    changes = [d for a, d in actions(case) if a == "representative_changed"]
    assert changes == [
        "Kanzlei Weber & Partner, Domplatz 5, 39104 Magdeburg, post@kanzlei-weber.example",
        "keine Bevollmächtigten mehr",
    ]


def test_family_member_joins_the_principals_case(login):
    principal = make_case(representative=REPRESENTATIVE)
    client = login("sb.magdeburg")
    form_page = client.get(f"/cases/new?family_of={principal.reference}").text
    assert EXAMPLE["employer"]["name"] in form_page and "Kanzlei Weber" in form_page
    assert login("sb.halle").get(f"/cases/new?family_of={principal.reference}").status_code == 404
    form = {
        "family_of": principal.reference,
        "family_relation": "spouse",
        "residence_purpose": "18a",
        "applicant_name": "Mai Nguyen",
        "applicant_birth_date": "1993-04-05",
        "applicant_nationality": "vietnamesisch",
        "employer_name": EXAMPLE["employer"]["name"],
        "employer_address": EXAMPLE["employer"]["address"],
        "representative_name": REPRESENTATIVE["name"],
        "representative_address": REPRESENTATIVE["address"],
        "submission_key": f"family-{uuid.uuid4()}",
    }
    created = client.post("/cases/new", data=form)
    assert created.status_code == 302
    with session_scope() as session:
        member = session.exec(
            select(cases.Case).where(cases.Case.submission_key == form["submission_key"])
        ).one()
        assert member.family_of == principal.id and member.family_relation == "spouse"
        assert member.facts["family_member"] is True
        assert "family_member" not in session.get(cases.Case, principal.id).facts
        assert member.organisation_id == principal.organisation_id
    # Both pages show the family, with links and states.
    for own, other in ((principal, member), (member, principal)):
        page = client.get(f"/cases/{own.reference}").text
        assert f'href="/cases/{other.reference}"' in page, own.reference
        assert "Ehegattin / Ehegatte" in page and "Fachkraft (Bezugsfall)" in page
    assert "Mai Nguyen" in client.get(f"/cases/{principal.reference}").text
    assert any(a == "family_member_added" for a, _ in actions(principal))
    # What a definition's fee step reads (part B's v3 skips the fee on it).
    skip_fee = Condition.model_validate({"fact": "family_member", "equals": True})
    for row, expected in ((member, True), (reload(principal), False)):
        ctx = Context(facts_of_case(row), {}, {}, date.today())
        assert evaluate(skip_fee, ctx) is expected


def test_family_member_from_case_json_and_the_family_moves_together():
    principal = make_case(start=False)
    member = make_case(
        start=False, org=None, family_of=principal.reference, family_relation="child"
    )
    with session_scope() as session:
        row = session.get(cases.Case, principal.id)
        moved = transfers.hand_over(
            session,
            case=row,
            user=accounts.get_user(session, "sb.magdeburg"),
            to="abh-hal",
            reason="Arbeitsort Halle",
        )
        assert {c.id for c in moved} == {principal.id, member.id}
        halle = session.exec(select(Organisation).where(Organisation.slug == "abh-hal")).one()
    assert reload(member).organisation_id == halle.id
    assert reload(member).facts["family_member"] is True
    with pytest.raises(cases.CaseInputError, match="family_of: unknown case"):
        make_case(start=False, family_of="NOPE-1", family_relation="child")
    # No family member joins a procedure that ended without the skilled worker.
    with session_scope() as session:
        row = session.get(cases.Case, principal.id)
        row.status, row.outcome = cases.CaseStatus.cancelled, "cancelled"
        session.add(row)
    with pytest.raises(cases.CaseInputError, match="ended as cancelled") as refused:
        make_case(start=False, org=None, family_of=principal.reference, family_relation="child")
    assert "ohne Zustimmung beendet" in refused.value.messages[0]
