"""Cases: validated input, creation with documents, the flow start, lookups."""

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from sqlmodel import Session, or_, select

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.definition import Definition
from serviceplus.models.services import (
    audit,
    authorities,
    human_tasks,
    orchestration,
    storage,
    versions,
)
from serviceplus.models.services.accounts import get_organisation
from serviceplus.models.services.completeness import (
    CompletenessResult,
    check_file,
    facts_of_case,
    is_readable,
    sniff_media_type,
)
from serviceplus.models.tables import (
    NOT_CLOSED,
    Case,
    CaseStatus,
    Document,
    HumanTask,
    Letter,
    Organisation,
    User,
)

log = logging.getLogger(__name__)

DEFINITION_NAME = "s81a"
PURPOSES = {
    "18a": "§ 18a AufenthG – Fachkraft mit Berufsausbildung",
    "18b": "§ 18b AufenthG – Fachkraft mit akademischer Ausbildung",
    "18g": "§ 18g AufenthG – Blaue Karte EU",
    "16d": "§ 16d AufenthG – Anerkennung ausländischer Berufsqualifikationen",
    "16d3": "§ 16d Abs. 3 AufenthG – Anerkennungspartnerschaft",
    # Version 3 of § 81a (flows/definitions/s81a_v3.yaml).
    "16a": "§ 16a AufenthG – Berufsausbildung",
    "18c3": "§ 18c Abs. 3 AufenthG – Niederlassungserlaubnis für hochqualifizierte Fachkräfte",
    "81a5": "§ 81a Abs. 5 AufenthG – sonstige qualifizierte Beschäftigung",
}
MEDIA_TYPE_NAMES = "PDF, JPEG oder PNG"
ATTACHMENT, ATTACHMENT_LABEL = "attachment", "Anlage der Sachbearbeitung"
# Organisation.kind of a foreigners' authority (Ausländerbehörde): the only
# kind of body at which a case is opened.
FOREIGNERS_AUTHORITY = authorities.FOREIGNERS_AUTHORITY
# A family member's case (§ 81a Abs. 4 AufenthG): relation -> German label.
FAMILY_RELATIONS = {"spouse": "Ehegattin / Ehegatte", "child": "Kind"}
# The fact a definition reads to skip the fee of a joined family member.
FAMILY_MEMBER_FACT = "family_member"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: German for users, English for the CLI."""

    de: str
    en: str


class CaseInputError(ValueError):
    """Input that cannot become a case, one Problem each."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.en for p in problems))
        self.messages = [p.de for p in problems]
        self.english = [p.en for p in problems]


class AuthorityChoiceNeeded(CaseInputError):
    """The employer's postcode spans several districts: the user picks one
    of `candidates` (slug, authority name) and submits again."""

    def __init__(self, problem: Problem, candidates: list[tuple[str, str]]):
        super().__init__([problem])
        self.candidates = candidates


# Control characters (C0, DEL, C1) hide text, break exports and letters;
# bidi embeddings, overrides, isolates and marks make a name display as
# something else ("rechnung\u202egpj.exe" shows as "rechnungexe.jpg").
CONTROL = "\x00-\x1f\x7f-\x9f"
BIDI = "\u200e\u200f\u202a-\u202e\u2066-\u2069"
UNSAFE_TEXT = re.compile(f"[{CONTROL}{BIDI}]")
EARLIEST, LATEST = date(1900, 1, 1), date(2100, 12, 31)
FREE_TEXT_MAX = 2000


