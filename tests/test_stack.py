"""The system as `make run` starts it: real Prefect server, process worker
and gunicorn; driven through the CLI and through Chromium."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serviceplus.demo import EXAMPLES
from serviceplus.settings import Settings, get_settings
from serviceplus.stack import Stack
from tests.helpers import active_version

CLI = str(Path(sys.executable).parent / "serviceplus")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def stack(prefect_server):
    """Deploy from prefect.yaml, start the fork server (warm start), the worker
    and the web UI against the session's Prefect server and database. Cases
    follow version 2's path (version 3 starts with the agreement)."""
    with active_version(2):
        yield from _stack()


def _stack():
    settings = Settings(deployment="case-flow/s81a-v1", demo=True)
    running = Stack(settings, log_dir=get_settings().data_dir / "logs")
    try:
        running.deploy()
        running.start_forkserver()
        running.start_worker()
        running.start_web()
        yield running
    finally:
        running.stop()


def cli(stack: Stack, *args: str) -> dict | list:
    result = subprocess.run(
        [CLI, *args], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_example_case(stack: Stack, tmp_path: Path, key: str) -> str:
    data = json.loads((EXAMPLES / "case-18g.json").read_text(encoding="utf-8"))
    data["submission_key"] = key
    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(data), encoding="utf-8")
    started = cli(stack, "case", "start", str(case_file), "--documents", str(EXAMPLES))
    assert started["created"] and started["flow_started"]
    return started["reference"]


def task_of(stack: Stack, reference: str, step: str = "decision") -> dict | None:
    rows = cli(stack, "tasks", "--json", "--org", "abh-md")
    return next((t for t in rows if t["case"] == reference and t["step"] == step), None)


def _sent_heartbeats(reference: str) -> bool:
    """Prefect's flow-run heartbeat events of the case's run (stuck detection)."""
    from datetime import UTC, datetime, timedelta

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from serviceplus.models.services.orchestration import heartbeats_since

    named = FlowRunFilter(name=FlowRunFilterName(any_=[reference]))
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=named, limit=1)
        since = datetime.now(UTC) - timedelta(hours=1)
        return bool(wait_for(lambda: heartbeats_since(client, [run], since), 30, "a heartbeat"))


def test_cli_case_runs_to_completion_on_the_worker(stack, tmp_path):
    reference = start_example_case(stack, tmp_path, "stack-cli")
    task = wait_for(lambda: task_of(stack, reference), 120, "the decision task")
    assert (task["step"], task["options"]) == ("decision", ["approve", "reject"])
    assert _sent_heartbeats(reference), "the forked run told Prefect it was alive"

    done = cli(
        stack, "task", "complete", str(task["id"]), "--decision", "approve", "--as", "sb.magdeburg"
    )
    assert done["resumed"] is True
    check = wait_for(lambda: task_of(stack, reference, "decision.confirm"), 120, "confirmation")
    done = cli(
        stack,
        "task",
        "complete",
        str(check["id"]),
        "--decision",
        "confirm",
        "--as",
        "sb2.magdeburg",
    )
    assert done["resumed"] is True

    def completed():
        case = cli(stack, "case", "show", reference, "--json")
        return case if case["status"] == "completed" else None

    case = wait_for(completed, 120, "the case to complete")
    assert case["outcome"] == "approved"
    assert sorted(x["kind"] for x in case["letters"]) == ["fee_notice", "preapproval", "receipt"]
    # Submitting the same case again creates nothing new.
    again = cli(stack, "case", "start", str(tmp_path / "case.json"), "--documents", str(EXAMPLES))
    assert (again["reference"], again["created"]) == (reference, False)


