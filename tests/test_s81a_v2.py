"""The § 81a procedure of definition version 2 (the active one), one scenario
per branch, driven through the services and the real flow on a real Prefect
server: recognition routed to the competent body, its receipt and deadline
extension, the § 16d branch, the BA's question and deemed approval, the
hearing before every refusal, withdrawal, the salary rules."""

from datetime import date, timedelta

import pytest
from sqlmodel import select

from serviceplus.demo import blank_pdf
from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, audit, deadlines, human_tasks, versions
from serviceplus.models.services.cases import NewDocument, add_document
from serviceplus.models.services.completeness import rule_findings
from serviceplus.models.services.sweeper import sweep
from serviceplus.models.tables import Case, Organisation
from tests.helpers import (
    BLUE_CARD,
    EXAMPLE,
    active_version,
    advance,
    drive,
    letter_text,
    letters_of,
    make_case,
    open_task_of,
    reload,
    tasks_of,
)

pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


def v2() -> versions.Definition:
    with session_scope() as session:
        return versions.load(session, "s81a", 2)


def letters(case) -> list[str]:
    return sorted(x.kind for x in letters_of(case))


def organisation_of(task) -> str:
    with session_scope() as session:
        return session.get(Organisation, task.organisation_id).slug


def events(case, action: str) -> list[str]:
    with session_scope() as session:
        return [e.detail for e in audit.events_for_case(session, case.id) if e.action == action]


def add_documents(case, *kinds: str) -> None:
    with session_scope() as session:
        for kind in kinds:
            add_document(
                session,
                case=reload(case),
                actor="sb.magdeburg",
                doc=NewDocument(kind, f"{kind}.pdf", blank_pdf()),
            )


def through_recognition(case, body: str, outcome: str, reason: str = "") -> str:
    assert advance(case, "recognition_receipt", body, "received") == "Suspended"
    return advance(case, "recognition", body, outcome, reason)


def approve_decision(case) -> str:
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    return advance(case, "decision.confirm", "sb2.magdeburg", "confirm")


def reject_decision(case, reason: str) -> str:
    assert advance(case, "decision", "sb.magdeburg", "reject", reason) == "Suspended"
    return advance(case, "decision.confirm", "sb2.magdeburg", "confirm")


# --- recognition: routed by occupation and purpose ---------------------------------


@pytest.mark.parametrize(
    ("purpose", "facts", "body"),
    [
        ("18a", {}, "ihk-fosa"),  # IHK occupations: the default
        ("18a", {"occupation_group": "craft"}, "hwk"),
        ("18a", {"occupation_group": "health"}, "lvwa"),
        ("18b", {}, "zab"),  # a university degree without anabin H+
        ("18b", {"occupation_group": "health"}, "lvwa"),  # a licence to practise first
    ],
)
def test_recognition_goes_to_the_competent_body(purpose, facts, body):
    case = make_case(residence_purpose=purpose, facts={**EXAMPLE["facts"], **facts})
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert (task.step_key, organisation_of(task)) == ("recognition_receipt", body)
    # Every routed body has a demo clerk who can act on it.
    with session_scope() as session:
        assert human_tasks.can_act(accounts.get_user(session, body.split("-")[-1]), task)


def test_receipt_confirmed_then_full_recognition_ba_and_preapproval_naming_the_purpose():
    case = make_case()
    drive(case)
    assert advance(case, "recognition_receipt", "fosa", "received") == "Suspended"
    (receipt,) = [t for t in tasks_of(case) if t.step_key == "recognition_receipt"]
    assert receipt.completed_by == "fosa" and receipt.completed_at is not None
    task = open_task_of(case)
    assert task.step_key == "recognition"
    assert task.due_at - reload(case).file_complete_at == timedelta(days=60)
    assert advance(case, "recognition", "fosa", "full") == "Suspended"
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert approve_decision(case) == "Completed"
    assert letters(case) == ["fee_notice", "preapproval", "receipt"]
    assert "nach § 18a AufenthG" in letter_text(case, "preapproval")
    assert reload(case).outcome == "approved"


