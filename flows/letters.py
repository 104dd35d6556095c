"""Letters: Jinja templates rendered to PDF/A-3b by WeasyPrint, archived
content-addressed and recorded once per (case, kind, step, attempt)."""

from datetime import date, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.definition import Definition
from serviceplus.models.services import audit, mail, storage
from serviceplus.models.services.advice import LETTERS_TO_EMPLOYER
from serviceplus.models.tables import Case, Letter, Organisation

TEMPLATES = Path(__file__).parent / "templates" / "letters"
TITLES = {
    "receipt": "Eingangsbestätigung",
    "fee_notice": "Vereinbarung und Gebührenbescheid",
    "missing_documents": "Nachforderung von Unterlagen",
    "partial_recognition": "Hinweis: teilweise Anerkennung der Berufsqualifikation",
    "deemed_approval": "Vermerk: Zustimmung der Bundesagentur für Arbeit gilt als erteilt",
    "preapproval": "Vorabzustimmung nach § 81a AufenthG",
    "refusal": "Ablehnung der Vorabzustimmung",
}
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_env.filters["datum"] = lambda d: d.strftime("%d.%m.%Y") if d else "–"
_env.filters["eur"] = lambda v: (
    f"{v:,.2f} EUR".replace(",", "X").replace(".", ",").replace("X", ".")
)


def render_html(kind: str, context: dict) -> str:
    return _env.get_template(f"{kind}.html").render(title=TITLES[kind], **context)


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML  # heavy import, only where a letter is written

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf(pdf_variant="pdf/a-3b")


def write_letter(
    session: Session,
    *,
    case: Case,
    kind: str,
    step_key: str,
    attempt: int,
    definition: Definition,
    extra: dict | None = None,
) -> Letter:
    """The letter for (case, kind, step, attempt); written only if not there yet."""
    existing = find_letter(session, case.id, kind, step_key, attempt)
    if existing is not None:
        return existing
    today = clock.now().date()
    context = {
        "case": case,
        "organisation": session.get(Organisation, case.organisation_id),
        "purpose": case.residence_purpose,
        "definition": definition,
        "today": today,
        "reply_by": today + timedelta(weeks=4),
        "valid_until": _add_months(today, 3),
        **(extra or {}),
    }
    pdf = render_pdf(render_html(kind, context))
    sha256, path = storage.store_bytes(pdf)
    letter = Letter(
        case_id=case.id,
        kind=kind,
        step_key=step_key,
        attempt=attempt,
        title=TITLES[kind],
        sha256=sha256,
        storage_path=path,
        size=len(pdf),
    )
    session.add(letter)
    audit.record(
        session, actor="system", action="letter_created", case_id=case.id, detail=TITLES[kind]
    )
    if kind in LETTERS_TO_EMPLOYER:
        session.flush()  # the letter's id keys its mail
        # Queued in this transaction: no letter without its mail, no mail twice.
        mail.letter_to_employer(session, case, letter, f"{case.reference}-{kind}-{attempt}.pdf")
    return letter


def find_letter(
    session: Session, case_id: int, kind: str, step_key: str, attempt: int
) -> Letter | None:
    query = select(Letter).where(
        Letter.case_id == case_id,
        Letter.kind == kind,
        Letter.step_key == step_key,
        Letter.attempt == attempt,
    )
    return session.exec(query).first()


def status_link_context(url: str) -> dict:
    """The status link as text and as a QR code (an SVG data URI WeasyPrint
    embeds), for the include templates/letters/_status_link.html."""
    import segno

    qr = segno.make(url, error="m")
    return {"status_url": url, "status_qr": qr.svg_data_uri(scale=3, border=2)}


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, 28))


CHECKLIST_TITLE = "Checkliste zur Vorprüfung"


def checklist_pdf(context: dict) -> bytes:
    """The adviser's checklist for the employer (models/services/advice.py
    builds the context). Not a letter of the case: not archived, no letterhead
    of an authority, written again on each download."""
    html = _env.get_template("precheck_checklist.html").render(title=CHECKLIST_TITLE, **context)
    return render_pdf(html)
