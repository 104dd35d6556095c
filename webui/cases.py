"""Cases: the list, a new case with its documents, the case page with its
timeline, and the downloads (each checked against the user)."""

import uuid

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask import session as web_session
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional

from serviceplus.models.services import (
    audit,
    authorities,
    cases,
    comments,
    human_tasks,
    intake,
    monitoring,
    status_links,
    storage,
    transfers,
    versions,
)
from serviceplus.models.tables import Case, Document, Letter, Organisation, Role
from serviceplus.settings import get_settings
from serviceplus.webui import labels, live
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
    # Empty: found from the employer's postcode; offered when it spans districts.
    organisation = SelectField("Zuständige Ausländerbehörde", validate_choice=False)
    representative_name = StringField("Name (Kanzlei, Agentur)", validators=[Optional()])
    representative_address = StringField("Anschrift", validators=[Optional()])
    representative_email = StringField("E-Mail (optional)", validators=[Optional()])
    family_of = HiddenField()
    family_relation = SelectField(
        "Verwandtschaft zur Fachkraft des Bezugsfalls",
        validate_choice=False,
        choices=[SelectChoice(k, v) for k, v in cases.FAMILY_RELATIONS.items()],
    )


class RepresentativeForm(FlaskForm):
    representative_name = StringField("Name (Kanzlei, Agentur)", validators=[Optional()])
    representative_address = StringField("Anschrift", validators=[Optional()])
    representative_email = StringField("E-Mail (optional)", validators=[Optional()])


class HandOverForm(FlaskForm):
    to = SelectField("An Ausländerbehörde", validate_choice=False)
    reason = TextAreaField("Begründung", validators=[InputRequired(REQUIRED)])


AUTOMATIC = SelectChoice("", "nach Postleitzahl des Arbeitsorts ermitteln")


def authority_choices(candidates: list[tuple[str, str]] | None = None) -> list[SelectChoice]:
    """Choices for the authority: all that take part, or the candidates of
    a postcode that spans several districts."""
    if candidates is not None:
        return [SelectChoice(slug, name) for slug, name in candidates]
    rows = authorities.active_authorities(get_db())
    return [AUTOMATIC] + [SelectChoice(o.slug, o.name) for o in rows]


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
        purposes=cases.PURPOSES,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.clerk)
def new():
    if not cases.opens_cases(current_user.organisation):
        abort(403)  # cases are opened at a foreigners' authority
    form = CaseForm()
    form.organisation.choices = authority_choices()
    principal = _principal(request.values.get("family_of"))
    definition = versions.active_definition(get_db(), cases.DEFINITION_NAME)[1]
    fact_specs = intake.facts_the_rules_use(definition)
    if request.method == "GET":
        form.submission_key.data = str(uuid.uuid4())  # a double submit finds the same case
        if principal is not None:
            _prefill_family_member(form, principal)
        elif request.args.get("residence_purpose") in cases.PURPOSES:
            form.residence_purpose.data = request.args["residence_purpose"]
    errors = FormErrors()
    staged = _staged_uploads(form.submission_key.data)
    if request.method == "POST":
        staged = [s for n, s in enumerate(staged) if f"unstage_{n}" not in request.form]
        staged += _accept_uploads(definition.documents, errors)
        facts = _facts(fact_specs, errors)
        form.validate_on_submit()
        errors.add_form(form)
        if not errors:
            try:
                case, _created, started = cases.submit(
                    data=cases.parse_case_input(_case_input(form, facts, principal)),
                    documents=[_staged_document(s) for s in staged],
                    actor=current_user.row.username,
                    max_upload_bytes=get_settings().max_upload_bytes,
                )
            except cases.AuthorityChoiceNeeded as exc:
                for message in exc.messages:
                    errors.add("organisation", form.organisation.label.text, message)
                form.organisation.choices = authority_choices(exc.candidates)
            except cases.CaseInputError as exc:
                errors.add_problems(exc)
            else:
                _keep_staged(form.submission_key.data, [])
                if not started:
                    flash(
                        "Der Fall ist gespeichert und wird gestartet, sobald die "
                        "Prozesssteuerung erreichbar ist.",
                        "warning",
                    )
                if case.organisation_id != current_user.row.organisation_id:
                    name = get_db().get(Organisation, case.organisation_id).name
                    flash(
                        f"Der Fall {case.reference} wurde bei der zuständigen {name} angelegt "
                        "(Arbeitsort); er erscheint in deren Fällen, nicht in Ihren.",
                        "success",
                    )
                    return redirect(url_for("cases.index"))
                flash(f"Der Fall {case.reference} wurde angelegt.", "success")
                return redirect(url_for("cases.detail", reference=case.reference))
    _keep_staged(form.submission_key.data, staged)
    return render_template(
        "cases/new.html",
        form=form,
        kinds=definition.documents,
        required=_required_kinds(definition, form.residence_purpose.data),
        fact_specs=fact_specs,
        fact_values={spec.name: request.form.get(f"fact_{spec.name}", "") for spec in fact_specs},
        staged=staged,
        errors=errors,
        purposes=cases.PURPOSES,
        fact_label=labels.fact_label,
        fact_choice=labels.fact_choice,
        principal=principal,
    ), (400 if request.method == "POST" else 200)