def test_recognition_deadline_extended_once_with_a_reason():
    case = make_case()
    drive(case)
    advance(case, "recognition_receipt", "fosa", "received")
    task = open_task_of(case)
    due = task.due_at
    with session_scope() as session:
        task = session.get(human_tasks.HumanTask, task.id)
        fosa, ba = accounts.get_user(session, "fosa"), accounts.get_user(session, "ba")
        with pytest.raises(human_tasks.TaskError, match="nicht an Sie gerichtet"):
            deadlines.extend(session, task=task, user=ba, reason="x")
        with pytest.raises(human_tasks.TaskError, match="begründen"):
            deadlines.extend(session, task=task, user=fosa, reason="  ")
    assert open_task_of(case).due_at == due  # nothing changed
    with session_scope() as session:
        task = session.get(human_tasks.HumanTask, task.id)
        deadlines.extend(session, task=task, user=fosa, reason="Gutachten steht aus")
    extended = open_task_of(case)
    assert extended.due_at - due == timedelta(days=30)  # the definition's extension
    assert extended.deadline_extension_reason == "Gutachten steht aus"
    assert any("Gutachten steht aus" in d for d in events(case, "deadline_extended"))
    with session_scope() as session, pytest.raises(human_tasks.TaskError, match="nicht"):
        task = session.get(human_tasks.HumanTask, task.id)
        deadlines.extend(session, task=task, user=fosa, reason="noch einmal")
    # The sweeper follows the moved deadline: not escalated at the old one.
    sweep(now=due + timedelta(days=1))
    assert open_task_of(case).escalated_at is None


def test_extension_in_the_inbox(login):
    case = make_case(facts={**EXAMPLE["facts"], "occupation_group": "craft"})
    drive(case)
    advance(case, "recognition_receipt", "hwk", "received")
    task = open_task_of(case)
    client = login("hwk")
    assert "Frist einmalig verlängern" in client.get(f"/tasks/{task.id}").get_data(as_text=True)
    client.post(f"/tasks/{task.id}/extend", data={"reason": ""})
    assert open_task_of(case).deadline_extended_at is None  # a reason is needed
    client.post(f"/tasks/{task.id}/extend", data={"reason": "Rückfrage beim Betrieb"})
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Frist verlängert am" in page and "Rückfrage beim Betrieb" in page
    assert open_task_of(case).due_at == task.due_at + timedelta(days=30)


# --- partial recognition: the employer chooses ----------------------------------------


def test_partial_recognition_continues_as_16d_and_the_preapproval_names_16d():
    case = make_case()
    drive(case)
    reason = "Ausgleichsmaßnahme: Anpassungslehrgang erforderlich"
    assert through_recognition(case, "fosa", "partial", reason) == "Suspended"
    assert "partial_recognition" in letters(case)
    choice = open_task_of(case)
    assert (choice.step_key, organisation_of(choice)) == ("partial_choice", "abh-md")
    # The purpose changes; the § 16d documents are checked again and missing.
    assert advance(case, "partial_choice", "sb.magdeburg", "qualifying_measure") == "Suspended"
    assert reload(case).residence_purpose == "16d"
    assert open_task_of(case).step_key == "await_documents"
    assert "Sprachnachweis" in letter_text(case, "missing_documents")
    add_documents(case, "language_certificate", "qualification_measure")
    # Complete again: no second recognition, on to the BA.
    assert advance(case, "await_documents", "sb.magdeburg", "received") == "Suspended"
    assert open_task_of(case).step_key == "ba_approval"
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert approve_decision(case) == "Completed"
    text = letter_text(case, "preapproval")
    assert "§ 16d Abs. 1 AufenthG" in text and "18a" not in text
    assert [t.step_key for t in tasks_of(case)].count("recognition") == 1


def test_partial_recognition_then_the_employer_withdraws():
    case = make_case()
    drive(case)
    through_recognition(case, "fosa", "partial", "Defizite in der Praxis")
    assert advance(case, "partial_choice", "sb.magdeburg", "withdrawn", "kein Interesse") == (
        "Completed"
    )
    assert reload(case).outcome == "withdrawn"
    assert reload(case).residence_purpose == "18a"


