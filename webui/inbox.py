"""The clerk's inbox: tasks of their organisation and role with filters and
saved views, the task page, and every action on a task."""

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, TextAreaField
from wtforms.validators import InputRequired

from serviceplus.models import clock
from serviceplus.models.services import (
    assignment,
    audit,
    cases,
    comments,
    deadlines,
    human_tasks,
    inbox,
    status_links,
    versions,
)
from serviceplus.models.tables import Case, HumanTask, Role, SavedView, TaskStatus
from serviceplus.webui import live
from serviceplus.webui.auth import roles_required
from serviceplus.webui.db import get_db
from serviceplus.webui.forms import CsrfForm

bp = Blueprint("inbox", __name__)
# Roles that may act on a task at all; which task exactly is human_tasks.can_act
# (same organisation and role). An escalated task has the coordinator's role.
TASK_ROLES = (Role.clerk, Role.coordinator)
# Admins administer; they read no case data, not even task titles (segregation of duties).
INBOX_ROLES = (Role.clerk, Role.coordinator)


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


def get_actionable_task_or_403(task_id: int) -> tuple[HumanTask, Case]:
    """The task, if the user may work on it; others of the organisation may
    look at it (task_page) but not act: 403."""
    task, case = get_task_or_404(task_id)
    if not human_tasks.can_act(current_user.row, task):
        abort(403)
    return task, case


def days_left(due_at: datetime | None) -> int | None:
    return None if due_at is None else (clock.local_date(due_at) - clock.today()).days


def is_overdue(task: HumanTask) -> bool:
    return (
        task.status in human_tasks.ACTIVE and task.due_at is not None and task.due_at < clock.now()
    )


bp.add_app_template_global(is_overdue)
bp.add_app_template_global(days_left)


@bp.get("/inbox")
@roles_required(*INBOX_ROLES)
def index():
    session = get_db()
    user = current_user.row
    if request.args.get("saved", "").isdigit():
        view = session.get(SavedView, int(request.args["saved"]))
        if view is None or view not in inbox.views_for(session, user):
            abort(404)
        return redirect(url_for("inbox.index", **view.params))
    flt = inbox.InboxFilter.from_args(request.args)
    _row, definition = versions.active_definition(session, cases.DEFINITION_NAME)
    queue = live.region(
        "inbox-live",
        url_for("inbox.live_queue", **request.args),
        "inbox/_queue.html",
        **_queue_context(flt),
    )
    return render_template(
        "inbox/index.html",
        queue=queue,
        flt=flt,
        purposes=cases.PURPOSES,
        step_choices=inbox.step_choices(definition),
        views=inbox.views_for(session, user),
        csrf_form=CsrfForm(),
    )


@bp.get("/inbox/live")
@roles_required(*INBOX_ROLES)
def live_queue():
    """The inbox's tabs and table, for its live region (same checks as the page)."""
    flt = inbox.InboxFilter.from_args(request.args)
    return live.fragment("inbox/_queue.html", **_queue_context(flt))


def _queue_context(flt: inbox.InboxFilter) -> dict:
    session = get_db()
    user = current_user.row
    page_no = request.args.get("page", "1")
    counts = inbox.counts_for(session, user, flt)
    page = int(page_no) if page_no.isdigit() else 1
    return {
        "page": inbox.queue_for(session, user, flt, page, total=counts[flt.view]),
        "counts": counts,
        "flt": flt,
        "views": inbox.views_for(session, user),
        "colleagues": assignment.colleagues(session, user),
        "csrf_form": CsrfForm(),
    }


@bp.post("/inbox/bulk")
@roles_required(Role.clerk)
def bulk():
    if not CsrfForm().validate_on_submit():
        abort(400)
    ids = [int(x) for x in request.form.getlist("task_ids") if x.isdigit()]
    action = request.form.get("action", "")
    if not ids or action not in ("claim", "reassign"):
        flash("Bitte wählen Sie Aufgaben und eine Aktion.", "error")
        return redirect(url_for("inbox.index"))
    session = get_db()
    done, failures = assignment.bulk(
        session, task_ids=ids, user=current_user.row, action=action, to=request.form.get("to", "")
    )
    session.commit()
    if done:
        verb = "übernommen" if action == "claim" else "weitergegeben"
        flash(f"{done} Aufgabe(n) {verb}.", "success")
    for failure in failures:
        flash(failure, "error")
    return redirect(request.referrer or url_for("inbox.index"))


@bp.post("/inbox/views")
@roles_required(*INBOX_ROLES)
def save_view():
    name = request.form.get("name", "").strip()
    if not CsrfForm().validate_on_submit() or not name:
        flash("Bitte geben Sie der Ansicht einen Namen.", "error")
        return redirect(url_for("inbox.index"))
    session = get_db()
    flt = inbox.InboxFilter.from_args(request.form)
    view = inbox.save_view(
        session, user=current_user.row, name=name, flt=flt, shared=request.form.get("shared") == "1"
    )
    session.commit()
    flash(f"Ansicht „{view.name}“ gespeichert.", "success")
    return redirect(url_for("inbox.index", saved=view.id))


