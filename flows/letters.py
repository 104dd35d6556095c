"""Letters: Jinja templates rendered to tagged PDF/A-3a by WeasyPrint
(archival and accessible: structure tree, language), archived
content-addressed and recorded once per (case, kind, step, attempt)."""

from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.definition import Definition, period_delta
from serviceplus.models.services import audit, mail, storage
from serviceplus.models.services.accounts import LEGAL_REMEDIES
from serviceplus.models.services.status_links import EMPLOYER_LETTERS
from serviceplus.models.tables import Case, Letter, Organisation

TEMPLATES = Path(__file__).parent / "templates" / "letters"
TITLES = {
    "receipt": "Eingangsbestätigung",
    "fee_notice": "Vereinbarung und Gebührenbescheid",
    "missing_documents": "Nachforderung von Unterlagen",
    "partial_recognition": "Hinweis: teilweise Anerkennung der Berufsqualifikation",
    "deemed_approval": "Aktenvermerk: Zustimmung der Bundesagentur für Arbeit gilt als erteilt",
    "preapproval": "Vorabzustimmung im beschleunigten Fachkräfteverfahren",
    "refusal": "Ablehnung der Vorabzustimmung",
    "hearing": "Anhörung vor einer Ablehnung",
    "agreement": "Vereinbarung zur Unterzeichnung",
    "agreement_reminder": "Erinnerung: unterschriebene Vereinbarung",
    "fee_assessment": "Gebührenbescheid",
    "mission_notice": "Unterrichtung der Auslandsvertretung über die Vorabzustimmung",
}
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
# PDF/A-3 level A: archival like PDF/A-3b, and tagged (structure tree,
# reading order, language) so that screen readers can read the letter.
PDF_VARIANT = "pdf/a-3a"
_NUMBERS = ["", "ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
_NUMBERS += ["zehn", "elf", "zwölf"]
# unit: (one, accusative; one, dative; plural; plural dative)
_UNITS = {
    "Y": ("ein Jahr", "einem Jahr", "Jahre", "Jahren"),
    "M": ("einen Monat", "einem Monat", "Monate", "Monaten"),
    "W": ("eine Woche", "einer Woche", "Wochen", "Wochen"),
    "D": ("einen Tag", "einem Tag", "Tage", "Tagen"),
}


def _datum(value) -> str:
    if not value:
        return "–"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    elif isinstance(value, datetime):
        value = clock.local_date(value)
    return value.strftime("%d.%m.%Y")


def _dauer(period: str, dative: bool = False) -> str:
    """A period in words: "P3M" -> "drei Monate" (dative: "drei Monaten")."""
    delta = period_delta(period)
    parts = [
        ("Y", delta.years),
        ("M", delta.months),
        ("W", delta.days // 7 if delta.days % 7 == 0 else 0),
        ("D", delta.days if delta.days % 7 else 0),
    ]
    words = []
    for unit, count in parts:
        if count == 1:
            words.append(_UNITS[unit][1 if dative else 0])
        elif count:
            number = _NUMBERS[count] if count < len(_NUMBERS) else str(count)
            words.append(f"{number} {_UNITS[unit][3 if dative else 2]}")
    return " und ".join(words)


def _innerhalb(period: str) -> str:
    """ "innerhalb eines Monats", "innerhalb von drei Wochen" (legal style)."""
    genitive = {"einen Monat": "eines Monats", "eine Woche": "einer Woche"}
    genitive |= {"ein Jahr": "eines Jahres", "einen Tag": "eines Tages"}
    words = _dauer(period)
    if words in genitive:
        return f"innerhalb {genitive[words]}"
    return f"innerhalb von {_dauer(period, dative=True)}"


_env.filters["datum"] = _datum
_env.filters["innerhalb"] = _innerhalb
_env.filters["dauer"] = _dauer
_env.filters["klammer"] = lambda reference: f" ({reference})" if reference else ""
_env.filters["eur"] = lambda v: (
    f"{v:,.2f} EUR".replace(",", "X").replace(".", ",").replace("X", ".")
)


def render_html(kind: str, context: dict) -> str:
    return _env.get_template(f"{kind}.html").render(title=TITLES[kind], **context)


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML  # heavy import, only where a letter is written

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf(pdf_variant=PDF_VARIANT)


# What the first letter in a process costs beyond the import: fontconfig,
# Pango's font map and cffi parsing the C types it meets. The fork server
# renders this once, so its children start with all of that done.
WARM_UP = """<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Probe</title>
<style>@page { size: A4; @bottom-center { content: "Seite " counter(page); } }
body { font-family: "DejaVu Sans", sans-serif; }</style></head>
<body><h1>Bescheid</h1><p>Sehr geehrte Damen und Herren, <b>fett</b> <i>kursiv</i>
äöüß €.</p><table><tr><th>a</th><td>1</td></tr></table></body></html>"""


def warm_up() -> None:
    render_pdf(WARM_UP)


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
    context = letter_context(session, case=case, definition=definition) | (extra or {})
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
    if kind in EMPLOYER_LETTERS:
        session.flush()  # the letter's id keys its mail
        # Queued in this transaction: no letter without its mail, no mail twice.
        mail.letter_to_employer(session, case, letter, f"{case.reference}-{kind}-{attempt}.pdf")
    return letter


def letter_context(session: Session, *, case: Case, definition: Definition) -> dict:
    """What every letter may print. Dates that depend on a period the
    definition lacks are None: the template leaves their sentence out."""
    today = clock.today()
    periods = definition.letter_periods
    organisation = session.get(Organisation, case.organisation_id)
    return {
        "case": case,
        "organisation": organisation,
        "remedy": LEGAL_REMEDIES.get(organisation.legal_remedy),
        "purpose": case.residence_purpose,
        "purpose_title": definition.purpose_title(case.residence_purpose),
        "definition": definition,
        "periods": periods,
        "refs": definition.references,
        "mission": case.facts.get("mission") or definition.mission_for(case.applicant_nationality),
        "today": today,
        "reply_by": after(today, periods.reply),
        "pay_by": after(today, periods.payment),
        "valid_until": after(today, periods.preapproval_validity),
        "recognition_refusal": None,
        "ba_refusal": None,
    }


def after(day: date, period: str | None) -> date | None:
    """The calendar date `period` after `day` (months by the calendar)."""
    return day + period_delta(period) if period else None


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


CHECKLIST_TITLE = "Checkliste zur Vorprüfung"


def checklist_pdf(context: dict) -> bytes:
    """The adviser's checklist for the employer (models/services/advice.py
    builds the context). Not a letter of the case: not archived, no letterhead
    of an authority, written again on each download."""
    html = _env.get_template("precheck_checklist.html").render(title=CHECKLIST_TITLE, **context)
    return render_pdf(html)
