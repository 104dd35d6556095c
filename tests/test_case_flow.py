"""The case flow on a real Prefect server, executed in-process: suspend,
resume, no step repeated, letters as PDF/A."""

import io

import pytest
from pypdf import PdfReader

from serviceplus.models.services import human_tasks, storage
from serviceplus.models.tables import CaseStatus, TaskStatus
from tests.helpers import (
    BLUE_CARD,
    advance,
    decide,
    drive,
    executions,
    letter_text,
    letters_of,
    make_case,
    open_task_of,
    reload,
)

pytestmark = pytest.mark.usefixtures("inprocess_deployment")


def test_blue_card_case_suspends_at_decision_and_approval_completes_it():
    case = make_case(example=BLUE_CARD)
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert (task.step_key, reload(case).status) == ("decision", CaseStatus.waiting)

    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"

    case = reload(case)
    assert (case.status, case.outcome) == (CaseStatus.completed, "approved")
    assert sorted(x.kind for x in letters_of(case)) == ["fee_notice", "preapproval", "receipt"]
    text = letter_text(case, "preapproval")
    assert case.reference in text and case.applicant_name in text
    # Every automatic step ran exactly once, though the flow ran three times.
    assert executions(case) == {
        "intake#1": 1,
        "fee_notice#1": 1,
        "completeness#1": 1,
        "preapproval#1": 1,
    }


def test_letter_is_pdf_a():
    case = make_case(example=BLUE_CARD)
    drive(case)
    letter = letters_of(case)[0]
    reader = PdfReader(io.BytesIO(storage.read_bytes(letter.storage_path)))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    # The PDF/A identification in the XMP metadata: part 3, conformance B.
    assert b'pdfaid:part="3"' in xmp or b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert b"pdfaid:conformance" in xmp
    assert len(letter.sha256) == 64


def test_incomplete_case_letter_names_each_missing_document():
    case = make_case(kinds=["passport", "qualification"])
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "await_documents"
    text = letter_text(case, "missing_documents")
    for label in (
        "Vollmacht der Fachkraft",
        "Arbeitsvertrag oder verbindliches Arbeitsplatzangebot",
        "Erklärung zum Beschäftigungsverhältnis",
    ):
        assert f"{label} – fehlt" in text
    assert "Reisepass" not in text.split("Folgendes nach:")[1]
    assert "Qualifikationsnachweis" not in text.split("Folgendes nach:")[1]


def test_refusal_requires_reason_and_changes_nothing_without():
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    with pytest.raises(human_tasks.TaskError, match="Begründung"):
        decide(task, "reject", reason="  ")
    assert open_task_of(case).status == TaskStatus.open


def test_second_completion_of_same_task_is_refused():
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    decide(task, "approve")
    with pytest.raises(human_tasks.TaskError, match="bereits erledigt"):
        decide(task, "reject", reason="zu spät", username="sb2.magdeburg")
