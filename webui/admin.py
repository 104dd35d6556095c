"""Admins: workflow definitions (versions, drafts, publish, activate, diff,
diagram, migration of running cases), user accounts and the own
organisation's letter settings."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlmodel import select

from serviceplus.models.definition import DefinitionError
from serviceplus.models.services import (
    accounts,
    cases,
    definition_messages,
    human_tasks,
    monitoring,
    versions,
)
from serviceplus.models.tables import Organisation, Role, User, WorkflowDefinition
from serviceplus.webui import diagram
from serviceplus.webui.auth import roles_required
from serviceplus.webui.db import get_db
from serviceplus.webui.forms import CsrfForm

bp = Blueprint("admin", __name__, url_prefix="/admin")
admin_only = roles_required(Role.admin)


def _version_or_404(name: str, version: int) -> WorkflowDefinition:
    return versions.load_row(get_db(), name, version) or abort(404)


def _csrf_or_400() -> None:
    if not CsrfForm().validate_on_submit():
        abort(400)


@bp.get("/")
@admin_only
def index():
    session = get_db()
    _row, definition = versions.active_definition(session, cases.DEFINITION_NAME)
    return render_template(
        "admin/index.html",
        rows=versions.overview(session),
        unconfirmable=human_tasks.unconfirmable_steps(session, definition),
    )


@bp.get("/definitions/<name>/<int:version>")
@admin_only
def version(name: str, version: int):
    row = _version_or_404(name, version)
    definition = versions.load(get_db(), name, version)
    organisations = dict(get_db().exec(select(Organisation.slug, Organisation.name)).all())
    picture = Markup(diagram.render(definition, organisations))  # dot escapes the text
    others = [r for r, _ in versions.overview(get_db()) if r.name == name and r.id != row.id]
    return render_template(
        "admin/version.html", row=row, picture=picture, others=others, csrf_form=CsrfForm()
    )


@bp.route("/definitions/<name>/draft", methods=["GET", "POST"])
@admin_only
def draft(name: str):
    """Edit the draft: starts from the draft or the active version's text,
    or from an uploaded file; saved only when it validates."""
    session = get_db()
    errors: list[definition_messages.Problem] = []
    if request.method == "POST":
        _csrf_or_400()
        upload = request.files.get("file")
        text = (
            upload.read().decode("utf-8", "replace")
            if upload and upload.filename
            else request.form.get("text", "")
        )
        try:
            row = versions.save_draft(session, name=name, text=text, by=current_user.row.username)
            session.commit()
            flash(f"Entwurf v{row.version} gespeichert.", "success")
            return redirect(url_for("admin.version", name=name, version=row.version))
        except DefinitionError as exc:
            session.rollback()
            errors = definition_messages.problems(text, exc)
    else:
        text = _draft_start(session, name)
    lines = text.splitlines() or [""]
    return render_template(
        "admin/draft.html",
        name=name,
        text=text,
        errors=errors,
        lines=lines,
        error_lines={p.line for p in errors},
        csrf_form=CsrfForm(),
    ), 400 if errors else 200


def _draft_start(session, name: str) -> str:
    existing = session.exec(
        select(WorkflowDefinition).where(
            WorkflowDefinition.name == name, WorkflowDefinition.published_at.is_(None)
        )
    ).first()
    if existing:
        return existing.body
    active = versions.active_row(session, name) or abort(404)
    nxt = versions.next_version(session, name)
    return active.body.replace(f"version: {active.version}\n", f"version: {nxt}\n", 1)


def _scope() -> int:
    """Whose cases this admin may see and move: their own organisation's.
    Nobody sees every authority's cases (the role that would allow it could
    be given by any admin)."""
    return current_user.row.organisation_id


def _confirmation(row: WorkflowDefinition, action: str):
    """The page that lists what publishing or activating does, with the
    button that really does it."""
    effect = versions.effect_of(get_db(), row, _scope())
    return render_template(
        "admin/confirm.html",
        row=row,
        action=action,
        effect=effect,
        csrf_form=CsrfForm(),
    )


def _confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


@bp.post("/definitions/<name>/<int:version>/publish")
@admin_only
def publish(name: str, version: int):
    _csrf_or_400()
    session = get_db()
    row = _version_or_404(name, version)
    if row.published_at is None and not _confirmed():
        return _confirmation(row, "publish")
    try:
        versions.publish_draft(session, row=row, by=current_user.row.username)
        session.commit()
        flash(f"v{version} ist veröffentlicht und unveränderlich.", "success")
    except DefinitionError as exc:
        session.rollback()
        for problem in definition_messages.problems(row.body, exc):
            flash(f"Zeile {problem.line}: {problem.where}: {problem.message}", "error")
    return redirect(url_for("admin.version", name=name, version=version))


@bp.post("/definitions/<name>/<int:version>/activate")
@admin_only
def activate(name: str, version: int):
    _csrf_or_400()
    session = get_db()
    row = _version_or_404(name, version)
    if row.published_at is not None and not _confirmed():
        return _confirmation(row, "activate")
    try:
        versions.activate(session, row, by=current_user.row.username)
        session.commit()
        flash(f"Neue Fälle folgen ab jetzt v{version}.", "success")
    except DefinitionError as exc:
        session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.version", name=name, version=version))


@bp.get("/definitions/<name>/diff")
@admin_only
def diff(name: str):
    a = _version_or_404(name, request.args.get("a", 0, type=int))
    b = _version_or_404(name, request.args.get("b", 0, type=int))
    session = get_db()
    old, new = versions.load(session, name, a.version), versions.load(session, name, b.version)
    return render_template(
        "admin/diff.html",
        a=a,
        b=b,
        lines=versions.diff_lines(a, b),
        changes=versions.describe_changes(old, new),
    )


@bp.route("/definitions/<name>/migrate", methods=["GET", "POST"])
@admin_only
def migrate(name: str):
    source = _version_or_404(name, request.values.get("source", 0, type=int))
    target = _version_or_404(name, request.values.get("target", 0, type=int))
    if target.published_at is None:
        flash("Fälle können nur in veröffentlichte Versionen verschoben werden.", "error")
        return redirect(url_for("admin.version", name=name, version=target.version))
    session = get_db()
    if request.method == "POST":
        _csrf_or_400()
        moved = versions.migrate(
            session,
            name=name,
            source=source.version,
            target=target.version,
            references=request.form.getlist("cases"),
            by=current_user.row.username,
            organisation_id=_scope(),
        )
        session.commit()
        flash(f"{len(moved)} Fall/Fälle nach v{target.version} verschoben.", "success")
    plan = versions.migration_plan(
        session,
        name=name,
        source=source.version,
        target=target.version,
        organisation_id=_scope(),
    )
    return render_template(
        "admin/migrate.html",
        source=source,
        target=target,
        plan=plan,
        titles=monitoring.step_titles(session),
        csrf_form=CsrfForm(),
    )


def _own_user_or_404(user_id: int) -> User:
    """A user of the admin's own organisation; others' ids give 404."""
    user = get_db().get(User, user_id)
    if user is None or user.organisation_id != current_user.row.organisation_id:
        abort(404)
    return user


@bp.route("/users", methods=["GET", "POST"])
@admin_only
def users():
    """Accounts of the admin's own organisation only: an admin of one body
    must not create clerks who then read another body's cases."""
    session = get_db()
    own = current_user.organisation
    if request.method == "POST":
        _csrf_or_400()
        form = request.form
        try:
            if form.get("organisation", own.slug) != own.slug:
                raise accounts.AccountError(
                    "Sie können nur Benutzerkonten Ihrer eigenen Organisation anlegen."
                )
            accounts.create_user(
                session,
                username=form.get("username", ""),
                full_name=form.get("full_name", ""),
                role=_role_or_error(form.get("role", "")),
                org_slug=own.slug,
                password=form.get("password", ""),
                by=current_user.row.username,
            )
            session.commit()
            flash("Benutzerkonto angelegt.", "success")
            return redirect(url_for("admin.users"))
        except accounts.AccountError as exc:
            session.rollback()
            flash(str(exc), "error")
    people = session.exec(
        select(User).where(User.organisation_id == own.id).order_by(User.username)
    ).all()
    return render_template(
        "admin/users.html", people=people, organisation=own, roles=list(Role), csrf_form=CsrfForm()
    )


