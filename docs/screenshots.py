"""The screenshots in docs/user-guide.md, taken from the running demo.

Starts `serviceplus run` in demo mode in a temporary data directory on free
ports (as `make run` does, but beside anything else running), waits until
the demo is seeded, and photographs the key pages in Chromium (Debian's
`chromium`, driven by Playwright): the inbox, a task page wide and at
390 px, a case page, the new-case form and the coordinators' overview.

Usage: .venv/bin/python docs/screenshots.py [--out docs/images]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def start_demo() -> tuple[subprocess.Popen, str]:
    sys.path.insert(0, str(ROOT))
    from serviceplus.stack import die_with_parent, free_port

    web_port = free_port()
    data_dir = tempfile.mkdtemp(prefix="serviceplus-screenshots-")
    env = dict(os.environ, SERVICEPLUS_DEMO="1", SERVICEPLUS_DATA_DIR=data_dir)
    env.update(SERVICEPLUS_WEB_PORT=str(web_port), SERVICEPLUS_PREFECT_PORT=str(free_port()))
    for name in ("DATABASE_URL", "PREFECT_API_URL", "SERVICEPLUS_DATABASE_URL"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "serviceplus"), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    for line in proc.stdout:  # "ServicePLUS läuft" comes once the demo is seeded
        print(line, end="")
        if "läuft" in line:
            return proc, f"http://127.0.0.1:{web_port}"
    raise RuntimeError("serviceplus run ended before it was ready")


def logged_in(browser, base: str, username: str, width: int = 1400, height: int = 900):
    """A page of a fresh browser context (its own cookies) with `username` logged in."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill("demo")
    page.get_by_role("button", name="Anmelden").click()
    return page


def shoot(page, out: Path, name: str, full_page: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / f"{name}.png"), full_page=full_page)
    print(f"wrote {out / name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    proc, base = start_demo()
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = logged_in(browser, base, "sb.magdeburg")
            page.goto(f"{base}/inbox")
            shoot(page, args.out, "inbox")
            page.locator("table a[href*='/tasks/']").first.click()
            shoot(page, args.out, "task")
            page.locator(".crumbs a[href*='/cases/']").first.click()
            shoot(page, args.out, "case", full_page=True)
            page.goto(f"{base}/cases/new")
            shoot(page, args.out, "new-case")
            page = logged_in(browser, base, "koordination")
            page.goto(f"{base}/monitor/")
            shoot(page, args.out, "overview")

            phone = logged_in(browser, base, "sb.magdeburg", width=390, height=844)
            phone.goto(f"{base}/inbox")
            phone.locator("table a[href*='/tasks/']").first.click()
            shoot(phone, args.out, "task-390px")
            browser.close()
    finally:
        os.killpg(proc.pid, 2)
        proc.wait(60)


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"done in {time.monotonic() - start:.0f} s")
