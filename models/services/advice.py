"""Advisers (WelcomeCenter, IQ network): the pre-check of a file
("Vorprüfung"), the hand-over to the competent authority, and what the
adviser may see of the case afterwards.

A pre-check takes the same input as a case (cases.parse_case_input) and is
checked by the same function as the authority's completeness step
(completeness.check_file), against the active definition. It has no fee and
no clock, and belongs to the advice organisation: no authority sees it
until it is handed over, and then only as the case it becomes.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.conditions import Context, ThresholdRef, evaluate
from serviceplus.models.db import session_scope
from serviceplus.models.definition import Definition
from serviceplus.models.services import audit, cases, storage, versions
from serviceplus.models.services.accounts import get_organisation
from serviceplus.models.services.cases import CaseCreate, CaseInputError, NewDocument, Problem
from serviceplus.models.services.completeness import (
    CompletenessResult,
    check_file,
    file_facts,
    sniff_media_type,
)
from serviceplus.models.tables import (
    AuditEvent,
    Case,
    Comment,
    HumanTask,
    Letter,
    Organisation,
    Precheck,
    PrecheckDocument,
    User,
)

ADVICE = "advice"  # Organisation.kind of an advice organisation
NOTE_MAX = 2000
# The letters an adviser may read: not the receipt (it carries the employer's
# private status link), not the internal note on the BA's deemed approval,
# not the hearing or the refusal (they quote the reasons of the body that
# refused: BA, recognition body).
ADVISER_LETTERS = (
    "fee_notice",
    "missing_documents",
    "partial_recognition",
    "preapproval",
)


class PrecheckError(ValueError):
    """A pre-check action that cannot be done; the message is German."""


def is_advice(org: Organisation) -> bool:
    return org.kind == ADVICE


def create(
    session: Session,
    *,
    data: CaseCreate,
    documents: list[NewDocument],
    adviser: User,
    note: str = "",
    max_upload_bytes: int,
) -> Precheck:
    """Save a pre-check with its documents and its first result. Nothing is
    saved when any input is bad (CaseInputError, as for a case)."""
    own = session.get(Organisation, adviser.organisation_id)
    if not is_advice(own):
        raise CaseInputError(
            [Problem("Vorprüfungen legen nur Beratungsstellen an.", "not an advice organisation")]
        )
    # Routed as the case will be: the authority of the place of employment.
    authority = cases.competent_authority(session, data)
    _row, definition = versions.active_definition(session, cases.DEFINITION_NAME)
    problems = cases.check_new_documents(documents, max_upload_bytes, set(definition.documents))
    problems += _note_problems(note)
    if problems:
        raise CaseInputError(problems)
    row = Precheck(
        organisation_id=own.id,
        authority_id=authority.id,
        # The submission key belongs to a case: the hand-over sets its own.
        data=data.model_dump(mode="json", exclude={"submission_key"}),
        note=note.strip(),
        created_by=adviser.username,
    )
    session.add(row)
    session.flush()
    for doc in documents:
        add_document(session, precheck=row, doc=doc, actor=adviser.username)
    refresh(session, row)
    audit.record(
        session,
        actor=adviser.username,
        action="precheck_created",
        case_id=None,
        detail=f"Vorprüfung {row.id} ({own.slug}), {len(documents)} Unterlagen",
    )
    return row


def _note_problems(note: str) -> list[Problem]:
    if len(note) > NOTE_MAX:
        return [Problem(f"Hinweis: höchstens {NOTE_MAX} Zeichen", "note: too long")]
    if cases.UNSAFE_TEXT.search(note.replace("\n", "").replace("\r", "")):
        return [Problem("Hinweis: enthält unzulässige Steuerzeichen", "note: control characters")]
    return []


def add_document(
    session: Session, *, precheck: Precheck, doc: NewDocument, actor: str
) -> PrecheckDocument:
    """Stored content-addressed, like a case's documents; checked by the caller."""
    sha256, path = storage.store_bytes(doc.data)
    row = PrecheckDocument(
        precheck_id=precheck.id,
        kind=doc.kind,
        original_name=cases.safe_filename(doc.filename),
        media_type=sniff_media_type(doc.data) or "application/octet-stream",
        size=len(doc.data),
        sha256=sha256,
        storage_path=path,
        uploaded_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def add_documents(
    session: Session,
    *,
    precheck: Precheck,
    documents: list[NewDocument],
    actor: str,
    max_upload_bytes: int,
) -> None:
    """More documents for an open pre-check; then the result is checked again."""
    if precheck.case_id is not None:
        raise PrecheckError("Die Vorprüfung ist bereits übergeben.")
    kinds = set(definition_of(session).documents)
    problems = cases.check_new_documents(documents, max_upload_bytes, kinds)
    if problems:
        raise CaseInputError(problems)
    for doc in documents:
        add_document(session, precheck=precheck, doc=doc, actor=actor)
    refresh(session, precheck)
    audit.record(
        session,
        actor=actor,
        action="precheck_documents_added",
        case_id=None,
        detail=f"Vorprüfung {precheck.id}, {len(documents)} Unterlagen",
    )


def definition_of(session: Session) -> Definition:
    """A pre-check follows the active version, as a case opened now would."""
    return versions.active_definition(session, cases.DEFINITION_NAME)[1]


def input_of(precheck: Precheck) -> CaseCreate:
    return cases.parse_case_input(precheck.data)


def documents_of(session: Session, precheck_id: int) -> list[PrecheckDocument]:
    query = select(PrecheckDocument).where(PrecheckDocument.precheck_id == precheck_id)
    return list(session.exec(query.order_by(PrecheckDocument.id)))


def facts_of(data: CaseCreate) -> dict:
    return file_facts(
        residence_purpose=data.residence_purpose,
        passport_valid_until=data.applicant.passport_valid_until,
        planned_entry=data.planned_entry,
        applicant_birth_date=data.applicant.birth_date,
        applicant_nationality=data.applicant.nationality,
        facts=dict(data.facts),
    )


@dataclass
class Advice:
    """What the rules say about the file, in German, for page and checklist."""

    result: CompletenessResult
    authority: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step title, verdict)
    thresholds: list[tuple[str, str]] = field(default_factory=list)  # (label, verdict)


