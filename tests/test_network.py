"""The partners' overview, against hand-counted rows: three organisations
of their own (authority, recognition body, advice organisation), so the
figures of other tests' cases do not mix in."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from serviceplus.models.db import session_scope
from serviceplus.models.services import network
from serviceplus.models.tables import (
    Case,
    CaseStatus,
    HumanTask,
    Letter,
    Organisation,
    Precheck,
    TaskStatus,
)

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


@pytest.fixture(scope="module")
def orgs(database):
    tag = uuid.uuid4().hex[:6]
    with session_scope() as session:
        made = {}
        for key, kind in [("abh", "abh"), ("rec", "recognition"), ("adv", "advice")]:
            org = Organisation(slug=f"{key}-{tag}", name=f"{key.upper()} {tag}", kind=kind)
            session.add(org)
            session.flush()
            made[key] = (org.id, org.name)
        abh, rec, adv = made["abh"][0], made["rec"][0], made["adv"][0]

        def case(n, *, precheck=False, complete=None, closed=None, status, step=None, asked=False):
            row = Case(
                submission_key=f"net-{tag}-{n}",
                reference=f"NET-{tag}-{n}",
                organisation_id=abh,
                applicant_name="X",
                applicant_birth_date=date(1990, 1, 1),
                applicant_nationality="x",
                employer_name="E",
                employer_address="A",
                residence_purpose="18a",
                definition_name="s81a",
                definition_version=1,
                created_by="test",
                created_at=DAY0,
                status=status,
                current_step=step,
                file_complete_at=complete,
                closed_at=closed,
                outcome="approved" if closed else None,
                precheck_id=-1 if precheck else None,
                prechecked_by="ADV" if precheck else None,
            )
            session.add(row)
            session.flush()
            if asked:
                session.add(
                    Letter(
                        case_id=row.id,
                        kind="missing_documents",
                        step_key="request_documents",
                        attempt=1,
                        title="t",
                        sha256="0" * 64,
                        storage_path="x",
                        size=1,
                    )
                )
            return row.id

        done = CaseStatus.completed
        c1 = case(1, precheck=True, complete=day(0), closed=day(10), status=done)
        c2 = case(2, complete=day(0), closed=day(20), status=done, asked=True)
        c3 = case(3, complete=day(0), closed=day(40), status=done)
        case(4, status=CaseStatus.waiting, step="await_documents", asked=True)
        c5 = case(5, precheck=True, complete=day(0), status=CaseStatus.waiting, step="recognition")

        def task(case_id, org, due, completed, by):
            session.add(
                HumanTask(
                    case_id=case_id,
                    step_key="recognition",
                    attempt=1,
                    title="t",
                    organisation_id=org,
                    role="clerk",
                    status=TaskStatus.completed,
                    flow_run_id="x",
                    due_at=day(due),
                    completed_at=day(completed),
                    completed_by=by,
                    decision="full",
                )
            )

        task(c1, rec, 5, 3, "fosa")  # in time
        task(c2, rec, 5, 8, "fosa")  # late
        task(c3, abh, 2, 2, "system")  # decided by the deadline: deemed, in time
        for case_id in (c1, c5, None):
            session.add(
                Precheck(
                    organisation_id=adv,
                    authority_id=abh,
                    data={},
                    created_by="b",
                    case_id=case_id,
                )
            )
    return {key: name for key, (_id, name) in made.items()}


def mine(rows, *names):
    return [r for r in rows if r[0] in names]


def test_cases_by_authority_and_step(orgs):
    with session_scope() as session:
        rows = mine(network.cases_by_authority_and_step(session), orgs["abh"])
    assert rows == [
        (orgs["abh"], "Anerkennung der Berufsqualifikation", 1),
        (orgs["abh"], "Nachgereichte Unterlagen erfassen", 1),
    ]


def test_deadlines_met_per_body(orgs):
    with session_scope() as session:
        rows = mine(network.deadlines_met(session), orgs["abh"], orgs["rec"])
    assert sorted(rows) == sorted([(orgs["rec"], 2, 1, 50.0), (orgs["abh"], 1, 1, 100.0)])


def test_incomplete_at_intake_with_and_without_precheck(orgs):
    with session_scope() as session:
        rows = mine(network.incomplete_at_intake(session), orgs["abh"])
    assert rows == [
        (orgs["abh"], "mit Vorprüfung", 2, 0, 0.0),
        (orgs["abh"], "ohne Vorprüfung", 3, 2, 66.7),
    ]


def test_deemed_approvals(orgs):
    with session_scope() as session:
        assert mine(network.deemed_approvals(session), orgs["abh"]) == [(orgs["abh"], 1)]


def test_days_from_complete_file_to_preapproval(orgs):
    with session_scope() as session:
        rows = mine(network.days_to_preapproval(session), orgs["abh"])
    assert rows == [(orgs["abh"], 3, 20.0, 40.0)]  # days 10, 20, 40


def test_prechecks_and_handovers_per_adviser(orgs):
    with session_scope() as session:
        rows = mine(network.prechecks_by_adviser(session), orgs["adv"])
    assert rows == [(orgs["adv"], 3, 2)]


def test_csv_is_for_german_excel(orgs, login):
    response = login("netzwerk").get("/network/figures/incomplete.csv")
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeffBehörde;Vorprüfung;geprüft;unvollständig;unvollständig (%)")
    assert f"{orgs['abh']};ohne Vorprüfung;3;2;66,7" in text
    page = login("netzwerk").get("/network/").get_data(as_text=True)
    assert "<svg" in page and orgs["adv"] in page
    assert "NET-" not in page  # no case reference, no personal data


def test_downloads_are_made_like_the_coordinators(orgs, login):
    """CSV and XLSX come from serviceplus/spreadsheet.py: semicolons, decimal
    comma, byte order mark and CRLF lines; XLSX holds numbers, not text."""
    import io

    from openpyxl import load_workbook

    client = login("netzwerk")
    with client.get("/network/figures/incomplete.csv") as response:
        raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    assert response.headers["Content-Disposition"].endswith("netzwerk-incomplete.csv")
    with client.get("/network/figures/incomplete.xlsx") as response:
        assert response.status_code == 200
        assert response.mimetype.endswith("spreadsheetml.sheet")
        book = load_workbook(io.BytesIO(response.get_data()))
    rows = list(book.active.values)
    assert rows[0] == ("Behörde", "Vorprüfung", "geprüft", "unvollständig", "unvollständig (%)")
    assert (orgs["abh"], "ohne Vorprüfung", 3, 2, 66.7) in rows
    assert client.get("/network/figures/nonsense.xlsx").status_code == 404
    assert login("koordination").get("/network/figures/incomplete.xlsx").status_code == 403
    page = client.get("/network/").get_data(as_text=True)
    assert "/network/figures/incomplete.xlsx" in page