@bp.post("/inbox/views/<int:view_id>/delete")
@roles_required(*INBOX_ROLES)
def delete_view(view_id: int):
    session = get_db()
    if not CsrfForm().validate_on_submit() or not inbox.delete_view(
        session, user=current_user.row, view_id=view_id
    ):
        abort(404)
    session.commit()
    flash("Ansicht gelöscht.", "success")
    return redirect(url_for("inbox.index"))


@bp.get("/tasks/<int:task_id>")
@roles_required(*INBOX_ROLES)
def task_page(task_id: int):
    task, case = get_task_or_404(task_id)
    form = DecisionForm()
    form.decision.choices = decision_choices(task)
    return _render_task(task, case, form)


@bp.get("/tasks/<int:task_id>/live")
@roles_required(*INBOX_ROLES)
def live_task(task_id: int):
    """The task's status line, for its live region (same checks as the page)."""
    task, case = get_task_or_404(task_id)
    return live.fragment("inbox/_task_status.html", task=task, case=case)


def _render_task(task: HumanTask, case: Case, form: DecisionForm, status: int = 200):
    session = get_db()
    user = current_user.row
    own = case.organisation_id == user.organisation_id
    step = _step_of(session, task, case)
    return render_template(
        "inbox/task.html",
        task=task,
        case=case,
        status_region=live.region(
            "task-live",
            url_for("inbox.live_task", task_id=task.id),
            "inbox/_task_status.html",
            task=task,
            case=case,
        ),
        missing=_still_missing(session, task, case, step) if own else None,
        sent_back=human_tasks.sent_back_by(session, task),
        proposal_label=_option_label(step, task.proposal),
        form=form,
        csrf_form=CsrfForm(),
        can_act=human_tasks.can_act(user, task) and task.status in human_tasks.ACTIVE,
        colleagues=assignment.colleagues(session, user),
        documents=cases.visible_documents(session, user, case),
        # Letters and the history belong to the case's own authority.
        letters=cases.letters_of(session, case.id) if own else None,
        labels=cases.document_labels(session, case),
        comments=comments.for_case(session, case.id),
        events=audit.events_for_case(session, case.id) if own else [],
        purposes=cases.PURPOSES,
        extension=deadlines.extension_of(session, task),
        employer=_employer_answers(session, task, case) if own else None,
    ), status


def _step_of(session, task: HumanTask, case: Case):
    """The definition step the task belongs to (None if the definition lacks it)."""
    definition = versions.load(session, case.definition_name, case.definition_version)
    return definition.steps.get(human_tasks.step_of(task.step_key))


def _option_label(step, value: str | None) -> str | None:
    option = step.option(value) if step and value else None
    return option.label if option else value


def _still_missing(session, task: HumanTask, case: Case, step) -> list[str] | None:
    """For a task that waits for documents: what the completeness check finds
    missing now (labels), so the clerk sees it without opening the letter."""
    if step is None or step.employer_answer != "documents" or task.status not in human_tasks.ACTIVE:
        return None
    result = cases.check_case_file(session, case)
    labels = cases.document_labels(session, case)
    unreadable = [f"{labels.get(k, k)} (nicht lesbar)" for k in result.unreadable]
    return [labels.get(k, k) for k in result.missing] + unreadable + list(result.problems)


def _employer_answers(session, task: HumanTask, case: Case) -> dict:
    """What the employer sent for this task on the status page."""
    step = _step_of(session, task, case)
    answers = status_links.answers_for_task(session, task.id)
    documents = {d.id: d for d in cases.documents_of(session, case.id)}
    return {
        "expects": step.employer_answer if step else None,
        "answers": [
            (a, documents.get(a.document_id), step.option(a.option) if a.option else None)
            for a in answers
        ],
    }


