"""The demo data of `make run`: documents that look like the real thing."""

import io

from pypdf import PdfReader

from serviceplus.demo import demo_documents, demo_inputs
from serviceplus.demo_documents import BODIES
from serviceplus.models.services import cases


def pdf_text(data: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_every_demo_document_kind_has_its_own_page():
    used = {kind for _data, kinds in demo_inputs() for kind in kinds}
    assert used <= set(BODIES)


def test_demo_documents_carry_their_text_and_are_marked_as_specimens(database):
    data, kinds = demo_inputs()[1]  # the Blue Card case: every kind the demo uses
    assert set(kinds) == {d for _data, ks in demo_inputs() for d in ks}
    documents = {doc.kind: doc for doc in demo_documents(data, kinds)}
    assert cases.check_new_documents(list(documents.values()), 20 * 1024 * 1024, set(kinds)) == []
    texts = {kind: pdf_text(doc.data) for kind, doc in documents.items()}
    for kind, text in texts.items():
        assert "MUSTER" in text, kind
        assert "Priya Raman" in text or "RAMAN" in text, kind
    assert "Datenseite" in texts["passport"] and "02.08.1990" in texts["passport"]
    assert "P<MUSTERPRIYA<RAMAN" in texts["passport"]
    assert "§ 4 Vergütung" in texts["employment_contract"]
    assert "62.000 EUR" in texts["employment_contract"]
    assert "Magdeburger Softwarehaus AG" in texts["employment_contract"]
    assert "Stellenbeschreibung" in texts["employer_declaration"]
    assert "Softwareentwickler" in texts["employer_declaration"]
    assert "ZEUGNIS ÜBER DEN BERUFSABSCHLUSS" in texts["qualification"]
    assert "bevollmächtige" in texts["power_of_attorney"]
    assert "Berufserfahrung" in texts["cv"]
    # Titled as the definition names the kind.
    assert "Erklärung zum Beschäftigungsverhältnis" in texts["employer_declaration"]
