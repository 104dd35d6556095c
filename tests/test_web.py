"""Web UI: logins, who may see what, forms and their German messages."""

import io
import re
import uuid

import pytest
from sqlmodel import func, select

from serviceplus.demo import blank_pdf
from serviceplus.models.db import session_scope
from serviceplus.models.tables import Case, Document, HumanTask, Letter, TaskStatus
from tests.helpers import BLUE_CARD, drive, make_case, open_task_of, reload

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


def fill(value: str) -> str:
    value = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", value)  # the first allowed value
    return re.sub(r"<[^>]+>", "1", value)


def test_every_page_but_login_requires_login(app):
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        # The employer's status pages are opened by their private link
        # instead of a login (tests/test_status.py).
        if rule.endpoint in ("static", "auth.login") or rule.endpoint.startswith("status."):
            continue
        url = fill(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method)
            assert response.status_code == 302, (method, url)
            assert "/login" in response.headers["Location"], (method, url)
            checked += 1
    assert checked >= 10


def test_login_with_wrong_password_is_refused_in_german(app):
    response = app.test_client().post("/login", data={"username": "sb.magdeburg", "password": "x"})
    assert response.status_code == 200
    assert "Benutzername oder Passwort ist falsch." in response.get_data(as_text=True)


def test_csrf_token_is_required(database):
    from serviceplus.webui import create_app

    client = create_app({"TESTING": True}).test_client()
    response = client.post("/login", data={"username": "sb.magdeburg", "password": "demo"})
    assert response.status_code == 400


@pytest.fixture(scope="module")
def suspended_case(inprocess_deployment):
    case = make_case(example=BLUE_CARD)
    drive(case)
    return reload(case)


def _ids(case):
    with session_scope() as session:
        task = session.exec(select(HumanTask).where(HumanTask.case_id == case.id)).first()
        doc = session.exec(select(Document).where(Document.case_id == case.id)).first()
        letter = session.exec(select(Letter).where(Letter.case_id == case.id)).first()
    return task.id, doc.id, letter.id


def test_clerk_of_another_organisation_gets_404(login, suspended_case):
    task_id, doc_id, letter_id = _ids(suspended_case)
    ref = suspended_case.reference
    client = login("sb.halle")
    for url in (
        f"/cases/{ref}",
        f"/tasks/{task_id}",
        f"/cases/{ref}/documents/{doc_id}",
        f"/cases/{ref}/letters/{letter_id}",
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(f"/tasks/{task_id}/complete", data={"decision": "approve"}).status_code == 404
    )
    assert ref not in client.get("/inbox").get_data(as_text=True)


def test_own_clerk_sees_task_documents_and_letters(login, suspended_case):
    task_id, doc_id, letter_id = _ids(suspended_case)
    client = login("sb.magdeburg")
    assert suspended_case.reference in client.get("/inbox").get_data(as_text=True)
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert suspended_case.applicant_name in page and "Entscheidung speichern" in page
    # Downloads stream files: close the responses, as a server would.
    with client.get(f"/cases/{suspended_case.reference}/documents/{doc_id}") as doc:
        assert doc.status_code == 200 and doc.data.startswith(b"%PDF-")
        assert doc.headers["Content-Disposition"].startswith("attachment")
    with client.get(f"/cases/{suspended_case.reference}/letters/{letter_id}") as letter:
        assert letter.status_code == 200 and letter.data.startswith(b"%PDF-")


def test_admin_cannot_open_cases(login, suspended_case):
    assert login("admin").get(f"/cases/{suspended_case.reference}").status_code == 403


def test_reject_without_reason_is_refused_and_changes_nothing(login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    with session_scope() as session:
        task = session.exec(select(HumanTask).where(HumanTask.case_id == case.id)).one()
    response = login("sb.magdeburg").post(
        f"/tasks/{task.id}/complete", data={"decision": "reject", "reason": ""}
    )
    assert response.status_code == 409
    assert "Begründung erforderlich" in response.get_data(as_text=True)
    with session_scope() as session:
        assert session.get(HumanTask, task.id).status == TaskStatus.open


def test_approve_in_web_resumes_the_flow_and_second_person_confirms(login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    client = login("sb.magdeburg")
    assert client.post(f"/tasks/{task.id}/claim").status_code == 302
    response = client.post(f"/tasks/{task.id}/complete", data={"decision": "approve"})
    assert response.status_code == 302
    assert "Entscheidung ist gespeichert. Der Fall wird fortgesetzt." in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    assert drive(case) == "Suspended"
    confirmation = open_task_of(case)
    refused = client.post(f"/tasks/{confirmation.id}/complete", data={"decision": "confirm"})
    assert refused.status_code == 409
    assert "zweite Person" in refused.get_data(as_text=True)
    second = login("sb2.magdeburg")
    assert (
        second.post(f"/tasks/{confirmation.id}/complete", data={"decision": "confirm"}).status_code
        == 302
    )
    assert drive(case) == "Completed"
    assert reload(case).outcome == "approved"


def _form(**files):
    data = {
        "residence_purpose": "18a",
        "applicant_name": "Lea Kovač",
        "applicant_birth_date": "1991-02-03",
        "applicant_nationality": "bosnisch",
        "employer_name": "Harz Logistik GmbH",
        "employer_address": "Am Hafen 3, 39106 Magdeburg",
        "submission_key": f"web-test-{uuid.uuid4()}",
    }
    for kind, (name, content) in files.items():
        data[f"doc_{kind}"] = (io.BytesIO(content), name)
    return data


def case_count() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Case)).one()


def test_new_case_form_creates_case_with_documents(login):
    client = login("sb.magdeburg")
    assert client.get("/cases/new").status_code == 200
    response = client.post(
        "/cases/new",
        data=_form(passport=("pass.pdf", blank_pdf())),
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Lea Kovač" in page and "pass.pdf" in page


def test_new_case_with_wrong_file_type_saves_nothing(login):
    before = case_count()
    response = login("sb.magdeburg").post(
        "/cases/new",
        data=_form(passport=("../../etc/passwd.pdf", b"not a pdf")),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Der Fall wurde nicht angelegt" in text
    assert "passwd.pdf: Die Datei ist kein PDF, JPEG oder PNG" in text
    assert case_count() == before


def test_new_case_with_missing_fields_gives_german_messages(login):
    data = _form()
    del data["applicant_name"]
    response = login("sb.magdeburg").post("/cases/new", data=data)
    assert response.status_code == 400
    assert "Bitte ausfüllen." in response.get_data(as_text=True)


def test_new_case_form_posted_twice_creates_one_case(login):
    client = login("sb.magdeburg")
    data = _form(passport=("pass.pdf", blank_pdf()))
    first = client.post("/cases/new", data=dict(data), content_type="multipart/form-data")
    again = _form(passport=("pass.pdf", blank_pdf()))
    again["submission_key"] = data["submission_key"]
    before = case_count()
    second = client.post("/cases/new", data=again, content_type="multipart/form-data")
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert case_count() == before
