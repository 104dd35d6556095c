"""Coordinator figures from a seeded set with known answers; incidents and
retry on the real Prefect server."""

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlmodel import select

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import (
    accounts,
    audit,
    monitoring,
    orchestration,
    runs,
    storage,
)
from serviceplus.models.services.orchestration import HEARTBEAT
from serviceplus.models.tables import Case, Document, HumanTask, Organisation, Role, User
from tests.helpers import (
    BLUE_CARD,
    drive,
    executions,
    make_case,
    open_task_of,
    other_writer_locked_out,
    reload,
)

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


NOW = clock.now()


def rescheduled(run_id: str) -> bool:
    """Scheduled again by the app: "Retrying", or "Late" once Prefect finds
    it due for over 15 s (a retried run keeps its earlier place in the line)."""
    state = orchestration.flow_run_state(run_id)
    return state in ("Retrying", "Late") and orchestration.rescheduled_by_app(run_id)


def _case(session, org, n, created, closed=None, step="decision", status="waiting"):
    case = Case(
        reference=f"MON-{org.id}-{n}",
        submission_key=f"mon-{org.id}-{n}",
        organisation_id=org.id,
        applicant_name=f"A{n}",
        applicant_birth_date=date(1990, 1, 1),
        applicant_nationality="x",
        employer_name="E",
        employer_address="X",
        residence_purpose="18a",
        status=status,
        current_step=step,
        definition_name="s81a",
        definition_version=1,
        created_by="t",
        created_at=created,
        closed_at=closed,
    )
    session.add(case)
    session.flush()
    return case


def _task(session, case, step, created, due, completed=None, org_id=None, role="clerk"):
    session.add(
        HumanTask(
            case_id=case.id,
            step_key=step,
            attempt=1,
            title=step,
            role=role,
            organisation_id=org_id or case.organisation_id,
            flow_run_id="-",
            created_at=created,
            due_at=due,
            completed_at=completed,
            status="completed" if completed else "open",
            completed_by="x" if completed else None,
        )
    )


@pytest.fixture(scope="module")
def org(database):
    """A fresh organisation with a known set of cases and tasks."""
    d = timedelta(days=1)
    with session_scope() as session:
        org = Organisation(slug="abh-mon", name="ABH Monitoring", kind="abh")
        session.add(org)
        session.flush()
        password_hash = accounts.hash_password("demo")
        session.add(
            User(
                username="koord.mon",
                full_name="K",
                role=Role.coordinator,
                organisation_id=org.id,
                password_hash=password_hash,
            )
        )
        ba = accounts.get_organisation(session, "ba")
        c1 = _case(session, org, 1, NOW - 20 * d)
        c2 = _case(session, org, 2, NOW - 10 * d, step="ba_approval")
        done = {"step": "closed", "status": "completed"}
        c3 = _case(session, org, 3, NOW - 30 * d, closed=NOW - 2 * d, **done)
        c4 = _case(session, org, 4, NOW - 40 * d, closed=NOW - 20 * d, **done)
        # Completed in time (2 days, due after 14), late (10 days, due after 7), in time (4 days).
        _task(session, c3, "decision", NOW - 10 * d, NOW + 4 * d, completed=NOW - 8 * d)
        _task(
            session,
            c3,
            "ba_approval",
            NOW - 20 * d,
            NOW - 13 * d,
            completed=NOW - 10 * d,
            org_id=ba.id,
        )
        _task(session, c4, "decision", NOW - 30 * d, NOW - 16 * d, completed=NOW - 26 * d)
        # Open: one overdue at the BA, one in time at the authority.
        _task(session, c2, "ba_approval", NOW - 9 * d, NOW - 2 * d, org_id=ba.id)
        _task(session, c1, "decision", NOW - 3 * d, NOW + 11 * d)
        return org.id


def test_cases_by_step_and_open_tasks(org):
    with session_scope() as session:
        assert sorted(monitoring.cases_by_step(session, org)) == [
            ("ba_approval", 1),
            ("decision", 1),
        ]
        assert monitoring.open_tasks_by_role(session, org, NOW) == [
            ("ABH Monitoring", "clerk", 1, 0),
            ("Bundesagentur für Arbeit", "clerk", 1, 1),
        ]