THRESHOLD_LABELS = {
    "blue_card_salary": "Gehaltsgrenze Blaue Karte EU",
    "blue_card_salary_reduced": (
        "Gesenkte Gehaltsgrenze Blaue Karte EU "
        "(Engpassberufe, Berufsanfänger, IT-Fachkräfte ohne Hochschulabschluss)"
    ),
    "age_45_salary": "Gehaltsgrenze ab 45 Jahren (§ 18 Abs. 2 Nr. 5 AufenthG)",
}


def check(session: Session, precheck: Precheck) -> Advice:
    """The authority's completeness check on the pre-check's file, and what
    the definition's conditions derive from its facts."""
    definition = definition_of(session)
    data = input_of(precheck)
    facts = facts_of(data)
    documents = [
        (d.kind, storage.read_bytes(d.storage_path)) for d in documents_of(session, precheck.id)
    ]
    today = clock.today()
    advice = Advice(
        result=check_file(definition, facts, documents, today),
        authority=session.get(Organisation, precheck.authority_id).name,
    )
    ctx = Context(facts, {}, definition.thresholds, today)
    advice.steps = _other_bodies(session, definition, ctx)
    advice.thresholds = _thresholds(definition, ctx)
    return advice


def _other_bodies(session: Session, definition: Definition, ctx: Context) -> list[tuple]:
    """Each step another body decides (recognition, BA): needed for this
    file or not, by the step's own condition, and who decides it."""
    rows = []
    for step in definition.steps.values():
        slug = step.organisation_for(ctx) if step.kind == "human" else "case"
        # One option is a confirmation (e.g. of receipt), not a decision.
        if slug == "case" or len(step.options) < 2:
            continue
        org = get_organisation(session, slug)
        name = org.name if org else slug
        if step.when is None or evaluate(step.when, ctx):
            rows.append((step.title, f"voraussichtlich erforderlich – zuständig: {name}"))
        else:
            rows.append((step.title, "nach Ihren Angaben nicht erforderlich"))
    return rows


def _thresholds(definition: Definition, ctx: Context) -> list[tuple[str, str]]:
    """The salary thresholds the rules that apply to this file compare with,
    with this year's value and whether the stated salary reaches it."""
    names: set[str] = set()
    for rule in definition.completeness_rules:
        if rule.when is None or evaluate(rule.when, ctx):
            names |= rule.require.thresholds()
    salary = ctx.fact("facts.gross_annual_salary_eur")
    rows = []
    for name in sorted(names):
        value = ctx.operand(ThresholdRef(threshold=name))
        verdict = _eur(value)
        if isinstance(salary, int | float) and not isinstance(salary, bool):
            verdict += " – erreicht" if salary >= value else " – nicht erreicht"
        rows.append((THRESHOLD_LABELS.get(name, name), verdict))
    return rows


def _eur(value: float) -> str:
    return f"{value:,.2f} EUR".replace(",", "X").replace(".", ",").replace("X", ".")


def refresh(session: Session, precheck: Precheck) -> Advice:
    advice = check(session, precheck)
    precheck.complete = advice.result.complete
    session.add(precheck)
    return advice


def prechecks_for(session: Session, user: User, limit: int = 200) -> list[Precheck]:
    query = (
        select(Precheck)
        .where(Precheck.organisation_id == user.organisation_id)
        .order_by(Precheck.id.desc())
        .limit(limit)
    )
    return list(session.exec(query))


def get_for(session: Session, user: User, precheck_id: int) -> Precheck | None:
    """The pre-check, if it belongs to the user's advice organisation."""
    row = session.get(Precheck, precheck_id)
    if row is None or row.organisation_id != user.organisation_id:
        return None
    return row


