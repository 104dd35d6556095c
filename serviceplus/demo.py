"""Demo cases for `make run` (demo mode only), with small real PDFs."""

import io
import json

from pypdf import PdfWriter
from sqlmodel import select

from models import cases
from models.db import session_scope
from models.tables import Case
from serviceplus.settings import PROJECT_ROOT, get_settings

EXAMPLES = PROJECT_ROOT / "docs" / "examples"


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def demo_inputs() -> list[tuple[dict, list[str]]]:
    """(case data, document kinds) for each demo case."""
    base = json.loads((EXAMPLES / "case-18a.json").read_text(encoding="utf-8"))
    all_kinds = [d["kind"] for d in base["documents"]]
    variants = [
        ("abh-md", "Nguyen Van An", "Elbe Pflege GmbH", "18a", all_kinds),
        ("abh-md", "Priya Raman", "Magdeburger Softwarehaus AG", "18b", all_kinds),
        ("abh-md", "Carlos Mendoza", "Börde Metallbau KG", "18a", all_kinds[:2]),
        ("abh-hal", "Amina Okafor", "Saale Klinikum gGmbH", "18a", all_kinds),
    ]
    result = []
    for org, applicant, employer, purpose, kinds in variants:
        data = {**base, "organisation": org, "residence_purpose": purpose}
        data["applicant"] = {**base["applicant"], "name": applicant}
        data["employer"] = {**base["employer"], "name": employer}
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
            data=cases.parse_case_input(data), documents=docs, actor="demo",
            max_upload_bytes=get_settings().max_upload_bytes,
        )  # fmt: skip
