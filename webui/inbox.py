"""The clerk's inbox: tasks of their organisation and role, the task page,
claim and decide."""

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import RadioField, SelectChoice, TextAreaField
from wtforms.validators import InputRequired

from models import cases, tasks
from models.tables import Case, HumanTask, Role, TaskStatus
from webui.auth import roles_required
from webui.db import get_db

bp = Blueprint("inbox", __name__)


class ClaimForm(FlaskForm):
    """Only the CSRF token."""


class DecisionForm(FlaskForm):
    decision = RadioField(
        "Entscheidung", validators=[InputRequired("Bitte wählen Sie eine Entscheidung.")]
    )
    reason = TextAreaField("Begründung")


def decision_choices(task: HumanTask) -> list[SelectChoice]:
    return [SelectChoice(o["value"], o["label"]) for o in task.form.get("options", [])]


def get_task_or_404(task_id: int) -> tuple[HumanTask, Case]:
    """The task, if addressed to the user's organisation; else 404 (not 403,
    so that other organisations' task numbers reveal nothing)."""
    session = get_db()
    task = session.get(HumanTask, task_id)
    if task is None or task.organisation_id != current_user.row.organisation_id:
        abort(404)
    return task, session.get(Case, task.case_id)


def days_left(due_at: datetime | None) -> int | None:
    if due_at is None:
        return None
    return (due_at.date() - datetime.now(UTC).date()).days


@bp.get("/inbox")
@login_required
def index():
    session = get_db()
    queue = tasks.queue_for(session, current_user.row)
    case_ids = {t.case_id for t in queue}
    case_by_id = {c.id: c for c in session.exec(select(Case).where(Case.id.in_(case_ids)))}
    rows = [(t, case_by_id[t.case_id], days_left(t.due_at)) for t in queue]
    return render_template("inbox/index.html", rows=rows)


@bp.get("/tasks/<int:task_id>")
@login_required
def task_page(task_id: int):
    task, case = get_task_or_404(task_id)
    form = DecisionForm()
    form.decision.choices = decision_choices(task)
    return _render_task(task, case, form)


def _render_task(task: HumanTask, case: Case, form: DecisionForm, status: int = 200):
    session = get_db()
    return render_template(
        "inbox/task.html",
        task=task,
        case=case,
        form=form,
        claim_form=ClaimForm(),
        can_act=tasks.can_act(current_user.row, task) and task.status in tasks.ACTIVE,
        days_left=days_left(task.due_at),
        documents=cases.documents_of(session, case.id),
        letters=cases.letters_of(session, case.id),
        labels=cases.document_labels(session, case),
        purposes=cases.PURPOSES,
    ), status


@bp.post("/tasks/<int:task_id>/claim")
@roles_required(Role.clerk)
def claim(task_id: int):
    task, _case = get_task_or_404(task_id)
    if ClaimForm().validate_on_submit():
        session = get_db()
        try:
            tasks.claim(session, task=task, user=current_user.row)
            session.commit()
            flash("Sie haben die Aufgabe übernommen.", "success")
        except tasks.TaskError as exc:
            session.rollback()
            flash(str(exc), "error")
    return redirect(url_for("inbox.task_page", task_id=task_id))


@bp.post("/tasks/<int:task_id>/complete")
@roles_required(Role.clerk)
def complete(task_id: int):
    task, case = get_task_or_404(task_id)
    form = DecisionForm()
    form.decision.choices = decision_choices(task)
    if not form.validate_on_submit():
        return _render_task(task, case, form, status=400)
    session = get_db()
    try:
        pending = tasks.complete(
            session,
            task=task,
            user=current_user.row,
            decision=form.decision.data,
            reason=form.reason.data,
        )
        session.commit()  # the decision is safe from here on
    except tasks.TaskError as exc:
        session.rollback()
        flash(str(exc), "error")
        session.refresh(task)
        return _render_task(task, case, form, status=409)
    resumed = tasks.deliver(session, pending)
    session.commit()
    if resumed:
        flash("Ihre Entscheidung ist gespeichert. Der Fall wird fortgesetzt.", "success")
    else:
        flash(
            "Ihre Entscheidung ist gespeichert. Der Fall wird automatisch fortgesetzt, "
            "sobald die Prozesssteuerung wieder erreichbar ist.",
            "warning",
        )
    return redirect(url_for("cases.detail", reference=case.reference))


def is_overdue(task: HumanTask) -> bool:
    return (
        task.status in tasks.ACTIVE and task.due_at is not None and task.due_at < datetime.now(UTC)
    )


bp.add_app_template_global(is_overdue)
bp.add_app_template_global(TaskStatus)
