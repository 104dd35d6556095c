"""The § 81a procedure of definition version 3 (the active one), one scenario
per path, through the services and the real flow on a real Prefect server:
the agreement sent for signature and recorded, the fee notice after it and
the payment recorded (none for a family member), the visa stage after the
pre-approval (mission, AZR, § 31a AufenthV deadlines, validity), the new
purposes. Deadlines move with the sweeper's `now`."""

from datetime import date, datetime, time, timedelta

import pytest

from serviceplus.demo import blank_pdf
from serviceplus.flows.letters import after
from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.definition import DefinitionError, parse_definition
from serviceplus.models.services import audit, human_tasks, versions
from serviceplus.models.services.cases import NewDocument
from serviceplus.models.services.sweeper import sweep
from serviceplus.models.tables import Case, TaskStatus
from serviceplus.webui.labels import case_outcome
from tests.helpers import (
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

pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_3")
V3 = (versions.SHIPPED_DIR / "s81a_v3.yaml").read_text(encoding="utf-8")
# No recognition needed: the path goes straight to the BA.
FACTS = {**EXAMPLE["facts"], "anabin_equivalent": True}


@pytest.fixture(scope="module")
def on_version_3(database):
    with active_version(3):
        yield


def letters(case) -> list[str]:
    return sorted(x.kind for x in letters_of(case))


def events(case, action: str) -> list[str]:
    with session_scope() as session:
        return [e.detail for e in audit.events_for_case(session, case.id) if e.action == action]


def today() -> str:
    return clock.today().isoformat()


def record(case, step: str, decision: str, values=None, files=None, reason="") -> str:
    """Decide the open task (which must be `step`) with the form's values."""
    task = open_task_of(case)
    assert task.step_key == step, f"open task is {task.step_key}, expected {step}"
    assert human_tasks.decide_and_resume(
        task_id=task.id,
        username="sb.magdeburg",
        decision=decision,
        reason=reason,
        values=values or {},
        files=files or {},
    )
    return drive(case)


def sign(case, step: str = "await_agreement") -> str:
    signed = NewDocument("signed_agreement", "vereinbarung.pdf", blank_pdf())
    values = {"agreement_signed_on": today()}
    return record(case, step, "signed", values, {"signed_agreement": signed})


def pay(case) -> str:
    values = {"fee_paid_on": today(), "fee_paid_eur": "411,00", "fee_payment_reference": "AZ-1"}
    return record(case, "fee_payment", "paid", values)


def to_visa_stage(**changes) -> Case:
    case = make_case(facts=FACTS, **changes)
    assert drive(case) == "Suspended"
    assert sign(case) == "Suspended"
    assert pay(case) == "Suspended"
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Suspended"
    values = {"azr_entered_on": today()}
    assert record(case, "azr_entry", "recorded", values) == "Suspended"
    return case


def test_signed_agreement_fee_preapproval_then_visa_issued():
    case = make_case(facts=FACTS)
    assert drive(case) == "Suspended"
    # Only the receipt and the agreement for signature: no fee before it is signed.
    assert letters(case) == ["agreement", "receipt"]
    assert "zur Unterzeichnung" in letter_text(case, "agreement")
    assert open_task_of(case).step_key == "await_agreement"
    assert reload(case).file_complete_at is None
    assert sign(case) == "Suspended"
    notice = letter_text(case, "fee_assessment")
    assert "411,00 EUR" in notice and "Rechtsbehelfsbelehrung" in notice
    assert "§ 47 Abs. 1 Nr. 15 AufenthV" in notice and "§ 81a Abs. 4 AufenthG" in notice
    assert reload(case).file_complete_at is None  # the clocks wait for the complete file
    assert pay(case) == "Suspended"
    facts = reload(case).facts
    assert facts["fee_paid_eur"] == 411.0 and facts["fee_payment_reference"] == "AZ-1"
    assert facts["agreement_signed_on"] == today()
    assert reload(case).file_complete_at is not None
    recorded = events(case, "task_values_recorded")
    assert any("Betrag: 411,00 €" in e for e in recorded)
    assert any("Unterschriebene Vereinbarung: vereinbarung.pdf" in e for e in recorded)
    assert advance(case, "ba_approval", "ba", "approve") == "Suspended"
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Suspended"
    # The visa stage: the mission informed, named by the nationality (data in the definition).
    assert {"preapproval", "mission_notice"} <= set(letters(case))
    mission = letter_text(case, "mission_notice")
    assert "Deutsche Botschaft Bogotá" in mission and "§ 31a AufenthV" in mission
    assert "Deutsche Botschaft Bogotá" in letter_text(case, "preapproval")
    assert open_task_of(case).step_key == "azr_entry"
    assert reload(case).status == "waiting"  # still open: "Visumverfahren"
    assert record(case, "azr_entry", "recorded", {"azr_entered_on": today()}) == "Suspended"
    appointment = open_task_of(case)
    assert appointment.step_key == "visa_appointment"
    # 3 weeks from the pre-approval; valid through 3 calendar months.
    sent = max(x.created_at for x in letters_of(case) if x.kind == "preapproval")
    assert abs(appointment.due_at - (sent + timedelta(weeks=3))) < timedelta(seconds=5)
    last_day = after(clock.local_date(sent), "P3M")
    lapse = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=clock.LOCAL)
    assert appointment.expires_at == lapse
    assert appointment.expiry_remind_at == lapse - timedelta(weeks=2)
    on = (clock.today() + timedelta(days=10)).isoformat()
    assert record(case, "visa_appointment", "scheduled", {"visa_appointment_on": on}) == "Suspended"
    decision = open_task_of(case)
    # § 31a AufenthV: 3 weeks from the complete application at the appointment.
    assert decision.step_key == "visa_decision"
    assert clock.local_date(decision.due_at) == date.fromisoformat(on) + timedelta(weeks=3)
    assert record(case, "visa_decision", "issued", {"visa_decided_on": today()}) == "Completed"
    assert reload(case).outcome == "visa_issued"
    assert case_outcome("visa_issued") == "Visum erteilt"


