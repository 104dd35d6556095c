"""Building cases for tests, and running flow runs in-process as a worker would."""

import contextlib
import copy
import json
import uuid
from uuid import UUID

from models import cases
from models.db import session_scope
from models.tables import Case
from serviceplus.demo import EXAMPLES, blank_pdf
from serviceplus.settings import get_settings

EXAMPLE = json.loads((EXAMPLES / "case-18a.json").read_text(encoding="utf-8"))
ALL_KINDS = [d["kind"] for d in EXAMPLE["documents"]]


def case_data(**changes) -> dict:
    data = copy.deepcopy(EXAMPLE)
    data["submission_key"] = f"test-{uuid.uuid4()}"
    data.update(changes)
    return data


def make_case(kinds=ALL_KINDS, org="abh-md", start=True, files=None, **changes) -> Case:
    data = case_data(organisation=org, **changes)
    data["documents"] = [{"kind": k, "file": f"{k}.pdf"} for k in kinds]
    pdf = blank_pdf()
    docs = [
        cases.NewDocument(kind=k, filename=f"{k}.pdf", data=(files or {}).get(k, pdf))
        for k in kinds
    ]
    if not start:
        with session_scope() as session:
            case, _ = cases.create_case(
                session=session, data=cases.parse_case_input(data), documents=docs,
                actor="test", max_upload_bytes=get_settings().max_upload_bytes,
            )  # fmt: skip
        return case
    case, _, started = cases.submit(
        data=cases.parse_case_input(data), documents=docs, actor="test",
        max_upload_bytes=get_settings().max_upload_bytes,
    )  # fmt: skip
    assert started
    return case


def drive(case: Case) -> str:
    """Execute the case's flow run in this process until it suspends or ends;
    returns the run's state name."""
    from prefect import get_client
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from flows.case_flow import case_flow

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
