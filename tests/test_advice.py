"""Advisers' pre-checks: the same result as the authority's completeness
step, the advice the rules derive, the checklist, the hand-over to a case
the authority recognises as pre-checked, and what the adviser sees after."""

import copy
import io
import json

import pytest
from pypdf import PdfReader
from sqlmodel import select

from serviceplus.demo import blank_pdf
from serviceplus.flows.letters import checklist_pdf
from serviceplus.flows.steps import completeness_of
from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, advice, cases, versions
from serviceplus.models.tables import AuditEvent, Case, Comment, Document, Precheck
from serviceplus.settings import get_settings
from tests.helpers import (
    BLUE_CARD,
    EXAMPLE,
    advance,
    drive,
    executions,
    make_case,
    reload,
)

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


MAX = get_settings().max_upload_bytes


def new_precheck(
    example=EXAMPLE, kinds=None, username="berater.wcst", note="", files=None, **changes
):
    data = copy.deepcopy(example)
    data.update(changes)
    data.pop("documents")
    kinds = [d["kind"] for d in example["documents"]] if kinds is None else kinds
    docs = [cases.NewDocument(k, f"{k}.pdf", (files or {}).get(k, blank_pdf())) for k in kinds]
    with session_scope() as session:
        user = accounts.get_user(session, username)
        row = advice.create(
            session,
            data=cases.parse_case_input(data),
            documents=docs,
            adviser=user,
            note=note,
            max_upload_bytes=MAX,
        )
    return row


def check(row: Precheck) -> advice.Advice:
    with session_scope() as session:
        return advice.check(session, session.get(Precheck, row.id))


def adviser(username="berater.wcst"):
    with session_scope() as session:
        return accounts.get_user(session, username)


@pytest.mark.parametrize(
    ("kinds", "files", "changes"),
    [
        (None, None, {}),
        (["passport", "cv"], None, {}),
        (None, None, {"facts": {**BLUE_CARD["facts"], "gross_annual_salary_eur": 40000}}),
    ],
)
def test_precheck_gives_the_authoritys_completeness_result(kinds, files, changes):
    """The same file, checked as a pre-check and as a case's completeness step."""
    row = new_precheck(BLUE_CARD, kinds=kinds, files=files, **changes)
    case = make_case(example=BLUE_CARD, kinds=kinds, files=files, start=False, **changes)
    with session_scope() as session:
        definition = versions.active_definition(session, cases.DEFINITION_NAME)[1]
        authority = completeness_of(session, session.get(Case, case.id), definition)
    mine = check(row).result
    assert (mine.missing, mine.unreadable, mine.problems) == (
        authority.missing,
        authority.unreadable,
        authority.problems,
    )
    assert row.complete == authority.complete


def test_advice_names_the_bodies_and_thresholds_from_the_rules():
    # 18a without anabin listing: recognition by IHK FOSA and BA approval needed.
    steps = dict(check(new_precheck()).steps)
    assert steps["Anerkennung der Berufsqualifikation"].endswith("zuständig: IHK FOSA")
    assert "Bundesagentur für Arbeit" in steps["Zustimmung der Bundesagentur für Arbeit"]
    # Blue Card above the threshold with anabin H+: neither is needed.
    blue = check(new_precheck(BLUE_CARD))
    assert dict(blue.steps) == {
        "Anerkennung der Berufsqualifikation": "nach Ihren Angaben nicht erforderlich",
        "Zustimmung der Bundesagentur für Arbeit": "nach Ihren Angaben nicht erforderlich",
    }
    thresholds = dict(blue.thresholds)
    assert thresholds["Gehaltsgrenze Blaue Karte EU"].endswith("– erreicht")
    assert blue.authority == "Ausländerbehörde Magdeburg"
    assert check(new_precheck()).thresholds == []  # § 18a under 45: no salary rule


@pytest.mark.parametrize(
    ("purpose", "facts", "body"),
    [
        ("18a", {"occupation_group": "craft"}, "Handwerkskammer Magdeburg"),
        ("18a", {"occupation_group": "health"}, "Landesverwaltungsamt Sachsen-Anhalt"),
        ("18b", {}, "Zentralstelle für ausländisches Bildungswesen"),
    ],
)
def test_advice_names_the_recognition_body_the_definition_routes_to(purpose, facts, body):
    row = new_precheck(residence_purpose=purpose, facts={**EXAMPLE["facts"], **facts})
    steps = dict(check(row).steps)
    assert steps["Anerkennung der Berufsqualifikation"].endswith(f"zuständig: {body}")
    # A confirmation of receipt is no decision of its own for the employer.
    assert "Eingang bei der Anerkennungsstelle bestätigen" not in steps


def test_advice_shows_the_age_45_threshold():
    applicant = {**EXAMPLE["applicant"], "birth_date": "1970-01-01"}
    advice_ = check(new_precheck(applicant=applicant))
    assert any("Ab 45 Jahren" in p for p in advice_.result.problems)
    thresholds = dict(advice_.thresholds)
    assert thresholds["Gehaltsgrenze ab 45 Jahren (§ 18 Abs. 2 Nr. 5 AufenthG)"] == (
        "55.770,00 EUR – nicht erreicht"
    )


