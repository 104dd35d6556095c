"""Demo cases for `make run` (demo mode only), with documents that look real."""

import io
import json
import time
import uuid

from pypdf import PdfWriter
from sqlmodel import select

from serviceplus.models.db import session_scope
from serviceplus.models.services import cases, human_tasks
from serviceplus.models.tables import Case, CaseStatus, HumanTask
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


def demo_documents(data: dict, kinds: list[str]) -> list[cases.NewDocument]:
    """Documents that look like the real ones (serviceplus/demo_documents.py),
    titled as the active definition names their kinds."""
    from serviceplus.demo_documents import render_demo_document
    from serviceplus.models.services import versions

    with session_scope() as session:
        labels = versions.active_definition(session, cases.DEFINITION_NAME)[1].documents
    return [
        cases.NewDocument(
            kind=k, filename=f"{k}.pdf", data=render_demo_document(k, labels.get(k, k), data)
        )
        for k in kinds
    ]


def seed_demo_cases() -> list[Case]:
    """Create and start the demo cases that do not exist yet (known by their
    submission keys, so a second `make run` reuses them); returns all of them."""
    seeded = []
    for data, kinds in demo_inputs():
        with session_scope() as session:
            case = session.exec(
                select(Case).where(Case.submission_key == data["submission_key"])
            ).first()
        if case is None:
            case, _created, _started = cases.submit(
                data=cases.parse_case_input(data),
                documents=demo_documents(data, kinds),
                actor="demo",
                max_upload_bytes=get_settings().max_upload_bytes,
            )
        seeded.append(case)
    return seeded


def in_an_inbox(case_ids: list[int]) -> set[int]:
    """The cases that a person can work on now (an open task in an inbox), or
    that have ended: their runs have got as far as they can by themselves."""
    with session_scope() as session:
        with_task = session.exec(
            select(HumanTask.case_id).where(
                HumanTask.case_id.in_(case_ids), HumanTask.status.in_(human_tasks.ACTIVE)
            )
        ).all()
        ended = session.exec(
            select(Case.id).where(
                Case.id.in_(case_ids),
                Case.status.in_([CaseStatus.completed, CaseStatus.cancelled, CaseStatus.failed]),
            )
        ).all()
    return set(with_task) | set(ended)


def seed_and_wait(timeout: float = 300.0) -> tuple[list[str], list[str]]:
    """Seed the demo cases and wait until each is in an inbox, so that `make
    run` says "ready" only when a demo user finds work. Returns the demo
    cases' references and those still on their way after `timeout`."""
    seeded = seed_demo_cases()
    ids = [case.id for case in seeded]
    deadline = time.monotonic() + timeout
    while (ready := in_an_inbox(ids)) != set(ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    return [c.reference for c in seeded], [c.reference for c in seeded if c.id not in ready]


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