def test_recognition_partnership_16d3_has_no_recognition_before_entry():
    kinds = [d["kind"] for d in EXAMPLE["documents"]] + [
        "language_certificate",
        "partnership_agreement",
    ]
    case = make_case(residence_purpose="16d3", kinds=kinds)
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "ba_approval"
    assert "Eingang bei der Anerkennungsstelle bestätigen" in events(case, "step_skipped")
    assert reload(case).residence_purpose == "16d3"


# --- refusals: always after a hearing ------------------------------------------------------


def test_recognition_refusal_is_cited_as_the_bodys_appealable_decision():
    case = make_case(facts={**EXAMPLE["facts"], "occupation_group": "craft"})
    drive(case)
    reason = "Die Ausbildung ist nicht gleichwertig."
    assert through_recognition(case, "hwk", "refused", reason) == "Suspended"
    assert open_task_of(case).step_key == "await_hearing"
    hearing = letter_text(case, "hearing")
    assert "Handwerkskammer Magdeburg" in hearing and reason in hearing
    reply_by = (clock.today() + timedelta(weeks=2)).strftime("%d.%m.%Y")
    assert reply_by in hearing  # the definition's reply period
    assert letters(case) == ["fee_notice", "hearing", "receipt"]  # no refusal before
    final = "Die Stellungnahme ändert nichts an der fehlenden Gleichwertigkeit."
    assert advance(case, "await_hearing", "sb.magdeburg", "refuse", final) == "Completed"
    refusal = letter_text(case, "refusal")
    decided_on = [t for t in tasks_of(case) if t.step_key == "recognition"][0].completed_at
    assert "Handwerkskammer Magdeburg hat die Gleichwertigkeit" in refusal
    assert "eigene Entscheidung von Handwerkskammer Magdeburg" in refusal  # appealable there
    assert clock.local_date(decided_on).strftime("%d.%m.%Y") in refusal and final in refusal
    assert reload(case).outcome == "refused"


def test_ba_refusal_leads_to_a_hearing_and_the_employer_may_withdraw():
    case = make_case(facts={"anabin_equivalent": True})
    drive(case)
    reason = "Die Arbeitsbedingungen sind nicht vergleichbar."
    assert advance(case, "ba_approval", "ba", "refuse", reason) == "Suspended"
    assert reason in letter_text(case, "hearing")
    assert "zuständige Stelle" not in letter_text(case, "hearing")  # no recognition refusal
    assert advance(case, "await_hearing", "sb.magdeburg", "withdrawn", "Rücknahme") == "Completed"
    assert reload(case).outcome == "withdrawn"
    assert letters(case) == ["fee_notice", "hearing", "receipt"]


def test_own_rejection_is_heard_before_the_refusal_letter():
    case = make_case(example=BLUE_CARD)
    drive(case)
    assert reject_decision(case, "Der Arbeitsvertrag ist nicht unterschrieben.") == "Suspended"
    assert open_task_of(case).step_key == "await_hearing"
    final = "Keine Stellungnahme eingegangen; der Vertrag bleibt ohne Unterschrift."
    assert advance(case, "await_hearing", "sb.magdeburg", "refuse", final) == "Completed"
    assert final in letter_text(case, "refusal")
    assert "zuständigen Stelle" not in letter_text(case, "refusal")


# --- the BA: question, deemed approval ---------------------------------------------------


