"""Security review, issue 19: escalated tasks, the definition diagram,
downloads, one validation for web and CLI, and German status labels."""

import copy
import io
import json
import math
import subprocess
import sys
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from serviceplus.demo import blank_pdf
from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import cases, runs, versions
from serviceplus.models.services.sweeper import sweep
from serviceplus.models.tables import Case, CaseStatus, Document, HumanTask, TaskStatus
from tests.helpers import BLUE_CARD, drive, make_case, open_task_of

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


# --- 11: every status has a German label ---------------------------------------


def test_every_status_has_a_german_label():
    from serviceplus.webui import labels

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
        runs.cancel(session, case=row, actor="koordination", reason="zurückgenommen")
    page = login("sb.magdeburg").get(f"/cases/{case.reference}").get_data(as_text=True)
    assert "<dt>Status</dt><dd>abgebrochen" in page
    assert "<td>abgebrochen</td>" in page  # the task's status, not "cancelled"
    listing = login("sb.magdeburg").get("/cases/").get_data(as_text=True)
    assert "<td>abgebrochen" in listing


# --- 8: the definition diagram escapes what the draft says ---------------------

XSS_TITLE = 'x" onmouseover="alert(1)'


def _shipped_definition():
    with session_scope() as session:
        row = versions.active_row(session, "s81a")
        return versions.load(session, row.name, row.version)


def _attributes(svg: str) -> list[tuple[str, str]]:
    return [(k, v) for el in ET.fromstring(svg).iter() for k, v in el.attrib.items()]


def test_diagram_escapes_the_title_in_attributes():
    from serviceplus.webui import diagram

    svg = diagram.render(_shipped_definition().model_copy(update={"title": XSS_TITLE}))
    assert "onmouseover" not in {name for name, _ in _attributes(svg)}
    assert ("aria-label", f"Ablauf {XSS_TITLE}") in _attributes(svg)


xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=xml_text)
@example(title="&;")  # dot copies what looks like an entity: found by a CI run
@example(title="A&B; &lt;x&gt;")
def test_diagram_is_well_formed_for_any_title(title):
    from serviceplus.webui import diagram

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
        # Graphviz's layout: groups, tooltips and links, shapes.
        "g",
        "title",
        "a",
        "polygon",
        "polyline",
        "ellipse",
    }


def test_diagram_shows_ampersands_in_step_titles_as_typed():
    from serviceplus.webui import diagram

    definition = _shipped_definition()
    key = next(iter(definition.steps))
    steps = dict(definition.steps)
    steps[key] = steps[key].model_copy(update={"title": "Lohn & Gehalt; &amp; &x;"})
    svg = ET.fromstring(diagram.render(definition.model_copy(update={"steps": steps})))
    texts = [el.text for el in svg.iter() if el.tag.endswith("}text")]
    assert "Lohn & Gehalt; &amp; &x;" in texts


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


# --- 10: one validation for web and CLI ---------------------------------------


def case_data(**changes) -> dict:
    data = copy.deepcopy(BLUE_CARD)
    data.update({"documents": [], "submission_key": f"safety-{uuid.uuid4()}", **changes})
    return data


def applicant(**changes) -> dict:
    return {**BLUE_CARD["applicant"], **changes}


@pytest.mark.parametrize(
    ("changes", "german", "english"),
    [
        (
            {"applicant": applicant(name="Arjun\x00Mehta")},
            "Fachkraft › Name: enthält unzulässige Steuerzeichen",
            "applicant.name: must not contain control characters",
        ),
        (
            {"employer": {"name": "A\u202eG", "address": "Hegelstraße 7"}},
            "Arbeitgeber › Name: enthält unzulässige Steuerzeichen",
            "employer.name: must not contain control characters",
        ),
        (
            {"applicant": applicant(name="x" * 201)},
            "Fachkraft › Name: ist zu lang (höchstens 200 Zeichen)",
            "applicant.name: String should have at most 200 characters",
        ),
        (
            {"facts": {"occupation": "y" * 2001}},
            "Angaben › occupation: ist zu lang (höchstens 2000 Zeichen)",
            "facts.occupation: String should have at most 2000 characters",
        ),
        (
            {"facts": {"gross_annual_salary_eur": float("nan")}},
            "Angaben › gross_annual_salary_eur: muss eine endliche Zahl sein",
            "facts.gross_annual_salary_eur: must be a finite number",
        ),
        (
            {"facts": {"contract_months": float("inf")}},
            "Angaben › contract_months: muss eine endliche Zahl sein",
            "facts.contract_months: must be a finite number",
        ),
        (
            {"applicant": applicant(birth_date="1899-12-31")},
            "Fachkraft › Geburtsdatum: muss zwischen 1900 und 2100 liegen",
            "applicant.birth_date: must be between 1900-01-01 and 2100-12-31",
        ),
        (
            {"planned_entry": "2101-01-01"},
            "Geplante Einreise: muss zwischen 1900 und 2100 liegen",
            "planned_entry: must be between 1900-01-01 and 2100-12-31",
        ),
        (
            {"documents": [{"kind": "cv", "file": "a\x07.pdf"}]},
            "Unterlagen › 0 › Datei: enthält unzulässige Steuerzeichen",
            "documents.0.file: must not contain control characters",
        ),
    ],
)
def test_bad_text_numbers_and_dates_are_refused_in_both_languages(changes, german, english):
    with pytest.raises(cases.CaseInputError) as refused:
        cases.parse_case_input(case_data(**changes))
    assert refused.value.messages == [german]
    assert refused.value.english == [english]


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(max_size=250),
    fact=st.one_of(st.text(max_size=2100), st.floats(), st.integers(), st.booleans()),
    born=st.dates(),
)
def test_parsed_input_is_always_clean_and_refusals_are_one_line(name, fact, born):
    data = case_data(
        applicant=applicant(name=name, birth_date=born.isoformat()), facts={"occupation": fact}
    )
    try:
        parsed = cases.parse_case_input(data)
    except cases.CaseInputError as exc:
        assert exc.messages and all("\n" not in m for m in exc.messages + exc.english)
        return
    assert 1 <= len(parsed.applicant.name) <= 200
    assert not cases.UNSAFE_TEXT.search(parsed.applicant.name)
    assert date(1900, 1, 1) <= parsed.applicant.birth_date <= date(2100, 12, 31)
    value = parsed.facts["occupation"]
    assert not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, str):
        assert len(value) <= 2000 and not cases.UNSAFE_TEXT.search(value)


