"""Workflow definitions stored in the database: drafts, publishing,
activation, comparison, and moving running cases between versions."""

import difflib
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.definition import Definition, DefinitionError, parse_definition
from serviceplus.models.services import audit
from serviceplus.models.services.human_tasks import step_of
from serviceplus.models.tables import (
    NOT_CLOSED,
    Case,
    HumanTask,
    Organisation,
    WorkflowDefinition,
)
from serviceplus.settings import PROJECT_ROOT

SHIPPED_DIR = PROJECT_ROOT / "flows" / "definitions"


def load_row(session: Session, name: str, version: int) -> WorkflowDefinition | None:
    query = select(WorkflowDefinition).where(
        WorkflowDefinition.name == name, WorkflowDefinition.version == version
    )
    return session.exec(query).first()


def _organisations(session: Session) -> set[str]:
    return set(session.exec(select(Organisation.slug)))


def publish(session: Session, *, text: str, by: str) -> WorkflowDefinition:
    """Validate and store a new published version; a published version never changes."""
    definition = parse_definition(text)
    existing = load_row(session, definition.name, definition.version)
    if existing is not None:
        if existing.body != text or existing.published_at is None:
            raise DefinitionError(
                f"{definition.name} v{definition.version} exists already; "
                "a change needs a new version"
            )
        return existing
    row = WorkflowDefinition(
        name=definition.name,
        version=definition.version,
        title=definition.title,
        body=text,
        published_by=by,
        published_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def next_version(session: Session, name: str) -> int:
    query = select(sa.func.max(WorkflowDefinition.version)).where(WorkflowDefinition.name == name)
    return (session.exec(query).one() or 0) + 1


def save_draft(session: Session, *, name: str, text: str, by: str) -> WorkflowDefinition:
    """Create or update the one draft of `name`. The text must be valid and
    carry the next version number; DefinitionError lists what is wrong."""
    definition = parse_definition(text, _organisations(session))
    draft = session.exec(
        select(WorkflowDefinition).where(
            WorkflowDefinition.name == name, WorkflowDefinition.published_at.is_(None)
        )
    ).first()
    expected = draft.version if draft else next_version(session, name)
    if definition.name != name or definition.version != expected:
        raise DefinitionError(f"line 1: name and version must be {name} and {expected}")
    if draft is None:
        draft = WorkflowDefinition(
            name=name, version=expected, title="", body="", published_at=None
        )
    draft.title, draft.body, draft.published_by = definition.title, text, by
    session.add(draft)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="definition_draft_saved",
        case_id=None,
        detail=f"{name} v{expected}",
    )
    return draft


def publish_draft(session: Session, *, row: WorkflowDefinition, by: str) -> None:
    if row.published_at is not None:
        raise DefinitionError("Diese Version ist bereits veröffentlicht und unveränderlich.")
    parse_definition(row.body, _organisations(session))
    row.published_at, row.published_by = clock.now(), by
    session.add(row)
    audit.record(
        session,
        actor=by,
        action="definition_published",
        case_id=None,
        detail=f"{row.name} v{row.version}",
    )


def activate(session: Session, row: WorkflowDefinition, by: str = "system") -> None:
    """New cases use this version from now on (also how a rollback is done)."""
    if row.published_at is None:
        raise DefinitionError("Nur veröffentlichte Versionen können aktiviert werden.")
    for other in session.exec(
        select(WorkflowDefinition).where(WorkflowDefinition.name == row.name)
    ):
        other.active = other.id == row.id
    session.flush()
    audit.record(
        session,
        actor=by,
        action="definition_activated",
        case_id=None,
        detail=f"{row.name} v{row.version}",
    )


def install_shipped(session: Session) -> None:
    """Publish the definitions shipped in flows/definitions. A version newly
    installed that is newer than the active one becomes active, and the
    running cases of older versions move to it where the dry run allows
    (an admin's later rollback is not undone: only new rows activate)."""
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        parsed = parse_definition(text)
        is_new = load_row(session, parsed.name, parsed.version) is None
        row = publish(session, text=text, by="system")
        active = active_row(session, row.name)
        if active is None or (is_new and row.version > active.version):
            activate(session, row)
            if active is not None:
                move_running_cases(
                    session, name=row.name, source=active.version, target=row.version
                )


def move_running_cases(session: Session, *, name: str, source: int, target: int) -> list[str]:
    """Dry run first, then move every running case of `source` that can move
    to `target`; the ones that cannot stay and are named in the audit log."""
    plan = migration_plan(session, name=name, source=source, target=target)
    for check in plan:
        if not check.can_move:
            audit.record(
                session,
                actor="system",
                action="case_not_migrated",
                case_id=check.case.id,
                detail=f"{name} v{source} → v{target}: {check.reason}",
            )
    movable = [check.case.reference for check in plan if check.can_move]
    return migrate(
        session, name=name, source=source, target=target, references=movable, by="system"
    )


def active_row(session: Session, name: str) -> WorkflowDefinition | None:
    query = select(WorkflowDefinition).where(
        WorkflowDefinition.name == name,
        WorkflowDefinition.active == True,  # noqa: E712
    )
    return session.exec(query).first()