@bp.get("/new/requirements")
@roles_required(Role.clerk)
def requirements():
    """The required documents of the chosen purpose, swapped into the
    new-case form when the purpose changes (htmx)."""
    if not cases.opens_cases(current_user.organisation):
        abort(403)
    definition = versions.active_definition(get_db(), cases.DEFINITION_NAME)[1]
    purpose = request.args.get("residence_purpose", "")
    return render_template(
        "cases/_requirements.html",
        kinds=definition.documents,
        required=_required_kinds(definition, purpose),
        purpose_label=cases.PURPOSES.get(purpose, ""),
        oob=True,
    )


def _required_kinds(definition, purpose: str | None) -> list[str]:
    return definition.required_documents.get(purpose or "", [])


class FormErrors:
    """Every error of the new-case form, each with the id of its field, for
    the summary at the top (links) and beside each field (aria-describedby)."""

    def __init__(self):
        self.by_field: dict[str, list[str]] = {}
        self.summary: list[tuple[str, str]] = []

    def __bool__(self) -> bool:
        return bool(self.summary)

    def add(self, field_id: str, label: str, message: str) -> None:
        self.by_field.setdefault(field_id, []).append(message)
        self.summary.append((field_id, f"{label}: {message}"))

    def add_form(self, form: FlaskForm) -> None:
        for field in form:
            for message in field.errors:
                self.add(field.id, field.label.text, message)

    def add_problems(self, exc: cases.CaseInputError) -> None:
        """Problems found by the shared validation (cases.parse_case_input),
        linked to their field where the field is on this form."""
        for de, en in zip(exc.messages, exc.english, strict=True):
            path = en.split(":", 1)[0]
            field_id = PROBLEM_FIELDS.get(path) or (
                "fact_" + path.removeprefix("facts.") if path.startswith("facts.") else "documents"
            )
            self.by_field.setdefault(field_id, []).append(de)
            self.summary.append((field_id, de))


# Where the shared validation's problems (by input path) show on this form.
PROBLEM_FIELDS = {
    "residence_purpose": "residence_purpose",
    "applicant.name": "applicant_name",
    "applicant.birth_date": "applicant_birth_date",
    "applicant.nationality": "applicant_nationality",
    "applicant.passport_valid_until": "passport_valid_until",
    "employer.name": "employer_name",
    "employer.address": "employer_address",
    "employer.email": "employer_email",
    "planned_entry": "planned_entry",
    "organisation": "organisation",
    "representative.name": "representative_name",
    "representative.address": "representative_address",
    "representative.email": "representative_email",
    "family_relation": "family_relation",
}
# Accepted uploads of a form not yet saved: kept in the user's (signed)
# session, keyed to the form's submission key, so that one refused file does
# not make the clerk choose the others again. The files themselves wait in
# the content-addressed storage; the case is created only when all is valid.
STAGED = "staged_uploads"


# Forms open at once in several tabs each keep their own files; the oldest
# form's files are forgotten beyond this many (the cookie holds 4 KB).
STAGED_FORMS = 3


