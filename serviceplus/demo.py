"""Demo cases for `make run` (demo mode only), with small real PDFs."""

import io
import json
import uuid

from pypdf import PdfWriter
from sqlmodel import select

from serviceplus.models.db import session_scope
from serviceplus.models.services import cases
from serviceplus.models.tables import Case
from serviceplus.settings import PROJECT_ROOT, get_settings

EXAMPLES = PROJECT_ROOT / "docs" / "examples"


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def demo_inputs() -> list[tuple[dict, list[str]]]:
    """(case data, document kinds) for each demo case; together they show
    every kind of task: recognition, BA, decision and missing documents."""
    skilled, blue_card = _example("case-18a.json"), _example("case-18g.json")
    variants = [
        # org, applicant, employer, example, facts, number of documents (None: all)
        # A nurse: recognition at the Landesverwaltungsamt (health professions).
        (
            "abh-md",
            "Nguyen Van An",
            "Elbe Pflege GmbH",
            skilled,
            {"occupation": "Pflegefachfrau", "occupation_group": "health"},
            None,
        ),
        ("abh-md", "Priya Raman", "Magdeburger Softwarehaus AG", blue_card, None, None),
        # A craft: the chamber of crafts, once the file is complete.
        (
            "abh-md",
            "Carlos Mendoza",
            "Börde Metallbau KG",
            skilled,
            {"occupation": "Metallbauer", "occupation_group": "craft"},
            2,
        ),
        (
            "abh-hal",
            "Amina Okafor",
            "Saale Klinikum gGmbH",
            skilled,
            {"anabin_equivalent": True},
            None,
        ),
    ]
    result = []
    # The place of employment decides the authority (routing by postcode).
    addresses = {
        "abh-md": "Otto-von-Guericke-Straße 1, 39104 Magdeburg",
        "abh-hal": "Mansfelder Straße 56, 06108 Halle (Saale)",
    }
    for org, applicant, employer, example, facts, count in variants:
        kinds = [d["kind"] for d in example["documents"]][:count]
        data = {**example, "organisation": org}
        data["applicant"] = {**example["applicant"], "name": applicant}
        data["employer"] = {**example["employer"], "name": employer, "address": addresses[org]}
        data["facts"] = example["facts"] if facts is None else {**example["facts"], **facts}
        data["documents"] = [{"kind": k, "file": f"{k}.pdf"} for k in kinds]
        data["submission_key"] = f"demo-{applicant.lower().replace(' ', '-')}"
        result.append((data, kinds))
    return result


def seed_demo_cases() -> None:
    """Create and start the demo cases once; later runs reuse them."""
    with session_scope() as session:
        if session.exec(select(Case.id)).first() is not None:
            return
    pdf = blank_pdf()
    for data, kinds in demo_inputs():
        docs = [cases.NewDocument(kind=k, filename=f"{k}.pdf", data=pdf) for k in kinds]
        cases.submit(
            data=cases.parse_case_input(data),
            documents=docs,
            actor="demo",
            max_upload_bytes=get_settings().max_upload_bytes,
        )


def submit_example(name: str = "case-18g.json", organisation: str = "abh-md") -> Case:
    """File one new case from an example in docs/examples (blank PDFs for its
    documents) and start its flow run, as a clerk would; for benchmarks."""
    data = {**_example(name), "organisation": organisation}
    kinds = [d["kind"] for d in data["documents"]]
    data["submission_key"] = f"example-{uuid.uuid4()}"
    pdf = blank_pdf()
    case, _created, _started = cases.submit(
        data=cases.parse_case_input(data),
        documents=[
            cases.NewDocument(kind=k, filename=d["file"], data=pdf)
            for k, d in zip(kinds, data["documents"], strict=True)
        ],
        actor="bench",
        max_upload_bytes=get_settings().max_upload_bytes,
    )
    return case