def test_deadline_compliance(org):
    with session_scope() as session:
        assert monitoring.compliance(session, org, NOW, 30) == [
            ("ba_approval", 1, 0.0),
            ("decision", 2, 100.0),
        ]
        # The decision of c4, 26 days ago, falls out of a 14-day window.
        assert monitoring.compliance(session, org, NOW, 14) == [
            ("ba_approval", 1, 0.0),
            ("decision", 1, 100.0),
        ]


def test_cycle_times(org):
    with session_scope() as session:
        steps = {row[0]: row[1:] for row in monitoring.step_cycle_times(session, org)}
        assert steps["decision"] == (2, 3.0, 4.0)  # 2 and 4 days: median 3, p90 4
        assert steps["ba_approval"] == (1, 10.0, 10.0)
        assert monitoring.case_cycle_times(session, org) == (2, 24.0, 28.0)  # 28 and 20 days


def test_weekly_throughput_and_bottlenecks(org):
    with session_scope() as session:
        weeks = monitoring.weekly_throughput(session, org, NOW)
        assert sum(s for _, s, _ in weeks) == 4 and sum(f for _, _, f in weeks) == 2
        top = monitoring.bottlenecks(session, org, NOW)
        assert [(r[0], r[1], r[3], r[5]) for r in top] == [
            ("ba_approval", "Bundesagentur für Arbeit", 1, 9.0),
            ("decision", "ABH Monitoring", 1, 3.0),
        ]


def test_due_work_per_person_and_body(org):
    with session_scope() as session:
        # 3 days ahead: only the BA's overdue task; 12 days: the authority's too.
        assert [t.overdue for t in monitoring.due_work(session, org, NOW, timedelta(days=3))] == [
            True
        ]
        due = monitoring.due_work(session, org, NOW, timedelta(days=12))
    assert [(t.step_key, t.overdue) for t in due] == [("ba_approval", True), ("decision", False)]
    assert monitoring.due_work_by(due, lambda t: t.organisation) == [
        ("Bundesagentur für Arbeit", 1, 0),
        ("ABH Monitoring", 0, 1),
    ]
    assert monitoring.due_work_by(due, lambda t: t.assignee or "offen") == [("offen", 1, 1)]


def test_compliance_trend_and_cycle_time_distribution(org):
    week = monitoring._week
    with session_scope() as session:
        weeks, by_step = monitoring.compliance_trend(session, org, NOW)
        counts = monitoring.cycle_time_distribution(session, org)
    assert len(weeks) == 12 and weeks[-1] == week(NOW)
    decision = dict(zip(weeks, by_step["decision"], strict=True))
    ba = dict(zip(weeks, by_step["ba_approval"], strict=True))
    # decision: in time 8 and 26 days ago; BA: late 10 days ago.
    assert decision[week(NOW - timedelta(days=8))] == 100.0
    assert decision[week(NOW - timedelta(days=26))] == 100.0
    assert ba[week(NOW - timedelta(days=10))] == 0.0
    assert sum(v is not None for v in by_step["decision"]) == 2
    assert sum(v is not None for v in by_step["ba_approval"]) == 1
    # closed cases took 28 days (4 full weeks) and 20 days (2 full weeks)
    assert counts == [0, 0, 1, 0, 1] + [0] * 8


def test_overview_snapshot_holds_the_hand_counted_figures(org):
    """The precomputed figures are the hand-counted ones, also after the
    round trip through the database (JSON). Runs before the sweeper tests
    below, which act on the overdue BA task."""
    from serviceplus.models.services import overview
    from serviceplus.models.tables import OverviewSnapshot
    from serviceplus.webui import monitor

    assert set(overview.FIGURES) == set(monitor.FIGURES)
    with session_scope() as session:
        overview.refresh(session, org, NOW)
    with session_scope() as session:
        figures = session.get(OverviewSnapshot, org).figures
    tables = figures["tables"]
    assert tables["open_tasks"] == [
        ["ABH Monitoring", "clerk", 1, 0],
        ["Bundesagentur für Arbeit", "clerk", 1, 1],
    ]
    assert tables["case_cycle"] == [[2, 24.0, 28.0]]
    assert sorted(tables["cases_by_step"]) == [["ba_approval", 1], ["decision", 1]]
    # due within 3 days (SERVICEPLUS_SOON_DUE): only the BA's overdue task, nobody's yet
    assert (figures["overdue"], figures["due_soon"], figures["soon_days"]) == (1, 0, 3)
    assert figures["due_by_body"] == [["Bundesagentur für Arbeit", 1, 0]]
    assert figures["due_by_person"] == [["", "clerk", "Bundesagentur für Arbeit", 1, 0]]
    assert figures["cycle_distribution"] == [0, 0, 1, 0, 1] + [0] * 8
    assert figures["compliance_trend"]["by_step"]["ba_approval"].count(0.0) == 1