def _staged_uploads(key: str | None) -> list[dict]:
    kept = web_session.get(STAGED) or {}
    return list(kept.get(key, [])) if key and isinstance(kept, dict) else []


def _keep_staged(key: str | None, staged: list[dict]) -> None:
    if not key:
        return
    kept = {k: v for k, v in (web_session.get(STAGED) or {}).items() if k != key and v}
    if staged:
        kept[key] = staged
    web_session[STAGED] = dict(list(kept.items())[-STAGED_FORMS:])


def _accept_uploads(kinds: dict[str, str], errors: FormErrors) -> list[dict]:
    """Each uploaded file on its own: accepted ones are stored and staged,
    refused ones become an error at their field."""
    accepted = []
    max_bytes = get_settings().max_upload_bytes
    for kind, label in kinds.items():
        for upload in request.files.getlist(f"doc_{kind}"):
            if not upload or not upload.filename:
                continue
            doc = cases.NewDocument(kind, upload.filename, upload.read())
            problems = cases.check_new_documents([doc], max_bytes, set(kinds))
            for problem in problems:
                errors.add(f"doc_{kind}", label, problem.de)
            if not problems:
                _sha, path = storage.store_bytes(doc.data)
                accepted.append({"kind": kind, "filename": _short_name(doc.filename), "path": path})
    return accepted


def _short_name(filename: str, limit: int = 100) -> str:
    """The file's safe name, shortened (keeping its extension) so that ten
    staged files stay well inside the 4 KB a browser allows a cookie."""
    name = cases.safe_filename(filename)
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    return stem[: limit - len(ext) - 1] + dot + ext if dot and len(ext) <= 10 else name[:limit]


def _staged_document(staged: dict) -> cases.NewDocument:
    return cases.NewDocument(staged["kind"], staged["filename"], storage.read_bytes(staged["path"]))


def _facts(specs: list[intake.FactSpec], errors: FormErrors) -> dict:
    """The facts typed in the form, as the rules compare them; empty ones
    are left out (the rules then find them missing)."""
    facts = {}
    for spec in specs:
        try:
            value = intake.parse_fact(spec, request.form.get(f"fact_{spec.name}", ""))
        except intake.FactError as exc:
            errors.add(f"fact_{spec.name}", labels.fact_label(spec.name), str(exc))
            continue
        if value is not None:
            facts[spec.name] = value
    return facts


def _principal(reference: str | None) -> Case | None:
    """The principal's case a family member joins: one of the clerk's own
    organisation (access rules as for every case page)."""
    if not reference:
        return None
    case = get_case_or_404(reference)
    if case.organisation_id != current_user.row.organisation_id:
        abort(404)
    return case


def _prefill_family_member(form: CaseForm, principal: Case) -> None:
    """The employer, its representative and the purpose come from the principal's case."""
    form.family_of.data = principal.reference
    form.residence_purpose.data = principal.residence_purpose
    form.employer_name.data = principal.employer_name
    form.employer_address.data = principal.employer_address
    form.employer_email.data = principal.employer_email or ""
    form.representative_name.data = principal.representative_name or ""
    form.representative_address.data = principal.representative_address or ""
    form.representative_email.data = principal.representative_email or ""


def _case_input(form: CaseForm, facts: dict, principal: Case | None = None) -> dict:
    data = {
        "organisation": form.organisation.data or None,
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
        "facts": facts,
        "submission_key": form.submission_key.data or None,
    }
    representative = cases.representative_of(
        {
            "name": form.representative_name.data,
            "address": form.representative_address.data,
            "email": form.representative_email.data,
        }
    )
    if representative is not None:
        data["representative"] = representative.model_dump()
    if principal is not None:
        # Joined to the principal's case, at the principal's authority.
        data |= {"family_of": principal.reference, "family_relation": form.family_relation.data}
        data["organisation"] = None
    return data


