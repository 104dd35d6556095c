"""The clerk's workbench in Chromium: the inbox, task and case pages update
without a reload when the case moves, the task page puts the documents
beside the decision on a wide screen and stacks them on a narrow one, and
axe finds no serious or critical violation on the changed pages.

The web app runs in a thread of this process (werkzeug, CSRF on, live
regions polling every second) against the test session's database and
Prefect server; cases move through the real services."""

import threading

import pytest
from werkzeug.serving import make_server

from serviceplus.models.db import session_scope
from serviceplus.models.services import assignment, human_tasks
from serviceplus.models.services.accounts import get_user
from serviceplus.models.tables import HumanTask
from tests.helpers import BLUE_CARD, BLUE_CARD_KINDS, drive, make_case, open_task_of
from tests.test_stack import CHROMIUM_ARGS, log_in, serious_violations

# Written on version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def web(database):
    from serviceplus.webui import create_app

    app = create_app({"LIVE_POLL_SECONDS": 1})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser, width=1400, height=900):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.csp_errors = []
    page.on(
        "console",
        lambda m: page.csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page


def off_loop(fn, *args, **kwargs):
    """Run fn in a plain thread: Playwright's sync API keeps an event loop
    running in this one, and Prefect's clients would then hand back
    coroutines instead of results."""
    result = {}

    def target():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(300)
    if "error" in result:
        raise result["error"]
    return result["value"]


def waiting_case():
    """A blue-card case without the CV, waiting for documents; its task."""
    case = make_case(example=BLUE_CARD, kinds=[k for k in BLUE_CARD_KINDS if k != "cv"])
    drive(case)
    return case, open_task_of(case)


def mark_loaded(page) -> None:
    """A flag that a reload or navigation would wipe out."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page) -> bool:
    return page.evaluate("window.__notReloaded === true")


def claim_as(username: str, task_id: int) -> None:
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        assignment.claim(session, task=task, user=get_user(session, username))


def test_inbox_shows_a_new_task_without_reload(web, browser):
    off_loop(lambda: drive(make_case(example=BLUE_CARD)))
    page = new_page(browser)
    log_in(page, web, "sb.magdeburg")
    page.goto(f"{web}/inbox")
    region = page.locator("#inbox-live")
    region.get_by_role("link", name="Alle (").first.wait_for()
    before = int(region.get_by_role("link", name="Alle (").inner_text().split("(")[1][:-1])
    assert serious_violations(page) == []
    mark_loaded(page)

    off_loop(lambda: drive(make_case(example=BLUE_CARD)))  # a new task arrives meanwhile

    region.get_by_role("link", name=f"Alle ({before + 1})").wait_for(timeout=TIMEOUT_MS)
    assert not_reloaded(page)

    # Rows ticked for a bulk action: the table waits rather than lose them.
    region.locator("input[name=task_ids]").first.check()
    off_loop(lambda: drive(make_case(example=BLUE_CARD)))
    page.wait_for_timeout(3000)  # three polls at 1 s
    assert region.get_by_role("link", name=f"Alle ({before + 1})").count() == 1
    assert region.locator("input[name=task_ids]:checked").count() == 1
    region.locator("input[name=task_ids]").first.uncheck()
    region.get_by_role("link", name=f"Alle ({before + 2})").wait_for(timeout=TIMEOUT_MS)
    assert page.csp_errors == []


def test_task_page_is_a_workbench_and_follows_the_case(web, browser):
    case, task = off_loop(waiting_case)
    page = new_page(browser)
    log_in(page, web, "sb.magdeburg")
    page.goto(f"{web}/tasks/{task.id}")

    # What is missing stands at the top, above the documents and the form.
    missing = page.locator(".brief .missing")
    assert "Lebenslauf in deutscher Sprache" in missing.inner_text()
    viewer = page.locator("iframe[name=viewer]").bounding_box()
    decide = page.get_by_role("heading", name="Entscheiden").bounding_box()
    assert missing.bounding_box()["y"] < viewer["y"]
    # Wide screen: the viewer beside the decision, both in the first screenful.
    assert viewer["x"] + viewer["width"] <= decide["x"]
    assert decide["y"] < 900 and viewer["y"] < 900
    save = page.get_by_role("button", name="Entscheidung speichern").bounding_box()
    assert save["y"] + save["height"] <= 900  # decided without scrolling
    assert serious_violations(page) == []
    mark_loaded(page)

    off_loop(claim_as, "sb2.magdeburg", task.id)  # a colleague takes the task meanwhile

    page.locator("#task-live").get_by_text("durch Stefan Brandt").wait_for(timeout=TIMEOUT_MS)
    assert not_reloaded(page)
    assert page.csp_errors == []

    # Narrow screen: stacked, documents first, no sideways scrolling.
    narrow = new_page(browser, width=390, height=844)
    log_in(narrow, web, "sb.magdeburg")
    narrow.goto(f"{web}/tasks/{task.id}")
    viewer = narrow.locator("iframe[name=viewer]").bounding_box()
    side = narrow.locator(".wb-side").bounding_box()
    assert viewer["y"] + viewer["height"] <= side["y"]
    assert viewer["width"] <= 390


def test_case_page_shows_the_decision_without_reload(web, browser):
    case, task = off_loop(waiting_case)
    page = new_page(browser)
    log_in(page, web, "sb.magdeburg")
    page.goto(f"{web}/cases/{case.reference}")
    row = page.locator("#case-live").get_by_role("row", name=task.title)
    assert "offen" in row.inner_text()
    assert serious_violations(page) == []
    mark_loaded(page)

    # A colleague decides: the case page shows it without a reload.
    off_loop(
        human_tasks.decide_and_resume,
        task_id=task.id,
        username="sb2.magdeburg",
        decision="received",
        reason="",
    )

    row.get_by_text("erledigt").wait_for(timeout=TIMEOUT_MS)
    assert not_reloaded(page)
    assert page.csp_errors == []


def test_new_case_form_keeps_files_and_is_accessible(web, browser, tmp_path):
    from serviceplus.demo import blank_pdf

    good, bad = tmp_path / "pass.pdf", tmp_path / "kaputt.pdf"
    good.write_bytes(blank_pdf())
    bad.write_bytes(b"not a pdf")
    page = new_page(browser)
    log_in(page, web, "sb.magdeburg")
    page.goto(f"{web}/cases/new")
    assert serious_violations(page) == []

    # Choosing the purpose swaps in its document list (htmx), marks included.
    page.get_by_label("Aufenthaltszweck").select_option("16d3")
    page.locator("#requirements").get_by_text(
        "Vereinbarung der Anerkennungspartnerschaft"
    ).wait_for(timeout=TIMEOUT_MS)
    assert "erforderlich" in page.locator("#req-partnership_agreement").inner_text()

    page.locator("#doc_passport").set_input_files(str(good))
    page.locator("#doc_qualification").set_input_files(str(bad))
    page.get_by_role("button", name="Fall anlegen und Verfahren starten").click()
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert "pass.pdf – bereits hochgeladen" in page.locator(".staged").inner_text()
    # The summary's links lead to the fields.
    summary.get_by_role("link").filter(has_text="Name der Fachkraft").click()
    assert page.evaluate("location.hash") == "#applicant_name"
    assert serious_violations(page) == []
    assert page.csp_errors == []