def test_bad_input_saves_nothing():
    with session_scope() as session:
        before = len(session.exec(select(Precheck)).all())
    with pytest.raises(cases.CaseInputError) as error:
        new_precheck(organisation="wcst")  # not an authority
    assert "keine Ausländerbehörde" in error.value.messages[0]
    with pytest.raises(cases.CaseInputError):
        new_precheck(files={"passport": b"GIF89a"})
    with pytest.raises(cases.CaseInputError):
        new_precheck(username="sb.magdeburg")  # an authority does not pre-check
    with session_scope() as session:
        assert len(session.exec(select(Precheck)).all()) == before


def test_checklist_lists_what_is_there_and_what_is_missing():
    row = new_precheck(kinds=["passport", "qualification"])
    with session_scope() as session:
        row = session.get(Precheck, row.id)
        context = advice.checklist_context(session, row, advice.check(session, row))
    reader = PdfReader(io.BytesIO(checklist_pdf(context)))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert "noch nicht vollständig" in text
    assert "Arbeitsvertrag oder verbindliches Arbeitsplatzangebot – fehlt" in text
    assert "Reisepass (Kopie, gültig)" in text
    assert "zuständig: IHK FOSA" in text
    assert "411,00 EUR" in text


def test_incomplete_precheck_is_not_handed_over_until_completed():
    row = new_precheck(kinds=["passport"])
    with pytest.raises(advice.PrecheckError):
        advice.handover(precheck_id=row.id, user=adviser(), max_upload_bytes=MAX)
    with session_scope() as session:
        row = session.get(Precheck, row.id)
        assert row.case_id is None
        rest = [d["kind"] for d in EXAMPLE["documents"] if d["kind"] != "passport"]
        advice.add_documents(
            session,
            precheck=row,
            documents=[cases.NewDocument(k, f"{k}.pdf", blank_pdf()) for k in rest],
            actor="berater.wcst",
            max_upload_bytes=MAX,
        )
        assert row.complete


def test_another_adviser_organisation_cannot_hand_over():
    row = new_precheck()
    with pytest.raises(advice.PrecheckError):
        advice.handover(precheck_id=row.id, user=adviser("berater.iq"), max_upload_bytes=MAX)
    with session_scope() as session:
        assert advice.get_for(session, adviser("berater.iq"), row.id) is None
        assert row.id not in [p.id for p in advice.prechecks_for(session, adviser("berater.iq"))]
        assert row.id in [p.id for p in advice.prechecks_for(session, adviser("berater.wcst"))]


def test_handover_opens_a_prechecked_case_that_skips_the_second_check():
    row = new_precheck(note="Arbeitgeber bittet um Rückruf.")
    case, started = advice.handover(precheck_id=row.id, user=adviser(), max_upload_bytes=MAX)
    assert started
    again, _ = advice.handover(precheck_id=row.id, user=adviser(), max_upload_bytes=MAX)
    assert again.id == case.id  # one hand-over, one case
    with session_scope() as session:
        stored = session.get(Case, case.id)
        assert (stored.precheck_id, stored.prechecked_by) == (
            row.id,
            "WelcomeCenter Sachsen-Anhalt",
        )
        assert stored.organisation_id == accounts.get_organisation(session, "abh-md").id
        docs = session.exec(select(Document).where(Document.case_id == case.id)).all()
        assert sorted(d.kind for d in docs) == sorted(d["kind"] for d in EXAMPLE["documents"])
        (note,) = session.exec(select(Comment).where(Comment.case_id == case.id)).all()
        assert note.body == "Arbeitgeber bittet um Rückruf."
    assert drive(case) == "Suspended"
    with session_scope() as session:
        accepted = session.exec(
            select(AuditEvent).where(
                AuditEvent.case_id == case.id, AuditEvent.action == "precheck_accepted"
            )
        ).all()
    assert len(accepted) == 1
    assert executions(case)["completeness#1"] == 1
    assert reload(case).file_complete_at is not None
    assert reload(case).current_step == "recognition_receipt"


def test_changed_documents_are_checked_again():
    row = new_precheck()
    case, _ = advice.handover(precheck_id=row.id, user=adviser(), max_upload_bytes=MAX)
    with session_scope() as session:
        cases.add_document(
            session,
            case=session.get(Case, case.id),
            doc=cases.NewDocument("cv", "cv.pdf", blank_pdf()),
            actor="sb.magdeburg",
        )
    drive(case)
    with session_scope() as session:
        assert not advice.unchanged_since_precheck(session, session.get(Case, case.id))
        accepted = session.exec(
            select(AuditEvent).where(
                AuditEvent.case_id == case.id, AuditEvent.action == "precheck_accepted"
            )
        ).all()
    assert accepted == []
    # Still complete, by the full check: on to the recognition body.
    assert reload(case).current_step == "recognition_receipt"


