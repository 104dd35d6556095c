"""Completeness rules: which documents a residence purpose needs, and
whether each given file is a readable PDF, JPEG or PNG."""

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from serviceplus.models.conditions import Context, evaluate
from serviceplus.models.definition import Definition

MEDIA_TYPES = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the file's first bytes (never from its name)."""
    for magic, media_type in MEDIA_TYPES.items():
        if data.startswith(magic):
            return media_type
    return None


def is_readable(data: bytes) -> bool:
    # Imported here: the flow module is imported on every flow run's start.
    from PIL import Image
    from pypdf import PdfReader

    media_type = sniff_media_type(data)
    if media_type is None:
        return False
    try:
        if media_type == "application/pdf":
            return len(PdfReader(io.BytesIO(data)).pages) > 0
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        return True
    except Exception:  # any parser error means: not a readable file
        return False


@dataclass
class CompletenessResult:
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rule messages, German

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unreadable and not self.problems


def check_documents(required: list[str], documents: list[tuple[str, bytes]]) -> CompletenessResult:
    """Compare the documents given (kind, content) with the kinds required.

    A kind counts as present when at least one readable file of it exists;
    a kind whose files are all unreadable is reported as unreadable.
    """
    result = CompletenessResult()
    for kind in required:
        files = [data for doc_kind, data in documents if doc_kind == kind]
        if not files:
            result.missing.append(kind)
        elif not any(is_readable(data) for data in files):
            result.unreadable.append(kind)
    return result


def file_facts(
    *,
    residence_purpose: str,
    passport_valid_until: date | None,
    planned_entry: date | None,
    applicant_birth_date: date | None,
    applicant_nationality: str,
    facts: dict[str, Any],
) -> dict[str, Any]:
    """What conditions read about a file: a case's columns or a pre-check's
    input give the same dictionary (see case_context, advice.check)."""
    return {
        "residence_purpose": residence_purpose,
        "passport_valid_until": passport_valid_until,
        "planned_entry": planned_entry,
        "applicant_birth_date": applicant_birth_date,
        "applicant_nationality": applicant_nationality,
        # A family member joined to a principal's case (§ 81a Abs. 4): no
        # second fee. Also readable as facts.family_member; false when absent.
        "family_member": facts.get("family_member") is True,
        "facts": facts,
    }


def facts_of_case(case) -> dict[str, Any]:
    """The facts of a case (models.tables.Case) as conditions read them."""
    return file_facts(
        residence_purpose=case.residence_purpose,
        passport_valid_until=case.passport_valid_until,
        planned_entry=case.planned_entry,
        applicant_birth_date=case.applicant_birth_date,
        applicant_nationality=case.applicant_nationality,
        facts=case.facts,
    )


def rule_findings(definition: Definition, facts: dict[str, Any], today: date) -> list[str]:
    """The messages of the completeness rules that the facts break on `today`
    (thresholds are looked up by that day's year)."""
    ctx = Context(facts, {}, definition.thresholds, today)
    return [
        rule.message
        for rule in definition.completeness_rules
        if (rule.when is None or evaluate(rule.when, ctx)) and not evaluate(rule.require, ctx)
    ]


def check_file(
    definition: Definition,
    facts: dict[str, Any],
    documents: list[tuple[str, bytes]],
    today: date,
) -> CompletenessResult:
    """The completeness check: the definition's required documents for the
    purpose and its completeness rules. The authority's step and the
    adviser's pre-check both call this, so they cannot disagree."""
    required = definition.required_documents.get(facts["residence_purpose"], [])
    result = check_documents(required, documents)
    result.problems += rule_findings(definition, facts, today)
    return result
