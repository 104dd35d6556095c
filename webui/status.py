"""The public status page of a case, for the employer, reached by the private
link from the receipt letter (no login). German by default, English by the
browser's language or the switch on the page.

Every request is counted per address (rate limit) and every view, download
and answer is audited. A wrong, revoked or expired link is a plain 404.
"""

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from serviceplus.models.services import audit, cases, status_links, storage, throttle
from serviceplus.models.tables import Case
from serviceplus.settings import get_settings
from serviceplus.webui import public_texts
from serviceplus.webui.db import get_db

bp = Blueprint("status", __name__, url_prefix="/status")
LANGUAGES = ("de", "en")


def select_locale() -> str:
    """German unless the page's switch or the browser asks for English."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="de")


@bp.before_request
def rate_limit():
    session = get_db()
    allowed = throttle.status_request_allowed(session, request.remote_addr or "unbekannt")
    session.commit()
    if not allowed:
        abort(429)


def case_or_404(token: str) -> Case:
    case = status_links.case_for_token(get_db(), token)
    if case is None:
        abort(404)
    g.status_token = token
    return case


def _here(token: str) -> str:
    return url_for("status.page", token=token, lang=str(get_locale()))


@bp.get("/<token>")
def page(token: str):
    case = case_or_404(token)
    session = get_db()
    view = status_links.status_of(session, case)
    audit.record(
        session,
        actor=status_links.EMPLOYER,
        action="status_viewed",
        case_id=case.id,
        detail="Statusseite aufgerufen",
    )
    session.commit()
    return render_template(
        "status/page.html",
        view=view,
        token=token,
        texts=public_texts,
        lang=str(get_locale()),
    )


@bp.get("/<token>/letters/<int:letter_id>")
def letter(token: str, letter_id: int):
    case = case_or_404(token)
    session = get_db()
    row = status_links.letter_for(session, case, letter_id)
    if row is None:
        abort(404)
    audit.record(
        session,
        actor=status_links.EMPLOYER,
        action="status_letter_downloaded",
        case_id=case.id,
        detail=row.title,
    )
    session.commit()
    name = cases.download_name(f"{case.reference}-{row.kind}-{row.attempt}", "application/pdf")
    return send_file(
        storage.resolve(row.storage_path),
        mimetype="application/pdf",
        as_attachment=True,
        download_name=name,
    )


@bp.post("/<token>/documents")
def upload(token: str):
    case = case_or_404(token)
    session = get_db()
    documents = _uploaded_documents()
    try:
        pending = status_links.add_documents(
            session, case=case, documents=documents, max_bytes=get_settings().max_upload_bytes
        )
    except status_links.AnswerError as exc:
        session.rollback()
        _flash_problems(exc)
        return redirect(_here(token))
    session.commit()
    status_links.deliver_resume(pending)
    flash(_("Vielen Dank. Ihre Unterlagen sind eingegangen."), "success")
    return redirect(_here(token))


@bp.post("/<token>/answer")
def answer(token: str):
    case = case_or_404(token)
    session = get_db()
    try:
        status_links.choose(session, case=case, option=request.form.get("option", ""))
    except status_links.AnswerError as exc:
        session.rollback()
        _flash_problems(exc)
        return redirect(_here(token))
    session.commit()
    flash(_("Vielen Dank. Ihre Antwort ist eingegangen."), "success")
    return redirect(_here(token))


def _uploaded_documents() -> list[cases.NewDocument]:
    """One file field per document kind (`doc_<kind>`), so everything missing
    goes in one upload; or one `file` with its `kind`."""
    fields = [(name[4:], name) for name in request.files if name.startswith("doc_")]
    fields.append((request.form.get("kind", ""), "file"))
    return [
        cases.NewDocument(kind, upload.filename, upload.read())
        for kind, name in fields
        for upload in request.files.getlist(name)
        if upload and upload.filename
    ]


def _flash_problems(exc: status_links.AnswerError) -> None:
    english = str(get_locale()) == "en"
    for problem in exc.problems:
        flash(problem.en if english else problem.de, "error")