def _uploaded_documents(kinds: dict[str, str]) -> list[cases.NewDocument]:
    """All files of a form at once (the adviser's pre-check uses this)."""
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
        live_region=live.region(
            "case-live",
            url_for("cases.live_case", reference=case.reference),
            "cases/_live.html",
            **_live_context(case),
        ),
        events=audit.events_for_case(session, case.id) if own else [],
        comments=comments.for_case(session, case.id),
        upload_form=upload_form,
        can_upload=own and current_user.is_clerk,
        status_link=status_links.working_link(session, case.id) if own else None,
        csrf_form=FlaskForm(),
        family=_family_rows(case),
        relations=cases.FAMILY_RELATIONS,
        representative_form=_representative_form(case),
        handover_form=_handover_form(case) if own else None,
    )


def _family_rows(case: Case) -> list[tuple[Case, bool]]:
    """The case's family, each with whether the user may open its page
    (same organisation only, as for every case)."""
    family = cases.family_of_case(get_db(), case)
    return [(c, c.organisation_id == current_user.row.organisation_id) for c in family]


def _representative_form(case: Case) -> RepresentativeForm:
    form = RepresentativeForm(formdata=None)
    form.representative_name.data = case.representative_name or ""
    form.representative_address.data = case.representative_address or ""
    form.representative_email.data = case.representative_email or ""
    return form


def _handover_form(case: Case) -> HandOverForm:
    form = HandOverForm(formdata=None)
    form.to.choices = [SelectChoice(o.slug, o.name) for o in transfers.targets(get_db(), case)]
    return form


@bp.post("/<reference>/representative")
@roles_required(Role.clerk)
def representative(reference: str):
    """Name, change or remove the employer's representative (all fields empty)."""
    case = _own_case_or_404(reference)
    form = RepresentativeForm()
    try:
        rep = cases.representative_of(
            {
                "name": form.representative_name.data,
                "address": form.representative_address.data,
                "email": form.representative_email.data,
            }
        )
    except cases.CaseInputError as exc:
        for message in exc.messages:
            flash(message, "error")
        return redirect(url_for("cases.detail", reference=reference))
    session = get_db()
    cases.set_representative(
        session, case=case, representative=rep, actor=current_user.row.username
    )
    session.commit()
    flash(
        "Die Bevollmächtigung wurde gespeichert."
        if rep
        else "Die Bevollmächtigung wurde entfernt.",
        "success",
    )
    return redirect(url_for("cases.detail", reference=reference))


@bp.post("/<reference>/handover")
@roles_required(Role.clerk)
def handover(reference: str):
    """Hand the case over to the competent authority; the page is then the
    other authority's, so the clerk lands on the case list."""
    case = _own_case_or_404(reference)
    form = HandOverForm()
    session = get_db()
    source = session.get(Organisation, case.organisation_id).slug
    try:
        moved = transfers.hand_over(
            session,
            case=case,
            user=current_user.row,
            to=form.to.data or "",
            reason=form.reason.data or "",
        )
    except transfers.TransferError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("cases.detail", reference=reference))
    session.commit()
    target = session.get(Organisation, case.organisation_id)
    transfers.retag_runs(moved, source, target.slug)
    name = target.name
    references = ", ".join(c.reference for c in moved)
    flash(f"Abgegeben an {name}: {references}.", "success")
    return redirect(url_for("cases.index"))


@bp.get("/<reference>/live")
@roles_required(*CASE_ROLES)
def live_case(reference: str):
    """The case's state, tasks, documents and letters, for its live region
    (same checks as the case page)."""
    case = get_case_or_404(reference)
    return live.fragment("cases/_live.html", **_live_context(case))


def _live_context(case: Case) -> dict:
    session = get_db()
    own = case.organisation_id == current_user.row.organisation_id
    return {
        "case": case,
        "purposes": cases.PURPOSES,
        "tasks": human_tasks.tasks_of_case(session, case.id),
        "documents": cases.visible_documents(session, current_user.row, case),
        # Letters belong to the case's own authority.
        "letters": cases.letters_of(session, case.id) if own else None,
        "labels": cases.document_labels(session, case),
    }


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
    try:
        cases.upload_document(
            session,
            case=case,
            doc=doc,
            actor=current_user.row.username,
            max_upload_bytes=get_settings().max_upload_bytes,
        )
    except cases.CaseInputError as exc:
        for message in exc.messages:
            flash(message, "error")
        return redirect(back)
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
