"""JSON views of cases and tasks, as the CLI prints them (docs/cli.md)."""

from sqlmodel import Session, select

from serviceplus.models.services import audit, cases
from serviceplus.models.services import human_tasks as task_service
from serviceplus.models.tables import Case, HumanTask, Organisation


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def case_summary(case: Case, org_slug: str) -> dict:
    return {
        "reference": case.reference,
        "organisation": org_slug,
        "status": case.status,
        "outcome": case.outcome,
        "current_step": case.current_step,
        "residence_purpose": case.residence_purpose,
        "applicant": case.applicant_name,
        "employer": case.employer_name,
        "definition": f"{case.definition_name}@{case.definition_version}",
        "flow_run_id": case.flow_run_id,
        "created_at": _iso(case.created_at),
        "closed_at": _iso(case.closed_at),
    }


def task_row(task: HumanTask, reference: str, org_slug: str) -> dict:
    return {
        "id": task.id,
        "case": reference,
        "step": task.step_key,
        "attempt": task.attempt,
        "title": task.title,
        "organisation": org_slug,
        "role": task.role,
        "status": task.status,
        "assignee": task.assignee,
        "due_at": _iso(task.due_at),
        "options": [o["value"] for o in task.form.get("options", [])],
        "decision": task.decision,
        "reason": task.reason,
        "completed_by": task.completed_by,
        "completed_at": _iso(task.completed_at),
    }


def _slugs(session: Session) -> dict[int, str]:
    return {org.id: org.slug for org in session.exec(select(Organisation))}


def all_cases(session: Session) -> list[dict]:
    slugs = _slugs(session)
    rows = session.exec(select(Case).order_by(Case.id.desc()))
    return [case_summary(c, slugs[c.organisation_id]) for c in rows]


def case_detail(session: Session, case: Case) -> dict:
    slugs = _slugs(session)
    return {
        **case_summary(case, slugs[case.organisation_id]),
        "applicant_birth_date": case.applicant_birth_date.isoformat(),
        "applicant_nationality": case.applicant_nationality,
        "employer_address": case.employer_address,
        "representative": (
            {
                "name": case.representative_name,
                "address": case.representative_address,
                "email": case.representative_email,
            }
            if case.representative_name
            else None
        ),
        "family": [
            {"reference": c.reference, "relation": c.family_relation or "principal"}
            for c in cases.family_of_case(session, case)
        ],
        "facts": case.facts,
        "tasks": [
            task_row(t, case.reference, slugs[t.organisation_id])
            for t in task_service.tasks_of_case(session, case.id)
        ],
        "documents": [
            {
                "kind": d.kind,
                "file": d.original_name,
                "media_type": d.media_type,
                "size": d.size,
                "sha256": d.sha256,
            }
            for d in cases.documents_of(session, case.id)
        ],
        "letters": [
            {
                "kind": letter.kind,
                "step": letter.step_key,
                "attempt": letter.attempt,
                "title": letter.title,
                "size": letter.size,
                "sha256": letter.sha256,
                "created_at": _iso(letter.created_at),
            }
            for letter in cases.letters_of(session, case.id)
        ],
        "history": [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in audit.events_for_case(session, case.id)
        ],
    }


def tasks(session: Session, *, org_slug: str | None, include_done: bool) -> list[dict]:
    slugs = _slugs(session)
    query = select(HumanTask, Case.reference).join(Case, Case.id == HumanTask.case_id)
    if not include_done:
        query = query.where(HumanTask.status.in_(task_service.ACTIVE))
    if org_slug:
        org_id = next((i for i, s in slugs.items() if s == org_slug), -1)
        query = query.where(HumanTask.organisation_id == org_id)
    query = query.order_by(HumanTask.due_at, HumanTask.id)
    return [task_row(t, ref, slugs[t.organisation_id]) for t, ref in session.exec(query)]