def test_cli_rejects_bad_case_file(stack, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"organisation": "abh-md", "residence_purpose": "99"}))
    result = subprocess.run(
        [CLI, "case", "start", str(bad)], env=stack.env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "residence_purpose: Input should be" in result.stderr
    assert "applicant: Field required" in result.stderr


def test_demo_seed_returns_once_every_demo_case_is_in_an_inbox(stack):
    """What `make run` does before it says ready: afterwards a demo user
    finds the demo cases in an inbox at once, each with its documents."""
    seeded = cli(stack, "demo", "seed")
    assert len(seeded["cases"]) == 4 and seeded["not_in_inbox"] == []
    # No waiting here: the tasks are there when the command returns.
    tasks = cli(stack, "tasks", "--json")
    for reference in seeded["cases"]:
        case = cli(stack, "case", "show", reference, "--json")
        open_tasks = [t for t in tasks if t["case"] == reference]
        assert open_tasks or case["status"] in ("completed", "failed"), reference
        assert case["documents"] and all(
            d["media_type"] == "application/pdf" and d["size"] > 5000 for d in case["documents"]
        )
    # A second run reuses them.
    assert cli(stack, "demo", "seed")["cases"] == seeded["cases"]


def test_browser_login_approve_and_download_letter(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    reference = start_example_case(stack, tmp_path, "stack-browser")
    wait_for(lambda: task_of(stack, reference), 120, "the decision task")
    base = f"http://{stack.settings.host}:{stack.settings.web_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        log_in(page, base, "sb.magdeburg")
        page.get_by_role("heading", name="Aufgaben – Ausländerbehörde Magdeburg").wait_for()

        page.get_by_role("row", name=reference).get_by_role("link").click()
        page.get_by_role("button", name="Aufgabe übernehmen").click()
        page.get_by_text("Sie haben die Aufgabe übernommen.").wait_for()
        page.get_by_label("Vorabzustimmung erteilen").check()
        page.get_by_role("button", name="Entscheidung speichern").click()
        page.get_by_text("Ihre Entscheidung ist gespeichert. Der Fall wird fortgesetzt.").wait_for()
        page.get_by_role("button", name="Abmelden").click()

        # Four eyes: a second clerk confirms.
        wait_for(lambda: task_of(stack, reference, "decision.confirm"), 120, "confirmation")
        page.get_by_label("Benutzername").fill("sb2.magdeburg")
        page.get_by_label("Passwort").fill("demo")
        page.get_by_role("button", name="Anmelden").click()
        page.get_by_role("row", name=reference).get_by_role("link").click()
        page.get_by_text("Sabine Berger schlägt vor").wait_for()
        page.get_by_label("Vorschlag bestätigen: Vorabzustimmung erteilen").check()
        page.get_by_role("button", name="Entscheidung speichern").click()
        page.get_by_text("Ihre Entscheidung ist gespeichert.").wait_for()

        def shows_completed():
            page.reload()
            return "abgeschlossen – Vorabzustimmung erteilt" in page.content()

        wait_for(shows_completed, 120, "the case page to show the case completed")
        with page.expect_download() as download_info:
            page.get_by_role(
                "link", name="Vorabzustimmung im beschleunigten Fachkräfteverfahren"
            ).click()
        download = download_info.value
        assert download.suggested_filename == f"{reference}-preapproval-1.pdf"
        assert Path(download.path()).read_bytes().startswith(b"%PDF-")
        browser.close()


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill("demo")
    page.get_by_role("button", name="Anmelden").click()


def serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}x)"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_browser_claim_comment_decide_with_accessibility_checks(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    reference = start_example_case(stack, tmp_path, "stack-inbox")
    wait_for(lambda: task_of(stack, reference), 120, "the decision task")
    base = f"http://{stack.settings.host}:{stack.settings.web_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{base}/login")
        assert serious_violations(page) == []
        page.get_by_label("Benutzername").fill("sb.magdeburg")
        page.get_by_label("Passwort").fill("demo")
        page.keyboard.press("Enter")  # keyboard use: submit without the mouse
        page.get_by_role("heading", name="Aufgaben – Ausländerbehörde Magdeburg").wait_for()
        assert serious_violations(page) == []

        page.goto(f"{base}/inbox?q={reference}")
        page.get_by_role("row", name=reference).get_by_role("link").click()
        assert serious_violations(page) == []
        page.get_by_role("button", name="Aufgabe übernehmen").click()
        page.get_by_text("Sie haben die Aufgabe übernommen.").wait_for()
        page.get_by_label("Neuer Kommentar").fill("Gehalt und Vertrag geprüft.")
        page.get_by_role("button", name="Kommentar speichern").click()
        page.get_by_text("Ihr Kommentar wurde gespeichert.").wait_for()
        assert page.get_by_text("Gehalt und Vertrag geprüft.").count() == 1
        page.get_by_label("Vorabzustimmung erteilen").check()
        page.get_by_role("button", name="Entscheidung speichern").click()
        page.get_by_text("Ihre Entscheidung ist gespeichert.").wait_for()
        assert page.get_by_text("Gehalt und Vertrag geprüft.").count() == 1  # on the case page
        assert serious_violations(page) == []
        browser.close()