def new_case_form(**changes) -> dict:
    return {
        "residence_purpose": "18a",
        "applicant_name": "Lea Kovač",
        "applicant_birth_date": "1991-02-03",
        "applicant_nationality": "bosnisch",
        "employer_name": "Harz Logistik GmbH",
        "employer_address": "Am Hafen 3, 39106 Magdeburg",
        "submission_key": f"web-safety-{uuid.uuid4()}",
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "german"),
    [
        ({"applicant_name": "Lea\x00Kovač"}, "Fachkraft › Name: enthält unzulässige Steuerzeichen"),
        (
            {"employer_address": "x" * 401},
            "Arbeitgeber › Anschrift: ist zu lang (höchstens 400 Zeichen)",
        ),
        (
            {"applicant_birth_date": "1850-01-01"},
            "Fachkraft › Geburtsdatum: muss zwischen 1900 und 2100 liegen",
        ),
    ],
)
def test_web_form_refuses_with_the_same_german_message(login, changes, german):
    before = case_total()
    response = login("sb.magdeburg").post("/cases/new", data=new_case_form(**changes))
    assert response.status_code == 400
    assert f">{german}</a></li>" in response.get_data(as_text=True)  # linked to its field
    assert case_total() == before


def case_total() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Case)).one()


def run_cli(*args: str):
    from serviceplus.cli import main

    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr


def test_cli_deeply_nested_json_is_one_line_without_traceback(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "serviceplus"), "case", "start", str(deep)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "nested too deeply" in result.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"facts": {"x": NaN}', "not valid JSON"),
        ("9" * 5000, "not valid JSON"),
        (json.dumps(case_data(facts={"salary": float("inf")})), "facts.salary: must be a finite"),
        (
            json.dumps(case_data(applicant=applicant(name="A\x1bB", birth_date="0001-01-01"))),
            "applicant.name: must not contain control characters; applicant.birth_date: must be",
        ),
        (
            json.dumps(case_data(organisation="ihk-fosa")),
            "organisation: 'ihk-fosa' is not a foreigners' authority",
        ),
    ],
)
def test_cli_refuses_bad_case_files_in_one_line(tmp_path, text, error):
    before = case_total()
    path = tmp_path / "case.json"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(run_cli("case", "start", str(path)), error)
    assert case_total() == before


def test_foreigners_authority_check_is_shared_by_web_and_cli():
    with pytest.raises(cases.CaseInputError) as refused, session_scope() as session:
        cases.create_case(
            session=session,
            data=cases.parse_case_input(case_data(organisation="ba")),
            documents=[],
            actor="test",
            max_upload_bytes=1000,
        )
    assert refused.value.messages == ["Behörde: „ba“ ist keine Ausländerbehörde"]


def test_cli_reads_documents_under_their_given_name_and_stores_a_safe_one(tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "reisepass.pdf").write_bytes(blank_pdf())
    (tmp_path / ".lebenslauf.pdf").write_bytes(blank_pdf())
    (tmp_path / "vertrag\u202e.pdf").write_bytes(blank_pdf())
    documents = [
        {"kind": "passport", "file": "scans/reisepass.pdf"},
        {"kind": "cv", "file": ".lebenslauf.pdf"},
        {"kind": "employment_contract", "file": "vertrag\u202e.pdf"},
    ]
    path = tmp_path / "case.json"
    path.write_text(json.dumps({**case_data(), "documents": documents}), encoding="utf-8")
    result = run_cli("case", "start", str(path))
    assert result.exit_code == 0, result.output
    reference = json.loads(result.stdout)["reference"]
    with session_scope() as session:
        case = cases.get_by_reference(session, reference)
        names = sorted(d.original_name for d in cases.documents_of(session, case.id))
    assert names == ["lebenslauf.pdf", "reisepass.pdf", "vertrag.pdf"]


@pytest.mark.parametrize("name", ["../geheim.pdf", "scans/../../geheim.pdf", "/etc/hostname"])
def test_cli_never_reads_outside_the_case_files_folder(tmp_path, name):
    folder = tmp_path / "fall"
    folder.mkdir()
    (tmp_path / "geheim.pdf").write_bytes(blank_pdf())
    path = folder / "case.json"
    documents = [{"kind": "passport", "file": name}]
    path.write_text(json.dumps({**case_data(), "documents": documents}), encoding="utf-8")
    assert_one_line_error(run_cli("case", "start", str(path)), "outside the case file's folder")
