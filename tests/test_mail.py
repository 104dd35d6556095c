"""Mail through the outbox, against a real SMTP server (aiosmtpd) on
loopback: letters reach the employer as PDF, a server that is down loses
nothing, and nothing is sent twice."""

import email
import email.policy
import os
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, cases, mail
from serviceplus.models.services.sweeper import sweep
from serviceplus.models.tables import Letter, OutboxMail
from serviceplus.settings import get_settings
from serviceplus.stack import free_port
from tests.helpers import BLUE_CARD, EXAMPLE, drive, make_case, open_task_of

# The paths of these tests are version 1's (recognition without a receipt step).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_1")


EMPLOYER = {**EXAMPLE["employer"], "email": "personal@arbeitgeber.example"}


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server on a free loopback port, and the settings pointing at it."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setattr(get_settings(), "smtp_host", "127.0.0.1")
    monkeypatch.setattr(get_settings(), "smtp_port", controller.port)
    yield inbox
    controller.stop()


def outbox_of(case) -> list[OutboxMail]:
    with session_scope() as session:
        query = select(OutboxMail).where(OutboxMail.case_id == case.id).order_by(OutboxMail.id)
        return list(session.exec(query))


def test_letters_reach_the_employer_once_even_when_the_server_was_down(smtp, monkeypatch):
    case = make_case(employer=EMPLOYER, kinds=["passport"])
    assert drive(case) == "Suspended"
    queued = outbox_of(case)
    with session_scope() as session:
        kinds = [session.get(Letter, int(m.key.split(":")[1])).kind for m in queued]
    assert kinds == ["receipt", "fee_notice", "missing_documents"]

    # The mail server is down: nothing is lost, the error is kept.
    port = get_settings().smtp_port
    monkeypatch.setattr(get_settings(), "smtp_port", free_port())
    sent, pending = mail.send_pending()
    assert sent == 0 and pending >= 3
    assert all(m.sent_at is None and m.last_error for m in outbox_of(case))
    assert smtp.messages == []

    monkeypatch.setattr(get_settings(), "smtp_port", port)
    report = sweep()
    assert report.mails_sent >= 3
    mine = [m for m in smtp.messages if m["To"] == EMPLOYER["email"]]
    assert len(mine) == 3
    receipt = next(m for m in mine if m["Subject"].startswith("Eingangsbestätigung"))
    assert case.reference in receipt["Subject"]
    (pdf,) = list(receipt.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content().startswith(b"%PDF-")
    assert all(m.sent_at is not None for m in outbox_of(case))

    before = len(smtp.messages)
    assert mail.send_pending() == (0, 0)
    assert sweep().mails_sent == 0
    assert len(smtp.messages) == before  # nothing twice


def test_no_address_no_mail_and_a_bad_address_is_refused_in_german(smtp):
    case = make_case(kinds=["passport"])
    assert drive(case) == "Suspended"
    assert outbox_of(case) == []
    data = {**EXAMPLE, "organisation": "abh-md", "employer": {**EMPLOYER, "email": "kein@"}}
    data.pop("documents")
    with pytest.raises(cases.CaseInputError) as error:
        cases.parse_case_input(data)
    assert error.value.messages == ["Arbeitgeber › E-Mail: ist keine gültige E-Mail-Adresse"]


def test_new_case_form_keeps_the_employers_address(login):
    from tests.test_web import _form

    form = _form()
    form["employer_email"] = "hr@arbeitgeber.example"
    response = login("sb.magdeburg").post(
        "/cases/new", data=form, content_type="multipart/form-data"
    )
    assert response.status_code == 302
    reference = response.headers["Location"].rsplit("/", 1)[1]
    with session_scope() as session:
        assert cases.get_by_reference(session, reference).employer_email == "hr@arbeitgeber.example"
    page = login("sb.magdeburg").get(f"/cases/{reference}").text
    assert "hr@arbeitgeber.example, erhält die Schreiben per E-Mail" in page


def set_address(username: str, address: str | None, digest: bool = True) -> None:
    with session_scope() as session:
        user = accounts.get_user(session, username)
        mail.set_notifications(session, user=user, email=address or "", digest=digest)


def test_clerks_get_one_daily_digest_unless_they_switch_it_off(login):
    case = make_case(kinds=["passport"])
    assert drive(case) == "Suspended"
    task = open_task_of(case)  # await_documents, due in 4 weeks
    client = login("sb2.magdeburg")
    response = client.post(
        "/account/notifications", data={"email": "sb2@abh.example", "digest": "on"}
    )
    assert response.status_code == 302
    refused = client.post(
        "/account/notifications", data={"email": "kein-mail"}, follow_redirects=True
    )
    assert "Bitte geben Sie eine gültige E-Mail-Adresse ein." in refused.text
    set_address("sb.magdeburg", "sb@abh.example", digest=False)

    day = task.due_at - timedelta(days=1)
    morning = day.replace(hour=get_settings().digest_hour + 1)
    with session_scope() as session:
        assert mail.queue_digests(session, morning) >= 1
        assert mail.queue_digests(session, morning + timedelta(hours=1)) == 0  # once a day
        digests = session.exec(
            select(OutboxMail).where(OutboxMail.key.like(f"digest:%:{morning:%Y-%m-%d}"))
        ).all()
    recipients = {m.recipient for m in digests}
    assert "sb2@abh.example" in recipients
    assert "sb@abh.example" not in recipients  # switched off
    (mine,) = [m for m in digests if m.recipient == "sb2@abh.example"]
    assert case.reference in mine.body and "Nachgereichte Unterlagen erfassen" in mine.body
    with session_scope() as session:
        early = morning.replace(hour=0) + timedelta(days=1)
        assert mail.queue_digests(session, early) == 0  # not before digest_hour


def test_coordinator_is_told_of_an_escalation(smtp):
    set_address("koordination", "koordination@abh.example")
    case = make_case(example=BLUE_CARD)  # no recognition, no BA: the authority decides
    assert drive(case) == "Suspended"
    task = open_task_of(case)
    assert task.step_key == "decision"  # escalates to the coordinator when overdue
    sweep(now=task.due_at + timedelta(days=1))
    escalations = [m for m in smtp.messages if m["To"] == "koordination@abh.example"]
    assert [m["Subject"] for m in escalations if case.reference in m["Subject"]] == [
        f"ServicePLUS: Frist überschritten – {case.reference}"
    ]


def test_sink_of_make_run_stores_mails_that_the_command_lists(tmp_path):
    """The SMTP sink `serviceplus run` starts in demo mode, as a process on a
    free port, and `serviceplus mails` reading what it stored."""
    import smtplib
    import subprocess
    import sys
    from email.message import EmailMessage

    from serviceplus.stack import wait_tcp

    port = free_port()
    store = tmp_path / "mails"  # where `serviceplus run` keeps them: <data>/mails
    sink = subprocess.Popen([sys.executable, "-m", "serviceplus.mailsink", str(port), str(store)])
    try:
        wait_tcp("127.0.0.1", port, 30, sink)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.example", "b@y.example", "Test"
        message.set_content("Hallo")
        message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(message)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    assert len(list(store.glob("*.eml"))) == 1
    env = {**os.environ, "SERVICEPLUS_DATA_DIR": str(tmp_path)}
    cli = str(Path(sys.executable).parent / "serviceplus")
    out = subprocess.run([cli, "mails"], env=env, capture_output=True, text=True, check=True)
    assert "b@y.example  Test [a.pdf]" in out.stdout
