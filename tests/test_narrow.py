"""The clerk's pages on a phone (390 px) without sideways scrolling, free of
serious accessibility violations, and printed without navigation or buttons."""

import threading

import pytest

from tests.helpers import EXAMPLE, drive, make_case, open_task_of

# Written on version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


@pytest.fixture(scope="module")
def live_server(app):
    """The app on a free loopback port, served from a thread for Chromium."""
    from werkzeug.serving import make_server

    from serviceplus.stack import free_port

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_pages_fit_390_px_and_print_cleanly(live_server):
    from playwright.sync_api import sync_playwright

    from tests.test_stack import CHROMIUM_ARGS, log_in, serious_violations

    long_name = "Sachsen-Anhaltinische Maschinenbaugesellschaft mbH"
    case = make_case(employer={**EXAMPLE["employer"], "name": long_name})
    drive(case)
    task = open_task_of(case)
    pages = {
        "koordination": ["/monitor/"],
        "sb.magdeburg": [
            "/inbox",
            f"/tasks/{task.id}",
            f"/cases/{case.reference}",
            "/cases/new",
            "/cases/",
        ],
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for username, urls in pages.items():
            page = browser.new_page(viewport={"width": 390, "height": 844}, locale="de-DE")
            log_in(page, live_server, username)
            page.get_by_role("button", name="Abmelden").wait_for()
            for url in urls:
                page.emulate_media(media="screen")
                page.goto(live_server + url)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (url, width)
                assert serious_violations(page) == [], url
                page.emulate_media(media="print")
                assert not page.locator("header.top").is_visible(), url
                assert page.locator("button:visible").count() == 0, url
                assert page.locator("main").is_visible(), url
            page.close()
        browser.close()
