"""Figures for the ServicePLUS partners across all authorities: does
advising first make procedures faster? Counts, shares and durations only,
never a name, reference or date of birth (no personal data). Each function
returns plain rows, ready for a chart or CSV (webui/network.py)."""

import statistics
from collections import defaultdict

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models.services import versions
from serviceplus.models.services.monitoring import _days, percentile
from serviceplus.models.tables import (
    NOT_CLOSED,
    Case,
    HumanTask,
    Letter,
    Organisation,
    Precheck,
    TaskStatus,
)

# The letter that asks for missing documents: a case that got one was
# incomplete when it reached the authority.
MISSING_DOCUMENTS = "missing_documents"
APPROVED = "approved"  # Case.outcome of a pre-approval


def _names(session: Session) -> dict[int, str]:
    return dict(session.exec(select(Organisation.id, Organisation.name)).all())


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def cases_by_authority_and_step(session: Session) -> list[tuple[str, str, int]]:
    """Open cases: (authority, step title, count)."""
    names, titles = _names(session), {}
    query = (
        select(
            Case.organisation_id,
            Case.definition_name,
            Case.definition_version,
            Case.current_step,
            sa.func.count(),
        )
        .where(Case.status.in_(NOT_CLOSED))
        .group_by(
            Case.organisation_id, Case.definition_name, Case.definition_version, Case.current_step
        )
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for org, name, version, step, n in session.exec(query):
        if (name, version) not in titles:
            titles[(name, version)] = versions.load(session, name, version).steps
        steps = titles[(name, version)]
        title = steps[step].title if step in steps else "noch nicht begonnen"
        counts[(names[org], title)] += n
    return sorted((org, title, n) for (org, title), n in counts.items())


def deadlines_met(session: Session) -> list[tuple[str, int, int, float | None]]:
    """Per deciding body (authority, recognition body, BA): tasks with a
    statutory or set deadline completed, how many in time, the share in %."""
    in_time = sa.func.sum(sa.case((HumanTask.completed_at <= HumanTask.due_at, 1), else_=0))
    query = (
        select(HumanTask.organisation_id, sa.func.count(), in_time)
        .where(HumanTask.status == TaskStatus.completed, HumanTask.due_at.is_not(None))
        .group_by(HumanTask.organisation_id)
    )
    names = _names(session)
    rows = [
        (names[o], n, int(ok or 0), _share(int(ok or 0), n)) for o, n, ok in session.exec(query)
    ]
    return sorted(rows)


def incomplete_at_intake(session: Session) -> list[tuple[str, str, int, int, float | None]]:
    """Per authority, with and without a pre-check: cases whose completeness
    was checked, how many were incomplete at first, the share in %."""
    asked = select(Letter.case_id).where(Letter.kind == MISSING_DOCUMENTS).distinct()
    incomplete = sa.case((Case.id.in_(asked), 1), else_=0)
    prechecked = Case.precheck_id.is_not(None)
    query = (
        select(Case.organisation_id, prechecked, sa.func.count(), sa.func.sum(incomplete))
        .where(sa.or_(Case.file_complete_at.is_not(None), Case.id.in_(asked)))
        .group_by(Case.organisation_id, prechecked)
    )
    names = _names(session)
    rows = []
    for org, was_prechecked, n, bad in session.exec(query):
        label = "mit Vorprüfung" if was_prechecked else "ohne Vorprüfung"
        rows.append((names[org], label, n, int(bad or 0), _share(int(bad or 0), n)))
    return sorted(rows)


def deemed_approvals(session: Session) -> list[tuple[str, int]]:
    """Per authority: decisions taken by the deadline running out (the BA's
    deemed approval), i.e. tasks the system completed."""
    query = (
        select(Case.organisation_id, sa.func.count())
        .select_from(HumanTask)
        .join(Case, Case.id == HumanTask.case_id)
        .where(HumanTask.status == TaskStatus.completed, HumanTask.completed_by == "system")
        .group_by(Case.organisation_id)
    )
    names = _names(session)
    return sorted((names[o], n) for o, n in session.exec(query))


def days_to_preapproval(session: Session) -> list[tuple[str, int, float, float]]:
    """Per authority: days from the complete file to the pre-approval,
    (count, median, 90th percentile)."""
    query = select(Case.organisation_id, Case.file_complete_at, Case.closed_at).where(
        Case.outcome == APPROVED, Case.file_complete_at.is_not(None), Case.closed_at.is_not(None)
    )
    per_org: dict[int, list[float]] = defaultdict(list)
    for org, complete, closed in session.exec(query):
        per_org[org].append(_days(closed - complete))
    names = _names(session)
    rows = [(names[o], len(v), statistics.median(v), percentile(v, 90)) for o, v in per_org.items()]
    return sorted(rows)


def prechecks_by_adviser(session: Session) -> list[tuple[str, int, int]]:
    """Per advice organisation: pre-checks and hand-overs."""
    handed = sa.func.sum(sa.case((Precheck.case_id.is_not(None), 1), else_=0))
    query = select(Precheck.organisation_id, sa.func.count(), handed).group_by(
        Precheck.organisation_id
    )
    names = _names(session)
    return sorted((names[o], n, int(h or 0)) for o, n, h in session.exec(query))