def test_ba_question_stops_the_clock_until_the_answer_then_a_full_week_counts():
    case = make_case(facts={"anabin_equivalent": True})
    drive(case)
    question = "Bitte Tarifbindung nachweisen."
    assert advance(case, "ba_approval", "ba", "question", question) == "Suspended"
    waiting = open_task_of(case)
    assert (waiting.step_key, organisation_of(waiting)) == ("ba_answer", "abh-md")
    # While the ABH waits for the answer nothing is deemed, however long.
    sweep(now=clock.now() + timedelta(days=20))
    assert open_task_of(case).step_key == "ba_answer"
    assert advance(case, "ba_answer", "sb.magdeburg", "answered") == "Suspended"
    again = open_task_of(case)
    assert (again.step_key, again.attempt) == ("ba_approval", 2)
    sweep(now=again.created_at + timedelta(days=6, hours=23))
    assert open_task_of(case).id == again.id  # the week has not passed
    sweep(now=again.created_at + timedelta(days=7, minutes=1))
    (deemed,) = [t for t in tasks_of(case) if t.step_key == "ba_approval" and t.attempt == 2]
    assert (deemed.decision, deemed.completed_by) == ("deemed", "system")
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "decision"
    # An internal note in the file, not a letter to the employer.
    (note,) = events(case, "internal_note")
    assert "gilt als erteilt" in note
    assert "deemed_approval" not in letters(case)


# --- salary rules as data ------------------------------------------------------------------


def findings(purpose: str, today: date, born: date = date(1990, 1, 1), **facts) -> list[str]:
    base = {"contract_months": 24}
    case_facts = {
        "residence_purpose": purpose,
        "passport_valid_until": None,
        "planned_entry": None,
        "applicant_birth_date": born,
        "applicant_nationality": "x",
        "facts": {**base, **facts},
    }
    return rule_findings(v2(), case_facts, today)


BLUE = "Mindestgrenze der Blauen Karte EU"
AGE = "Ab 45 Jahren"


@pytest.mark.parametrize(
    ("facts", "found"),
    [
        ({"gross_annual_salary_eur": 50700}, False),  # standard threshold 2026
        ({"gross_annual_salary_eur": 46000}, True),
        ({"gross_annual_salary_eur": 46000, "shortage_occupation": True}, False),
        ({"gross_annual_salary_eur": 46000, "years_since_degree": 2}, False),
        ({"gross_annual_salary_eur": 46000, "years_since_degree": 4}, True),
        (
            {
                "gross_annual_salary_eur": 46000,
                "it_specialist_without_degree": True,
                "it_experience_years": 3,
            },
            False,
        ),
        (
            {
                "gross_annual_salary_eur": 46000,
                "it_specialist_without_degree": True,
                "it_experience_years": 2,
            },
            True,
        ),
        ({"gross_annual_salary_eur": 45000, "shortage_occupation": True}, True),
    ],
)
def test_blue_card_standard_and_reduced_thresholds(facts, found):
    assert any(BLUE in f for f in findings("18g", date(2026, 6, 1), **facts)) == found


def test_blue_card_threshold_by_the_year_of_the_check():
    assert not findings("18g", date(2025, 12, 31), gross_annual_salary_eur=49000)
    assert findings("18g", date(2026, 1, 1), gross_annual_salary_eur=49000)


@pytest.mark.parametrize(
    ("purpose", "born", "facts", "found"),
    [
        ("18a", date(1980, 1, 1), {"gross_annual_salary_eur": 50000}, True),
        ("18b", date(1980, 1, 1), {"gross_annual_salary_eur": 50000}, True),
        ("18a", date(1980, 1, 1), {"gross_annual_salary_eur": 55770}, False),
        (
            "18a",
            date(1980, 1, 1),
            {"gross_annual_salary_eur": 30000, "pension_provision": True},
            False,
        ),
        ("18a", date(1980, 1, 1), {"gross_annual_salary_eur": 30000, "first_permit": False}, False),
        ("18a", date(1981, 6, 2), {"gross_annual_salary_eur": 30000}, False),  # 44 on the day
        ("18a", date(1981, 6, 1), {"gross_annual_salary_eur": 30000}, True),  # 45 on the day
        ("16d", date(1970, 1, 1), {"gross_annual_salary_eur": 30000}, False),
    ],
)
def test_age_45_rule_for_first_permits(purpose, born, facts, found):
    assert any(AGE in f for f in findings(purpose, date(2026, 6, 1), born, **facts)) == found


