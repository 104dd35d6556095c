"""Cases: the list, a new case with its documents, the case page with its
timeline, and the downloads (each checked against the user)."""

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Optional

from serviceplus.models.services import (
    audit,
    cases,
    comments,
    human_tasks,
    monitoring,
    status_links,
    storage,
    versions,
)
from serviceplus.models.tables import Case, Document, Letter, Role
from serviceplus.settings import get_settings
from serviceplus.webui.auth import roles_required
from serviceplus.webui.db import get_db
from serviceplus.webui.redirects import safe_next

bp = Blueprint("cases", __name__, url_prefix="/cases")
CASE_ROLES = (Role.clerk, Role.coordinator)
REQUIRED = "Bitte ausfüllen."


class CaseForm(FlaskForm):
    submission_key = HiddenField()
    residence_purpose = SelectField(
        "Aufenthaltszweck", choices=[SelectChoice(k, v) for k, v in cases.PURPOSES.items()]
    )
    applicant_name = StringField("Name der Fachkraft", validators=[InputRequired(REQUIRED)])
    applicant_birth_date = DateField("Geburtsdatum", validators=[InputRequired(REQUIRED)])
    applicant_nationality = StringField("Staatsangehörigkeit", validators=[InputRequired(REQUIRED)])
    passport_valid_until = DateField("Pass gültig bis", validators=[Optional()])
    employer_name = StringField("Arbeitgeber", validators=[InputRequired(REQUIRED)])
    employer_address = StringField(
        "Anschrift des Arbeitgebers", validators=[InputRequired(REQUIRED)]
    )
    employer_email = StringField(
        "E-Mail des Arbeitgebers (optional, Schreiben gehen dorthin als PDF)",
        validators=[Optional()],
    )
    planned_entry = DateField("Geplante Einreise", validators=[Optional()])


class UploadForm(FlaskForm):
    kind = SelectField("Art der Unterlage")


def choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


def get_case_or_404(reference: str) -> Case:
    """The case, if the user may see it; 404 otherwise (reveals nothing)."""
    session = get_db()
    case = cases.get_by_reference(session, reference)
    if case is None or not cases.can_view(session, current_user.row, case):
        abort(404)
    return case


def _document_kinds() -> dict[str, str]:
    """Document kinds a new case may have (the active definition's)."""
    session = get_db()
    return versions.active_definition(session, cases.DEFINITION_NAME)[1].documents


@bp.get("/")
@roles_required(*CASE_ROLES)
def index():
    session = get_db()
    q = request.args.get("q", "")
    return render_template(
        "cases/index.html",
        cases=cases.cases_for(session, current_user.row, q=q),
        q=q.strip(),
        titles=monitoring.step_titles(session),
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.clerk)
def new():
    if not cases.opens_cases(current_user.organisation):
        abort(403)  # cases are opened at a foreigners' authority
    form = CaseForm()
    kinds = _document_kinds()
    if request.method == "GET":
        form.submission_key.data = str(uuid.uuid4())  # a double submit finds the same case
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            case, _created, started = cases.submit(
                data=cases.parse_case_input(_case_input(form)),
                documents=_uploaded_documents(kinds),
                actor=current_user.row.username,
                max_upload_bytes=get_settings().max_upload_bytes,
            )
        except cases.CaseInputError as exc:
            errors = exc.messages
        else:
            if not started:
                flash(
                    "Der Fall ist gespeichert und wird gestartet, sobald die "
                    "Prozesssteuerung erreichbar ist.",
                    "warning",
                )
            flash(f"Der Fall {case.reference} wurde angelegt.", "success")
            return redirect(url_for("cases.detail", reference=case.reference))
    status = 400 if request.method == "POST" else 200
    return render_template("cases/new.html", form=form, kinds=kinds, errors=errors), status


def _case_input(form: CaseForm) -> dict:
    return {
        "organisation": current_user.organisation.slug,
        "residence_purpose": form.residence_purpose.data,
        "applicant": {
            "name": form.applicant_name.data,
            "birth_date": form.applicant_birth_date.data,
            "nationality": form.applicant_nationality.data,
            "passport_valid_until": form.passport_valid_until.data,
        },
        "employer": {
            "name": form.employer_name.data,
            "address": form.employer_address.data,
            "email": (form.employer_email.data or "").strip() or None,
        },
        "planned_entry": form.planned_entry.data,
        "submission_key": form.submission_key.data or None,
    }


def _uploaded_documents(kinds: dict[str, str]) -> list[cases.NewDocument]:
    files = []
    for kind in kinds:
        for upload in request.files.getlist(f"doc_{kind}"):
            if upload and upload.filename:
                files.append(cases.NewDocument(kind, upload.filename, upload.read()))
    return files


@bp.get("/<reference>")
@roles_required(*CASE_ROLES)
def detail(reference: str):
    case = get_case_or_404(reference)
    session = get_db()
    own = case.organisation_id == current_user.row.organisation_id
    upload_form = UploadForm()
    upload_form.kind.choices = choices(cases.document_labels(session, case))
    return render_template(
        "cases/detail.html",
        case=case,
        own=own,
        purposes=cases.PURPOSES,
        tasks=human_tasks.tasks_of_case(session, case.id),
        documents=cases.visible_documents(session, current_user.row, case),
        # Letters and the full history belong to the case's own authority.
        letters=cases.letters_of(session, case.id) if own else None,
        events=audit.events_for_case(session, case.id) if own else [],
        comments=comments.for_case(session, case.id),
        labels=cases.document_labels(session, case),
        upload_form=upload_form,
        can_upload=own and current_user.is_clerk,
        status_link=status_links.working_link(session, case.id) if own else None,
        csrf_form=FlaskForm(),
    )


