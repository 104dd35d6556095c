"""Values a person enters with a decision (a step's `fields`): a date, an
amount, a reference, a document. Checked before anything is saved, with
German messages; stored as the case's facts, so that conditions, deadlines
(`from: fact:...`) and letters can read them."""

import math
import re
from datetime import date

from sqlmodel import Session

from serviceplus.models import clock
from serviceplus.models.services import audit
from serviceplus.models.tables import Case, Document, HumanTask
from serviceplus.settings import get_settings

MAX_TEXT = 200


class FieldError(ValueError):
    """Entered values that cannot be accepted; the message is German."""


def parse_date(text: str) -> date | None:
    """ISO (2026-11-27, as a date input sends it) or German (27.11.2026)."""
    text = text.strip()
    if match := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text):
        day, month, year = (int(g) for g in match.groups())
        text = f"{year:04d}-{month:02d}-{day:02d}"
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_amount(text: str) -> float | None:
    """ "411", "411,00", "1.411,50 €" or "411.00" -> a float; None if not a sum."""
    text = text.replace("€", "").replace("EUR", "").replace(" ", "").strip()
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _euro(value: float) -> str:
    return f"{value:,.2f} €".replace(",", "X").replace(".", ",").replace("X", ".")


def checked(
    session: Session,
    *,
    task: HumanTask,
    case: Case,
    decision: str,
    values: dict[str, str],
    files: dict,
) -> tuple[dict, list]:
    """The facts to store and the documents to add for `decision`; raises
    FieldError naming every problem when an entry is missing or wrong."""
    from serviceplus.models.services import cases  # cases imports human_tasks

    facts, documents, problems = {}, [], []
    kinds = {d.kind for d in cases.documents_of(session, case.id)}
    for field in task.form.get("fields", []):
        if field["for"] and decision not in field["for"]:
            continue
        label, name = field["label"], field["name"]
        text = (values.get(name) or "").strip()
        if field["type"] == "document":
            doc = files.get(name)
            if doc is None and name not in kinds:
                problems.append(f"Bitte laden Sie „{label}“ hoch.")
            elif doc is not None:
                found = cases.check_new_documents([doc], get_settings().max_upload_bytes, {name})
                problems += [f"{label}: {p.de}" for p in found]
                documents.append(doc)
            continue
        if not text:
            problems.append(f"Bitte geben Sie „{label}“ an.")
        elif field["type"] == "date":
            day = parse_date(text)
            if day is None:
                problems.append(f"„{label}“ ist kein gültiges Datum (TT.MM.JJJJ).")
            elif field.get("not_future") and day > clock.today():
                problems.append(f"„{label}“ darf nicht in der Zukunft liegen.")
            else:
                facts[name] = day.isoformat()
        elif field["type"] == "amount":
            amount = parse_amount(text)
            if amount is None:
                problems.append(f"„{label}“ ist kein gültiger Betrag (z. B. 411,00).")
            elif field.get("min") is not None and amount < field["min"]:
                problems.append(f"„{label}“ muss mindestens {_euro(field['min'])} betragen.")
            else:
                facts[name] = amount
        elif len(text) > MAX_TEXT or re.search(r"[\x00-\x1f\x7f]", text):
            problems.append(
                f"„{label}“ darf höchstens {MAX_TEXT} Zeichen ohne Steuerzeichen haben."
            )
        else:
            facts[name] = text
    if problems:
        raise FieldError(" ".join(problems))
    return facts, documents


def store(
    session: Session, *, task: HumanTask, case: Case, facts: dict, documents: list, actor: str
) -> list[Document]:
    """Save what `checked` accepted: facts on the case, documents in its file."""
    from serviceplus.models.services import cases

    if facts:
        case.facts = {**case.facts, **facts}
        session.add(case)
    rows = [cases.add_document(session, case=case, doc=doc, actor=actor) for doc in documents]
    labels = {f["name"]: f["label"] for f in task.form.get("fields", [])}
    shown = [f"{labels.get(k, k)}: {_shown(v)}" for k, v in facts.items()]
    shown += [f"{labels.get(d.kind, d.kind)}: {cases.safe_filename(d.filename)}" for d in documents]
    if shown:
        audit.record(
            session,
            actor=actor,
            action="task_values_recorded",
            case_id=case.id,
            detail=f"{task.title}: " + "; ".join(shown),
        )
    return rows


def _shown(value) -> str:
    if isinstance(value, float):
        return _euro(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value).strftime("%d.%m.%Y")
    return str(value)