def active_definition(session: Session, name: str) -> tuple[WorkflowDefinition, Definition]:
    """The version new cases of `name` follow, as stored row and parsed definition."""
    row = active_row(session, name)
    if row is None:
        raise LookupError(f"no active definition {name}")
    return row, _parsed(row.body)


def load(session: Session, name: str, version: int) -> Definition:
    row = load_row(session, name, version)
    if row is None:
        raise LookupError(f"no definition {name} v{version}")
    return _parsed(row.body)


def published_definitions(session: Session) -> list[Definition]:
    """Every published version, oldest first (parsed once per body)."""
    query = (
        select(WorkflowDefinition.body)
        .where(WorkflowDefinition.published_at.is_not(None))
        .order_by(WorkflowDefinition.version)
    )
    return [_parsed(body) for body in session.exec(query)]


@lru_cache(maxsize=64)
def _parsed(body: str) -> Definition:
    # Bodies are keys: a published body never changes, so parsing once is safe.
    return parse_definition(body)


def overview(session: Session) -> list[tuple[WorkflowDefinition, int]]:
    """Every version with the number of running cases that follow it."""
    counts = dict(
        session.exec(
            select(
                Case.definition_name + ":" + sa.cast(Case.definition_version, sa.String),
                sa.func.count(),
            )
            .where(Case.status.in_(NOT_CLOSED))
            .group_by(Case.definition_name, Case.definition_version)
        ).all()
    )
    rows = session.exec(
        select(WorkflowDefinition).order_by(WorkflowDefinition.name, WorkflowDefinition.version)
    )
    return [(row, counts.get(f"{row.name}:{row.version}", 0)) for row in rows]


# --- comparing versions ---------------------------------------------------------


@dataclass
class StepDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def diff_lines(a: WorkflowDefinition, b: WorkflowDefinition) -> list[str]:
    return list(
        difflib.unified_diff(
            a.body.splitlines(), b.body.splitlines(), f"v{a.version}", f"v{b.version}", lineterm=""
        )
    )


def diff_steps(a: Definition, b: Definition) -> StepDiff:
    return StepDiff(
        added=[k for k in b.steps if k not in a.steps],
        removed=[k for k in a.steps if k not in b.steps],
        changed=[k for k in a.steps if k in b.steps and a.steps[k] != b.steps[k]],
    )


FIELD_NAMES = {
    "title": "Titel",
    "kind": "Art",
    "when": "Bedingung",
    "skip_to": "Sprungziel, wenn die Bedingung nicht gilt",
    "action": "Aktion",
    "letter": "Schreiben",
    "organisation": "zuständige Organisation",
    "role": "Rolle",
    "deadline": "Frist",
    "on_timeout": "Regel bei Fristablauf",
    "four_eyes": "Vier-Augen-Prinzip",
    "options": "Entscheidungsoptionen",
    "documents": "sichtbare Unterlagen",
    "next": "Weg",
    "routes": "Wege",
    "outcome": "Ergebnis",
    "expires": "Gültigkeitsfrist",
    "fields": "Eingabefelder",
}


def _shown(value) -> str:
    """A definition value in a sentence (durations in weeks or days)."""
    if value is None or value == [] or value == {}:
        return "keine Angabe"
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_defaults=True, by_alias=True)
    if isinstance(value, timedelta):
        weeks, days = divmod(value.days, 7)
        return f"{weeks} Wochen" if weeks and not days else f"{value.days} Tage"
    if isinstance(value, dict) and set(value) == {"duration"}:
        return _shown(value["duration"])
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float | int):
        return _german(value)
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return str(value)


def _german(value: float) -> str:
    text = f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return text.removesuffix(",00")


def _euro(value: float) -> str:
    return _german(value) + " €"


def describe_changes(a: Definition, b: Definition) -> list[str]:
    """What changed from `a` to `b`, in German sentences: fee, thresholds,
    documents, then step by step (new, removed, and each changed field)."""
    out = []
    if a.fee_eur != b.fee_eur:
        out.append(f"Gebühr: {_euro(a.fee_eur)} → {_euro(b.fee_eur)}")
    if a.start != b.start:
        out.append(f"Erster Schritt: {_title(a, a.start)} → {_title(b, b.start)}")
    for name in sorted(set(a.thresholds) | set(b.thresholds)):
        old, new = a.thresholds.get(name, {}), b.thresholds.get(name, {})
        for year in sorted(set(old) | set(new)):
            if old.get(year) != new.get(year):
                before = _shown(old.get(year))
                out.append(f"Schwellenwert „{name}“ {year}: {before} → {_shown(new.get(year))}")
    for kind in sorted(set(a.documents) | set(b.documents)):
        if kind not in a.documents:
            out.append(f"Neue Unterlagenart: {b.documents[kind]}")
        elif kind not in b.documents:
            out.append(f"Unterlagenart entfällt: {a.documents[kind]}")
        elif a.documents[kind] != b.documents[kind]:
            out.append(f"Unterlagenart umbenannt: {a.documents[kind]} → {b.documents[kind]}")
    for purpose in sorted(set(a.required_documents) | set(b.required_documents)):
        old, new = a.required_documents.get(purpose, []), b.required_documents.get(purpose, [])
        if old != new:
            out.append(f"Erforderliche Unterlagen für {purpose}: {_shown(old)} → {_shown(new)}")
    if a.completeness_rules != b.completeness_rules:
        out.append("Regeln der Vollständigkeitsprüfung geändert")
    out += _step_changes(a, b)
    return out


