"""Building cases for tests, running flow runs in-process as a worker would,
and deciding their tasks through the services."""

import contextlib
import copy
import io
import json
import uuid
from collections import Counter
from uuid import UUID

from pypdf import PdfReader
from sqlmodel import select

from serviceplus.demo import EXAMPLES, blank_pdf
from serviceplus.models.db import session_scope
from serviceplus.models.services import audit, cases, human_tasks, storage, versions
from serviceplus.models.tables import Case, HumanTask, Letter
from serviceplus.settings import get_settings

EXAMPLE = json.loads((EXAMPLES / "case-18a.json").read_text(encoding="utf-8"))
BLUE_CARD = json.loads((EXAMPLES / "case-18g.json").read_text(encoding="utf-8"))
ALL_KINDS = [d["kind"] for d in EXAMPLE["documents"]]
BLUE_CARD_KINDS = [d["kind"] for d in BLUE_CARD["documents"]]


def make_case(kinds=None, org="abh-md", start=True, files=None, example=EXAMPLE, **changes):
    data = copy.deepcopy(example)
    data.update(organisation=org, submission_key=f"test-{uuid.uuid4()}", **changes)
    kinds = [d["kind"] for d in example["documents"]] if kinds is None else kinds
    data["documents"] = [{"kind": k, "file": f"{k}.pdf"} for k in kinds]
    pdf = blank_pdf()
    docs = [
        cases.NewDocument(kind=k, filename=f"{k}.pdf", data=(files or {}).get(k, pdf))
        for k in kinds
    ]
    if not start:
        with session_scope() as session:
            case, _ = cases.create_case(
                session=session,
                data=cases.parse_case_input(data),
                documents=docs,
                actor="test",
                max_upload_bytes=get_settings().max_upload_bytes,
            )
        return case
    case, _, started = cases.submit(
        data=cases.parse_case_input(data),
        documents=docs,
        actor="test",
        max_upload_bytes=get_settings().max_upload_bytes,
    )
    assert started
    return case


@contextlib.contextmanager
def active_version(version: int, name: str = "s81a"):
    """New cases follow definition `version` inside the block; the version
    active before is active again after it."""
    with session_scope() as session:
        before = versions.active_row(session, name).version
        versions.activate(session, versions.load_row(session, name, version))
    try:
        yield
    finally:
        with session_scope() as session:
            versions.activate(session, versions.load_row(session, name, before))


def drive(case: Case) -> str:
    """Execute the case's flow run in this process until it suspends or ends;
    returns the run's state name."""
    from prefect import get_client
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from serviceplus.flows.case_flow import case_flow

    with session_scope() as session:
        flow_run_id = session.get(Case, case.id).flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
    # On suspend a worker's process exits here; the run waits as Suspended.
    with contextlib.suppress(Pause):
        run_flow(case_flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).state.name


def reload(case: Case) -> Case:
    with session_scope() as session:
        return session.get(Case, case.id)


def open_task_of(case: Case) -> HumanTask:
    with session_scope() as session:
        return session.exec(
            select(HumanTask).where(
                HumanTask.case_id == case.id, HumanTask.status.in_(human_tasks.ACTIVE)
            )
        ).one()


def tasks_of(case: Case) -> list[HumanTask]:
    with session_scope() as session:
        return human_tasks.tasks_of_case(session, case.id)


def decide(task: HumanTask, decision: str, reason: str = "", username="sb.magdeburg") -> bool:
    """Complete the task as `username` and resume its flow run; True if resumed."""
    return human_tasks.decide_and_resume(
        task_id=task.id, username=username, decision=decision, reason=reason
    )


def advance(case: Case, step: str, username: str, decision: str, reason: str = "") -> str:
    """Decide the case's open task (which must be `step`) and run the flow on."""
    task = open_task_of(case)
    assert task.step_key == step, f"open task is {task.step_key}, expected {step}"
    assert decide(task, decision, reason, username)
    return drive(case)


def letters_of(case: Case) -> list[Letter]:
    with session_scope() as session:
        return list(session.exec(select(Letter).where(Letter.case_id == case.id)))


def letter_text(case: Case, kind: str) -> str:
    (letter,) = [x for x in letters_of(case) if x.kind == kind]
    reader = PdfReader(io.BytesIO(storage.read_bytes(letter.storage_path)))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def executions(case: Case) -> Counter:
    with session_scope() as session:
        events = audit.events_for_case(session, case.id)
    return Counter(f"{e.step_key}#{e.attempt}" for e in events if e.action == "step_executed")


def other_writer_locked_out() -> bool:
    """Whether another connection finds the app database's write lock taken
    (SQLite; on PostgreSQL rows are locked, so never): for tests that no
    transaction stays open across a call to Prefect."""
    import sqlalchemy as sa

    from serviceplus.models.db import get_engine
    from serviceplus.models.tables import User

    engine = get_engine()
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA busy_timeout=200")
        try:
            connection.execute(sa.update(User).where(User.id == -1).values(active=True))
        except sa.exc.OperationalError:
            return True
        finally:
            connection.rollback()
    return False
