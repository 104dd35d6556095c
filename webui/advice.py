"""Advisers (WelcomeCenter, IQ): their pre-checks, a new pre-check, its
result and checklist, more documents, the hand-over, and the handed-over
case's progress. Every page is the adviser's own organisation's only."""

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import NumberRange, Optional

from serviceplus.flows.letters import checklist_pdf
from serviceplus.models.services import advice, audit, cases, storage
from serviceplus.models.tables import Organisation, Precheck, Role
from serviceplus.settings import get_settings
from serviceplus.webui.auth import roles_required
from serviceplus.webui.cases import (
    CaseForm,
    UploadForm,
    _uploaded_documents,
    authority_choices,
    choices,
)
from serviceplus.webui.db import get_db
from serviceplus.webui.forms import CsrfForm

bp = Blueprint("advice", __name__, url_prefix="/advice")
adviser_only = roles_required(Role.adviser)


class PrecheckForm(CaseForm):
    """The case form, plus the authority and the facts the rules read."""

    organisation = SelectField("Zuständige Ausländerbehörde", validate_choice=False)
    gross_annual_salary_eur = IntegerField(
        "Bruttojahresgehalt (EUR)", validators=[Optional(), NumberRange(0, 10_000_000)]
    )
    contract_months = IntegerField(
        "Vertragsdauer (Monate)", validators=[Optional(), NumberRange(0, 600)]
    )
    anabin_equivalent = BooleanField("Abschluss und Hochschule in anabin als gleichwertig (H+)")
    shortage_occupation = BooleanField("Engpassberuf")
    note = TextAreaField("Hinweis für die Ausländerbehörde", validators=[Optional()])


def _authorities() -> list[SelectChoice]:
    return authority_choices()  # found from the postcode unless one is picked


def get_precheck_or_404(precheck_id: int) -> Precheck:
    """The pre-check, if it is the adviser's organisation's; 404 otherwise."""
    row = advice.get_for(get_db(), current_user.row, precheck_id)
    if row is None:
        abort(404)
    return row


@bp.get("/")
@adviser_only
def index():
    session = get_db()
    rows = advice.prechecks_for(session, current_user.row)
    names = {o.id: o.name for o in session.exec(select(Organisation))}
    return render_template(
        "advice/index.html",
        prechecks=[(row, advice.input_of(row)) for row in rows],
        names=names,
    )


@bp.route("/new", methods=["GET", "POST"])
@adviser_only
def new():
    if not advice.is_advice(current_user.organisation):
        abort(403)
    session = get_db()
    form = PrecheckForm()
    form.organisation.choices = _authorities()
    kinds = advice.definition_of(session).documents
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            row = advice.create(
                session,
                data=cases.parse_case_input(_precheck_input(form)),
                documents=_uploaded_documents(kinds),
                adviser=current_user.row,
                note=form.note.data or "",
                max_upload_bytes=get_settings().max_upload_bytes,
            )
        except cases.CaseInputError as exc:
            session.rollback()
            errors = exc.messages
            if isinstance(exc, cases.AuthorityChoiceNeeded):
                form.organisation.choices = authority_choices(exc.candidates)
        else:
            session.commit()
            flash(f"Die Vorprüfung Nr. {row.id} wurde angelegt.", "success")
            return redirect(url_for("advice.detail", precheck_id=row.id))
    status = 400 if request.method == "POST" else 200
    page = render_template("advice/new.html", form=form, kinds=kinds, errors=errors)
    return page, status


def _precheck_input(form: PrecheckForm) -> dict:
    facts = {"anabin_equivalent": form.anabin_equivalent.data}
    facts["shortage_occupation"] = form.shortage_occupation.data
    for name in ("gross_annual_salary_eur", "contract_months"):
        if getattr(form, name).data is not None:
            facts[name] = getattr(form, name).data
    return {
        "organisation": form.organisation.data or None,
        "residence_purpose": form.residence_purpose.data,
        "applicant": {
            "name": form.applicant_name.data,
            "birth_date": form.applicant_birth_date.data,
            "nationality": form.applicant_nationality.data,
            "passport_valid_until": form.passport_valid_until.data,
        },
        "employer": {"name": form.employer_name.data, "address": form.employer_address.data},
        "planned_entry": form.planned_entry.data,
        "facts": facts,
    }