def test_browser_coordinator_overview_and_timeline_are_accessible(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    reference = start_example_case(stack, tmp_path, "stack-monitor")
    wait_for(lambda: task_of(stack, reference), 120, "the decision task")
    base = f"http://{stack.settings.host}:{stack.settings.web_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        log_in(page, base, "koordination")
        page.get_by_role("heading", name="Überblick – Ausländerbehörde Magdeburg").wait_for()
        assert page.get_by_role("img", name="Offene Fälle nach Schritt").count() == 1
        assert page.get_by_role("img", name="Fristtreue je Schritt und Woche").count() <= 1
        assert page.get_by_role("img", name="Durchlaufzeit abgeschlossener Fälle").count() == 1
        assert serious_violations(page) == []
        page.goto(f"{base}/monitor/cases")
        page.get_by_role("link", name=reference).click()
        page.get_by_role("heading", name=f"Verlauf {reference}").wait_for()
        assert page.get_by_text("Suspended").count() >= 1  # the run's state, from Prefect
        page.get_by_role("img", name="Weg des Falls hervorgehoben").wait_for()
        assert serious_violations(page) == []
        page.get_by_label("Grund für den Abbruch").fill("Antrag zurückgenommen")
        page.get_by_role("button", name="Fall abbrechen …").click()
        page.get_by_role("heading", name=f"Fall {reference} wirklich abbrechen?").wait_for()
        assert serious_violations(page) == []
        page.get_by_role("link", name="Nein, zurück zum Fall").click()  # nothing cancelled
        page.get_by_role("heading", name=f"Verlauf {reference}").wait_for()
        browser.close()


def test_browser_admin_pages_are_accessible(stack):
    from playwright.sync_api import sync_playwright

    base = f"http://{stack.settings.host}:{stack.settings.web_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        log_in(page, base, "admin")
        page.get_by_role("heading", name="Verwaltung: Verfahrensdefinitionen").wait_for()
        assert serious_violations(page) == []
        page.get_by_role("link", name="v1", exact=True).click()
        diagram = "Ablauf Beschleunigtes Fachkräfteverfahren (§ 81a AufenthG)"
        page.get_by_role("img", name=diagram).wait_for()
        assert serious_violations(page) == []
        page.goto(f"{base}/admin/users")
        assert serious_violations(page) == []
        page.goto(f"{base}/admin/organisation")
        page.get_by_role("heading", name="Briefeinstellungen").wait_for()
        assert serious_violations(page) == []
        page.goto(f"{base}/admin/definitions/s81a/draft")
        page.get_by_role("button", name="Prüfen und als Entwurf speichern").wait_for()
        assert serious_violations(page) == []
        text = page.get_by_label("Definition (YAML)")
        text.fill(text.input_value().replace("next: fee_notice", "next: fee_notise"))
        page.get_by_role("button", name="Prüfen und als Entwurf speichern").click()
        error = page.get_by_role("alert")
        error.get_by_text("Weg zu einem Schritt „fee_notise“, den es nicht gibt.").wait_for()
        assert "nicht erreichbar" not in error.inner_text()  # no follow-on errors
        assert serious_violations(page) == []
        page.goto(f"{base}/admin/definitions/s81a/migrate?source=1&target=1")
        assert serious_violations(page) == []
        browser.close()


def test_browser_adviser_precheck_handover_and_network_pages_are_accessible(stack):
    from playwright.sync_api import sync_playwright

    base = f"http://{stack.settings.host}:{stack.settings.web_port}"
    example = json.loads((EXAMPLES / "case-18a.json").read_text(encoding="utf-8"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        log_in(page, base, "berater.wcst")
        page.get_by_role("heading", name="Vorprüfungen – WelcomeCenter Sachsen-Anhalt").wait_for()
        assert serious_violations(page) == []
        page.get_by_role("link", name="Neue Vorprüfung").click()
        assert serious_violations(page) == []
        page.get_by_label("Zuständige Ausländerbehörde").select_option("abh-md")
        page.get_by_label("Name der Fachkraft").fill(example["applicant"]["name"])
        page.get_by_label("Geburtsdatum").fill(example["applicant"]["birth_date"])
        page.get_by_label("Staatsangehörigkeit").fill(example["applicant"]["nationality"])
        page.get_by_label("Arbeitgeber", exact=True).fill(example["employer"]["name"])
        page.get_by_label("Anschrift des Arbeitgebers").fill(example["employer"]["address"])
        for doc in example["documents"]:
            page.locator(f"#doc_{doc['kind']}").set_input_files(str(EXAMPLES / doc["file"]))
        page.get_by_role("button", name="Vorprüfung anlegen und prüfen").click()
        page.get_by_text("Die Unterlagen sind vollständig.").wait_for()
        assert serious_violations(page) == []
        page.get_by_role("button", name="Übergeben").click()
        page.get_by_role("heading", name="Stand des Verfahrens").wait_for()

        def shows_fee_notice():
            page.reload()
            return page.get_by_role("link", name="Vereinbarung und Gebührenbescheid").count() == 1

        # Not the receipt: it prints the employer's private status link.
        wait_for(shows_fee_notice, 120, "the fee notice on the progress page")
        assert page.get_by_role("link", name="Eingangsbestätigung").count() == 0
        assert serious_violations(page) == []
        page.get_by_role("button", name="Abmelden").click()
        log_in(page, base, "netzwerk")
        page.get_by_role("heading", name="Netzwerk-Überblick ServicePLUS").wait_for()
        assert (
            page.get_by_role("img", name="Vorprüfungen und Übergaben je Beratungsstelle").count()
            == 1
        )
        assert serious_violations(page) == []
        browser.close()


def test_decision_saved_while_prefect_is_down_continues_by_itself(
    stack, prefect_server, login, tmp_path
):
    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.tables import PendingResume

    reference = start_example_case(stack, tmp_path, "stack-outage")
    task = wait_for(lambda: task_of(stack, reference), 120, "the decision task")
    prefect_server.stop_process("prefect-server")
    try:
        client = login("sb.magdeburg")
        response = client.post(f"/tasks/{task['id']}/complete", data={"decision": "approve"})
        assert response.status_code == 302
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "Ihre Entscheidung ist gespeichert. Der Fall wird automatisch fortgesetzt" in page
        with session_scope() as session:
            pending = session.exec(
                select(PendingResume).where(PendingResume.task_id == task["id"])
            ).one()
            assert pending.delivered_at is None and pending.attempts == 1
    finally:
        prefect_server.start_server()
    # Nobody touches the case: the scheduled sweeper delivers the decision.
    confirmation = wait_for(
        lambda: task_of(stack, reference, "decision.confirm"), 240, "the resume"
    )
    assert confirmation["status"] == "open"


def flow_run_processes(flow_run_id: str) -> list[int]:
    """PIDs of the processes executing one flow run (found by their environment)."""
    needle = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_killed_run_is_recovered_with_exactly_one_letter_each(stack, tmp_path):
    import os
    import signal

    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.services.cases import get_by_reference
    from serviceplus.models.tables import HumanTask, Letter

    def letters(case_id):
        with session_scope() as session:
            return [x.kind for x in session.exec(select(Letter).where(Letter.case_id == case_id))]

    def has_tasks(case_id):
        with session_scope() as session:
            return session.exec(select(HumanTask).where(HumanTask.case_id == case_id)).first()

    # Kill the run's processes right after the first letter is written; if a
    # run is too quick to catch, try the next case (bounded).
    for attempt in range(5):
        reference = start_example_case(stack, tmp_path, f"stack-kill-{attempt}")
        with session_scope() as session:
            case = get_by_reference(session, reference)
        deadline = time.monotonic() + 120
        while "receipt" not in letters(case.id) and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = flow_run_processes(case.flow_run_id)
        if pids and not has_tasks(case.id):
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            break
    else:
        raise AssertionError("no run could be caught between its steps")

    task = wait_for(lambda: task_of(stack, reference), 240, "recovery to the decision task")
    assert task["step"] == "decision"
    kinds = letters(case.id)
    assert sorted(kinds) == ["fee_notice", "receipt"], kinds
    shown = cli(stack, "case", "show", reference, "--json")
    assert any(e["action"] == "flow_retried" for e in shown["history"])


def test_cancel_from_monitoring_stops_a_running_child(stack, tmp_path):
    """A coordinator cancels a case while its run is in the middle of a step:
    the worker stops the fork server's child (Cancelling, then SIGTERM through
    serviceplus.flowrun) and Prefect marks the run Cancelled. The step reads
    a document that is a named pipe, so it could never end by itself."""
    import hashlib
    import os
    import shutil

    from sqlmodel import select

    from serviceplus.models.db import session_scope
    from serviceplus.models.services import runs
    from serviceplus.models.services.cases import get_by_reference
    from serviceplus.models.services.orchestration import flow_run_state
    from serviceplus.models.tables import Case, HumanTask

    documents = tmp_path / "documents"
    shutil.copytree(EXAMPLES, documents, ignore=shutil.ignore_patterns("*.json"))
    # A passport of this test's own bytes, stored in advance as a named pipe
    # (the storage is content-addressed and keeps a file it already has).
    passport = (documents / "passport.pdf").read_bytes() + f"%{tmp_path.name}\n".encode()
    (documents / "passport.pdf").write_bytes(passport)
    digest = hashlib.sha256(passport).hexdigest()
    pipe = stack.settings.storage_dir / digest[:2] / digest[2:4] / digest
    pipe.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(pipe)
    try:
        data = json.loads((EXAMPLES / "case-18g.json").read_text(encoding="utf-8"))
        data["submission_key"] = "stack-cancel-running"
        (tmp_path / "case.json").write_text(json.dumps(data), encoding="utf-8")
        started = cli(stack, "case", "start", str(tmp_path / "case.json"),
                      "--documents", str(documents))  # fmt: skip
        with session_scope() as session:
            case = get_by_reference(session, started["reference"])
        run_id = case.flow_run_id

        wait_for(lambda: flow_run_processes(run_id), 120, "the run's processes")
        assert wait_for(lambda: flow_run_state(run_id) == "Running", 60, "the run to start")
        time.sleep(2)  # still there: the step waits for the document
        assert flow_run_processes(run_id) and flow_run_state(run_id) == "Running"

        with session_scope() as session:
            runs.cancel(session, case=session.get(Case, case.id), actor="koordination",
                        reason="Antrag zurückgenommen")  # fmt: skip
        wait_for(lambda: not flow_run_processes(run_id), 90, "the child to be stopped")
        wait_for(lambda: flow_run_state(run_id) == "Cancelled", 60, "the run to be Cancelled")
        with session_scope() as session:
            case = session.get(Case, case.id)
            assert (case.status, case.outcome) == ("cancelled", "cancelled")
            assert not session.exec(
                select(HumanTask).where(HumanTask.case_id == case.id)
            ).first()  # the step never got to its task
        log = (stack.log_dir / "forkserver.log").read_text()
        assert re.search(rf"flow run {run_id}: child \d+ for case-flow\n", log)
    finally:
        pipe.unlink()


def test_dead_worker_is_restarted_and_cases_go_on(stack, tmp_path):
    import os
    import signal

    (worker,) = [proc for name, proc in stack.procs if name == "prefect-worker"]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    stack.heal()  # notices the death and schedules the restart (1 s back-off)
    assert worker not in [proc for _, proc in stack.procs]

    def restarted():
        stack.heal()
        return [p for name, p in stack.procs if name == "prefect-worker" and p.poll() is None]

    wait_for(restarted, 30, "the worker to be restarted")
    reference = start_example_case(stack, tmp_path, "stack-healed")
    assert wait_for(lambda: task_of(stack, reference), 240, "the decision task")


def test_dead_prefect_server_stops_the_stack_with_a_clear_message(tmp_path):
    # A stand-in process under the server's name: the real one serves the session.
    settings = Settings(deployment="case-flow/s81a-v1", demo=True)
    other = Stack(settings, web=False, log_dir=tmp_path)
    gone = other._spawn("prefect-server", [sys.executable, "-c", "raise SystemExit(3)"])
    gone.wait()
    with pytest.raises(RuntimeError, match="prefect-server exited with 3; the stack cannot work"):
        other.heal()
    other.stop()


def test_runs_execute_in_children_of_the_fork_server(stack, tmp_path):
    """The warm path: the run's work happens in a child of the fork server
    (the engine is not imported again); the worker's process only waits."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services.cases import get_by_reference

    (server,) = [proc for name, proc in stack.procs if name == "forkserver"]
    reference = start_example_case(stack, tmp_path, "stack-warm")
    assert wait_for(lambda: task_of(stack, reference), 240, "the decision task")
    with session_scope() as session:
        flow_run_id = get_by_reference(session, reference).flow_run_id
    log = (stack.log_dir / "forkserver.log").read_text()
    # Forked, not started cold, for the flow its deployment names (prefect.yaml).
    assert re.search(rf"flow run {flow_run_id}: child \d+ for case-flow\n", log)
    assert " exited 0 after " in log
    assert server.poll() is None


def test_forked_children_do_not_watch_for_outside_suspension():
    """The child skips the websocket Prefect opens for a suspension requested
    through the API (serviceplus/forkserver.py says why); a Prefect version
    that renames the hook must fail here, not silently keep the slow path."""
    code = (
        "import prefect.flow_engine as engine\n"
        "from serviceplus.forkserver import skip_outside_suspension_watch\n"
        "assert engine.observe_flow_run_suspension.__module__ == "
        "'prefect._flow_run_suspension'\n"
        "skip_outside_suspension_watch()\n"
        "assert engine.observe_flow_run_suspension.__module__ == 'serviceplus.forkserver'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_killed_fork_server_is_restarted_and_runs_go_on_meanwhile(stack, tmp_path):
    import os
    import signal

    (server,) = [proc for name, proc in stack.procs if name == "forkserver"]
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    # Meanwhile a new run falls back to the plain engine and still gets going.
    reference = start_example_case(stack, tmp_path, "stack-no-forkserver")
    assert wait_for(lambda: task_of(stack, reference), 240, "the decision task")

    def restarted():
        stack.heal()
        return [p for name, p in stack.procs if name == "forkserver" and p.poll() is None]

    wait_for(restarted, 120, "the fork server to be restarted")
    second = start_example_case(stack, tmp_path, "stack-forkserver-back")
    assert wait_for(lambda: task_of(stack, second), 240, "the decision task")


def test_fork_server_refuses_to_fork_from_a_process_with_threads(tmp_path):
    """Prefect's engine deadlocks in a child forked while engine threads run
    (Prefect PR 16802): the server forks only from a thread-free parent."""
    import threading

    from serviceplus.forkserver import ForkServer

    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, name="engine-like")
    busy.start()
    try:
        with pytest.raises(RuntimeError, match="refusing to fork"):
            ForkServer(tmp_path / "fs.sock")
    finally:
        stop.set()
        busy.join()


LAUNCHER = """
import sys, time
from pathlib import Path
from serviceplus.settings import Settings
from serviceplus.stack import Stack
part = Stack(Settings(), web=False, log_dir=Path(sys.argv[1]))._spawn("part", ["sleep", "300"])
print(part.pid, flush=True)
time.sleep(300)
"""


def test_parts_do_not_outlive_a_launcher_killed_with_sigkill(tmp_path):
    """kill -9 gives the launcher no chance to stop its parts: the kernel
    does it (die_with_parent), so nothing is left holding ports."""
    import os
    import signal

    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    with launcher.stdout:
        part_pid = int(launcher.stdout.readline())
    os.kill(part_pid, 0)  # running
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()

    def part_gone():
        try:
            os.kill(part_pid, 0)
        except ProcessLookupError:
            return True
        # Dead but not yet reaped by init counts as gone.
        return Path(f"/proc/{part_pid}/stat").read_text().split()[2] == "Z"

    assert wait_for(part_gone, 30, "the part to stop with its launcher")


def test_health_command_checks_each_part(stack):
    from serviceplus.stack import free_port

    def health(*args):
        return subprocess.run(
            [CLI, "health", *args], env=stack.env, capture_output=True, text=True, timeout=60
        )

    web = f"http://{stack.settings.host}:{stack.settings.web_port}"
    good = health("--web", web, "--forkserver")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.split() == [
        *("database:", "ok", "prefect:", "ok", "web:", "ok", "forkserver:", "ok")
    ]
    bad = health("--web", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    assert bad.returncode == 1
    assert "web: failed" in bad.stdout
    assert "prefect: ok" in bad.stdout
    assert "bad request" not in (stack.log_dir / "forkserver.log").read_text()