def test_german_numbers_and_durations():
    from serviceplus.webui import formatting

    assert formatting.number(1234567.891, 1) == "1.234.567,9"
    assert formatting.percent(100.0) == "100,0 %"
    assert formatting.duration(3 / 24) == "3,0 Std."  # not "0,1 Tage"
    assert formatting.duration(0.25 / 24) == "15 Min."
    assert formatting.duration(2.5) == "2,5 Tage"
    assert formatting.week("2026-W07") == "KW 7/2026"


def test_overview_reads_german(org, login):
    page = login("koord.mon").get("/monitor/").get_data(as_text=True)
    assert "Zustimmung der Bundesagentur für Arbeit" in page  # step title, not ba_approval
    assert "Sachbearbeitung" in page and ">clerk<" not in page
    assert "100,0 %" in page and "100.0" not in page
    assert "<svg" in page and "Engpässe" in page
    assert "Überfällige Aufgaben</dt><dd>1</dd>" in page
    assert 'aria-label="Fristtreue je Schritt und Woche"' in page and "<polyline" in page
    assert 'aria-label="Durchlaufzeit abgeschlossener Fälle"' in page
    assert f"/monitor/cases/MON-{org}-2#task-" in page  # a link to the overdue task


def test_csv_for_german_excel_and_only_own_organisation(org, login):
    client = login("koord.mon")
    with client.get("/monitor/figures/open_tasks.csv") as response:
        assert response.status_code == 200
        raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == "Organisation;Rolle;offen;überfällig"
    assert "Bundesagentur für Arbeit;Sachbearbeitung;1;1" in lines
    with client.get("/monitor/figures/step_cycle.csv") as response:
        lines = response.get_data().decode("utf-8-sig").splitlines()
    assert lines[0] == "Schritt;Anzahl;Median (Stunden);90. Perzentil (Stunden)"
    # decision: 2 and 4 days -> median 72 hours, p90 96 hours
    assert "Entscheidung über die Vorabzustimmung;2;72;96" in lines
    with client.get("/monitor/figures/compliance_30.csv") as response:
        lines = response.get_data().decode("utf-8-sig").splitlines()
    assert "Zustimmung der Bundesagentur für Arbeit;1;0" in lines
    assert client.get("/monitor/figures/nonsense.csv").status_code == 404
    assert client.get(f"/monitor/cases/MON-{org}-1").status_code == 200
    assert login("koordination").get(f"/monitor/cases/MON-{org}-1").status_code == 404
    assert login("sb.magdeburg").get("/monitor/").status_code == 403
    assert login("sb.magdeburg").get("/monitor/figures/open_tasks.xlsx").status_code == 403


def test_xlsx_holds_numbers(org, login):
    import io

    from openpyxl import load_workbook

    with login("koord.mon").get("/monitor/figures/compliance_30.xlsx") as response:
        assert response.status_code == 200
        book = load_workbook(io.BytesIO(response.get_data()))
    rows = list(book.active.values)
    assert rows[0] == ("Schritt", "erledigt", "in Frist (%)")
    assert ("Entscheidung über die Vorabzustimmung", 2, 100) in rows


def test_failed_step_is_an_incident_and_retry_completes_without_repeats(login):
    case = make_case(example=BLUE_CARD)
    with session_scope() as session:
        doc = session.exec(select(Document).where(Document.case_id == case.id)).first()
    path = storage.resolve(doc.storage_path)
    saved = path.read_bytes()
    # Every test case shares the same blank PDF; hide it from the check, as a
    # storage outage would.
    path.unlink()
    try:
        assert drive(case) == "Failed"
    finally:
        path.write_bytes(saved)
    assert reload(case).status == "failed"
    with session_scope() as session:
        found = [i for i in monitoring.incidents(session, "abh-md") if i["case"].id == case.id]
    assert found and "No such file" in found[0]["message"] and found[0]["step"] == "completeness"
    # Whose incident it is follows the case in the app database, not the
    # run's organisation tag (a hand-over that could not retag the run).
    with session_scope() as session:
        halle = accounts.get_organisation(session, "abh-hal").id
        session.execute(sa.update(Case).where(Case.id == case.id).values(organisation_id=halle))
        assert case.id in [i["case"].id for i in monitoring.incidents(session, "abh-hal")]
        assert case.id not in [i["case"].id for i in monitoring.incidents(session, "abh-md")]
        session.rollback()

    client = login("koordination")
    assert reload(case).reference in client.get("/monitor/incidents").get_data(as_text=True)
    response = client.post(f"/monitor/cases/{case.reference}/retry")
    assert response.status_code == 302
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "decision"
    assert executions(case) == {"intake#1": 1, "fee_notice#1": 1, "completeness#1": 1}