@bp.get("/<int:precheck_id>")
@adviser_only
def detail(precheck_id: int):
    row = get_precheck_or_404(precheck_id)
    session = get_db()
    definition = advice.definition_of(session)
    upload_form = UploadForm()
    upload_form.kind.choices = choices(definition.documents)
    case = session.get(cases.Case, row.case_id) if row.case_id else None
    return render_template(
        "advice/detail.html",
        precheck=row,
        data=advice.input_of(row),
        purposes=cases.PURPOSES,
        advice=advice.check(session, row),
        documents=advice.documents_of(session, row.id),
        labels=definition.documents,
        upload_form=upload_form,
        csrf_form=CsrfForm(),
        case=case,
    )


@bp.post("/<int:precheck_id>/documents")
@adviser_only
def upload(precheck_id: int):
    row = get_precheck_or_404(precheck_id)
    session = get_db()
    form = UploadForm()
    form.kind.choices = choices(advice.definition_of(session).documents)
    back = url_for("advice.detail", precheck_id=row.id)
    file = request.files.get("file")
    if not form.validate_on_submit() or not file or not file.filename:
        flash("Bitte wählen Sie eine Datei und die Art der Unterlage.", "error")
        return redirect(back)
    try:
        advice.add_documents(
            session,
            precheck=row,
            documents=[cases.NewDocument(form.kind.data, file.filename, file.read())],
            actor=current_user.row.username,
            max_upload_bytes=get_settings().max_upload_bytes,
        )
    except cases.CaseInputError as exc:
        session.rollback()
        for message in exc.messages:
            flash(message, "error")
        return redirect(back)
    except advice.PrecheckError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    session.commit()
    flash("Die Unterlage wurde hinzugefügt und die Vorprüfung erneut geprüft.", "success")
    return redirect(back)


@bp.get("/<int:precheck_id>/checklist.pdf")
@adviser_only
def checklist(precheck_id: int):
    row = get_precheck_or_404(precheck_id)
    session = get_db()
    pdf = checklist_pdf(advice.checklist_context(session, row, advice.check(session, row)))
    name = f"Checkliste-Vorpruefung-{row.id}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )


@bp.post("/<int:precheck_id>/handover")
@adviser_only
def handover(precheck_id: int):
    row = get_precheck_or_404(precheck_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    get_db().rollback()  # the hand-over opens its own transactions
    try:
        case, started = advice.handover(
            precheck_id=row.id,
            user=current_user.row,
            max_upload_bytes=get_settings().max_upload_bytes,
        )
    except (advice.PrecheckError, cases.CaseInputError) as exc:
        messages = exc.messages if isinstance(exc, cases.CaseInputError) else [str(exc)]
        for message in messages:
            flash(message, "error")
        return redirect(url_for("advice.detail", precheck_id=row.id))
    if not started:
        flash("Der Fall wird gestartet, sobald die Prozesssteuerung erreichbar ist.", "warning")
    flash(f"Die Vorprüfung wurde als Fall {case.reference} übergeben.", "success")
    return redirect(url_for("advice.progress", precheck_id=row.id))


@bp.get("/<int:precheck_id>/progress")
@adviser_only
def progress(precheck_id: int):
    row = get_precheck_or_404(precheck_id)
    found = advice.progress(get_db(), row)
    if found is None:
        abort(404)
    return render_template("advice/progress.html", precheck=row, progress=found)


@bp.get("/<int:precheck_id>/letters/<int:letter_id>")
@adviser_only
def letter(precheck_id: int, letter_id: int):
    row = get_precheck_or_404(precheck_id)
    session = get_db()
    found = advice.letter_for(session, row, letter_id)
    if found is None:
        abort(404)
    audit.record(
        session,
        actor=current_user.row.username,
        action="letter_downloaded",
        case_id=found.case_id,
        detail=f"{found.title} (Beratung)",
    )
    session.commit()
    return Response(
        storage.read_bytes(found.storage_path),
        mimetype="application/pdf",
        headers={"Content-Disposition": f"attachment; filename={found.kind}-{found.attempt}.pdf"},
    )
