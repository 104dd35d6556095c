"""Security review, issue 19: escalated tasks, the definition diagram,
downloads, one validation for web and CLI, and German status labels."""

import io
import unicodedata
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from models import cases, clock, monitoring, workflows
from models.db import session_scope
from models.sweeper import sweep
from models.tables import Case, CaseStatus, Document, HumanTask, TaskStatus
from serviceplus.demo import blank_pdf
from tests.helpers import BLUE_CARD, drive, make_case, open_task_of

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


# --- 8: the definition diagram escapes what the draft says ---------------------

XSS_TITLE = 'x" onmouseover="alert(1)'


def _shipped_definition():
    with session_scope() as session:
        row = workflows.active_row(session, "s81a")
        return workflows.load(session, row.name, row.version)


def _attributes(svg: str) -> list[tuple[str, str]]:
    return [(k, v) for el in ET.fromstring(svg).iter() for k, v in el.attrib.items()]


def test_diagram_escapes_the_title_in_attributes():
    from webui import diagram

    svg = diagram.render(_shipped_definition().model_copy(update={"title": XSS_TITLE}))
    assert "onmouseover" not in {name for name, _ in _attributes(svg)}
    assert ("aria-label", f"Ablauf {XSS_TITLE}") in _attributes(svg)


xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=xml_text)
def test_diagram_is_well_formed_for_any_title(title):
    from webui import diagram

    definition = _shipped_definition()
    svg = diagram.render(definition.model_copy(update={"title": title}))
    root = ET.fromstring(svg)  # raises on anything that breaks out of a value
    assert root.attrib["aria-label"] == f"Ablauf {title}"
    assert {el.tag.split("}")[-1] for el in root.iter()} <= {
        "svg",
        "defs",
        "marker",
        "path",
        "line",
        "text",
        "rect",
    }


# --- 4: an escalated task can be finished by the role it was escalated to -------


def test_escalated_task_is_claimed_and_completed_by_the_coordinator(login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    sweep(now=clock.now() + timedelta(days=15))  # past the decision's P2W
    task = open_task_of(case)
    assert (task.step_key, task.role) == ("decision", "coordinator")
    clerk = login("sb.magdeburg")  # the task is no longer the clerks'
    assert clerk.post(f"/tasks/{task.id}/claim").status_code == 403
    refused = clerk.post(f"/tasks/{task.id}/complete", data={"decision": "approve"})
    assert refused.status_code == 403
    coordinator = login("koordination")
    assert "Entscheidung speichern" in coordinator.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert coordinator.post(f"/tasks/{task.id}/claim").status_code == 302
    assert open_task_of(case).assignee == "koordination"
    done = coordinator.post(f"/tasks/{task.id}/complete", data={"decision": "approve"})
    assert done.status_code == 302
    with session_scope() as session:
        row = session.get(HumanTask, task.id)
        assert (row.status, row.decision, row.completed_by) == (
            TaskStatus.completed,
            "approve",
            "koordination",
        )


def test_coordinator_cannot_act_on_a_clerks_task(login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    coordinator = login("koordination")
    assert coordinator.post(f"/tasks/{task.id}/claim").status_code == 403
    refused = coordinator.post(f"/tasks/{task.id}/complete", data={"decision": "approve"})
    assert refused.status_code == 403
    assert open_task_of(case).status == TaskStatus.open


# --- 9: downloads under a safe name with the extension of the checked type ------

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


def png_with_html() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    return buffer.getvalue() + b"<html><script>alert(1)</script></html>"


@pytest.fixture(scope="module")
def own_case(inprocess_deployment):
    return make_case(example=BLUE_CARD, start=False)


def upload(client, case, name: str, data: bytes) -> Document:
    response = client.post(
        f"/cases/{case.reference}/documents",
        data={"kind": "attachment", "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with session_scope() as session:
        query = select(Document).where(Document.case_id == case.id).order_by(Document.id.desc())
        return session.exec(query).first()


@pytest.mark.parametrize(
    ("name", "data", "served_as", "media_type"),
    [
        ("bild.html", png_with_html(), "bild.png", "image/png"),
        ("setup.exe", blank_pdf(), "setup.pdf", "application/pdf"),
        ("rechnung\u202egpj.exe", blank_pdf(), "rechnunggpj.pdf", "application/pdf"),
        ("\u2066foto\u2069.jpeg.html", png_with_html(), "foto.jpeg.png", "image/png"),
    ],
)
def test_downloads_carry_the_extension_of_the_checked_type(
    login, own_case, name, data, served_as, media_type
):
    client = login("sb.magdeburg")
    doc = upload(client, own_case, name, data)
    assert not set(doc.original_name) & set(BIDI)
    url = f"/cases/{own_case.reference}/documents/{doc.id}"
    with client.get(url) as response:
        assert response.mimetype == media_type
        assert response.headers["Content-Disposition"] == f"attachment; filename={served_as}"
    with client.get(f"{url}/preview") as response:
        assert response.headers["Content-Disposition"] == f"inline; filename={served_as}"


def test_inline_preview_is_sandboxed_without_scripts(login, own_case):
    client = login("sb.magdeburg")
    doc = upload(client, own_case, "mit-skript.pdf", blank_pdf())
    with client.get(f"/cases/{own_case.reference}/documents/{doc.id}/preview") as response:
        directives = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
        assert "sandbox" in directives
        assert "allow-scripts" not in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Disposition"].startswith("inline; filename=")


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=300),
    media_type=st.sampled_from(["application/pdf", "image/png", "image/jpeg"]),
)
def test_download_names_are_always_safe(name, media_type):
    served = cases.download_name(name, media_type)
    extension = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
    assert served.endswith(extension[media_type])
    assert len(served) > len(extension[media_type]) and len(served) <= 130
    assert not any(unicodedata.category(c) == "Cc" or c in BIDI for c in served)
    assert "/" not in served and "\\" not in served and not served.startswith(".")