def test_cancel_case_asks_first_then_shows_a_german_state(login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    client = login("koordination")
    url = f"/monitor/cases/{case.reference}/cancel"
    refused = client.post(url, data={"reason": ""})
    assert "Bitte geben Sie einen Grund" in client.get(refused.headers["Location"]).get_data(
        as_text=True
    )
    detail = client.get(f"/monitor/cases/{case.reference}").get_data(as_text=True)
    assert "Weg des Falls hervorgehoben" in detail and 'fill="#ffd966"' in detail
    assert "angehalten, wartet auf eine Entscheidung" in detail  # Prefect's "Suspended"
    assert "Entscheidung über die Vorabzustimmung" in detail  # the timeline, by title
    asked = client.post(url, data={"reason": "Antrag zurückgenommen"})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "wirklich abbrechen" in page
    assert "Entscheidung über die Vorabzustimmung" in page  # the task that will close
    assert reload(case).status == "waiting"  # asking changed nothing
    client.post(url, data={"reason": "Antrag zurückgenommen", "confirmed": "yes"})
    assert (reload(case).status, reload(case).outcome) == ("cancelled", "cancelled")
    with session_scope() as session:
        task = session.exec(select(HumanTask).where(HumanTask.case_id == case.id)).one()
    assert task.status == "cancelled"
    detail = client.get(f"/monitor/cases/{case.reference}").get_data(as_text=True)
    assert "<dd>abgebrochen</dd>" in detail and "cancelled" not in detail


def _lose_the_process(case) -> None:
    """The run's state as a worker killed with -9 leaves it: Running, no process."""
    from uuid import UUID

    from prefect import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(reload(case).flow_run_id), Running(), force=True)


def test_run_without_a_process_is_listed_and_recovered_by_the_sweeper():
    from serviceplus.models.services.sweeper import sweep

    case = make_case(example=BLUE_CARD)
    _lose_the_process(case)
    with session_scope() as session:
        listed = monitoring.incidents(session, "abh-md", stuck_after=timedelta(0))
        assert [i["stuck"] for i in listed if i["case"].id == case.id] == [True]
        # Not yet stuck by the default rule (2 minutes).
        assert case.id not in [i["case"].id for i in monitoring.incidents(session, "abh-md")]

    report = sweep(stuck_after=timedelta(0))
    assert report.stuck_crashed >= 1 and report.crashed_retried >= 1
    assert rescheduled(reload(case).flow_run_id)
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "decision"
    with session_scope() as session:
        actions = [e.action for e in audit.events_for_case(session, case.id)]
    assert "flow_stuck" in actions and "flow_retried" in actions


def _send_heartbeat(flow_run_id: str):
    """A heartbeat as the engine of a live run sends it; back when it is stored."""
    import time
    from datetime import UTC, datetime
    from uuid import uuid4

    from prefect import get_client

    resource = f"prefect.flow-run.{flow_run_id}"
    sent = datetime.now(UTC)
    event = {"id": str(uuid4()), "occurred": sent.isoformat(), "event": HEARTBEAT,
             "resource": {"prefect.resource.id": resource}}  # fmt: skip
    with get_client(sync_client=True) as client:
        client.request("POST", "/events", json=[event])
        for _ in range(100):  # the server stores events a moment later
            if orchestration.heartbeats_since(client, [_Run(flow_run_id)], sent):
                return sent
            time.sleep(0.2)
    raise AssertionError("the heartbeat was not stored")


class _Run:
    def __init__(self, flow_run_id: str):
        from uuid import UUID

        self.id = UUID(flow_run_id)