def _clean_text(value: str) -> str:
    if UNSAFE_TEXT.search(value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


def _no_control(value: str) -> str:
    # File names may carry bidi marks: they are read as given and stored
    # under safe_filename, which drops them. A NUL can never be opened.
    if re.search(f"[{CONTROL}]", value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


def _plausible_date(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise PydanticCustomError(
            "date_range", f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
        )
    return value


def _fact_value(value: Any) -> Any:
    """Text, a whole number, a finite number or true/false; one error per
    fact (a union would report one per type it tried)."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("finite_number", "must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > FREE_TEXT_MAX:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": FREE_TEXT_MAX},
            )
        return _clean_text(value)
    raise PydanticCustomError("fact_type", "must be text, a number or true/false")


def Text(max_length: int) -> Any:  # noqa: N802 - used like a type
    """A one-line text field: not empty, at most max_length, no control or bidi characters."""
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(_clean_text)]


# One address, plainly shaped; whether it works shows when the mail is sent.
EMAIL_SHAPE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def _email(value: str) -> str:
    if not EMAIL_SHAPE.match(value):
        raise PydanticCustomError("email", "is not an e-mail address")
    return value


PlausibleDate = Annotated[date, AfterValidator(_plausible_date)]
Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]
FileName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_control)]
FactValue = Annotated[Any, AfterValidator(_fact_value)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Applicant(_Input):
    name: Text(200)
    birth_date: PlausibleDate
    nationality: Text(80)
    passport_valid_until: PlausibleDate | None = None


class Employer(_Input):
    name: Text(200)
    address: Text(400)
    email: Email | None = None  # letters go there as PDF (models/services/mail.py)


class Representative(_Input):
    """A third party the employer names (lawyer, agency): letters go there."""

    name: Text(200)
    address: Text(400)
    email: Email | None = None


class DocumentRef(_Input):
    kind: Text(60)
    file: FileName


class CaseCreate(_Input):
    """One case as submitted (web form, CLI or JSON import); see docs/cli.md.
    The only validation of a case: web and CLI both come through here."""

    # The authority; None: found from the employer's postcode. Given, it must
    # be competent for that postcode (the pick when it spans two districts).
    organisation: Text(40) | None = None
    residence_purpose: Literal["18a", "18b", "18g", "16d", "16d3", "16a", "18c3", "81a5"]
    applicant: Applicant
    employer: Employer
    representative: Representative | None = None
    # A family member joins the principal's case (its reference).
    family_of: Text(40) | None = None
    family_relation: Literal["spouse", "child"] | None = None
    planned_entry: PlausibleDate | None = None
    facts: dict[Text(80), FactValue] = Field(default={}, max_length=100)
    documents: list[DocumentRef] = Field(default=[], max_length=100)
    submission_key: Text(80) | None = None


@dataclass
class NewDocument:
    kind: str
    filename: str
    data: bytes


FIELD_LABELS = {
    "organisation": "Behörde",
    "residence_purpose": "Aufenthaltszweck",
    "applicant": "Fachkraft",
    "employer": "Arbeitgeber",
    "name": "Name",
    "birth_date": "Geburtsdatum",
    "nationality": "Staatsangehörigkeit",
    "passport_valid_until": "Pass gültig bis",
    "address": "Anschrift",
    "email": "E-Mail",
    "planned_entry": "Geplante Einreise",
    "documents": "Unterlagen",
    "kind": "Art",
    "file": "Datei",
    "facts": "Angaben",
    "representative": "Bevollmächtigte",
    "family_of": "Familienangehörige von",
    "family_relation": "Verwandtschaft",
}
ERROR_TEXTS = {
    "missing": "fehlt",
    "string_too_short": "darf nicht leer sein",
    "string_too_long": "ist zu lang (höchstens {max_length} Zeichen)",
    "too_long": "hat zu viele Einträge (höchstens {max_length})",
    "control_characters": "enthält unzulässige Steuerzeichen",
    "date_range": "muss zwischen 1900 und 2100 liegen",
    "finite_number": "muss eine endliche Zahl sein",
    "fact_type": "muss ein Text, eine Zahl oder wahr/falsch sein",
    "dict_type": "muss ein Objekt sein",
    "date_from_datetime_parsing": "ist kein gültiges Datum (JJJJ-MM-TT)",
    "date_parsing": "ist kein gültiges Datum (JJJJ-MM-TT)",
    "date_type": "ist kein gültiges Datum (JJJJ-MM-TT)",
    "literal_error": "ist kein zulässiger Wert",
    "email": "ist keine gültige E-Mail-Adresse",
    "extra_forbidden": "ist kein bekanntes Feld",
    "string_type": "muss ein Text sein",
    "model_type": "hat das falsche Format",
    "list_type": "muss eine Liste sein",
}


def parse_case_input(data: object) -> CaseCreate:
    try:
        return CaseCreate.model_validate(data)
    except ValidationError as exc:
        raise CaseInputError([_problem(err) for err in exc.errors()]) from None


def _problem(err: dict) -> Problem:
    path = " › ".join(FIELD_LABELS.get(str(p), str(p)) for p in err["loc"]) or "Eingabe"
    field = ".".join(str(p) for p in err["loc"]) or "input"
    text = ERROR_TEXTS.get(err["type"], "ist ungültig").format(**err.get("ctx", {}))
    return Problem(f"{path}: {text}", f"{field}: {err['msg']}")


EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}


def safe_filename(name: str) -> str:
    """The last path part (browsers may send a whole path), without control
    and bidi characters, at most 120 characters; never used as a storage path."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = UNSAFE_TEXT.sub("", name).strip(". ")
    return name[-120:] or "dokument"


def download_name(name: str, media_type: str) -> str:
    """The name a file is served under: safe, and with the extension of its
    checked content type, so that "bild.html" holding a PNG is saved as
    "bild.png" and never opens as a web page or a program."""
    stem = safe_filename(name)
    stem = stem.rsplit(".", 1)[0].strip(". ") if "." in stem else stem
    return (stem or "dokument") + EXTENSIONS.get(media_type, ".bin")


def check_new_documents(
    documents: list[NewDocument], max_bytes: int, known_kinds: set[str]
) -> list[Problem]:
    """Every document that cannot be accepted, and why."""
    problems = []
    for doc in documents:
        label = safe_filename(doc.filename)
        if doc.kind not in known_kinds:
            problems.append(
                Problem(
                    f"Unterlagen › {label}: unbekannte Art „{doc.kind}“",
                    f"documents.{label}: unknown kind {doc.kind!r}",
                )
            )
        problems += [
            Problem(f"Unterlagen › {label}: {de}", f"documents.{label}: {en}")
            for de, en in _file_problems(doc, max_bytes)
        ]
    return problems


def _file_problems(doc: NewDocument, max_bytes: int) -> list[tuple[str, str]]:
    if re.search(r"[\x00-\x1f\x7f]", doc.filename):
        return [
            (
                "Der Dateiname enthält unzulässige Steuerzeichen.",
                "file name contains control characters",
            )
        ]
    if len(doc.filename) > 255:
        return [("Der Dateiname ist länger als 255 Zeichen.", "file name longer than 255")]
    if len(doc.data) > max_bytes:
        limit = max_bytes // (1024 * 1024)
        return [(f"Die Datei ist größer als {limit} MB.", f"file larger than {limit} MB")]
    if not doc.data:
        return [("Die Datei ist leer.", "file is empty")]
    if sniff_media_type(doc.data) is None:
        hint = "(geprüft wird der Inhalt, nicht der Name)"
        return [
            (
                f"Die Datei ist kein {MEDIA_TYPE_NAMES} {hint}.",
                "file is not a PDF, JPEG or PNG (by content)",
            )
        ]
    if not is_readable(doc.data):
        return [("Die Datei ist beschädigt oder nicht lesbar.", "file is corrupt or unreadable")]
    return []


def create_case(
    *,
    session: Session,
    data: CaseCreate,
    documents: list[NewDocument],
    actor: str,
    max_upload_bytes: int,
) -> tuple[Case, bool]:
    """Save a new case with its documents (or find the same submission).

    Returns (case, created). Nothing is saved when any input is bad. The
    flow run is started separately (start_case_flow), after the commit.
    """
    key = data.submission_key or _fingerprint(data, documents)
    existing = session.exec(select(Case).where(Case.submission_key == key)).first()
    if existing is not None:
        return existing, False
    principal = family_principal(session, data)
    org = principal_organisation(session, principal) if principal else None
    org = org or competent_authority(session, data)
    definition_row, definition = versions.active_definition(session, DEFINITION_NAME)
    problems = check_new_documents(documents, max_upload_bytes, set(definition.documents))
    if problems:
        raise CaseInputError(problems)
    facts = dict(data.facts)
    # Only a case joined to its principal is a family member (no second fee,
    # § 81a Abs. 4): never what a form or a JSON file says.
    facts.pop(FAMILY_MEMBER_FACT, None)
    if principal is not None:
        facts[FAMILY_MEMBER_FACT] = True
    representative = data.representative
    case = Case(
        submission_key=key,
        organisation_id=org.id,
        applicant_name=data.applicant.name,
        applicant_birth_date=data.applicant.birth_date,
        applicant_nationality=data.applicant.nationality,
        passport_valid_until=data.applicant.passport_valid_until,
        employer_name=data.employer.name,
        employer_address=data.employer.address,
        employer_email=data.employer.email,
        residence_purpose=data.residence_purpose,
        planned_entry=data.planned_entry,
        facts=facts,
        representative_name=representative.name if representative else None,
        representative_address=representative.address if representative else None,
        representative_email=representative.email if representative else None,
        family_of=principal.id if principal else None,
        family_relation=data.family_relation if principal else None,
        definition_name=definition_row.name,
        definition_version=definition_row.version,
        created_by=actor,
    )
    session.add(case)
    session.flush()
    case.reference = f"{org.slug.upper()}-{case.created_at.year}-{case.id:06d}"
    for doc in documents:
        add_document(session, case=case, doc=doc, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="case_created",
        case_id=case.id,
        detail=f"{case.reference}, {len(documents)} Unterlagen, {org.name}",
    )
    if principal is not None:
        relation = FAMILY_RELATIONS[case.family_relation]
        for target, detail in (
            (case, f"{relation} zu {principal.reference}"),
            (principal, f"{case.reference} ({relation}, {case.applicant_name})"),
        ):
            audit.record(
                session, actor=actor, action="family_member_added", case_id=target.id, detail=detail
            )
    return case, True


def opens_cases(org: Organisation) -> bool:
    """Cases are opened at a foreigners' authority that takes part in
    ServicePLUS only (web form, CLI, adviser's hand-over)."""
    return org.kind == FOREIGNERS_AUTHORITY and org.active


def organisation_problems(org: Organisation | None, slug: str) -> list[Problem]:
    if org is None:
        return [Problem(f"Behörde: „{slug}“ ist nicht bekannt", f"organisation: unknown {slug!r}")]
    if org.kind != FOREIGNERS_AUTHORITY:
        return [
            Problem(
                f"Behörde: „{slug}“ ist keine Ausländerbehörde",
                f"organisation: {slug!r} is not a foreigners' authority",
            )
        ]
    if not org.active:
        return [
            Problem(
                f"Zuständig ist die {org.name} ({org.address}); sie nimmt noch nicht an "
                "ServicePLUS teil. Der Antrag ist dort direkt zu stellen.",
                f"organisation: {slug!r} does not take part in ServicePLUS yet",
            )
        ]
    return []


def competent_authority(session: Session, data: CaseCreate) -> Organisation:
    """The foreigners' authority of the place of employment: found by the
    postcode of the employer's address. Raises CaseInputError (German and
    English) when the postcode lies outside Sachsen-Anhalt, when the given
    authority is not competent for it, or when the authority does not take
    part; AuthorityChoiceNeeded when the postcode spans several districts
    and none was picked. Without a postcode, or when it is not one of the
    data file's district authorities, the given authority is taken as it is."""
    chosen = data.organisation
    if chosen is not None and authorities.district_of_slug(chosen) is None:
        # Not a district's authority of the data file (e.g. one set up for a
        # special task): no postcode area to check against; taken as given.
        return _taking_part(session, chosen)
    postcode = authorities.postcode_of(data.employer.address)
    if postcode is None:
        if chosen is None:
            raise CaseInputError(
                [
                    Problem(
                        "Arbeitgeber › Anschrift: Bitte geben Sie die Anschrift des "
                        "Arbeitsorts mit Postleitzahl an; nach ihr richtet sich die "
                        "zuständige Ausländerbehörde.",
                        "employer.address: no postcode to find the competent authority",
                    )
                ]
            )
        return _taking_part(session, chosen)
    found = authorities.districts_for(postcode)
    if not found:
        raise CaseInputError(
            [
                Problem(
                    f"Die Postleitzahl {postcode} des Arbeitsorts liegt außerhalb von "
                    "Sachsen-Anhalt. Zuständig ist die Ausländerbehörde am Arbeitsort; "
                    "über ServicePLUS können nur Fälle in Sachsen-Anhalt gestellt werden.",
                    f"employer.address: postcode {postcode} is outside Sachsen-Anhalt",
                )
            ]
        )
    slugs = [d.slug for d in found]
    names = " oder ".join(f"{d.authority} ({d.district_kind} {d.district})" for d in found)
    if chosen is not None and chosen not in slugs:
        raise CaseInputError(
            [
                Problem(
                    f"Für die Postleitzahl {postcode} ist {names} zuständig, nicht „{chosen}“.",
                    f"organisation: {chosen!r} is not competent for postcode {postcode} "
                    f"({', '.join(slugs)})",
                )
            ]
        )
    if chosen is None and len(found) > 1:
        raise AuthorityChoiceNeeded(
            Problem(
                f"Die Postleitzahl {postcode} gehört zu mehreren Kreisen: zuständig ist "
                f"{names}. Bitte wählen Sie die Ausländerbehörde des Arbeitsorts.",
                f"organisation: postcode {postcode} spans several districts "
                f"({', '.join(slugs)}); give one as organisation",
            ),
            [(d.slug, d.authority) for d in found],
        )
    return _taking_part(session, chosen or slugs[0])


def _taking_part(session: Session, slug: str) -> Organisation:
    org = get_organisation(session, slug)
    if org is None and (district := authorities.district_of_slug(slug)) is not None:
        # Listed in the data file, not (yet) an organisation here.
        raise CaseInputError(
            [
                Problem(
                    f"Zuständig ist die {district.authority} ({district.address}); sie nimmt "
                    "noch nicht an ServicePLUS teil. Der Antrag ist dort direkt zu stellen.",
                    f"organisation: {slug!r} does not take part in ServicePLUS yet",
                )
            ]
        )
    problems = organisation_problems(org, slug)
    if problems:
        raise CaseInputError(problems)
    return org


def family_principal(session: Session, data: CaseCreate) -> Case | None:
    """The principal's case a family member joins (the family's first case,
    also when a member's reference is given); None for a case of its own."""
    if data.family_of is None:
        if data.family_relation is not None:
            raise CaseInputError(
                [Problem("Familienangehörige: Bezugsfall fehlt", "family_of: missing")]
            )
        return None
    principal = get_by_reference(session, data.family_of)
    problems = []
    if principal is None:
        problems.append(
            Problem(
                f"Familienangehörige von: Fall „{data.family_of}“ ist nicht bekannt",
                f"family_of: unknown case {data.family_of!r}",
            )
        )
    if data.family_relation is None:
        problems.append(
            Problem(
                "Verwandtschaft: bitte Ehegattin/Ehegatte oder Kind wählen",
                "family_relation: missing (spouse or child)",
            )
        )
    if problems:
        raise CaseInputError(problems)
    if principal.family_of is not None:
        given, principal = principal, session.get(Case, principal.family_of)
        if principal.organisation_id != given.organisation_id:
            # The principal was handed over without this member: the family
            # must first be brought together at one authority.
            raise CaseInputError(
                [
                    Problem(
                        f"Familienangehörige von: der Bezugsfall von {given.reference} wird "
                        "bei einer anderen Behörde geführt",
                        f"family_of: the principal of {given.reference} is at another authority",
                    )
                ]
            )
    if not joinable(principal):
        raise CaseInputError(
            [
                Problem(
                    f"Familienangehörige von: das Verfahren {principal.reference} ist ohne "
                    "Zustimmung beendet; Familienangehörige können nur einem laufenden oder "
                    "bewilligten Verfahren beitreten",
                    f"family_of: the case {principal.reference} ended as {principal.outcome}",
                )
            ]
        )
    return principal


def joinable(principal: Case) -> bool:
    """A family member joins a skilled worker who is coming: a procedure still
    open (an incident included) or one that ended with the approval or visa."""
    if principal.status in NOT_CLOSED:
        return True
    return principal.status == CaseStatus.completed and principal.outcome in JOINABLE_OUTCOMES


JOINABLE_OUTCOMES = {"approved", "visa_issued"}


def principal_organisation(session: Session, principal: Case) -> Organisation:
    """A family member's case is opened where the principal's case is."""
    org = session.get(Organisation, principal.organisation_id)
    return org


def family_of_case(session: Session, case: Case) -> list[Case]:
    """All cases of the case's family, the principal first; [] without family."""
    root_id = case.family_of or case.id
    query = select(Case).where((Case.id == root_id) | (Case.family_of == root_id))
    family = list(session.exec(query.order_by(Case.id)))
    return family if len(family) > 1 else []


def representative_of(data: dict) -> Representative | None:
    """A representative from form fields name/address/email; None when all
    are empty (no representative). Raises CaseInputError (German)."""
    values = {k: (data.get(k) or "").strip() for k in ("name", "address", "email")}
    if not any(values.values()):
        return None
    try:
        return Representative.model_validate({**values, "email": values["email"] or None})
    except ValidationError as exc:
        problems = [_problem({**e, "loc": ("representative", *e["loc"])}) for e in exc.errors()]
        raise CaseInputError(problems) from None


def set_representative(
    session: Session, *, case: Case, representative: Representative | None, actor: str
) -> None:
    """Name, change or remove the employer's representative (audited)."""
    rep = representative
    case.representative_name = rep.name if rep else None
    case.representative_address = rep.address if rep else None
    case.representative_email = rep.email if rep else None
    session.add(case)
    detail = f"{rep.name}, {rep.address}" + (f", {rep.email}" if rep.email else "") if rep else ""
    audit.record(
        session,
        actor=actor,
        action="representative_changed",
        case_id=case.id,
        detail=detail or "keine Bevollmächtigten mehr",
    )


def add_document(session: Session, *, case: Case, doc: NewDocument, actor: str) -> Document:
    sha256, path = storage.store_bytes(doc.data)
    row = Document(
        case_id=case.id,
        kind=doc.kind,
        original_name=safe_filename(doc.filename),
        media_type=sniff_media_type(doc.data) or "application/octet-stream",
        size=len(doc.data),
        sha256=sha256,
        storage_path=path,
        uploaded_by=actor,
    )
    session.add(row)
    return row


def upload_document(
    session: Session, *, case: Case, doc: NewDocument, actor: str, max_upload_bytes: int
) -> Document:
    """A document added to an existing case (web upload, `serviceplus case
    add-document`): the checks of the intake, then stored and audited.
    Raises CaseInputError and saves nothing when the file or kind is bad."""
    kinds = document_labels(session, case)
    problems = check_new_documents([doc], max_upload_bytes, set(kinds))
    if problems:
        raise CaseInputError(problems)
    row = add_document(session, case=case, doc=doc, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="document_added",
        case_id=case.id,
        detail=f"{kinds[doc.kind]}: {row.original_name}",
    )
    return row


def _fingerprint(data: CaseCreate, documents: list[NewDocument]) -> str:
    digest = hashlib.sha256(data.model_dump_json().encode())
    for doc in documents:
        digest.update(doc.kind.encode() + hashlib.sha256(doc.data).digest())
    return "sha256:" + digest.hexdigest()[:64]


def start_case_flow(session: Session, case: Case) -> bool:
    """Start the case's flow run (idempotent). False when Prefect is unreachable;
    the sweeper starts it later."""
    if case.flow_run_id:
        return True
    org = session.get(Organisation, case.organisation_id)
    try:
        case.flow_run_id = orchestration.start_flow_run(
            reference=case.reference,
            parameters={"case_id": case.id, "definition_version": case.definition_version},
            tags=[org.slug, f"aufenthg-{case.residence_purpose}"],
        )
    except Exception:
        log.exception("could not start the flow run of %s; the sweeper will retry", case.reference)
        return False
    session.add(case)
    return True


def submit(
    *, data: CaseCreate, documents: list[NewDocument], actor: str, max_upload_bytes: int
) -> tuple[Case, bool, bool]:
    """Create (or find) the case, commit it, then start its flow.

    Returns (case, created, flow_started). The case is committed before
    Prefect is called, so a Prefect outage never loses a submission.
    """
    with session_scope() as session:
        case, created = create_case(
            session=session,
            data=data,
            documents=documents,
            actor=actor,
            max_upload_bytes=max_upload_bytes,
        )
    with session_scope() as session:
        session.add(case)
        started = start_case_flow(session, case)
    return case, created, started


def cases_without_run(session: Session) -> list[Case]:
    query = select(Case).where(Case.flow_run_id == None, Case.status == CaseStatus.running)  # noqa: E711
    return list(session.exec(query))


def get_by_reference(session: Session, reference: str) -> Case | None:
    return session.exec(select(Case).where(Case.reference == reference)).first()


def can_view(session: Session, user: User, case: Case) -> bool:
    """A user sees a case of their own organisation, or one their
    organisation has a task on."""
    if case.organisation_id == user.organisation_id:
        return True
    query = select(HumanTask.id).where(
        HumanTask.case_id == case.id, HumanTask.organisation_id == user.organisation_id
    )
    return session.exec(query).first() is not None


def cases_for(session: Session, user: User, q: str = "", limit: int = 200) -> list[Case]:
    """The cases of the user's organisation, and those it took a task of
    (a recognition body, the BA), newest first; `q` searches the applicant's
    name, the case number and the employer."""
    worked_on = select(HumanTask.case_id).where(
        HumanTask.organisation_id == user.organisation_id,
        HumanTask.completed_by.is_not(None) | HumanTask.assignee.is_not(None),
    )
    query = select(Case).where(
        or_(Case.organisation_id == user.organisation_id, Case.id.in_(worked_on))
    )
    q = q.strip()[:100].replace("%", "").replace("_", "")
    if q:
        pattern = f"%{q}%"
        query = query.where(
            or_(
                Case.reference.ilike(pattern),
                Case.applicant_name.ilike(pattern),
                Case.employer_name.ilike(pattern),
            )
        )
    return list(session.exec(query.order_by(Case.id.desc()).limit(limit)))


def documents_of(session: Session, case_id: int) -> list[Document]:
    return list(session.exec(select(Document).where(Document.case_id == case_id)))


def document_labels(session: Session, case: Case) -> dict[str, str]:
    """German labels of the document kinds in the case's definition."""
    labels = versions.load(session, case.definition_name, case.definition_version).documents
    return {**labels, ATTACHMENT: ATTACHMENT_LABEL}


def visible_documents(session: Session, user: User, case: Case) -> list[Document]:
    """All documents for the case's own organisation; for an organisation
    acting on one of its steps (recognition body, BA) only the kinds those
    steps list: each body sees what its task needs."""
    documents = documents_of(session, case.id)
    if case.organisation_id == user.organisation_id:
        return documents
    definition = versions.load(session, case.definition_name, case.definition_version)
    keys = session.exec(
        select(HumanTask.step_key).where(
            HumanTask.case_id == case.id, HumanTask.organisation_id == user.organisation_id
        )
    ).all()
    steps = [definition.steps[human_tasks.step_of(key)] for key in keys]
    kinds = {kind for step in steps for kind in step.documents}
    return [d for d in documents if d.kind in kinds]


def letters_of(session: Session, case_id: int) -> list[Letter]:
    return list(session.exec(select(Letter).where(Letter.case_id == case_id).order_by(Letter.id)))


def set_step(session: Session, case_id: int, step_key: str, status: CaseStatus) -> Case:
    case = session.get(Case, case_id)
    case.current_step = step_key
    if case.status not in (CaseStatus.completed, CaseStatus.cancelled):
        case.status = status
    session.add(case)
    return case


def close(session: Session, *, case_id: int, step_key: str, outcome: str) -> Case:
    case = session.get(Case, case_id)
    if case.status != CaseStatus.completed:
        case.status = CaseStatus.completed
        case.outcome = outcome
        case.current_step = step_key
        case.closed_at = clock.now()
        session.add(case)
        audit.record(session, actor="system", action="case_closed", case_id=case_id, detail=outcome)
    return case


def check_case_file(
    session: Session, case: Case, definition: Definition | None = None
) -> CompletenessResult:
    """The completeness check of the case's file as it is now: the flow's
    step, and the clerk's one-click re-check after the employer sent more."""
    definition = definition or versions.load(session, case.definition_name, case.definition_version)
    documents = [
        (d.kind, storage.read_bytes(d.storage_path)) for d in documents_of(session, case.id)
    ]
    return check_file(definition, facts_of_case(case), documents, clock.today())
