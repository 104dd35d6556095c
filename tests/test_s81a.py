"""The § 81a procedure of definition version 1, one scenario per branch, on a
real Prefect server: the sequence of tasks and the letters each branch
produces. Version 1 stays for the cases that run on it; version 2 (the active
one) is tested in test_s81a_v2.py."""

from datetime import timedelta

import pytest

from serviceplus.demo import blank_pdf
from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import human_tasks
from serviceplus.models.services.cases import NewDocument, add_document
from serviceplus.models.services.sweeper import sweep
from tests.helpers import (
    BLUE_CARD,
    EXAMPLE,
    advance,
    decide,
    drive,
    letter_text,
    letters_of,
    make_case,
    open_task_of,
    reload,
    tasks_of,
)

pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_1")


def sequence(case) -> list[tuple[str, str | None, str | None]]:
    return [(t.step_key, t.decision, t.completed_by) for t in tasks_of(case)]


def letters(case) -> list[str]:
    return sorted(x.kind for x in letters_of(case))


def approve_decision(case) -> str:
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    return advance(case, "decision.confirm", "sb2.magdeburg", "confirm")


def test_complete_file_approved_through_recognition_and_ba():
    case = make_case()
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert (task.step_key, task.role) == ("recognition", "clerk")
    # Recognition deadline: 2 months from the complete file.
    assert task.due_at - reload(case).file_complete_at == timedelta(days=60)
    assert advance(case, "recognition", "fosa", "full") == "Suspended"
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert approve_decision(case) == "Completed"
    assert sequence(case) == [
        ("recognition", "full", "fosa"),
        ("ba_approval", "approve", "ba"),
        ("decision", "approve", "sb.magdeburg"),
        ("decision.confirm", "confirm", "sb2.magdeburg"),
    ]
    assert letters(case) == ["fee_notice", "preapproval", "receipt"]
    assert "411,00 EUR" in letter_text(case, "fee_notice")
    assert reload(case).outcome == "approved"


def test_incomplete_then_completed_after_one_round():
    case = make_case(
        kinds=["passport", "power_of_attorney", "employment_contract"],
        facts={"anabin_equivalent": True},
    )
    assert drive(case) == "Suspended"
    assert reload(case).file_complete_at is None  # the clock has not started
    with session_scope() as session:
        for kind in ("employer_declaration", "qualification"):
            add_document(
                session,
                case=reload(case),
                actor="sb.magdeburg",
                doc=NewDocument(kind, f"{kind}.pdf", blank_pdf()),
            )
    assert advance(case, "await_documents", "sb.magdeburg", "received") == "Suspended"
    assert reload(case).file_complete_at is not None
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert approve_decision(case) == "Completed"
    assert [s for s, _, _ in sequence(case)] == [
        "await_documents",
        "ba_approval",
        "decision",
        "decision.confirm",
    ]
    assert letters(case) == ["fee_notice", "missing_documents", "preapproval", "receipt"]


def test_partial_recognition_takes_the_16d_path():
    case = make_case()
    drive(case)
    assert advance(case, "recognition", "fosa", "partial") == "Suspended"
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert approve_decision(case) == "Completed"
    assert "partial_recognition" in letters(case)
    assert "§ 16d AufenthG" in letter_text(case, "partial_recognition")


def test_ba_refusal_ends_with_refusal_letter():
    case = make_case(facts={"anabin_equivalent": True})
    drive(case)
    reason = "Die Arbeitsbedingungen sind nicht vergleichbar."
    assert advance(case, "ba_approval", "ba", "refuse", reason) == "Completed"
    assert reload(case).outcome == "refused"
    assert reason in letter_text(case, "refusal")
    assert letters(case) == ["fee_notice", "receipt", "refusal"]


def test_ba_silence_becomes_deemed_approval_after_a_week():
    case = make_case(facts={"anabin_equivalent": True})
    drive(case)
    task = open_task_of(case)
    assert task.step_key == "ba_approval"
    sweep(now=clock.now() + timedelta(days=6))
    assert open_task_of(case).id == task.id  # not yet: the week has not passed
    report = sweep(now=clock.now() + timedelta(days=7, minutes=1))
    assert report.deadlines >= 1 and report.resumed >= 1
    (ba_task,) = [t for t in tasks_of(case) if t.step_key == "ba_approval"]
    assert (ba_task.decision, ba_task.completed_by) == ("deemed", "system")
    assert "Zustimmungsfiktion" in ba_task.reason
    assert drive(case) == "Suspended"
    assert "Zustimmung der Bundesagentur für Arbeit gilt als erteilt" in letter_text(
        case, "deemed_approval"
    )
    assert approve_decision(case) == "Completed"


def test_four_eyes_proposer_cannot_confirm_and_send_back_repeats_the_step():
    case = make_case(example=BLUE_CARD)
    drive(case)
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    confirmation = open_task_of(case)
    assert (confirmation.proposed_by, confirmation.proposal) == ("sb.magdeburg", "approve")
    with pytest.raises(human_tasks.TaskError, match="zweite Person"):
        decide(confirmation, "confirm", username="sb.magdeburg")
    assert advance(case, "decision.confirm", "sb2.magdeburg", "send_back", "Gehalt prüfen") == (
        "Suspended"
    )
    again = open_task_of(case)
    assert (again.step_key, again.attempt) == ("decision", 2)


def test_refusal_with_reasons_in_the_letter():
    case = make_case(example=BLUE_CARD)
    drive(case)
    reason = "Der Arbeitsvertrag ist nicht unterschrieben."
    assert advance(case, "decision", "sb.magdeburg", "reject", reason) == "Suspended"
    assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"
    assert reload(case).outcome == "refused"
    assert reason in letter_text(case, "refusal")


def test_blue_card_below_threshold_is_incomplete_with_reason():
    case = make_case(
        example=BLUE_CARD, facts={**BLUE_CARD["facts"], "gross_annual_salary_eur": 40000}
    )
    drive(case)
    assert open_task_of(case).step_key == "await_documents"
    text = letter_text(case, "missing_documents")
    assert "Mindestgrenze der Blauen Karte EU" in text


def test_passport_expiring_before_entry_is_incomplete():
    applicant = {**EXAMPLE["applicant"], "passport_valid_until": "2027-01-01"}
    case = make_case(applicant=applicant)
    drive(case)
    assert "über die geplante Einreise hinaus gültig" in letter_text(case, "missing_documents")


def test_overdue_decision_escalates_to_coordinator():
    case = make_case(example=BLUE_CARD)
    drive(case)
    report = sweep(now=clock.now() + timedelta(days=15))
    assert report.deadlines >= 1
    task = open_task_of(case)
    assert (task.step_key, task.role, task.escalated_at is not None) == (
        "decision",
        "coordinator",
        True,
    )