def test_a_run_that_sends_heartbeats_is_not_stuck():
    """Stuck means: no state change and no heartbeat within `stuck_after`."""
    import time
    from datetime import UTC, datetime

    alive, dead = make_case(example=BLUE_CARD), make_case(example=BLUE_CARD)
    _lose_the_process(alive)
    _lose_the_process(dead)
    time.sleep(1)
    heartbeat = _send_heartbeat(reload(alive).flow_run_id)
    running_since = max(
        orchestration.stuck_case_runs(timedelta(0), tag="abh-md"), key=lambda r: r.state.timestamp
    ).state.timestamp
    # A window that starts after both runs went Running and before the heartbeat.
    window = datetime.now(UTC) - (running_since + (heartbeat - running_since) / 2)
    stuck = {str(run.id) for run in orchestration.stuck_case_runs(window, tag="abh-md")}
    assert reload(dead).flow_run_id in stuck
    assert reload(alive).flow_run_id not in stuck


def test_coordinator_retries_a_stuck_run(login, monkeypatch):
    from serviceplus.settings import get_settings

    case = make_case(example=BLUE_CARD)
    _lose_the_process(case)
    client = login("koordination")
    refused = client.post(f"/monitor/cases/{case.reference}/retry", follow_redirects=True)
    assert "Nur Fälle mit Störung" in refused.get_data(as_text=True)  # not stuck long enough
    monkeypatch.setattr(get_settings(), "stuck_after", timedelta(0))
    page = client.get("/monitor/incidents").get_data(as_text=True)
    assert case.reference in page and "hängt (kein Prozess)" in page
    client.post(f"/monitor/cases/{case.reference}/retry")
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "decision"


def test_run_crashed_while_suspended_waits_again_and_takes_the_saved_decision():
    """A process killed just after its run suspended makes the worker report
    the run Crashed, which ends the suspension (found by bench/chaos.py).
    Retried, the run must suspend anew, not fail on the missing input."""
    from serviceplus.models.services.orchestration import flow_run_state, mark_crashed
    from serviceplus.models.services.sweeper import sweep
    from tests.helpers import decide, letters_of

    case = make_case(example=BLUE_CARD)
    assert drive(case) == "Suspended"
    assert decide(open_task_of(case), "approve")
    assert drive(case) == "Suspended"
    confirmation = open_task_of(case)
    assert confirmation.step_key == "decision.confirm"
    assert mark_crashed(reload(case).flow_run_id, "Process exited with status code: -9")

    assert not decide(confirmation, "confirm", username="sb2.magdeburg")  # saved, not delivered
    assert sweep().crashed_retried >= 1
    assert drive(case) == "Suspended"  # again, under a new key
    assert sweep(grace=timedelta(0)).resumed >= 1  # the saved confirmation
    assert flow_run_state(reload(case).flow_run_id) != "Suspended"
    assert drive(case) == "Completed"
    assert reload(case).outcome == "approved"
    assert [x.kind for x in letters_of(case)].count("preapproval") == 1


def test_crash_retries_are_counted_since_the_case_last_moved_on():
    """Three crashes in a row without progress: the run stays an incident. A
    case that moved on between crashes (a task opened) is retried again."""
    from serviceplus.models.services.orchestration import flow_run_state, mark_crashed
    from serviceplus.models.services.sweeper import MAX_CRASH_RETRIES, sweep

    case = make_case(example=BLUE_CARD)
    run_id = reload(case).flow_run_id
    for _ in range(MAX_CRASH_RETRIES):  # dies before its first step, every time
        assert mark_crashed(run_id, "Process exited with status code: -9")
        sweep()
        assert rescheduled(run_id)
    assert mark_crashed(run_id, "Process exited with status code: -9")
    sweep()
    assert flow_run_state(run_id) == "Crashed"  # left for the coordinator
    with session_scope() as session:
        incidents = monitoring.incidents(session, "abh-md")
    assert case.id in [i["case"].id for i in incidents]

    # Run by the coordinator's retry, the case moves on to its first task;
    # a later crash is retried again.
    with session_scope() as session:
        assert runs.retry(session, case=session.get(Case, case.id), actor="koordination")
    assert drive(case) == "Suspended"
    assert mark_crashed(run_id, "Process exited with status code: -9")
    sweep()
    assert rescheduled(run_id)
    assert drive(case) == "Suspended"