@bp.post("/<reference>/documents")
@roles_required(Role.clerk)
def upload(reference: str):
    """Add a document (e.g. one that came in later) or a clerk's attachment."""
    case = get_case_or_404(reference)
    if case.organisation_id != current_user.row.organisation_id:
        abort(404)
    session = get_db()
    kinds = cases.document_labels(session, case)
    form = UploadForm()
    form.kind.choices = choices(kinds)
    back = safe_next(request.form.get("next"), url_for("cases.detail", reference=reference))
    upload = request.files.get("file")
    if not form.validate_on_submit() or not upload or not upload.filename:
        flash("Bitte wählen Sie eine Datei und die Art der Unterlage.", "error")
        return redirect(back)
    doc = cases.NewDocument(form.kind.data, upload.filename, upload.read())
    problems = cases.check_new_documents([doc], get_settings().max_upload_bytes, set(kinds))
    if problems:
        for problem in problems:
            flash(problem.de, "error")
        return redirect(back)
    cases.add_document(session, case=case, doc=doc, actor=current_user.row.username)
    detail = f"{kinds[doc.kind]}: {cases.safe_filename(doc.filename)}"
    audit.record(
        session,
        actor=current_user.row.username,
        action="document_added",
        case_id=case.id,
        detail=detail,
    )
    session.commit()
    flash("Die Unterlage wurde hinzugefügt.", "success")
    return redirect(back)


def _own_case_or_404(reference: str) -> Case:
    case = get_case_or_404(reference)
    if case.organisation_id != current_user.row.organisation_id:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    return case


@bp.post("/<reference>/status-link")
@roles_required(Role.clerk)
def issue_status_link(reference: str):
    """A new link for the employer; the old one stops working. The link is
    shown once, here: only its hash is kept."""
    case = _own_case_or_404(reference)
    session = get_db()
    token = status_links.issue(session, case_id=case.id, actor=current_user.row.username)
    session.commit()
    flash(
        f"Neuer Statuslink (nur jetzt sichtbar, der bisherige gilt nicht mehr): "
        f"{status_links.url_of(token)}",
        "success",
    )
    return redirect(url_for("cases.detail", reference=reference))


@bp.post("/<reference>/status-link/revoke")
@roles_required(Role.clerk)
def revoke_status_link(reference: str):
    case = _own_case_or_404(reference)
    session = get_db()
    revoked = status_links.revoke(session, case_id=case.id, actor=current_user.row.username)
    session.commit()
    flash(
        "Der Statuslink ist gesperrt." if revoked else "Es gab keinen gültigen Statuslink.", "info"
    )
    return redirect(url_for("cases.detail", reference=reference))


def _visible_document_or_404(case: Case, document_id: int) -> Document:
    visible = cases.visible_documents(get_db(), current_user.row, case)
    doc = next((d for d in visible if d.id == document_id), None)
    if doc is None:
        abort(404)
    return doc


@bp.get("/<reference>/documents/<int:document_id>")
@roles_required(*CASE_ROLES)
def document(reference: str, document_id: int):
    case = get_case_or_404(reference)
    doc = _visible_document_or_404(case, document_id)
    return _send_audited(
        case,
        "document_downloaded",
        doc.original_name,
        doc.storage_path,
        doc.media_type,
        cases.download_name(doc.original_name, doc.media_type),
    )


@bp.get("/<reference>/documents/<int:document_id>/preview")
@roles_required(*CASE_ROLES)
def preview(reference: str, document_id: int):
    """The document inline, for the preview frame on the task page; sandboxed
    without scripts (see PREVIEW_CSP), so a PDF's JavaScript never runs."""
    case = get_case_or_404(reference)
    doc = _visible_document_or_404(case, document_id)
    return _send_audited(
        case,
        "document_viewed",
        doc.original_name,
        doc.storage_path,
        doc.media_type,
        cases.download_name(doc.original_name, doc.media_type),
        inline=True,
    )


@bp.get("/<reference>/letters/<int:letter_id>")
@roles_required(*CASE_ROLES)
def letter(reference: str, letter_id: int):
    case = get_case_or_404(reference)
    row = get_db().get(Letter, letter_id)
    if (
        row is None
        or row.case_id != case.id
        or case.organisation_id != current_user.row.organisation_id
    ):
        abort(404)
    name = cases.download_name(f"{case.reference}-{row.kind}-{row.attempt}", "application/pdf")
    return _send_audited(
        case, "letter_downloaded", row.title, row.storage_path, "application/pdf", name
    )


def _send_audited(
    case: Case,
    action: str,
    detail: str,
    path: str,
    media_type: str,
    name: str,
    inline: bool = False,
):
    """Personal data leaves the system: record who downloaded what, then send
    it as an attachment; only the preview is inline, and sandboxed."""
    session = get_db()
    audit.record(
        session, actor=current_user.row.username, action=action, case_id=case.id, detail=detail
    )
    session.commit()
    response = send_file(
        storage.resolve(path), mimetype=media_type, as_attachment=not inline, download_name=name
    )
    if inline:
        response.headers["X-ServicePLUS-Preview"] = "1"  # may be framed by our own page
    return response
