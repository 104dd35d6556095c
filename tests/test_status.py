"""The employer's status page (issue 16): the private link from the receipt
letter, what the page shows and hides, 404 for every wrong link, the rate
limit, the audit, the employer's answers, German and English."""

import hashlib
import io
import re
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from serviceplus.demo import blank_pdf
from serviceplus.flows.letters import letter_context, render_html, status_link_context
from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.definition import DefinitionError, parse_definition
from serviceplus.models.services import comments, status_links, versions
from serviceplus.models.tables import (
    AuditEvent,
    Case,
    Document,
    EmployerAnswer,
    HumanTask,
    Letter,
    StatusLink,
)
from serviceplus.settings import get_settings
from tests.helpers import (
    advance,
    decide,
    drive,
    letter_text,
    make_case,
    open_task_of,
    reload,
)

# The paths of these tests are version 1's (recognition without a receipt step).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_1")


INCOMPLETE = ["passport", "power_of_attorney", "employment_contract"]
TOKEN_IN_TEXT = re.compile(r"/status/([A-Za-z0-9_-]{43})")


def answer_version(version: int, fields: str) -> str:
    """Version 1's text with the employer's answer set on await_documents."""
    text = (versions.SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")
    text = text.replace("\nversion: 1\n", f"\nversion: {version}\n", 1)
    anchor = "  await_documents:\n    title: Nachgereichte Unterlagen erfassen\n"
    assert anchor in text
    return text.replace(anchor, anchor + fields, 1)


DOCUMENTS_VERSION = answer_version(16, "    employer_answer: documents\n")
OPTIONS_VERSION = answer_version(
    17, "    employer_answer: options\n    employer_options: [withdrawn]\n"
)


def case_on(text: str, **changes) -> Case:
    """A case pinned to the version `text` (published here), then the
    previously active version is active again."""
    with session_scope() as session:
        before = versions.active_row(session, "s81a")
        versions.activate(session, versions.publish(session, text=text, by="test"))
    try:
        return make_case(**changes)
    finally:
        with session_scope() as session:
            versions.activate(session, versions.load_row(session, "s81a", before.version))


def token_of(case: Case) -> str:
    (token,) = TOKEN_IN_TEXT.findall(letter_text(case, "receipt"))
    return token


def audited(case: Case, action: str) -> list[AuditEvent]:
    with session_scope() as session:
        query = select(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.action == action)
        return list(session.exec(query))


def fresh_client(app):
    """A client from its own address, so the rate limit of one test does not
    reach the next."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9"
    return client


# --- the link -----------------------------------------------------------------


def test_receipt_letter_prints_a_link_whose_hash_alone_is_stored(app):
    case = make_case(facts={"anabin_equivalent": False})
    assert drive(case) == "Suspended"
    token = token_of(case)
    assert len(token) == 43  # 256 random bits
    with session_scope() as session:
        (link,) = session.exec(select(StatusLink).where(StatusLink.case_id == case.id))
        assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert link.expires_at - link.created_at == get_settings().status_link_lifetime
    assert status_links.url_of(token) in letter_text(case, "receipt")
    page = fresh_client(app).get(f"/status/{token}")
    assert page.status_code == 200
    assert case.reference in page.text


def test_receipt_letter_carries_the_qr_code_of_the_link():
    case = make_case(start=False)
    with session_scope() as session:
        case = session.get(Case, case.id)
        definition = versions.load(session, case.definition_name, case.definition_version)
        context = letter_context(session, case=case, definition=definition)
    html = render_html("receipt", context | status_link_context("https://example.org/status/abc"))
    assert "https://example.org/status/abc" in html
    assert 'src="data:image/svg+xml' in html


@pytest.fixture(scope="module")
def at_recognition():
    """A complete case waiting for the recognition body, with a comment and
    a clerk's upload on it."""
    case = make_case()
    assert drive(case) == "Suspended"
    with session_scope() as session:
        task = session.exec(select(HumanTask).where(HumanTask.case_id == case.id)).one()
        comments.add(session, task=task, author="fosa", body="INTERNER-KOMMENTAR")
    return case


def test_page_shows_step_actor_and_statutory_date_in_plain_language(app, at_recognition):
    token = token_of(at_recognition)
    task = open_task_of(at_recognition)
    page = fresh_client(app).get(f"/status/{token}")
    assert page.status_code == 200
    assert "Die Anerkennungsstelle prüft die ausländische Berufsqualifikation." in page.text
    assert "die Anerkennungsstelle" in page.text
    assert "Frist für diesen Schritt:" in page.text
    # The German calendar day: the UTC one differs between 22 and 24 h UTC.
    assert f"{clock.local_date(task.due_at):%d.%m.%Y}" in page.text
    assert "Antrag eingegangen" in page.text  # a past step
    assert "Eingangsbestätigung" in page.text  # a letter


def test_page_never_shows_comments_reasons_names_or_documents(app, at_recognition, login):
    token = token_of(at_recognition)
    assert advance(at_recognition, "recognition", "fosa", "full", "GEHEIME-BEGRUENDUNG") in (
        "Suspended",
        "Completed",
    )
    page = fresh_client(app).get(f"/status/{token}").text
    assert "die Bundesagentur für Arbeit" in page  # the next body acts now
    for secret in ["INTERNER-KOMMENTAR", "GEHEIME-BEGRUENDUNG", "fosa", "IHK FOSA", "sb."]:
        assert secret not in page, secret
    with session_scope() as session:
        names = [d.original_name for d in session.exec(select(Document))]
    assert not any(f">{name}<" in page or f"/{name}" in page for name in names)
    assert "/documents/" not in page


def test_wrong_revoked_and_expired_links_are_a_plain_404(app, login):
    case = make_case(start=False)
    with session_scope() as session:
        token = status_links.issue(session, case_id=case.id, actor="test")
    client = fresh_client(app)
    assert client.get(f"/status/{token}").status_code == 200
    assert client.get(f"/status/{token[:-1]}x").status_code == 404
    assert client.get("/status/short").status_code == 404

    clerk = login("sb.magdeburg")
    response = clerk.post(f"/cases/{case.reference}/status-link", follow_redirects=True)
    (new_token,) = TOKEN_IN_TEXT.findall(response.text)
    assert client.get(f"/status/{token}").status_code == 404  # the old one is revoked
    assert client.get(f"/status/{new_token}").status_code == 200

    clerk.post(f"/cases/{case.reference}/status-link/revoke")
    assert client.get(f"/status/{new_token}").status_code == 404
    actions = [e.action for e in audited(case, "status_link_issued")] + [
        e.action for e in audited(case, "status_link_revoked")
    ]
    assert actions.count("status_link_issued") == 2 and "status_link_revoked" in actions

    with session_scope() as session:
        expiring = status_links.issue(session, case_id=case.id, actor="test")
        link = session.exec(
            select(StatusLink).where(StatusLink.token_hash == status_links.hash_token(expiring))
        ).one()
        link.expires_at = clock.now() - timedelta(seconds=1)
        session.add(link)
    assert client.get(f"/status/{expiring}").status_code == 404


def test_another_authority_cannot_issue_or_revoke_a_link(login):
    case = make_case(start=False)
    halle = login("sb.halle")
    assert halle.post(f"/cases/{case.reference}/status-link").status_code == 404
    assert login("koordination").post(f"/cases/{case.reference}/status-link").status_code == 403
    with session_scope() as session:
        assert status_links.working_link(session, case.id) is None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token=st.text(min_size=0, max_size=120),
    tail=st.sampled_from(["", "/letters/1", "/letters/x", "/../x", "/documents", "/answer"]),
)
def test_fuzzed_links_are_404_and_never_an_error(app, token, tail):
    client = fresh_client(app)
    # An empty token makes "//", which Werkzeug redirects away first.
    response = client.get(f"/status/{quote(token, safe='')}{tail}", follow_redirects=True)
    assert response.status_code in (404, 405), response.status_code
    assert b"Traceback" not in response.data