def test_progress_shows_steps_and_employer_letters_but_no_internals():
    row = new_precheck(EXAMPLE)
    case, _ = advice.handover(precheck_id=row.id, user=adviser(), max_upload_bytes=MAX)
    drive(case)
    advance(case, "recognition_receipt", "fosa", "received")
    advance(case, "recognition", "fosa", "refused", "Geheime Begründung der IHK")
    advance(case, "await_hearing", "sb.magdeburg", "refuse", "Geheime Würdigung")
    with session_scope() as session:
        progress = advice.progress(session, session.get(Precheck, row.id))
        titles = [s[0] for s in progress.steps]
        assert "Anerkennung der Berufsqualifikation" in titles
        assert "Eingang bestätigen" in titles
        kinds = sorted(letter.kind for letter in progress.letters)
        # Not the hearing or the refusal (they quote the IHK's reasons), not
        # the receipt (it carries the employer's status link).
        assert kinds == ["fee_notice"]
        assert "Geheime" not in repr(progress.steps)
        refusal = [x for x in cases.letters_of(session, case.id) if x.kind == "refusal"]
        own = session.get(Precheck, row.id)
        assert refusal and advice.letter_for(session, own, refusal[0].id) is None
        assert advice.letter_for(session, own, progress.letters[0].id) is not None


def test_cli_creates_and_hands_over_a_precheck():
    from click.testing import CliRunner

    from serviceplus.cli import main
    from serviceplus.demo import EXAMPLES

    example = str(EXAMPLES / "case-18a.json")
    refused = CliRunner().invoke(main, ["precheck", "create", example, "--as", "sb.magdeburg"])
    assert refused.exit_code == 1 and "not an active adviser" in refused.output
    created = CliRunner().invoke(main, ["precheck", "create", example, "--as", "berater.iq"])
    assert created.exit_code == 0, created.output
    result = json.loads(created.output)
    assert result["complete"] is True and result["missing"] == []
    args = ["precheck", "handover", str(result["precheck"]), "--as", "berater.iq"]
    handed = CliRunner().invoke(main, args)
    assert handed.exit_code == 0, handed.output
    with session_scope() as session:
        case = cases.get_by_reference(session, json.loads(handed.output)["reference"])
        assert case.prechecked_by == "IQ Netzwerk Sachsen-Anhalt"
    other = CliRunner().invoke(
        main, ["precheck", "handover", str(result["precheck"]), "--as", "berater.wcst"]
    )
    assert other.exit_code == 1  # another advice organisation's pre-check


def form_data(**files):
    data = {
        "residence_purpose": "18a",
        "organisation": "abh-hal",
        "applicant_name": "Lina Haddad",
        "applicant_birth_date": "1994-05-06",
        "applicant_nationality": "syrisch",
        "employer_name": "Pflegedienst Saale GmbH",
        "employer_address": "Große Ulrichstraße 1, 06108 Halle (Saale)",
        "gross_annual_salary_eur": "41000",
        "note": "Bitte Termin am Vormittag.",
    }
    data.update({f"doc_{k}": (io.BytesIO(blank_pdf()), f"{k}.pdf") for k in files})
    return data


def test_web_precheck_upload_handover_and_progress(login):
    client = login("berater.wcst")
    kinds = [d["kind"] for d in EXAMPLE["documents"]]
    first = kinds[:-1]
    response = client.post("/advice/new", data=form_data(**dict.fromkeys(first)))
    assert response.status_code == 302, response.get_data(as_text=True)
    url = response.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    assert "noch nicht vollständig" in page and "– fehlt" in page
    assert "zuständig: IHK FOSA" in page
    assert "Übergeben wird erst eine vollständige Vorprüfung" in page
    upload = {"kind": kinds[-1], "file": (io.BytesIO(blank_pdf()), "q.pdf")}
    client.post(f"{url}/documents", data=upload)
    assert "Die Unterlagen sind vollständig" in client.get(url).get_data(as_text=True)
    checklist = client.get(f"{url}/checklist.pdf")
    assert checklist.data.startswith(b"%PDF-")
    # Another advice organisation sees nothing of it.
    assert login("berater.iq").get(url).status_code == 404
    handed = client.post(f"{url}/handover")
    assert handed.status_code == 302 and handed.headers["Location"].endswith("/progress")
    precheck_id = int(url.rstrip("/").rsplit("/", 1)[-1])
    with session_scope() as session:
        case = session.get(Case, session.get(Precheck, precheck_id).case_id)
        assert case.organisation_id == accounts.get_organisation(session, "abh-hal").id
    drive(case)
    progress = client.get(f"{url}/progress").get_data(as_text=True)
    assert "Vereinbarung und Gebührenbescheid" in progress
    assert "Eingangsbestätigung" not in progress  # it carries the employer's status link
    assert "Eingang bei der Anerkennungsstelle bestätigen" in progress
    # The authority and the recognition body see it as pre-checked.
    case_page = login("sb.halle").get(f"/cases/{case.reference}").get_data(as_text=True)
    assert "vorgeprüft von WelcomeCenter Sachsen-Anhalt" in case_page
    assert "Bitte Termin am Vormittag." in case_page
    inbox = login("fosa").get(f"/inbox?q={case.reference}").get_data(as_text=True)
    assert "vorgeprüft" in inbox
