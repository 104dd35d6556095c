"""Security review, issue 19: escalated tasks, the definition diagram,
downloads, one validation for web and CLI, and German status labels."""

import pytest

from models import monitoring
from models.db import session_scope
from models.tables import Case, CaseStatus, TaskStatus
from tests.helpers import BLUE_CARD, drive, make_case

pytestmark = pytest.mark.usefixtures("inprocess_deployment")


# --- 11: every status has a German label ---------------------------------------


def test_every_status_has_a_german_label():
    from webui import labels

    for status in CaseStatus:
        assert labels.case_status(status).strip(), status
    for status in TaskStatus:
        assert labels.task_status(status).strip(), status
    assert labels.case_status(CaseStatus.cancelled) == "abgebrochen"


def test_cancelled_case_shows_its_status(login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    with session_scope() as session:
        row = session.get(Case, case.id)
        monitoring.cancel(session, case=row, actor="koordination", reason="zurückgenommen")
    page = login("sb.magdeburg").get(f"/cases/{case.reference}").get_data(as_text=True)
    assert "<dt>Status</dt><dd>abgebrochen" in page
    assert "<td>abgebrochen</td>" in page  # the task's status, not "cancelled"
    listing = login("sb.magdeburg").get("/cases/").get_data(as_text=True)
    assert "<td>abgebrochen" in listing
