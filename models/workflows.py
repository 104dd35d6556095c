"""Workflow definitions stored in the database: publish, activate, load."""

from functools import lru_cache

from sqlmodel import Session, select

from models.definition import Definition, parse_definition
from models.tables import WorkflowDefinition
from serviceplus.settings import PROJECT_ROOT

SHIPPED_DIR = PROJECT_ROOT / "flows" / "definitions"


def publish(session: Session, *, text: str, by: str) -> WorkflowDefinition:
    """Validate and store a new version; a published version never changes."""
    definition = parse_definition(text)
    existing = session.exec(
        select(WorkflowDefinition).where(
            WorkflowDefinition.name == definition.name,
            WorkflowDefinition.version == definition.version,
        )
    ).first()
    if existing is not None:
        if existing.body != text:
            raise ValueError(
                f"{definition.name} v{definition.version} is published already; "
                "a change needs a new version"
            )
        return existing
    row = WorkflowDefinition(
        name=definition.name,
        version=definition.version,
        title=definition.title,
        body=text,
        published_by=by,
    )
    session.add(row)
    session.flush()
    return row


def activate(session: Session, row: WorkflowDefinition) -> None:
    for other in session.exec(
        select(WorkflowDefinition).where(WorkflowDefinition.name == row.name)
    ):
        other.active = other.id == row.id
    session.flush()


def install_shipped(session: Session) -> None:
    """Publish the definitions shipped in flows/definitions; activate where none is."""
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        row = publish(session, text=path.read_text(encoding="utf-8"), by="system")
        if active_row(session, row.name) is None:
            activate(session, row)


def active_row(session: Session, name: str) -> WorkflowDefinition | None:
    query = select(WorkflowDefinition).where(
        WorkflowDefinition.name == name,
        WorkflowDefinition.active == True,  # noqa: E712
    )
    return session.exec(query).first()


def load(session: Session, name: str, version: int) -> Definition:
    row = session.exec(
        select(WorkflowDefinition).where(
            WorkflowDefinition.name == name, WorkflowDefinition.version == version
        )
    ).one()
    return _parsed(row.body)


@lru_cache(maxsize=64)
def _parsed(body: str) -> Definition:
    # Published bodies never change, so parsing once per body is safe.
    return parse_definition(body)