def test_bad_entries_are_refused_in_german_and_change_nothing():
    case = make_case(facts=FACTS)
    drive(case)
    task = open_task_of(case)
    with pytest.raises(
        human_tasks.TaskError, match="Bitte laden Sie „Unterschriebene Vereinbarung“ hoch"
    ):
        human_tasks.decide_and_resume(
            task_id=task.id, username="sb.magdeburg", decision="signed", values={}
        )
    assert sign(case) == "Suspended"
    task = open_task_of(case)
    wrong = {
        ("31.02.2026", "411", "AZ"): "„Zahlungseingang am“ ist kein gültiges Datum (TT.MM.JJJJ).",
        ("2999-01-01", "411", "AZ"): "„Zahlungseingang am“ darf nicht in der Zukunft liegen.",
        (today(), "300,00", "AZ"): "„Betrag“ muss mindestens 411,00 € betragen.",
        (today(), "vierhundert", "AZ"): "„Betrag“ ist kein gültiger Betrag (z. B. 411,00).",
        (today(), "411", " "): "Bitte geben Sie „Verwendungszweck / Buchungszeichen“ an.",
    }
    for (paid_on, amount, reference), message in wrong.items():
        values = {
            "fee_paid_on": paid_on,
            "fee_paid_eur": amount,
            "fee_payment_reference": reference,
        }
        with pytest.raises(human_tasks.TaskError) as refused:
            human_tasks.decide_and_resume(
                task_id=task.id, username="sb.magdeburg", decision="paid", values=values
            )
        assert message in str(refused.value)
    assert open_task_of(case).id == task.id and open_task_of(case).status == TaskStatus.open
    assert "fee_paid_eur" not in reload(case).facts
    # Withdrawing needs none of the payment's fields.
    assert record(case, "fee_payment", "withdrawn", reason="Rücknahme") == "Completed"
    assert reload(case).outcome == "withdrawn"


def test_unsigned_agreement_reminder_then_withdrawn_after_a_clerk_confirms():
    case = make_case(facts=FACTS)
    drive(case)
    task = open_task_of(case)
    sweep(now=task.due_at - timedelta(hours=1))
    assert open_task_of(case).id == task.id  # four weeks have not passed
    sweep(now=task.due_at + timedelta(minutes=1))
    (done,) = [t for t in tasks_of(case) if t.id == task.id]
    assert (done.decision, done.completed_by) == ("unsigned", "system")
    assert drive(case) == "Suspended"
    assert "agreement_reminder" in letters(case)
    reminder = letter_text(case, "agreement_reminder")
    assert "zurückgenommen" in reminder
    # Not closed by the clock alone: a clerk confirms.
    assert open_task_of(case).step_key == "confirm_withdrawal"
    assert reload(case).status == "waiting"
    assert advance(case, "confirm_withdrawal", "sb.magdeburg", "withdrawn") == "Completed"
    assert reload(case).outcome == "withdrawn"
    assert "fee_assessment" not in letters(case)


