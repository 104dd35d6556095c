"""Cases: the list, a new case with its documents, the case page with its
timeline, and the downloads (each checked against the user)."""

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Optional

from models import audit, cases, storage, tasks, workflows
from models.tables import Case, Document, Letter, Role
from serviceplus.settings import get_settings
from webui.auth import roles_required
from webui.db import get_db

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
    session = get_db()
    row = workflows.active_row(session, cases.DEFINITION_NAME)
    return workflows.load(session, row.name, row.version).documents


@bp.get("/")
@roles_required(*CASE_ROLES)
def index():
    return render_template("cases/index.html", cases=cases.cases_for(get_db(), current_user.row))


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.clerk)
def new():
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
                flash("Der Fall ist gespeichert und wird gestartet, sobald die "
                      "Prozesssteuerung erreichbar ist.", "warning")  # fmt: skip
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
        "employer": {"name": form.employer_name.data, "address": form.employer_address.data},
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
    upload_form = UploadForm()
    upload_form.kind.choices = choices(_document_kinds())
    return render_template(
        "cases/detail.html",
        case=case,
        purposes=cases.PURPOSES,
        tasks=tasks.tasks_of_case(session, case.id),
        documents=cases.documents_of(session, case.id),
        letters=cases.letters_of(session, case.id),
        labels=cases.document_labels(session, case),
        events=audit.events_for_case(session, case.id),
        upload_form=upload_form,
        can_upload=current_user.is_clerk
        and case.organisation_id == current_user.row.organisation_id,
    )


@bp.post("/<reference>/documents")
@roles_required(Role.clerk)
def upload(reference: str):
    case = get_case_or_404(reference)
    if case.organisation_id != current_user.row.organisation_id:
        abort(404)
    kinds = _document_kinds()
    form = UploadForm()
    form.kind.choices = choices(kinds)
    upload = request.files.get("file")
    if not form.validate_on_submit() or not upload or not upload.filename:
        flash("Bitte wählen Sie eine Datei und die Art der Unterlage.", "error")
        return redirect(url_for("cases.detail", reference=reference))
    doc = cases.NewDocument(form.kind.data, upload.filename, upload.read())
    session = get_db()
    problems = cases.check_new_documents([doc], get_settings().max_upload_bytes, set(kinds))
    if problems:
        for problem in problems:
            flash(problem, "error")
        return redirect(url_for("cases.detail", reference=reference))
    cases.add_document(session, case=case, doc=doc, actor=current_user.row.username)
    audit.record(
        session,
        actor=current_user.row.username,
        action="document_added",
        case_id=case.id,
        detail=f"{kinds[doc.kind]}: {cases.safe_filename(doc.filename)}",
    )
    session.commit()
    flash("Die Unterlage wurde hinzugefügt.", "success")
    return redirect(url_for("cases.detail", reference=reference))


@bp.get("/<reference>/documents/<int:document_id>")
@roles_required(*CASE_ROLES)
def document(reference: str, document_id: int):
    case = get_case_or_404(reference)
    doc = get_db().get(Document, document_id)
    if doc is None or doc.case_id != case.id:
        abort(404)
    return _send_audited(case, "document_downloaded", doc.original_name,
                         doc.storage_path, doc.media_type, doc.original_name)  # fmt: skip


@bp.get("/<reference>/letters/<int:letter_id>")
@roles_required(*CASE_ROLES)
def letter(reference: str, letter_id: int):
    case = get_case_or_404(reference)
    row = get_db().get(Letter, letter_id)
    if row is None or row.case_id != case.id:
        abort(404)
    name = f"{case.reference}-{row.kind}-{row.attempt}.pdf"
    return _send_audited(case, "letter_downloaded", row.title, row.storage_path,
                         "application/pdf", name)  # fmt: skip


def _send_audited(case: Case, action: str, detail: str, path: str, media_type: str, name: str):
    """Personal data leaves the system: record who downloaded what, then send
    it as an attachment (never rendered inline by the browser)."""
    session = get_db()
    audit.record(session, actor=current_user.row.username, action=action, case_id=case.id,
                 detail=detail)  # fmt: skip
    session.commit()
    return send_file(storage.resolve(path), mimetype=media_type, as_attachment=True,
                     download_name=name)  # fmt: skip