def test_one_rule_says_when_a_coordinator_may_retry():
    """runs.can_retry serves the case page, the incidents page and the retry
    itself."""

    def case(status: str) -> Case:
        return Case(reference="ABH-MD-2026-999999", status=status, flow_run_id="run")

    assert runs.can_retry(case("failed"), None)
    assert runs.can_retry(case("waiting"), "Running", stuck=True)
    for ended in ("Crashed", "Cancelled", "Failed"):
        assert runs.can_retry(case("running"), ended)
        assert not runs.can_retry(case("completed"), ended)
    assert not runs.can_retry(case("waiting"), "Suspended")
    assert not runs.can_retry(case("running"), "Running")
    assert not runs.can_retry(case("cancelled"), "Cancelled")


def _database_error() -> sa.exc.OperationalError:
    """A real one: nothing listens on port 1."""
    try:
        sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none").connect()
    except sa.exc.OperationalError as error:
        return error
    raise AssertionError("port 1 answered")


def _prefect_server_error() -> Exception:
    """What Prefect's client raises for a 500 from the server."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    request = httpx.Request("POST", "http://127.0.0.1/api/flow_runs/x/set_state")
    try:
        httpx.Response(500, request=request).raise_for_status()
    except httpx.HTTPStatusError as error:
        return PrefectHTTPStatusError.from_httpx_error(error)
    raise AssertionError("a 500 did not raise")


def test_steps_are_retried_when_the_database_was_away_and_only_then():
    from prefect.states import Failed

    from serviceplus.flows.case_flow import database_was_away

    assert database_was_away(None, None, Failed(data=_database_error()))
    assert not database_was_away(None, None, Failed(data=ValueError("bad data")))
    assert not database_was_away(None, None, Failed(message="no exception kept"))


def test_run_failed_on_an_absent_database_is_retried_by_the_sweeper():
    """A run that failed because the app database was away longer than its
    steps' retries waited is recovered like a crashed one; a run whose code
    failed otherwise stays an incident."""
    from prefect import get_client
    from prefect.states import Failed, format_exception

    from serviceplus.models.services.orchestration import flow_run_state
    from serviceplus.models.services.sweeper import sweep

    def fail(case, error):
        with session_scope() as session:
            session.execute(sa.update(Case).where(Case.id == case.id).values(status="failed"))
        message = f"Flow run encountered an exception: {format_exception(error)}"
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                UUID(reload(case).flow_run_id), Failed(message=message), force=True
            )

    away, broken = make_case(example=BLUE_CARD), make_case(example=BLUE_CARD)
    server_away = make_case(example=BLUE_CARD)
    fail(away, _database_error())
    fail(broken, KeyError("missing field"))
    fail(server_away, _prefect_server_error())  # its own database restarting (bench.chaos)
    sweep()
    for case in (away, server_away):
        assert rescheduled(reload(case).flow_run_id)
        assert reload(case).status == "running"  # no longer shown as an incident
    assert flow_run_state(reload(broken).flow_run_id) == "Failed"
    assert reload(broken).status == "failed"
    assert drive(away) == "Suspended"
    assert open_task_of(away).step_key == "decision"


def test_the_sweeper_reads_the_newest_crashes_and_failures_first():
    """Runs the sweeper left alone (over their retries, or failed in their
    code) stay Crashed or Failed: they must not crowd a new one out of the
    sweeper's bounded read."""
    from prefect import get_client
    from prefect.states import Failed, format_exception

    older, newer, failed = (make_case(example=BLUE_CARD) for _ in range(3))
    for case in (older, newer):
        assert orchestration.mark_crashed(reload(case).flow_run_id, "Process exited: -9")
    message = f"Flow run encountered an exception: {format_exception(_database_error())}"
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            UUID(reload(failed).flow_run_id), Failed(message=message), force=True
        )

    found = [str(run.id) for run in orchestration.recoverable_case_runs(limit=1)]
    assert found == [reload(newer).flow_run_id, reload(failed).flow_run_id]
    for case in (older, newer, failed):  # not for the next tests' sweeps
        orchestration.cancel_flow_run(reload(case).flow_run_id, "test over")


