"""The clerk's workbench (issue 20 B) through the Flask test client: live
fragments and who may fetch them, inbox counts, the task page's brief, and
the new-case form that keeps accepted files, shows each purpose's documents,
asks for the facts the rules test and links every error to its field."""

import io
import re
import secrets
import uuid

import pytest
from sqlmodel import func, select

from serviceplus.demo import blank_pdf
from serviceplus.models.db import session_scope
from serviceplus.models.services import intake, versions
from serviceplus.models.tables import Case, Document
from serviceplus.webui import labels
from tests.helpers import BLUE_CARD, BLUE_CARD_KINDS, drive, make_case, open_task_of

# Written on version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


def case_count() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Case)).one()


def form(**changes):
    data = {
        "residence_purpose": "18g",
        "applicant_name": "Lea Kovač",
        "applicant_birth_date": "1991-02-03",
        "applicant_nationality": "bosnisch",
        "employer_name": "Harz Logistik GmbH",
        "employer_address": "Am Hafen 3, 39106 Magdeburg",
        "submission_key": f"workbench-{uuid.uuid4()}",
    }
    data.update(changes)
    return data


def post_new(client, data):
    return client.post("/cases/new", data=data, content_type="multipart/form-data")


def stamp_of(html: str) -> str:
    return re.search(r'class="live-stamp" name="since" value="([0-9a-f]+)"', html).group(1)


def tab_counts(html: str) -> dict[str, int]:
    found = re.findall(
        r'>(Alle|Meine Aufgaben|Gruppenaufgaben \(offen\)) <span class="count">\((\d+)\)', html
    )
    return {tab: int(n) for tab, n in found}


# --- the new-case form -------------------------------------------------------


def test_refused_file_keeps_the_accepted_ones_and_saves_nothing(login):
    client = login("sb.magdeburg")
    before = case_count()
    data = form(
        doc_passport=(io.BytesIO(blank_pdf()), "pass.pdf"),
        doc_cv=(io.BytesIO(blank_pdf()), "lebenslauf.pdf"),
        doc_qualification=(io.BytesIO(b"not a pdf"), "zeugnis.pdf"),
    )
    key = data["submission_key"]
    refused = post_new(client, data)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert case_count() == before  # no half-saved case
    assert "pass.pdf – bereits hochgeladen" in page
    assert "lebenslauf.pdf – bereits hochgeladen" in page
    # The refused file's error links to its field, which points back to the error.
    assert '<a href="#doc_qualification">' in page
    assert 'aria-describedby="doc_qualification-error"' in page
    assert 'id="doc_qualification-error"' in page

    # Second try: only the corrected file; the two accepted ones come along.
    fixed = post_new(
        client,
        form(submission_key=key, doc_qualification=(io.BytesIO(blank_pdf()), "zeugnis.pdf")),
    )
    assert fixed.status_code == 302
    reference = fixed.headers["Location"].rsplit("/", 1)[1]
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        names = sorted(
            d.original_name
            for d in session.exec(select(Document).where(Document.case_id == case.id))
        )
    assert names == ["lebenslauf.pdf", "pass.pdf", "zeugnis.pdf"]


def test_a_staged_file_can_be_removed_before_saving(login):
    client = login("sb.magdeburg")
    data = form(
        applicant_name="",
        doc_passport=(io.BytesIO(blank_pdf()), "pass.pdf"),
        doc_cv=(io.BytesIO(blank_pdf()), "lebenslauf.pdf"),
    )
    first = post_new(client, data)
    assert first.status_code == 400
    assert '<a href="#applicant_name">' in first.get_data(as_text=True)
    html = first.get_data(as_text=True)
    # Staged in upload order by kind: passport before cv in the definition.
    index = html.index("pass.pdf – bereits hochgeladen")
    assert 'name="unstage_0"' in html[index:]
    second = post_new(client, form(submission_key=data["submission_key"], unstage_0="1"))
    assert second.status_code == 302
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.submission_key == data["submission_key"])).one()
        names = [
            d.original_name
            for d in session.exec(select(Document).where(Document.case_id == case.id))
        ]
    assert names == ["lebenslauf.pdf"]


def test_staged_files_belong_to_their_form_only(login):
    client = login("sb.magdeburg")
    post_new(client, form(applicant_name="", doc_cv=(io.BytesIO(blank_pdf()), "cv-a.pdf")))
    other = client.get("/cases/new").get_data(as_text=True)
    assert "cv-a.pdf" not in other  # a new form starts empty


