"""German everywhere users look: every role walks every page it can reach
by links, and no raw code (status, role, action, decision, step key,
snake_case word) nor an English validator message shows."""

import re
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest

from serviceplus.models.db import session_scope
from serviceplus.models.services import status_links, versions
from serviceplus.models.tables import CaseStatus, Role, TaskStatus
from serviceplus.webui import labels
from tests.helpers import advance, drive, make_case, reload

# Written on version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")

MAX_PAGES = 60  # per user: enough for navigation, lists and a few cases
ENGLISH = [
    "This field is required",
    "Not a valid",
    "Invalid input",
    "Field must be",
    "Invalid email",
    "is required",
]
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b(?!\.\w|[\w-])")


def raw_codes() -> set[str]:
    """Every code a user must never read as a word."""
    codes = {*CaseStatus, *TaskStatus, *Role, *labels.AUDIT_ACTION, *labels.DECISION}
    codes |= {*labels.CASE_OUTCOME, *labels.STEP_OUTCOME}
    with session_scope() as session:
        _row, definition = versions.active_definition(session, "s81a")
        for key, step in definition.steps.items():
            codes.add(key)
            codes |= {o.value for o in step.options}
    # Words that are also plain German or names a page may rightly show.
    return {str(c) for c in codes} - {"admin"}


class Text(HTMLParser):
    """The text a reader sees, and the links of a page. Code the admin edits
    on purpose (the definition's YAML in <textarea>, <pre>, <code>) is skipped."""

    SKIP = {"script", "style", "textarea", "pre", "code"}
    # A diagram is one image (role="img" with a German aria-label and German
    # tooltips); Graphviz's inner <title> elements carry node ids nobody sees.

    def __init__(self):
        super().__init__()
        self.parts, self.links, self._skip, self._svg = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP or (tag == "title" and self._svg):
            self._skip += 1
        self._svg += tag == "svg"
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)

    def handle_endtag(self, tag):
        self._svg -= tag == "svg"
        if (tag in self.SKIP or (tag == "title" and self._svg)) and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def problems_of(html: str, codes: set[str], allowed: set[str]) -> tuple[list[str], list[str]]:
    parser = Text()
    parser.feed(html)
    text = " ".join(parser.parts)
    for word in allowed:  # usernames and slugs are names, not codes
        text = re.sub(rf"(?<![\w.-]){re.escape(word)}(?![\w-])", " ", text)
    found = [w for w in re.findall(r"[A-Za-z_]+", text) if w in codes]
    found += SNAKE.findall(text)
    found += [e for e in ENGLISH if e in text]
    return sorted(set(found)), parser.links


def crawl(client, start: str, codes: set[str], allowed: set[str]) -> dict[str, list[str]]:
    """Pages reachable from `start` by links within the app (GET, HTML only)."""
    seen, queue, bad = set(), [start], {}
    while queue and len(seen) < MAX_PAGES:
        url = urldefrag(queue.pop(0))[0]
        if url in seen:
            continue
        seen.add(url)
        with client.get(url, follow_redirects=True) as response:
            if "text/html" not in response.content_type:
                continue
            html = response.get_data(as_text=True)
        found, links = problems_of(html, codes, allowed)
        if found:
            bad[url] = found
        for link in links:
            parts = urlsplit(link)
            if parts.netloc or not link.startswith("/") or link.startswith("/static"):
                continue
            # English on purpose (the status page's language switch), CSV
            # files, and the definition diff, which quotes the YAML admins edit.
            if "lang=" in link or "/figures/" in link or "/diff" in link:
                continue
            queue.append(link)
    assert len(seen) >= 2, f"nothing to walk from {start}"
    return bad


@pytest.fixture(scope="module")
def worked_cases():
    """Cases in every state: at a recognition body, decided by it and the
    BA, a four-eyes confirmation waiting, and one closed."""
    waiting = make_case()
    drive(waiting)
    confirming = make_case()
    drive(confirming)
    advance(confirming, "recognition_receipt", "fosa", "received")
    advance(confirming, "recognition", "fosa", "full")
    advance(confirming, "ba_approval", "ba", "approve")
    advance(confirming, "decision", "sb.magdeburg", "approve", "alles vollständig")
    closed = make_case()
    drive(closed)
    advance(closed, "recognition_receipt", "fosa", "received")
    advance(closed, "recognition", "fosa", "full")
    advance(closed, "ba_approval", "ba", "approve")
    advance(closed, "decision", "sb.magdeburg", "approve")
    advance(closed, "decision.confirm", "sb2.magdeburg", "confirm")
    assert reload(closed).status == CaseStatus.completed
    return waiting, confirming, closed


def allowed_names() -> set[str]:
    from serviceplus.models.services.accounts import DEMO_ORGANISATIONS, DEMO_USERS

    return {u[0] for u in DEMO_USERS} | {o[0] for o in DEMO_ORGANISATIONS} | {"system", "test"}


USERS = [
    "sb.magdeburg",
    "sb2.magdeburg",
    "sb.halle",
    "koordination",
    "admin",
    "fosa",
    "ba",
    "berater.wcst",
    "netzwerk",
]


@pytest.mark.parametrize("username", USERS)
def test_every_reachable_page_is_german(worked_cases, login, username):
    client = login(username)
    bad = crawl(client, "/", raw_codes(), allowed_names())
    assert not bad, f"raw codes or English for {username}: {bad}"


def test_employer_status_page_is_german(worked_cases, app):
    _waiting, confirming, _closed = worked_cases
    with session_scope() as session:
        token = status_links.issue(session, case_id=confirming.id, actor="sb.magdeburg")
    client = app.test_client()
    bad = crawl(client, f"/status/{token}", raw_codes(), allowed_names())
    assert not bad, bad