def test_the_sweeper_holds_no_write_lock_while_it_calls_prefect(monkeypatch):
    """Prefect's client retries a server that went away for about a minute.
    A sweep that called it inside a write transaction locked SQLite for every
    other writer: a clerk's login failed with "database is locked" (seen in
    tests/test_stack.py with the Prefect server stopped)."""
    from serviceplus.models.services import human_tasks, versions
    from serviceplus.models.services.sweeper import sweep

    locked_out = []
    resume = orchestration.resume_flow_run

    def resume_seen_from_outside(*args, **kwargs):
        locked_out.append(other_writer_locked_out())
        return resume(*args, **kwargs)

    saved = []
    for _ in range(2):  # decisions saved; their runs never executed, so not yet suspended
        case = reload(make_case(example=BLUE_CARD))
        with session_scope() as session:
            definition = versions.load(session, "s81a", case.definition_version)
            task = human_tasks.open_for_step(
                session,
                case=case,
                step_key="decision",
                attempt=1,
                step=definition.step("decision"),
                flow_run_id=case.flow_run_id,
            )
            clerk = session.exec(select(User).where(User.username == "sb.magdeburg")).one()
            human_tasks.complete(session, task=task, user=clerk, decision="approve")
        saved.append(case)
    monkeypatch.setattr(orchestration, "resume_flow_run", resume_seen_from_outside)
    assert sweep(grace=timedelta(0)).resume_pending >= 2
    assert len(locked_out) >= 2 and not any(locked_out)
    for case in saved:  # not for the next tests' sweeps
        orchestration.cancel_flow_run(case.flow_run_id, "test over")


def test_a_retried_run_that_waited_in_the_queue_still_counts_as_retried():
    """Prefect renames a run that waits in the queue for more than 15 s to
    "Late" (seen in bench/chaos.py's queues): still the app's scheduling, so
    the run takes a lost suspension for one, not for a resume from outside."""
    from prefect import get_client
    from prefect.states import Scheduled

    run_id = reload(make_case(example=BLUE_CARD)).flow_run_id
    assert orchestration.retry_flow_run(run_id)
    assert orchestration.rescheduled_by_app(run_id)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), Scheduled(name="Late"), force=True)
        assert orchestration.rescheduled_by_app(run_id)
        client.set_flow_run_state(UUID(run_id), Scheduled(), force=True)
    assert not orchestration.rescheduled_by_app(run_id)


def test_a_retried_run_keeps_its_place_in_the_line():
    """Workers take the earliest scheduled run first: a run scheduled again
    after a crash goes back to the time of its last scheduling, ahead of the
    resumes that came after it, not to the end of the queue."""
    from prefect import get_client

    case = make_case(example=BLUE_CARD)
    assert drive(case) == "Suspended"
    run_id = UUID(reload(case).flow_run_id)
    with get_client(sync_client=True) as client:
        started = client.read_flow_run(run_id).expected_start_time
    assert orchestration.mark_crashed(str(run_id), "Process exited with status code: -9")
    before_retry = datetime.now(UTC)
    assert orchestration.retry_flow_run(str(run_id))
    with get_client(sync_client=True) as client:
        place = client.read_flow_run(run_id).next_scheduled_start_time
    assert place == started < before_retry
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "decision"


def test_flowrun_tells_a_suspended_run_from_a_running_one(monkeypatch):
    """serviceplus.flowrun reports a run process killed after its run
    suspended as a clean exit, so that the worker does not crash the run."""
    from serviceplus.flowrun import run_is_suspended
    from serviceplus.models.services.orchestration import mark_crashed

    case = make_case(example=BLUE_CARD)
    assert drive(case) == "Suspended"
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", reload(case).flow_run_id)
    assert run_is_suspended()
    assert mark_crashed(reload(case).flow_run_id, "killed")
    assert not run_is_suspended()


def _task_of(reference: str) -> HumanTask:
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        return session.exec(select(HumanTask).where(HumanTask.case_id == case.id)).one()


