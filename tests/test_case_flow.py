"""The case flow on a real Prefect server, executed in-process."""

import io
from collections import Counter

import pytest
from pypdf import PdfReader
from sqlmodel import select

from models import audit, storage, tasks
from models.accounts import get_user
from models.db import session_scope
from models.tables import CaseStatus, HumanTask, Letter, TaskStatus
from tests.helpers import drive, make_case, reload

pytestmark = pytest.mark.usefixtures("inprocess_deployment")


def open_task_of(case) -> HumanTask:
    with session_scope() as session:
        return session.exec(
            select(HumanTask).where(
                HumanTask.case_id == case.id, HumanTask.status == TaskStatus.open
            )
        ).one()


def decide(task: HumanTask, decision: str, reason: str = "", username="sb.magdeburg") -> bool:
    with session_scope() as session:
        user = get_user(session, username)
        pending = tasks.complete(session, task=task, user=user, decision=decision, reason=reason)
    with session_scope() as session:
        session.add(pending)
        return tasks.deliver(session, pending)


def letters_of(case) -> list[Letter]:
    with session_scope() as session:
        return list(session.exec(select(Letter).where(Letter.case_id == case.id)))


def executions(case) -> Counter:
    with session_scope() as session:
        events = audit.events_for_case(session, case.id)
    return Counter(e.detail.split(":")[0] for e in events if e.action == "step_executed")


def pdf_text(letter: Letter) -> str:
    reader = PdfReader(io.BytesIO(storage.read_bytes(letter.storage_path)))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_complete_case_suspends_at_decision_and_approval_completes_it():
    case = make_case()
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert (task.step_key, reload(case).status) == ("decision", CaseStatus.waiting)

    assert decide(task, "approve") is True
    assert drive(case) == "Completed"

    case = reload(case)
    assert (case.status, case.outcome) == (CaseStatus.completed, "approved")
    kinds = Counter(letter.kind for letter in letters_of(case))
    assert kinds == {"receipt": 1, "preapproval": 1}
    preapproval = next(x for x in letters_of(case) if x.kind == "preapproval")
    text = pdf_text(preapproval)
    assert case.reference in text
    assert case.applicant_name in text
    # Every automatic step ran exactly once, though the flow ran twice.
    assert executions(case) == {"intake#1": 1, "completeness#1": 1, "preapproval#1": 1}


def test_letter_is_pdf_a():
    case = make_case()
    drive(case)
    letter = letters_of(case)[0]
    reader = PdfReader(io.BytesIO(storage.read_bytes(letter.storage_path)))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    # The PDF/A identification in the XMP metadata: part 3, conformance B.
    assert b'pdfaid:part="3"' in xmp or b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert b"pdfaid:conformance" in xmp


def test_incomplete_case_letter_names_each_missing_document():
    case = make_case(
        kinds=["passport", "qualification"], files={"qualification": b"%PDF-1.7 broken"}
    )
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert task.step_key == "await_documents"
    (letter,) = [x for x in letters_of(case) if x.kind == "missing_documents"]
    text = " ".join(pdf_text(letter).split())
    for label in (
        "Vollmacht der Fachkraft",
        "Arbeitsvertrag oder verbindliches Arbeitsplatzangebot",
        "Erklärung zum Beschäftigungsverhältnis",
    ):
        assert f"{label} – fehlt" in text
    assert "Qualifikationsnachweis mit deutscher Übersetzung – nicht lesbar" in text
    assert "Reisepass" not in text.split("Folgendes nach:")[1]


def test_refusal_requires_reason_and_ends_with_refusal_letter():
    case = make_case()
    drive(case)
    task = open_task_of(case)
    with pytest.raises(tasks.TaskError, match="Begründung"):
        decide(task, "reject", reason="  ")
    assert open_task_of(case).status == TaskStatus.open  # nothing changed

    decide(task, "reject", reason="Der Arbeitsvertrag ist nicht unterschrieben.")
    assert drive(case) == "Completed"
    case = reload(case)
    assert case.outcome == "refused"
    (refusal,) = [x for x in letters_of(case) if x.kind == "refusal"]
    assert "Der Arbeitsvertrag ist nicht unterschrieben." in pdf_text(refusal)


def test_second_completion_of_same_task_is_refused():
    case = make_case()
    drive(case)
    task = open_task_of(case)
    decide(task, "approve")
    with pytest.raises(tasks.TaskError, match="bereits erledigt"):
        decide(task, "reject", reason="zu spät", username="sb2.magdeburg")