def test_missing_required_fields_are_marked_and_linked(login):
    client = login("sb.magdeburg")
    empty = client.get("/cases/new").get_data(as_text=True)
    assert empty.count("(Pflichtfeld)") >= 6
    assert re.search(r'<input[^>]*aria-required="true"[^>]*id="applicant_name"', empty)
    assert not re.search(r'<input[^>]*aria-required="true"[^>]*id="employer_email"', empty)
    response = post_new(client, form(applicant_name="", employer_address=""))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="error-summary"' in html
    for field in ("applicant_name", "employer_address"):
        assert f'<a href="#{field}">' in html
        assert re.search(rf'<input[^>]*aria-describedby="{field}-error"[^>]*id="{field}"', html)
        assert f'id="{field}-error"' in html


def test_required_documents_follow_the_chosen_purpose(login):
    client = login("sb.magdeburg")
    with session_scope() as session:
        definition = versions.active_definition(session, "s81a")[1]
    page = client.get("/cases/new?residence_purpose=16d3").get_data(as_text=True)
    for kind in definition.required_documents["16d3"]:
        assert definition.documents[kind] in page
    fragment = client.get("/cases/new/requirements?residence_purpose=18g").get_data(as_text=True)
    required = definition.required_documents["18g"]
    assert all(definition.documents[k] in fragment for k in required)
    # Out-of-band marks for the file fields: required ones marked, others empty.
    for kind in definition.documents:
        mark = re.search(rf'<span id="req-{kind}" hx-swap-oob="true">(.*?)</span>\s', fragment)
        assert mark, kind
        assert ("erforderlich" in mark.group(1)) == (kind in required), kind


def test_facts_the_rules_use_are_asked_and_stored(login):
    with session_scope() as session:
        definition = versions.load(session, "s81a", 2)
    specs = {s.name: s for s in intake.facts_the_rules_use(definition)}
    assert specs["gross_annual_salary_eur"].kind == "number"
    assert specs["contract_months"].kind == "number"
    assert specs["anabin_equivalent"].kind == "yesno"
    assert specs["occupation_group"].kind == "choice"
    assert set(specs["occupation_group"].choices) == {"health", "craft"}
    for name in specs:  # no raw code on the form
        assert name in labels.FACT_LABELS, name

    client = login("sb.magdeburg")
    page = client.get("/cases/new").get_data(as_text=True)
    assert labels.FACT_LABELS["gross_annual_salary_eur"] in page
    assert labels.FACT_LABELS["anabin_equivalent"] in page
    data = form(
        fact_gross_annual_salary_eur="52.000,50",
        fact_contract_months="24",
        fact_anabin_equivalent="yes",
    )
    response = post_new(client, data)
    assert response.status_code == 302
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.submission_key == data["submission_key"])).one()
    assert case.facts["gross_annual_salary_eur"] == 52000.5
    assert case.facts["contract_months"] == 24
    assert case.facts["anabin_equivalent"] is True