def test_coordinator_reassigns_and_prioritises_own_tasks_only(org, login):
    from serviceplus.models.services import coordination
    from serviceplus.models.services.human_tasks import TaskError

    with session_scope() as session:
        session.add(
            User(
                username="sb.mon",
                full_name="Sina Mon",
                role=Role.clerk,
                organisation_id=org,
                password_hash=accounts.hash_password("demo"),
            )
        )
    own, foreign = _task_of(f"MON-{org}-1"), _task_of(f"MON-{org}-2")  # authority's, BA's
    client = login("koord.mon")
    page = client.get("/monitor/").get_data(as_text=True)
    assert f'action="/monitor/tasks/{foreign.id}/reassign"' not in page  # overdue, but BA's
    refused = client.post(f"/monitor/tasks/{foreign.id}/reassign", data={"to": "ba"})
    assert "nicht bei Ihrer Organisation" in client.get(refused.headers["Location"]).get_data(
        as_text=True
    )
    client.post(f"/monitor/tasks/{own.id}/reassign", data={"to": "sb.mon", "seen": ""})
    assert _task_of(f"MON-{org}-1").assignee == "sb.mon"
    with session_scope() as session:
        coordinator = session.exec(select(User).where(User.username == "koord.mon")).one()
        with pytest.raises(TaskError, match="inzwischen geändert"):  # seen unassigned: stale
            coordination.reassign(
                session, coordinator=coordinator, task_id=own.id, to="sb.mon", seen_assignee=None
            )
        with pytest.raises(TaskError, match="Rolle dieser Aufgabe"):
            coordination.reassign(
                session, coordinator=coordinator, task_id=own.id, to="koord.mon", seen_assignee=None
            )
    client.post(f"/monitor/tasks/{own.id}/priority", data={"priority": "1"})
    assert _task_of(f"MON-{org}-1").priority == 1
    with session_scope() as session:
        events = [(e.actor, e.action) for e in audit.events_for_case(session, own.case_id)]
    assert events == [("koord.mon", "task_reassigned"), ("koord.mon", "task_priority")]


def test_overview_reads_the_snapshot_and_refreshes_it_when_old(org, login):
    """Counts come from the snapshot ("Stand"); the list of late tasks is live
    and names people by their full name; an old snapshot is computed again
    by the page, and the sweeper refreshes it before it gets old."""
    from serviceplus.models.services import overview
    from serviceplus.models.tables import OverviewSnapshot

    with session_scope() as session:
        overview.refresh(session, org)
        session.add(
            User(
                username="sb.spaet",
                full_name="Olga Spät",
                role=Role.clerk,
                organisation_id=org,
                password_hash=accounts.hash_password("demo"),
            )
        )
        late = _case(session, session.get(Organisation, org), 5, NOW - timedelta(days=6))
        _task(session, late, "decision", NOW - timedelta(days=5), NOW - timedelta(days=1))
        session.flush()
        task = session.exec(select(HumanTask).where(HumanTask.case_id == late.id)).one()
        task.status, task.assignee = "claimed", "sb.spaet"
    with session_scope() as session:
        before = session.get(OverviewSnapshot, org).figures["overdue"]
    client = login("koord.mon")
    page = client.get("/monitor/").get_data(as_text=True)
    assert "Stand der Zahlen: " in page
    assert f"Überfällige Aufgaben</dt><dd>{before}</dd>" in page  # the snapshot's count
    assert f"/monitor/cases/MON-{org}-5#task-" in page  # the live list has the new task
    assert "<td>Olga Spät</td>" in page and "<td>sb.spaet</td>" not in page

    with session_scope() as session:
        assert org not in overview.refresh_due(session)  # fresh: nothing to do
        assert org in overview.refresh_due(session, clock.now() + timedelta(minutes=3))
    page = client.get("/monitor/").get_data(as_text=True)
    assert f"Überfällige Aufgaben</dt><dd>{before + 1}</dd>" in page
    # grouped by the person's full name, not the login
    assert "<tr><td>Olga Spät</td><td>1</td><td>0</td></tr>" in page

    with session_scope() as session:
        session.get(OverviewSnapshot, org).figures = {"stale": True}
        session.get(OverviewSnapshot, org).computed_at = clock.now() - timedelta(minutes=6)
    page = client.get("/monitor/").get_data(as_text=True)
    assert f"Überfällige Aufgaben</dt><dd>{before + 1}</dd>" in page  # computed again
    with session_scope() as session:
        assert clock.now() - session.get(OverviewSnapshot, org).computed_at < timedelta(minutes=1)
    with session_scope() as session:
        (own,) = [
            r
            for r in monitoring.open_tasks_by_role(session, org, clock.now())
            if r[0] == "ABH Monitoring"
        ]
    with client.get("/monitor/figures/open_tasks.csv") as response:
        lines = response.get_data().decode("utf-8-sig").splitlines()
    assert f"ABH Monitoring;Sachbearbeitung;{own[2]};{own[3]}" in lines and own[3] >= 1