def test_agreement_signed_after_the_reminder_goes_on_to_the_fee():
    case = make_case(facts=FACTS)
    drive(case)
    sweep(now=open_task_of(case).due_at + timedelta(minutes=1))
    assert drive(case) == "Suspended"
    assert sign(case, "confirm_withdrawal") == "Suspended"
    assert open_task_of(case).step_key == "fee_payment"
    assert "fee_assessment" in letters(case)


def test_visa_refused():
    case = to_visa_stage()
    on = today()
    assert record(case, "visa_appointment", "scheduled", {"visa_appointment_on": on}) == "Suspended"
    values = {"visa_decided_on": today()}
    assert record(case, "visa_decision", "refused", values, reason="Einreisesperre") == "Completed"
    assert reload(case).outcome == "visa_refused"
    assert case_outcome("visa_refused") == "Visum abgelehnt"


def test_preapproval_lapses_after_a_reminder():
    case = to_visa_stage()
    task = open_task_of(case)
    sweep(now=task.expiry_remind_at - timedelta(minutes=1))
    assert not any("läuft am" in e for e in events(case, "task_reminder"))
    sweep(now=task.expiry_remind_at + timedelta(minutes=1))
    # Valid through the last day the period reaches, as the letter says.
    last_day = clock.local_date(task.expires_at - timedelta(seconds=1))
    assert [e for e in events(case, "task_reminder") if "läuft am" in e] == [
        f"{task.title}: läuft am {last_day:%d.%m.%Y} ab"
    ]
    sweep(now=task.expiry_remind_at + timedelta(days=1))  # one reminder only
    assert len([e for e in events(case, "task_reminder") if "läuft am" in e]) == 1
    assert open_task_of(case).id == task.id
    sweep(now=task.expires_at + timedelta(minutes=1))
    (done,) = [t for t in tasks_of(case) if t.id == task.id]
    assert (done.decision, done.completed_by) == ("lapsed", "system")
    assert drive(case) == "Completed"
    assert reload(case).outcome == "lapsed"
    assert case_outcome("lapsed") == "Vorabzustimmung abgelaufen"


NEW_PURPOSES = {
    "16a": ("training_contract", "Ausbildungsvertrag"),
    "18c3": ("high_qualification", "Nachweis der besonderen fachlichen Kenntnisse"),
    "81a5": ("cv", "Lebenslauf in deutscher Sprache"),
}


@pytest.mark.parametrize("purpose", sorted(NEW_PURPOSES))
def test_new_purpose_checks_its_own_document_list(purpose):
    with session_scope() as session:
        definition = versions.load(session, "s81a", 3)
    required = definition.required_documents[purpose]
    left_out, label = NEW_PURPOSES[purpose]
    kinds = [k for k in required if k != left_out]
    case = make_case(facts=FACTS, residence_purpose=purpose, kinds=kinds)
    drive(case)
    sign(case)
    assert pay(case) == "Suspended"
    assert open_task_of(case).step_key == "await_documents"
    missing = letter_text(case, "missing_documents")
    assert label in missing and definition.purposes[purpose] in missing


def test_new_purpose_with_its_documents_is_complete():
    with session_scope() as session:
        required = versions.load(session, "s81a", 3).required_documents["16a"]
    assert {"training_contract", "school_certificate", "german_b1"} <= set(required)
    case = make_case(facts=FACTS, residence_purpose="16a", kinds=required)
    drive(case)
    sign(case)
    assert pay(case) == "Suspended"
    assert open_task_of(case).step_key == "ba_approval"


def test_nobody_waives_the_fee_by_typing_the_fact():
    """Only joining a principal's case makes a family member: the fact typed
    into a form or a case file is dropped, and the form never asks for it."""
    from serviceplus.models.services import intake

    case = make_case(facts={**FACTS, "family_member": True}, start=False)
    assert "family_member" not in reload(case).facts
    with session_scope() as session:
        definition = versions.active_definition(session, "s81a")[1]
    assert "family_member" not in [spec.name for spec in intake.facts_the_rules_use(definition)]