def test_a_bad_fact_is_refused_at_its_field_and_kept_as_typed(login):
    before = case_count()
    response = post_new(login("sb.magdeburg"), form(fact_contract_months="zwölf"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert case_count() == before
    assert '<a href="#fact_contract_months">' in html
    assert 'aria-describedby="fact_contract_months-error"' in html
    assert 'value="zwölf"' in html


# --- live regions ------------------------------------------------------------


@pytest.fixture(scope="module")
def waiting_case(inprocess_deployment):
    """A blue-card case without the CV: it waits for documents."""
    case = make_case(example=BLUE_CARD, kinds=[k for k in BLUE_CARD_KINDS if k != "cv"])
    drive(case)
    return case, open_task_of(case)


def test_task_fragment_answers_204_until_the_task_changes(login, waiting_case):
    case, task = waiting_case
    client = login("sb.magdeburg")
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    stamp = stamp_of(page)
    assert client.get(f"/tasks/{task.id}/live?since={stamp}").status_code == 204
    claimed = client.post(f"/tasks/{task.id}/claim")
    assert claimed.status_code == 302
    changed = client.get(f"/tasks/{task.id}/live?since={stamp}")
    assert changed.status_code == 200
    assert "durch Sabine Berger" in changed.get_data(as_text=True)
    client.post(f"/tasks/{task.id}/unclaim")


def test_fragments_check_who_is_asking(login, waiting_case):
    case, task = waiting_case
    halle = login("sb.halle")  # another authority
    assert halle.get(f"/tasks/{task.id}/live").status_code == 404
    assert halle.get(f"/cases/{case.reference}/live").status_code == 404
    assert login("admin").get("/inbox/live").status_code == 403
    assert login("koordination").get(f"/cases/{case.reference}/live").status_code == 200


def test_task_page_for_documents_names_what_is_missing_beside_the_viewer(login, waiting_case):
    case, task = waiting_case
    assert task.title == "Nachgereichte Unterlagen erfassen"
    html = login("sb.magdeburg").get(f"/tasks/{task.id}").get_data(as_text=True)
    missing = html[html.index("Noch fehlende Unterlagen") : html.index('class="workbench"')]
    assert "Lebenslauf in deutscher Sprache" in missing
    assert "Reisepass" not in missing
    # The viewer shows the first document inline; the decision is in the side column.
    workbench = html[html.index('class="workbench"') :]
    assert '<iframe name="viewer"' in workbench
    assert workbench.index('<iframe name="viewer"') < workbench.index("Entscheiden")
    assert html.index("Noch fehlende Unterlagen") < html.index('<iframe name="viewer"')


def test_inbox_shows_counts_per_tab_and_refreshes_on_a_new_task(login, waiting_case):
    client = login("sb.magdeburg")
    page = client.get("/inbox").get_data(as_text=True)
    counts = tab_counts(page)
    assert set(counts) == {"Alle", "Meine Aufgaben", "Gruppenaufgaben (offen)"}
    stamp = stamp_of(page)
    assert client.get(f"/inbox/live?since={stamp}").status_code == 204
    drive(make_case(example=BLUE_CARD))
    fresh = client.get(f"/inbox/live?since={stamp}")
    assert fresh.status_code == 200
    after = tab_counts(fresh.get_data(as_text=True))
    assert after["Alle"] == counts["Alle"] + 1


def test_case_fragment_follows_the_case(login, waiting_case):
    case, task = waiting_case
    client = login("sb.magdeburg")
    stamp = stamp_of(client.get(f"/cases/{case.reference}").get_data(as_text=True))
    assert client.get(f"/cases/{case.reference}/live?since={stamp}").status_code == 204
    client.post(f"/tasks/{task.id}/comments", data={"body": "nur ein Kommentar"})
    # A comment is not part of the live region: still unchanged.
    assert client.get(f"/cases/{case.reference}/live?since={stamp}").status_code == 204
    client.post(f"/tasks/{task.id}/claim")
    moved = client.get(f"/cases/{case.reference}/live?since={stamp}")
    client.post(f"/tasks/{task.id}/unclaim")
    assert moved.status_code == 200
    assert "in Bearbeitung" in moved.get_data(as_text=True)


def test_proposal_and_send_back_reason_stand_at_the_top(login):
    from serviceplus.models.definition import SEND_BACK

    case = make_case(example=BLUE_CARD)
    drive(case)
    first = login("sb.magdeburg")
    task = open_task_of(case)
    assert first.post(f"/tasks/{task.id}/complete", data={"decision": "approve"}).status_code == 302
    drive(case)
    confirmation = open_task_of(case)
    second = login("sb2.magdeburg")
    page = second.get(f"/tasks/{confirmation.id}").get_data(as_text=True)
    brief = page[page.index('class="brief"') : page.index('class="workbench"')]
    assert "Vorschlag zur Bestätigung" in brief
    assert "<strong>approve</strong>" not in brief  # the option's label, not its code
    sent = second.post(
        f"/tasks/{confirmation.id}/complete",
        data={"decision": SEND_BACK, "reason": "Bitte das Gehalt noch einmal prüfen."},
    )
    assert sent.status_code == 302
    drive(case)
    rework = open_task_of(case)
    assert rework.id != task.id
    page = first.get(f"/tasks/{rework.id}").get_data(as_text=True)
    brief = page[page.index('class="brief"') : page.index('class="workbench"')]
    assert "Zur Überarbeitung zurückgegeben" in brief
    assert "Bitte das Gehalt noch einmal prüfen." in brief


def test_ten_staged_files_with_long_names_fit_in_the_session_cookie(login):
    client = login("sb.magdeburg")
    with session_scope() as session:
        kinds = list(versions.active_definition(session, "s81a")[1].documents)
    # Random names: a cookie is compressed, so repeated letters would prove nothing.
    files = {
        f"doc_{k}": (io.BytesIO(blank_pdf()), secrets.token_hex(100) + f"-{k}.pdf") for k in kinds
    }
    response = post_new(client, form(applicant_name="", **files))
    assert response.status_code == 400
    assert response.get_data(as_text=True).count("bereits hochgeladen") == len(kinds)
    cookie = client.get_cookie("session")
    assert len(cookie.value) < 4000
    # Still logged in with that cookie: the session was not dropped.
    assert client.get("/cases/new").status_code == 200
