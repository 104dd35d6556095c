"""Letters to the German authority standard: contact, bank details, legal
remedy, the purpose actually pursued, the mission and the visa deadlines,
calendar months; tagged PDF/A read back from the archive."""

import io
from datetime import date

import pytest
from pypdf import PdfReader

from serviceplus.flows.letters import TITLES, after, write_letter
from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.definition import DefinitionError, parse_definition
from serviceplus.models.services import accounts, storage, versions
from serviceplus.models.tables import Case, Organisation
from tests.helpers import BLUE_CARD, EXAMPLE, advance, drive, letter_text, letters_of, make_case

V1 = (versions.SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")

# The fields this version adds; docs/definitions.md documents them.
LETTER_FIELDS = """
purposes:
  "16d": "§ 16d Abs. 1 AufenthG (Maßnahmen zur Anerkennung ausländischer Berufsqualifikationen)"
  "18a": "§ 18a AufenthG (Fachkräfte mit Berufsausbildung)"
  "18b": "§ 18b AufenthG (Fachkräfte mit akademischer Ausbildung)"
  "18g": "§ 18g AufenthG (Blaue Karte EU)"
letter_periods:
  reply: P4W
  payment: P2W
  appeal: P1M
  preapproval_validity: P3M
  visa_appointment: P3W
  visa_decision: P3W
references:
  agreement: "§ 81a Abs. 2 AufenthG"
  fee: "§ 47 Abs. 1 Nr. 15 AufenthV"
  continuation: "§ 81a Abs. 3 Satz 2 AufenthG"
  deemed_approval: "§ 36 Abs. 2 Satz 2 BeschV"
  preapproval: "§ 81a Abs. 3 Nr. 6 AufenthG"
  mission: "§ 81a Abs. 3 Nr. 5 AufenthG"
  visa_deadlines: "§ 31a AufenthV"
"""

EXTRA = {
    "missing_documents": {"missing": ["cv"], "unreadable": [], "problems": []},
    "partial_recognition": {"reason": "Ausgleichsmaßnahme: Anpassungslehrgang"},
    "deemed_approval": {"reason": "Zustimmungsfiktion"},
    "refusal": {"reason": "Die Voraussetzungen liegen nicht vor."},
}


def with_letter_fields(version: int) -> str:
    text = V1.replace("version: 1\n", f"version: {version}\n", 1)
    return text + LETTER_FIELDS


@pytest.fixture(scope="module")
def letter_version(database):
    """A version of s81a with the letter fields, active for this module."""
    with session_scope() as session:
        previous = versions.active_row(session, "s81a")
        number = versions.next_version(session, "s81a")
        row = versions.publish(session, text=with_letter_fields(number), by="test")
        versions.activate(session, row)
    yield number
    with session_scope() as session:
        versions.activate(session, versions.load_row(session, "s81a", previous.version))


def write(case: Case, kind: str, extra: dict | None = None) -> str:
    """Write the letter through write_letter and read its text back."""
    with session_scope() as session:
        row = session.get(Case, case.id)
        definition = versions.load(session, row.definition_name, row.definition_version)
        write_letter(
            session,
            case=row,
            kind=kind,
            step_key=kind,
            attempt=1,
            definition=definition,
            extra=EXTRA.get(kind, {}) | (extra or {}),
        )
    return letter_text(case, kind)


def pdf_of(case: Case, kind: str) -> PdfReader:
    (letter,) = [x for x in letters_of(case) if x.kind == kind]
    return PdfReader(io.BytesIO(storage.read_bytes(letter.storage_path)))


def one_of_today_plus(period: str) -> tuple[str, ...]:
    # The letter takes "today" from the clock; around midnight it may be either day.
    days = {clock.today()}
    return tuple(after(day, period).strftime("%d.%m.%Y") for day in days)


def test_every_letter_is_tagged_archival_pdf_with_the_contact(letter_version):
    case = make_case(start=False)
    for kind in TITLES:
        text = write(case, kind)
        assert TITLES[kind] in text and case.reference in text
        assert "Ansprechperson: Frau Sabine Berger" in text
        assert "Telefon: 0391 540-0000" in text
        assert "E-Mail: auslaenderbehoerde@magdeburg.example" in text
        reader = pdf_of(case, kind)
        root = reader.trailer["/Root"]
        assert "/StructTreeRoot" in root and root["/MarkInfo"]["/Marked"].value is True
        assert root["/Lang"] == "de"
        xmp = root["/Metadata"].get_object().get_data()
        # PDF/A-3, conformance level A (accessible), not just B.
        assert b'pdfaid:part="3"' in xmp or b"<pdfaid:part>3</pdfaid:part>" in xmp
        assert b'pdfaid:conformance="A"' in xmp or b"<pdfaid:conformance>A<" in xmp


def test_fee_notice_sends_agreement_for_signature_with_bank_details_and_remedy(letter_version):
    case = make_case(start=False)
    text = write(case, "fee_notice")
    assert "Vereinbarung über das beschleunigte Fachkräfteverfahren (§ 81a Abs. 2 AufenthG)" in text
    assert "zur Unterzeichnung" in text and "schließen wir" not in text
    assert "411,00 EUR" in text and "(§ 47 Abs. 1 Nr. 15 AufenthV)" in text
    assert "IBAN: DE89 3704 0044 0532 0130 00" in text
    assert "BIC: COBADEFFXXX" in text and "Kreditinstitut: Beispielbank Magdeburg" in text
    assert f"Verwendungszweck: {case.reference}" in text
    assert any(f"Zahlbar bis: {day}" in text for day in one_of_today_plus("P2W"))
    assert "Rechtsbehelfsbelehrung" in text
    assert "innerhalb eines Monats nach Bekanntgabe Klage erhoben werden" in text
    assert "bei dem Verwaltungsgericht Magdeburg, Breiter Weg 203–206" in text


def test_refusal_cites_recognition_bodys_own_decision_and_ba_refusal_as_internal(
    letter_version,
):
    case = make_case(start=False)
    refusal = {
        "body": "IHK FOSA",
        "decided_on": date(2026, 10, 5),
        "reason": "keine Gleichwertigkeit festgestellt",
    }
    text = write(
        case,
        "refusal",
        {"recognition_refusal": refusal, "ba_refusal": {"reason": "Lohn unter Tarif"}},
    )
    assert "Die Voraussetzungen liegen nicht vor." in text
    assert "IHK FOSA hat die Gleichwertigkeit der Berufsqualifikation mit Bescheid vom" in text
    assert "05.10.2026 abgelehnt: keine Gleichwertigkeit festgestellt" in text
    assert "Dieser Bescheid liegt bei" in text and "sind dort einzulegen, nicht bei uns" in text
    assert "Lohn unter Tarif" in text and "nicht für sich allein angefochten" in text
    assert "Rechtsbehelfsbelehrung" in text and "innerhalb eines Monats" in text


def test_refusal_without_recognition_refusal_cites_no_other_body(letter_version):
    text = write(make_case(start=False), "refusal")
    assert "liegt bei" not in text and "Bundesagentur" not in text
    assert "Rechtsbehelfsbelehrung" in text


def test_preapproval_names_the_purpose_the_mission_and_the_visa_deadlines(letter_version):
    case = make_case(start=False, facts={"mission": "Deutsche Botschaft Bogotá"})
    text = write(case, "preapproval")
    assert "nach § 18a AufenthG (Fachkräfte mit Berufsausbildung)" in text
    assert "Auslandsvertretung (Deutsche Botschaft Bogotá)" in text
    assert "Visumantragstellung (§ 81a Abs. 3 Nr. 5 AufenthG)" in text
    assert "innerhalb von drei Wochen ab Vorlage der Vorabzustimmung (§ 31a AufenthV)." in text
    assert "in der Regel innerhalb von drei Wochen (§ 31a AufenthV)." in text
    assert "(§ 81a Abs. 3 Nr. 6 AufenthG)" in text
    assert "drei Monate gültig" in text
    assert any(f"bis zum {day}" in text for day in one_of_today_plus("P3M"))


def test_preapproval_after_partial_recognition_names_16d_never_18a(letter_version):
    case = make_case(start=False)
    with session_scope() as session:
        # What the procedure does after the employer chose to continue (§ 16d).
        session.get(Case, case.id).residence_purpose = "16d"
    text = write(case, "preapproval")
    assert "§ 16d Abs. 1 AufenthG (Maßnahmen zur Anerkennung" in text
    assert "18a" not in text


def test_partial_recognition_asks_the_employer_to_choose(letter_version):
    text = write(make_case(start=False), "partial_recognition")
    assert "teilweise gleichwertig" in text
    assert "Aufenthaltserlaubnis nach § 16d Abs. 1 AufenthG" in text
    assert "(§ 81a Abs. 3 Satz 2 AufenthG)" in text and "zurück" in text
    assert any(f"bis zum {day}" in text for day in one_of_today_plus("P4W"))


def test_deemed_approval_is_a_file_note_not_a_letter_to_the_employer(letter_version):
    case = make_case(start=False)
    text = write(case, "deemed_approval")
    assert "Aktenvermerk" in text and f"Zur Akte {case.reference}" in text
    assert "wird nicht versandt" in text
    assert "Sehr geehrte" not in text and case.employer_address not in text
    assert "(Zustimmungsfiktion, § 36 Abs. 2 Satz 2 BeschV)" in text


def test_version_without_letter_fields_leaves_out_what_it_lacks(database):
    """Version 1 has no purposes, periods or references: the letters still
    render, without invented figures."""
    halle = {**EXAMPLE["employer"], "address": "Mansfelder Straße 56, 06108 Halle (Saale)"}
    case = make_case(start=False, org="abh-hal", employer=halle)
    with session_scope() as session:
        row = session.get(Case, case.id)
        row.definition_version = 1
    text = write(case, "preapproval")
    assert "nach § 18a AufenthG." in text
    assert "gültig" not in text and "Wochen" not in text
    text = write(case, "fee_notice")
    assert "Zahlbar bis" not in text and f"Verwendungszweck: {case.reference}" in text
    assert "Rechtsbehelfsbelehrung ist für diese Behörde noch nicht hinterlegt" in text


def test_organisation_without_settings_gets_no_empty_lines(letter_version):
    with session_scope() as session:
        session.add(Organisation(slug="abh-leer", name="ABH ohne Einstellungen", kind="abh"))
    case = make_case(start=False, org="abh-leer")
    text = write(case, "fee_notice")
    assert "Ansprechperson:" not in text and "IBAN" not in text
    assert "noch nicht hinterlegt" in text


def test_months_follow_the_calendar_without_clamping_to_28():
    assert after(date(2026, 5, 31), "P3M") == date(2026, 8, 31)
    assert after(date(2026, 1, 30), "P1M") == date(2026, 2, 28)
    assert after(date(2028, 1, 31), "P1M") == date(2028, 2, 29)
    assert after(date(2026, 11, 29), "P3M") == date(2027, 2, 28)
    assert after(date(2026, 12, 20), "P3W") == date(2027, 1, 10)
    assert after(date(2026, 5, 31), None) is None


def test_definition_rejects_bad_periods_and_untitled_purposes():
    bad = with_letter_fields(2).replace("appeal: P1M", "appeal: ein Monat")
    with pytest.raises(DefinitionError, match=r"letter_periods\.appeal: .*not a period"):
        parse_definition(bad)
    untitled = with_letter_fields(2).replace('  "18b": "§ 18b', '  "19x": "§ 18b')
    with pytest.raises(DefinitionError, match=r"purposes: purpose '18b' has no title"):
        parse_definition(untitled)
    assert parse_definition(with_letter_fields(2)).purpose_title("18g") == (
        "§ 18g AufenthG (Blaue Karte EU)"
    )


@pytest.mark.usefixtures("inprocess_deployment")
def test_flow_writes_the_preapproval_of_the_new_version(letter_version):
    case = make_case(example=BLUE_CARD)
    assert drive(case) == "Suspended"
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"
    text = letter_text(case, "preapproval")
    assert "§ 18g AufenthG (Blaue Karte EU)" in text and "drei Monate gültig" in text
    assert "Rechtsbehelfsbelehrung" in letter_text(case, "fee_notice")


@pytest.fixture
def magdeburg_settings(database):
    """Restores the Magdeburg demo settings a test changes."""
    yield
    with session_scope() as session:
        org = accounts.get_organisation(session, "abh-md")
        for name, value in accounts.DEMO_LETTER_SETTINGS["abh-md"].items():
            setattr(org, name, value)


def test_admin_edits_the_own_organisations_letter_settings(
    login, letter_version, magdeburg_settings
):
    admin = login("admin")
    page = admin.get("/admin/organisation").get_data(as_text=True)
    assert 'value="Frau Sabine Berger"' in page and "Rechtsbehelfsbelehrung" in page
    form = dict(accounts.DEMO_LETTER_SETTINGS["abh-md"])
    form |= {"contact_name": "Herr Paul Neu", "iban": "de02120300000000202051"}
    form |= {"legal_remedy": "widerspruch", "remedy_address": "der Landeshauptstadt Magdeburg"}
    response = admin.post("/admin/organisation", data=form, follow_redirects=True)
    assert "Briefeinstellungen gespeichert" in response.get_data(as_text=True)
    text = write(make_case(start=False), "fee_notice")
    assert "Ansprechperson: Herr Paul Neu" in text
    assert "IBAN: DE02 1203 0000 0000 2020 51" in text
    assert "nach Bekanntgabe Widerspruch erhoben werden" in text
    assert "bei der Landeshauptstadt Magdeburg einzulegen" in text


def test_invalid_letter_settings_change_nothing(login, magdeburg_settings):
    admin = login("admin")
    form = dict(accounts.DEMO_LETTER_SETTINGS["abh-md"])
    form |= {"contact_name": "Herr Falsch", "iban": "DE89 3704 0044 0532 0130 01"}
    form |= {"bic": "XYZ", "legal_remedy": "klage", "remedy_address": ""}
    page = admin.post("/admin/organisation", data=form).get_data(as_text=True)
    assert "Die IBAN ist ungültig" in page and "Die BIC ist ungültig" in page
    assert "wo der Rechtsbehelf einzulegen ist" in page
    with session_scope() as session:
        org = accounts.get_organisation(session, "abh-md")
        assert (org.contact_name, org.iban) == ("Frau Sabine Berger", "DE89 3704 0044 0532 0130 00")
    assert login("sb.magdeburg").get("/admin/organisation").status_code == 403


def test_demo_authorities_are_seeded_with_letter_settings(database):
    with session_scope() as session:
        for slug in ("abh-md", "abh-hal"):
            org = accounts.get_organisation(session, slug)
            assert org.contact_email and org.iban and org.bic and org.legal_remedy == "klage"
            assert org.remedy_address.startswith("dem Verwaltungsgericht")