@bp.route("/organisation", methods=["GET", "POST"])
@admin_only
def organisation():
    """The letter settings of the admin's own organisation only."""
    session = get_db()
    own = current_user.organisation
    values = {name: getattr(own, name) for name in accounts.LETTER_SETTINGS}
    if request.method == "POST":
        _csrf_or_400()
        values = {name: request.form.get(name, "") for name in accounts.LETTER_SETTINGS}
        try:
            accounts.update_letter_settings(
                session, organisation=own, values=values, by=current_user.row.username
            )
            session.commit()
            flash("Briefeinstellungen gespeichert.", "success")
            return redirect(url_for("admin.organisation"))
        except accounts.AccountError as exc:
            session.rollback()
            flash(str(exc), "error")
    return render_template(
        "admin/organisation.html",
        organisation=own,
        values=values,
        labels=accounts.LETTER_SETTINGS,
        remedies=accounts.LEGAL_REMEDIES,
        partners=accounts.confirming_partners(session, own),
        csrf_form=CsrfForm(),
    )


@bp.post("/organisation/four-eyes")
@admin_only
def four_eyes():
    """Who confirms when the admin's organisation has too few people."""
    _csrf_or_400()
    session = get_db()
    try:
        accounts.set_four_eyes_confirmer(
            session,
            organisation=current_user.organisation,
            value=request.form.get("confirmer", ""),
            by=current_user.row.username,
        )
        session.commit()
        flash("Die Regel für das Vier-Augen-Prinzip ist gespeichert.", "success")
    except accounts.AccountError as exc:
        session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.organisation"))


def _role_or_error(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise accounts.AccountError("Unbekannte Rolle.") from None


@bp.post("/users/<int:user_id>/deactivate")
@admin_only
def deactivate(user_id: int):
    _csrf_or_400()
    session = get_db()
    user = _own_user_or_404(user_id)
    try:
        returned = accounts.deactivate_user(session, user=user, by=current_user.row.username)
        session.commit()
        flash(
            f"{user.username} ist deaktiviert; {returned} Aufgabe(n) zurück an die Gruppe.",
            "success",
        )
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/role")
@admin_only
def role(user_id: int):
    _csrf_or_400()
    session = get_db()
    user = _own_user_or_404(user_id)
    try:
        returned = accounts.set_role(
            session,
            user=user,
            role=_role_or_error(request.form.get("role", "")),
            by=current_user.row.username,
        )
        session.commit()
        flash(
            f"Rolle von {user.username} geändert; {returned} Aufgabe(n) zurück an die Gruppe.",
            "success",
        )
    except accounts.AccountError as exc:
        session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/password")
@admin_only
def reset_password(user_id: int):
    """A temporary password for a user of the admin's own organisation, shown
    once on this page (never stored readable, never in a flash cookie)."""
    _csrf_or_400()
    session = get_db()
    user = _own_user_or_404(user_id)
    try:
        password = accounts.reset_password(session, user=user, admin=current_user.row)
        session.commit()
    except accounts.AccountError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.users"))
    page = render_template("admin/password_reset.html", person=user, password=password)
    return page, 200, {"Cache-Control": "no-store"}