def test_salary_shortfall_is_a_finding_not_a_missing_document():
    applicant = {**EXAMPLE["applicant"], "birth_date": "1975-01-01"}
    case = make_case(applicant=applicant)
    drive(case)
    assert open_task_of(case).step_key == "await_documents"
    text = letter_text(case, "missing_documents")
    assert "Ab 45 Jahren" in text and "– fehlt" not in text


def test_decision_shows_the_rules_checked_again_on_its_day():
    case = make_case(example=BLUE_CARD)
    drive(case)
    first = open_task_of(case)
    assert first.step_key == "decision" and first.form["findings"] == []
    # The salary changed after the completeness check; the decision opened
    # again (sent back by the second person) shows the shortfall.
    with session_scope() as session:
        row = session.get(Case, case.id)
        row.facts = {**row.facts, "gross_annual_salary_eur": 40000}
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    assert advance(case, "decision.confirm", "sb2.magdeburg", "send_back", "Gehalt prüfen") == (
        "Suspended"
    )
    again = open_task_of(case)
    assert (again.step_key, again.attempt) == ("decision", 2)
    assert any(BLUE in f for f in again.form["findings"])


# --- moving running version-1 cases ------------------------------------------------------


def test_running_version_1_cases_move_to_version_2_after_a_dry_run():
    with active_version(1):
        at_recognition = make_case()
        drive(at_recognition)
        at_ba = make_case(facts={"anabin_equivalent": True})
        drive(at_ba)
    assert open_task_of(at_recognition).step_key == "recognition"
    assert open_task_of(at_ba).step_key == "ba_approval"
    with session_scope() as session:
        plan = {
            c.case.id: c for c in versions.migration_plan(session, name="s81a", source=1, target=2)
        }
        assert plan[at_recognition.id].can_move
        # The BA may now also ask a question: a waiting BA task cannot change its options.
        assert not plan[at_ba.id].can_move
        assert "Zustimmung der Bundesagentur für Arbeit" in plan[at_ba.id].reason
    assert reload(at_recognition).definition_version == 1  # the dry run changed nothing
    with session_scope() as session:
        moved = versions.move_running_cases(session, name="s81a", source=1, target=2)
    assert at_recognition.reference in moved and at_ba.reference not in moved
    assert (reload(at_recognition).definition_version, reload(at_ba).definition_version) == (2, 1)
    assert events(at_ba, "case_not_migrated")
    # The moved case goes on under version 2: the BA may ask a question now.
    assert advance(at_recognition, "recognition", "fosa", "full") == "Suspended"
    ba = open_task_of(at_recognition)
    assert "question" in [o["value"] for o in ba.form["options"]]
    # The one that stayed finishes on version 1 (refusal without a hearing there).
    assert advance(at_ba, "ba_approval", "ba", "refuse", "Nicht vergleichbar") == "Completed"


def test_withdrawal_while_documents_are_missing():
    case = make_case(kinds=["passport", "power_of_attorney"])
    drive(case)
    assert advance(case, "await_documents", "sb.magdeburg", "withdrawn", "Stelle besetzt") == (
        "Completed"
    )
    assert reload(case).outcome == "withdrawn"


def test_withdrawal_while_the_ba_waits_for_an_answer():
    case = make_case(facts={"anabin_equivalent": True})
    drive(case)
    advance(case, "ba_approval", "ba", "question", "Arbeitszeit?")
    assert advance(case, "ba_answer", "sb.magdeburg", "withdrawn", "Rücknahme") == "Completed"
    assert reload(case).outcome == "withdrawn"
    assert letters(case) == ["fee_notice", "receipt"]


def test_installing_again_keeps_an_admins_rollback():
    with active_version(1), session_scope() as session:
        versions.install_shipped(session)
        assert versions.active_row(session, "s81a").version == 1


def test_demo_organisations_and_shipped_versions():
    with session_scope() as session:
        slugs = {o.slug for o in session.exec(select(Organisation))}
        assert {"ihk-fosa", "hwk", "lvwa", "zab"} <= slugs
        assert versions.load_row(session, "s81a", 2).published_at is not None