EMPTY_FORMS = [
    ("sb.magdeburg", "/cases/new", "Bitte ausfüllen."),
    ("sb.magdeburg", "/password", None),
    ("berater.wcst", "/advice/new", None),
    ("admin", "/admin/users", None),
    # Not /admin/organisation: its fields are all optional, so an empty post
    # is a valid "clear the letter settings" and would change the demo data.
]


@pytest.mark.parametrize(("username", "url", "expected"), EMPTY_FORMS)
def test_forms_submitted_empty_answer_in_german(worked_cases, login, username, url, expected):
    client = login(username)
    response = client.post(url, data={}, follow_redirects=True)
    html = response.get_data(as_text=True)
    found, _ = problems_of(html, raw_codes(), allowed_names())
    assert not found, (url, found)
    if expected:
        assert expected in html


def test_empty_decision_and_bad_date_answer_in_german(worked_cases, login):
    waiting, *_ = worked_cases
    with session_scope() as session:
        from sqlmodel import select

        from serviceplus.models.tables import HumanTask

        task = session.exec(
            select(HumanTask).where(
                HumanTask.case_id == waiting.id, HumanTask.status == TaskStatus.open
            )
        ).one()
    response = login("fosa").post(f"/tasks/{task.id}/complete", data={})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bitte wählen Sie eine Entscheidung." in html
    response = login("sb.magdeburg").post(
        "/cases/new", data={"applicant_birth_date": "kein Datum", "planned_entry": "31.02."}
    )
    html = response.get_data(as_text=True)
    # wtforms' own message, from its German catalogue (WTF_I18N_ENABLED).
    assert "Not a valid" not in html and "Kein gültiges Datum." in html


def test_the_checker_finds_a_raw_code():
    """The walk fails on a raw status, a snake_case word and English."""
    codes = {"completed", "clerk"}
    found, _ = problems_of(
        "<p>Status: completed, Rolle clerk, ba_approval. This field is required.</p>"
        "<textarea>four_eyes: true</textarea><p>passport_copy.pdf</p>",
        codes,
        set(),
    )
    assert set(found) == {
        "This field is required",
        "ba_approval",
        "clerk",
        "completed",
        "is required",
    }
    assert problems_of("<p>Sabine Berger schlägt vor: Zustimmen</p>", codes, set())[0] == []


def test_recognition_body_and_ba_see_the_cases_they_worked_on(worked_cases, login):
    waiting, confirming, closed = worked_cases
    for username in ("fosa", "ba"):
        page = login(username).get("/cases/").get_data(as_text=True)
        assert confirming.reference in page and closed.reference in page, username
    # fosa has an open task of `waiting` but has not taken it: not listed.
    assert waiting.reference not in login("fosa").get("/cases/").get_data(as_text=True)
    assert confirming.reference not in login("sb.halle").get("/cases/").get_data(as_text=True)


def test_clerks_search_their_cases_by_name_number_and_employer(worked_cases, login):
    waiting, confirming, _closed = worked_cases
    client = login("sb.magdeburg")
    by_number = client.get("/cases/", query_string={"q": confirming.reference}).get_data(
        as_text=True
    )
    assert confirming.reference in by_number and waiting.reference not in by_number
    by_name = client.get("/cases/", query_string={"q": confirming.applicant_name[:5]})
    assert confirming.reference in by_name.get_data(as_text=True)
    by_employer = client.get("/cases/", query_string={"q": confirming.employer_name.upper()})
    assert confirming.reference in by_employer.get_data(as_text=True)
    nothing = client.get("/cases/", query_string={"q": "gibt es nicht"}).get_data(as_text=True)
    assert "Keine Fälle zu „gibt es nicht“ gefunden." in nothing


def test_numbers_dates_and_sizes_in_german(app):
    from datetime import UTC, datetime

    from serviceplus.webui import formatting

    with app.test_request_context("/"):
        assert formatting.file_size(410) == "0,4 KB"
        assert formatting.file_size(3 * 1024 * 1024 // 2) == "1,5 MB"
        assert formatting.de_decimal(1234.5, 1) == "1.234,5"
        # Stored in UTC, shown in German time: CET in winter, CEST in summer.
        assert formatting.de_datetime(datetime(2026, 3, 4, 5, 6, tzinfo=UTC)) == "04.03.2026 06:06"
        assert formatting.de_datetime(datetime(2026, 7, 4, 22, 6, tzinfo=UTC)) == "05.07.2026 00:06"
        assert formatting.de_datetime(datetime(2026, 7, 4, 22, 6)) == "05.07.2026 00:06"  # naive
        assert formatting.de_date(datetime(2026, 7, 4, 22, 6, tzinfo=UTC)) == "05.07.2026"
    assert formatting.number(1234567.25, 1) == "1.234.567,2"


def test_codes_inside_audit_texts_read_in_german():
    deadline = "Zustimmung der BA: Fristablauf – deemed – Zustimmungsfiktion"
    assert labels.audit_detail("task_completed", deadline) == (
        "Zustimmung der BA: Fristablauf – Zustimmung gilt als erteilt (Fristablauf)"
        " – Zustimmungsfiktion"
    )
    escalated = "Frist überschritten: Entscheidung → coordinator"
    assert labels.audit_detail("task_escalated", escalated) == (
        "Frist überschritten: Entscheidung → Koordination"
    )


def test_every_audit_action_recorded_anywhere_has_a_german_label():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    recorded = set()
    for folder in ("models", "flows", "webui", "serviceplus"):
        for path in (root / folder).rglob("*.py"):
            recorded |= set(re.findall(r'action="([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert len(recorded) > 30
    assert sorted(recorded - set(labels.AUDIT_ACTION)) == []