def test_requests_over_the_limit_get_429_per_address(app, monkeypatch):
    monkeypatch.setattr(get_settings(), "status_rate_limit", 3)
    client = fresh_client(app)
    codes = [client.get("/status/" + "a" * 43).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    assert fresh_client(app).get("/status/" + "a" * 43).status_code == 404


def test_views_and_letter_downloads_are_audited_and_only_employer_letters(app, at_recognition):
    token = token_of(at_recognition)
    client = fresh_client(app)
    views = len(audited(at_recognition, "status_viewed"))
    client.get(f"/status/{token}")
    assert len(audited(at_recognition, "status_viewed")) == views + 1
    with session_scope() as session:
        receipt = session.exec(
            select(Letter).where(Letter.case_id == at_recognition.id, Letter.kind == "receipt")
        ).one()
        other = session.exec(select(Letter).where(Letter.case_id != at_recognition.id)).first()
    with client.get(f"/status/{token}/letters/{receipt.id}") as download:
        assert download.status_code == 200
        assert download.data.startswith(b"%PDF-")
    assert audited(at_recognition, "status_letter_downloaded")[-1].actor == "employer"
    assert client.get(f"/status/{token}/letters/{other.id}").status_code == 404


# --- answers without paper --------------------------------------------------------


def test_employer_uploads_documents_with_the_clerks_checks(app, login):
    case = case_on(DOCUMENTS_VERSION, kinds=INCOMPLETE, facts={"anabin_equivalent": True})
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "await_documents"
    token = token_of(case)
    client = fresh_client(app)
    page = client.get(f"/status/{token}")
    assert "Unterlagen nachreichen" in page.text
    assert "Sie (der Arbeitgeber)" in page.text

    corrupt = {"kind": "employer_declaration", "file": (io.BytesIO(b"%PDF-1.4 broken"), "x.pdf")}
    refused = client.post(f"/status/{token}/documents", data=corrupt, follow_redirects=True)
    assert "Die Datei ist beschädigt oder nicht lesbar." in refused.text
    corrupt = {"kind": "employer_declaration", "file": (io.BytesIO(b"%PDF-1.4 broken"), "x.pdf")}
    english = client.post(f"/status/{token}/documents?lang=en", data=corrupt, follow_redirects=True)
    assert "file is corrupt or unreadable" in english.text
    with session_scope() as session:
        assert not session.exec(
            select(EmployerAnswer).where(EmployerAnswer.case_id == case.id)
        ).all()
        assert not session.exec(
            select(Document).where(Document.case_id == case.id, Document.uploaded_by == "employer")
        ).all()

    clerk = login("sb.magdeburg")
    task = open_task_of(case)
    data = {"kind": "cv", "file": (io.BytesIO(blank_pdf()), "cv.pdf")}
    sent = client.post(f"/status/{token}/documents", data=data, follow_redirects=True)
    assert "Ihre Unterlagen sind eingegangen" in sent.text
    both = {  # one field per kind: everything missing in one upload
        f"doc_{kind}": (io.BytesIO(blank_pdf()), f"{kind}.pdf")
        for kind in ["employer_declaration", "qualification"]
    }
    sent = client.post(f"/status/{token}/documents", data=both, follow_redirects=True)
    assert "Ihre Unterlagen sind eingegangen" in sent.text
    assert "employer_declaration.pdf" in clerk.get(f"/tasks/{task.id}").text
    assert len(audited(case, "employer_document_added")) == 3

    clerk.post(f"/tasks/{task.id}/claim")
    rechecked = clerk.post(f"/tasks/{task.id}/recheck", follow_redirects=True)
    assert "Noch unvollständig" in rechecked.text or "jetzt vollständig" in rechecked.text
    assert audited(case, "completeness_rechecked")


def test_employer_choice_is_kept_for_the_clerk_to_confirm(app, login):
    case = case_on(OPTIONS_VERSION, kinds=INCOMPLETE, facts={"anabin_equivalent": True})
    assert drive(case) == "Suspended"
    token = token_of(case)
    client = fresh_client(app)
    assert "Antrag wurde zurückgezogen" in client.get(f"/status/{token}").text
    refused = client.post(f"/status/{token}/answer", data={"option": "received"})
    assert refused.status_code == 302
    client.post(f"/status/{token}/answer", data={"option": "withdrawn"})
    task = open_task_of(case)
    with session_scope() as session:
        (answer,) = session.exec(select(EmployerAnswer).where(EmployerAnswer.case_id == case.id))
        assert answer.option == "withdrawn"
    assert task.status == "open"  # the flow waits for the clerk
    page = login("sb.magdeburg").get(f"/tasks/{task.id}").text
    assert "Der Arbeitgeber wählt „Antrag wurde zurückgezogen“" in page
    assert decide(task, "withdrawn", "laut Arbeitgeber")
    assert drive(case) == "Completed"
    assert reload(case).outcome == "withdrawn"
    assert "Der Antrag wurde zurückgezogen" in client.get(f"/status/{token}").text


def test_answers_are_refused_when_the_case_does_not_wait_for_them(app, at_recognition):
    token = token_of(at_recognition)
    client = fresh_client(app)
    data = {"kind": "cv", "file": (io.BytesIO(blank_pdf()), "cv.pdf")}
    page = client.post(f"/status/{token}/documents", data=data, follow_redirects=True)
    assert "wartet derzeit nicht auf diese Antwort" in page.text
    with session_scope() as session:
        assert not session.exec(
            select(Document).where(
                Document.uploaded_by == "employer", Document.case_id == at_recognition.id
            )
        ).all()


def test_definition_checks_the_employer_answer_fields():
    bad = answer_version(18, "    employer_answer: options\n    employer_options: [nonsense]\n")
    with pytest.raises(DefinitionError, match="employer_options.0: unknown option 'nonsense'"):
        parse_definition(bad)
    with pytest.raises(DefinitionError, match="employer_options needs employer_answer"):
        parse_definition(answer_version(18, "    employer_options: [withdrawn]\n"))
    with pytest.raises(DefinitionError, match="employer_answer"):
        parse_definition(answer_version(18, "    employer_answer: letters\n"))
    assert parse_definition(OPTIONS_VERSION).steps["await_documents"].employer_options == [
        "withdrawn"
    ]


# --- languages ----------------------------------------------------------------------


def test_english_by_browser_language_or_switch_german_by_default(app, at_recognition):
    token = token_of(at_recognition)
    client = fresh_client(app)
    german = client.get(f"/status/{token}")
    assert 'lang="de"' in german.text and "Stand Ihres Verfahrens" in german.text
    english = client.get(f"/status/{token}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in english.text and "Status of your procedure" in english.text
    switched = client.get(f"/status/{token}?lang=en")
    assert "Steps so far" in switched.text
    back = client.get(f"/status/{token}?lang=de", headers={"Accept-Language": "en"})
    assert "Bisherige Schritte" in back.text
    # The clerks' pages stay German whatever the browser asks for.
    assert "Anmelden" in client.get("/login", headers={"Accept-Language": "en"}).text


def test_unknown_steps_of_a_newer_version_still_read_sensibly(app):
    from serviceplus.webui import public_texts

    with app.test_request_context("/status/x", headers={"Accept-Language": "en"}):
        assert str(public_texts.current_text("site_visit", "employer")) == (
            "The foreigners' authority is waiting for your answer."
        )
        assert str(public_texts.current_text("hearing", "authority")) == (
            "The foreigners' authority is hearing you before it decides."
        )
        assert str(public_texts.current_text("ba_question", "ba")).startswith(
            "The Federal Employment Agency"
        )
        assert str(public_texts.past_text("employer_choice", "employer")) == (
            "Your answer was received"
        )
    with app.test_request_context("/status/x"):
        assert str(public_texts.current_text("site_visit", "authority")) == (
            "Die Ausländerbehörde bearbeitet Ihren Antrag."
        )


# --- in the browser -----------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(app):
    """The app on a free loopback port, served from a thread for Chromium."""
    import threading

    from werkzeug.serving import make_server

    from serviceplus.stack import free_port

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_browser_status_page_in_german_and_english_on_a_phone(live_server):
    from playwright.sync_api import sync_playwright

    from tests.test_stack import CHROMIUM_ARGS, serious_violations

    case = case_on(DOCUMENTS_VERSION, kinds=INCOMPLETE, facts={"anabin_equivalent": True})
    assert drive(case) == "Suspended"
    url = f"{live_server}/status/{token_of(case)}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, locale="de-DE")
        page.goto(url)
        page.get_by_role("heading", name="Stand Ihres Verfahrens").wait_for()
        assert page.get_by_text("Sie (der Arbeitgeber)").is_visible()
        assert serious_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        page.get_by_label("Lebenslauf in deutscher Sprache").set_input_files(
            files=[{"name": "cv.pdf", "mimeType": "application/pdf", "buffer": blank_pdf()}]
        )
        page.get_by_role("button", name="Hochladen").click()
        page.get_by_text("Vielen Dank. Ihre Unterlagen sind eingegangen.").wait_for()
        assert serious_violations(page) == []

        page.get_by_role("link", name="English").click()
        page.get_by_role("heading", name="Status of your procedure").wait_for()
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.get_by_text("you (the employer)").is_visible()
        assert serious_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        browser.close()


def test_retention_removes_links_answers_and_mails_with_the_personal_data(app):
    from serviceplus.models.services import retention
    from serviceplus.models.tables import OutboxMail

    employer = {"name": "Harz Logistik GmbH", "address": "Am Hafen 3", "email": "hr@harz.example"}
    case = case_on(
        OPTIONS_VERSION, kinds=INCOMPLETE, facts={"anabin_equivalent": True}, employer=employer
    )
    assert drive(case) == "Suspended"
    token = token_of(case)
    with session_scope() as session:
        status_links.choose(session, case=session.get(Case, case.id), option="withdrawn")
    assert decide(open_task_of(case), "withdrawn", "laut Arbeitgeber")
    assert drive(case) == "Completed"
    later = clock.now() + timedelta(days=3 * 365 + 1)
    with session_scope() as session:
        report = retention.purge(
            session, older_than=timedelta(days=1095), dry_run=False, actor="test", now=later
        )
    assert case.reference in report.cases
    assert reload(case).employer_email is None
    with session_scope() as session:
        for table in (EmployerAnswer, StatusLink, OutboxMail):
            assert not session.exec(select(table).where(table.case_id == case.id)).all(), table
    assert fresh_client(app).get(f"/status/{token}").status_code == 404


def test_definition_may_let_the_employers_upload_recheck_at_once(app):
    from tests.helpers import ALL_KINDS, tasks_of

    text = answer_version(19, "    employer_answer: documents\n    employer_recheck: received\n")
    case = case_on(
        text,
        kinds=[k for k in ALL_KINDS if k != "qualification"],
        facts={"anabin_equivalent": True},
    )
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "await_documents"
    data = {"kind": "qualification", "file": (io.BytesIO(blank_pdf()), "zeugnis.pdf")}
    fresh_client(app).post(f"/status/{token_of(case)}/documents", data=data)
    assert drive(case) == "Suspended"  # completeness ran again, without a clerk
    done = [t for t in tasks_of(case) if t.step_key == "await_documents"]
    assert [(t.decision, t.completed_by) for t in done] == [("received", "employer")]
    assert open_task_of(case).step_key == "ba_approval"
    with pytest.raises(DefinitionError, match="employer_recheck: unknown option 'nope'"):
        parse_definition(
            answer_version(20, "    employer_answer: documents\n    employer_recheck: nope\n")
        )