@bp.post("/tasks/<int:task_id>/recheck")
@roles_required(*TASK_ROLES)
def recheck(task_id: int):
    """One click: is the file complete now, with what the employer sent?
    Changes nothing; the clerk then decides."""
    task, case = get_actionable_task_or_403(task_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    result = cases.check_case_file(session, case)
    labels = cases.document_labels(session, case)
    if result.complete:
        flash("Die Unterlagen sind jetzt vollständig.", "success")
    else:
        missing = [labels.get(k, k) for k in result.missing + result.unreadable]
        flash("Noch unvollständig: " + "; ".join(missing + result.problems), "warning")
    audit.record(
        session,
        actor=current_user.row.username,
        action="completeness_rechecked",
        case_id=case.id,
        detail="vollständig" if result.complete else "unvollständig",
    )
    session.commit()
    return redirect(url_for("inbox.task_page", task_id=task.id))


def _task_action(task_id: int, action, success: str):
    """Run one assignment action from a posted button, then back to the task."""
    task, _case = get_actionable_task_or_403(task_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    session = get_db()
    try:
        action(session, task)
        session.commit()
        flash(success, "success")
    except (human_tasks.TaskError, comments.CommentError) as exc:
        session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("inbox.task_page", task_id=task_id))


@bp.post("/tasks/<int:task_id>/claim")
@roles_required(*TASK_ROLES)
def claim(task_id: int):
    return _task_action(
        task_id,
        lambda s, t: assignment.claim(s, task=t, user=current_user.row),
        "Sie haben die Aufgabe übernommen.",
    )


@bp.post("/tasks/<int:task_id>/unclaim")
@roles_required(*TASK_ROLES)
def unclaim(task_id: int):
    return _task_action(
        task_id,
        lambda s, t: assignment.unclaim(s, task=t, user=current_user.row),
        "Die Aufgabe ist wieder für alle offen.",
    )


@bp.post("/tasks/<int:task_id>/reassign")
@roles_required(*TASK_ROLES)
def reassign(task_id: int):
    to = request.form.get("to", "")
    return _task_action(
        task_id,
        lambda s, t: assignment.reassign(s, task=t, user=current_user.row, to=to),
        f"Die Aufgabe wurde an {to} weitergegeben.",
    )


@bp.post("/tasks/<int:task_id>/delegate")
@roles_required(*TASK_ROLES)
def delegate(task_id: int):
    to = request.form.get("to", "")
    return _task_action(
        task_id,
        lambda s, t: assignment.delegate(s, task=t, user=current_user.row, to=to),
        f"{to} vertritt Sie bei dieser Aufgabe. Sie können sie jederzeit zurücknehmen.",
    )


@bp.post("/tasks/<int:task_id>/take-back")
@roles_required(*TASK_ROLES)
def take_back(task_id: int):
    return _task_action(
        task_id,
        lambda s, t: assignment.take_back(s, task=t, user=current_user.row),
        "Sie haben die Aufgabe zurückgenommen.",
    )


@bp.post("/tasks/<int:task_id>/priority")
@roles_required(*TASK_ROLES)
def priority(task_id: int):
    value = 1 if request.form.get("priority") == "1" else 0
    return _task_action(
        task_id,
        lambda s, t: assignment.set_priority(s, task=t, user=current_user.row, priority=value),
        "Die Priorität wurde geändert.",
    )


@bp.post("/tasks/<int:task_id>/comments")
@roles_required(Role.clerk, Role.coordinator)
def comment(task_id: int):
    body = request.form.get("body", "")
    return _task_action(
        task_id,
        lambda s, t: comments.add(s, task=t, author=current_user.row.username, body=body),
        "Ihr Kommentar wurde gespeichert.",
    )


@bp.post("/tasks/<int:task_id>/extend")
@roles_required(*TASK_ROLES)
def extend(task_id: int):
    reason = request.form.get("reason", "")
    return _task_action(
        task_id,
        lambda s, t: deadlines.extend(s, task=t, user=current_user.row, reason=reason),
        "Die Frist wurde verlängert.",
    )


@bp.post("/tasks/<int:task_id>/complete")
@roles_required(*TASK_ROLES)
def complete(task_id: int):
    task, case = get_actionable_task_or_403(task_id)
    form = DecisionForm()
    form.decision.choices = decision_choices(task)
    if not form.validate_on_submit():
        return _render_task(task, case, form, status=400)
    values, files = _entered_fields(task)
    try:
        resumed = human_tasks.decide_and_resume(
            task_id=task.id,
            username=current_user.row.username,
            decision=form.decision.data,
            reason=form.reason.data,
            values=values,
            files=files,
        )
    except human_tasks.TaskError as exc:
        flash(str(exc), "error")
        get_db().refresh(task)
        return _render_task(task, case, form, status=409)
    if resumed:
        flash("Ihre Entscheidung ist gespeichert. Der Fall wird fortgesetzt.", "success")
    else:  # Prefect is away, or the run has not got to the step yet (a queue)
        flash(
            "Ihre Entscheidung ist gespeichert. Der Fall wird automatisch fortgesetzt, "
            "sobald die Prozesssteuerung die Entscheidung übernehmen kann.",
            "warning",
        )
    return redirect(url_for("cases.detail", reference=case.reference))


def _entered_fields(task: HumanTask) -> tuple[dict, dict]:
    """The step's fields as posted (the service checks them): text values,
    and for a document field the uploaded file, if any."""
    values, files = {}, {}
    for field in task.form.get("fields", []):
        name = field["name"]
        if field["type"] == "document":
            upload = request.files.get(f"field-{name}")
            if upload and upload.filename:
                files[name] = cases.NewDocument(name, upload.filename, upload.read())
        else:
            values[name] = request.form.get(f"field-{name}", "")
    return values, files


bp.add_app_template_global(TaskStatus)