def test_family_member_pays_no_second_fee():
    principal = make_case(facts=FACTS, start=False)
    case = make_case(facts=FACTS, family_of=principal.reference, family_relation="spouse")
    assert reload(case).facts["family_member"] is True
    drive(case)
    assert sign(case) == "Suspended"
    assert open_task_of(case).step_key == "ba_approval"
    assert "fee_assessment" not in letters(case)
    assert not [t for t in tasks_of(case) if t.step_key == "fee_payment"]
    skipped = events(case, "step_skipped")
    # The fee notice's condition passes over the payment step too.
    assert "Gebührenbescheid versenden" in skipped


def test_the_inbox_form_takes_the_fields_and_refuses_bad_ones(login):
    case = make_case(facts=FACTS)
    drive(case)
    sign(case)
    task = open_task_of(case)
    client = login("sb.magdeburg")
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Zahlungseingang am" in page and 'name="field-fee_paid_eur"' in page
    form = {"decision": "paid", "field-fee_paid_on": today(), "field-fee_paid_eur": "100"}
    form["field-fee_payment_reference"] = "AZ-9"
    refused = client.post(f"/tasks/{task.id}/complete", data=form)
    assert refused.status_code == 409
    assert "„Betrag“ muss mindestens 411,00 € betragen." in refused.get_data(as_text=True)
    form["field-fee_paid_eur"] = "411,00"
    assert client.post(f"/tasks/{task.id}/complete", data=form).status_code == 302
    assert reload(case).facts["fee_payment_reference"] == "AZ-9"


def test_v3_validation_of_fields_and_clocks():
    from serviceplus.models.services import definition_messages

    bad = V3.replace("for: [paid]}", "for: [payed]}", 1)
    with pytest.raises(DefinitionError, match="unknown option 'payed'") as refused:
        parse_definition(bad)
    german = [p.message for p in definition_messages.problems(bad, refused.value)]
    assert german == ["Unbekannte Option „payed“ (fehlt unter „options“)."]
    bad = V3.replace('from: "step:preapproval"}', 'from: "step:nowhere"}', 1)
    with pytest.raises(DefinitionError, match="unknown step 'nowhere'"):
        parse_definition(bad)
    bad = V3.replace("type: document", "type: signature", 1)
    with pytest.raises(DefinitionError, match="fields"):
        parse_definition(bad)


def test_shipped_v3_is_active_and_keeps_v1_and_v2():
    with session_scope() as session:
        assert versions.load_row(session, "s81a", 3).published_at is not None
        v1, v2 = versions.load(session, "s81a", 1), versions.load(session, "s81a", 2)
    assert "closed_approved" in v2.steps and "closed_approved" in v1.steps
    assert (versions.SHIPPED_DIR / "s81a_v2.yaml").read_text(encoding="utf-8").count(
        "version: 2\n"
    ) == 1


def test_cli_completes_a_task_with_its_fields(tmp_path):
    from click.testing import CliRunner

    from serviceplus.cli import main

    case = make_case(facts=FACTS)
    drive(case)
    agreement = tmp_path / "vereinbarung.pdf"
    agreement.write_bytes(blank_pdf())
    task = open_task_of(case)
    args = ["task", "complete", str(task.id), "--decision", "signed", "--as", "sb.magdeburg"]
    refused = CliRunner().invoke(main, [*args, "--value", f"agreement_signed_on={today()}"])
    assert refused.exit_code == 1
    assert "Bitte laden Sie „Unterschriebene Vereinbarung“ hoch." in refused.output
    args += ["--value", f"agreement_signed_on={today()}"]
    done = CliRunner().invoke(main, [*args, "--file", f"signed_agreement={agreement}"])
    assert done.exit_code == 0, done.output
    assert drive(case) == "Suspended"
    assert open_task_of(case).step_key == "fee_payment"


def test_status_page_texts_and_missions_of_version_3():
    from serviceplus.webui import public_texts

    with session_scope() as session:
        definition = versions.load(session, "s81a", 3)
    for key in ("await_agreement", "fee_payment", "visa_appointment", "visa_decision"):
        assert key in definition.steps and key in public_texts.CURRENT
        assert key in public_texts.PAST
    for outcome in ("visa_issued", "visa_refused", "lapsed"):
        assert outcome in public_texts.OUTCOME
    assert definition.mission_for(" Kolumbianisch ") == "Deutsche Botschaft Bogotá"
    assert definition.mission_for("unbekannt") is None