def _title(d: Definition, key: str) -> str:
    step = d.steps.get(key)
    return f"„{step.title}“" if step else f"„{key}“"


def _step_changes(a: Definition, b: Definition) -> list[str]:
    out = [f"Neuer Schritt {_title(b, k)}" for k in b.steps if k not in a.steps]
    out += [f"Schritt {_title(a, k)} entfällt" for k in a.steps if k not in b.steps]
    for key in (k for k in a.steps if k in b.steps and a.steps[k] != b.steps[k]):
        old, new = a.steps[key], b.steps[key]
        for name in type(old).model_fields:
            before, after = getattr(old, name), getattr(new, name)
            if before != after:
                label = FIELD_NAMES.get(name, name)
                out.append(f"Schritt {_title(b, key)}: {label} {_shown(before)} → {_shown(after)}")
    return out


# --- moving running cases ---------------------------------------------------------


@dataclass
class MigrationCheck:
    case: Case
    can_move: bool
    reason: str


def _visited_steps(session: Session, case: Case) -> set[str]:
    """Steps the flow has passed: a re-execution replays them on the new version."""
    steps = {
        step_of(t.step_key)
        for t in session.exec(select(HumanTask).where(HumanTask.case_id == case.id))
    }
    for event in audit.events_for_case(session, case.id):
        if event.action in ("step_executed", "step_skipped"):
            steps.add(event.step_key)
    return steps


def migration_plan(
    session: Session, *, name: str, source: int, target: int, organisation_id: int | None = None
):
    """Dry run: for each running case on `source`, whether it can move to
    `target` (every step it has passed exists there, and the step it waits at
    has the same decision options) and what changes for it. With
    `organisation_id`, only that authority's cases (an admin sees no other)."""
    a, b = load(session, name, source), load(session, name, target)
    changes = diff_steps(a, b)
    changed = ", ".join(b.steps[k].title for k in changes.changed + changes.added) or "keine"
    query = select(Case).where(
        Case.definition_name == name,
        Case.definition_version == source,
        Case.status.in_(NOT_CLOSED),
    )
    if organisation_id is not None:
        query = query.where(Case.organisation_id == organisation_id)
    plan = []
    for case in session.exec(query.order_by(Case.id)):
        plan.append(MigrationCheck(case, *_can_move(session, case, a, b, target, changed)))
    return plan


def _can_move(session, case: Case, a: Definition, b: Definition, target: int, changed: str):
    missing = sorted(s for s in _visited_steps(session, case) if s not in b.steps)
    if missing:
        titles = ", ".join(a.steps[s].title if s in a.steps else s for s in missing)
        return False, f"Schritte fehlen in v{target}: {titles}"
    current = case.current_step
    if current in a.steps and _options(a, current) != _options(b, current):
        return False, f"Entscheidungsoptionen von „{a.steps[current].title}“ unterscheiden sich"
    return True, f"Geänderte oder neue Schritte: {changed}"


def _options(definition: Definition, key: str) -> set[str]:
    return {o.value for o in definition.steps[key].options}


def migrate(
    session: Session,
    *,
    name: str,
    source: int,
    target: int,
    references: list[str],
    by: str,
    organisation_id: int | None = None,
) -> list[str]:
    """Move the chosen cases that can move (of `organisation_id` only, when
    given); returns the references moved. A case waiting at a human step
    keeps its task."""
    plan = migration_plan(
        session, name=name, source=source, target=target, organisation_id=organisation_id
    )
    movable = {check.case.reference: check.case for check in plan if check.can_move}
    moved = []
    for reference in references:
        case = movable.get(reference)
        if case is None:
            continue
        case.definition_version = target
        session.add(case)
        audit.record(
            session,
            actor=by,
            action="case_migrated",
            case_id=case.id,
            detail=f"{name} v{source} → v{target}",
        )
        moved.append(reference)
    return moved


@dataclass
class Effect:
    """What publishing or activating a version does to running cases."""

    running: dict[int, int]  # version -> running cases that stay on it
    movable: int  # of those, how many the dry run would let move to this version


def effect_of(session: Session, row: WorkflowDefinition, organisation_id: int | None) -> Effect:
    running = {}
    movable = 0
    for other, _ in overview(session):
        if other.name != row.name or other.id == row.id or other.published_at is None:
            continue
        plan = migration_plan(
            session,
            name=row.name,
            source=other.version,
            target=row.version,
            organisation_id=organisation_id,
        )
        if plan:
            running[other.version] = len(plan)
            movable += sum(1 for check in plan if check.can_move)
    return Effect(running, movable)