def checklist_context(session: Session, precheck: Precheck, advice: Advice) -> dict:
    """Everything the employer's checklist shows (flows/letters.py renders it)."""
    definition = definition_of(session)
    data = input_of(precheck)
    required = definition.required_documents.get(data.residence_purpose, [])
    missing = set(advice.result.missing) | set(advice.result.unreadable)
    return {
        "precheck": precheck,
        "data": data,
        "purpose": cases.PURPOSES.get(data.residence_purpose, data.residence_purpose),
        "adviser": session.get(Organisation, precheck.organisation_id),
        "present": [definition.document_label(k) for k in required if k not in missing],
        "missing": [definition.document_label(k) for k in advice.result.missing],
        "unreadable": [definition.document_label(k) for k in advice.result.unreadable],
        "problems": advice.result.problems,
        "advice": advice,
        "fee_eur": definition.fee_eur,
        "today": clock.today(),
    }


def handover(*, precheck_id: int, user: User, max_upload_bytes: int) -> tuple[Case, bool]:
    """Open the § 81a case at the competent authority from a complete
    pre-check: its facts, documents and the adviser's note, nothing typed
    again. Returns (case, flow_started); a second hand-over finds the same case."""
    with session_scope() as session:
        row = get_for(session, user, precheck_id)
        if row is None:
            raise PrecheckError("Diese Vorprüfung gibt es nicht.")
        if row.case_id is None:
            _open_case(session, row, user, max_upload_bytes)
        case = session.get(Case, row.case_id)
    with session_scope() as session:
        session.add(case)
        started = cases.start_case_flow(session, case)
    return case, started


def _open_case(session: Session, row: Precheck, user: User, max_upload_bytes: int) -> None:
    if not refresh(session, row).result.complete:
        raise PrecheckError(
            "Die Unterlagen sind noch nicht vollständig; übergeben wird erst eine "
            "vollständige Vorprüfung."
        )
    # The case is opened at the authority the pre-check was routed to.
    authority = session.get(Organisation, row.authority_id)
    data = cases.parse_case_input(
        {**row.data, "organisation": authority.slug, "submission_key": f"precheck-{row.id}"}
    )
    documents = [
        NewDocument(d.kind, d.original_name, storage.read_bytes(d.storage_path))
        for d in documents_of(session, row.id)
    ]
    case, _created = cases.create_case(
        session=session,
        data=data,
        documents=documents,
        actor=user.username,
        max_upload_bytes=max_upload_bytes,
    )
    adviser_org = session.get(Organisation, row.organisation_id)
    case.precheck_id, case.prechecked_by = row.id, adviser_org.name
    session.add(case)
    if row.note:
        session.add(Comment(case_id=case.id, author=user.username, body=row.note))
    row.case_id, row.handed_over_by, row.handed_over_at = case.id, user.username, clock.now()
    session.add(row)
    audit.record(
        session,
        actor=user.username,
        action="precheck_handed_over",
        case_id=case.id,
        detail=f"Vorprüfung {row.id} von {adviser_org.name}",
    )


def unchanged_since_precheck(session: Session, case: Case) -> bool:
    """True when the case came from a complete pre-check and its documents
    are still exactly the pre-checked ones (same kinds, same content)."""
    if case.precheck_id is None:
        return False
    row = session.get(Precheck, case.precheck_id)
    if row is None or not row.complete:
        return False
    before = sorted((d.kind, d.sha256) for d in documents_of(session, row.id))
    now = sorted((d.kind, d.sha256) for d in cases.documents_of(session, case.id))
    return before == now


@dataclass
class Progress:
    """What an adviser sees of a handed-over case: no decisions, reasons,
    comments or documents of the deciding bodies."""

    case: Case
    authority: str
    steps: list[tuple[str, str, datetime | None, datetime | None, datetime | None]]
    letters: list[Letter]


def progress(session: Session, precheck: Precheck) -> Progress | None:
    if precheck.case_id is None:
        return None
    case = session.get(Case, precheck.case_id)
    steps = []
    done = select(AuditEvent).where(
        AuditEvent.case_id == case.id, AuditEvent.action == "step_executed"
    )
    for event in session.exec(done.order_by(AuditEvent.id)):
        steps.append((event.detail, "erledigt", event.at, None, event.at))
    tasks = select(HumanTask).where(HumanTask.case_id == case.id).order_by(HumanTask.id)
    for task in session.exec(tasks):
        steps.append((task.title, task.status, task.created_at, task.due_at, task.completed_at))
    steps.sort(key=lambda s: s[2])
    letters = [
        letter for letter in cases.letters_of(session, case.id) if letter.kind in ADVISER_LETTERS
    ]
    return Progress(
        case=case,
        authority=session.get(Organisation, case.organisation_id).name,
        steps=steps,
        letters=letters,
    )


def letter_for(session: Session, precheck: Precheck, letter_id: int) -> Letter | None:
    letter = session.get(Letter, letter_id)
    if (
        letter is None
        or precheck.case_id is None
        or letter.case_id != precheck.case_id
        or letter.kind not in ADVISER_LETTERS
    ):
        return None
    return letter
