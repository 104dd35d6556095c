"""Backup of the embedded default, restored into a new data directory, where
a case suspended before the backup finishes without repeating a step."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from serviceplus.settings import PROJECT_ROOT, get_settings
from tests.helpers import BLUE_CARD, drive, make_case

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


CLI = str(Path(sys.executable).parent / "serviceplus")

FINISH = """
import json, sys
from serviceplus.settings import apply_prefect_env, get_settings
apply_prefect_env()
from serviceplus.stack import Stack
stack = Stack(get_settings(), web=False)
stack.start_server()
try:
    from serviceplus.flows.case_flow import case_flow
    case_flow.to_deployment(name="inprocess").apply()
    from serviceplus.models.services.cases import get_by_reference
    from serviceplus.models.db import session_scope
    from tests.helpers import advance, executions
    with session_scope() as session:
        case = get_by_reference(session, sys.argv[1])
    states = [advance(case, "decision", "sb.magdeburg", "approve"),
              advance(case, "decision.confirm", "sb2.magdeburg", "confirm")]
    print(json.dumps({"states": states, "executions": executions(case)}))
finally:
    stack.stop()
"""


def restored_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SERVICEPLUS_"))}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update(
        SERVICEPLUS_DATA_DIR=str(data_dir),
        SERVICEPLUS_DEMO="1",
        SERVICEPLUS_PREFECT_PORT=str(port),
        SERVICEPLUS_DEPLOYMENT="case-flow/inprocess",
    )
    env.pop("DATABASE_URL", None)
    return env


def test_backup_restore_and_finish_a_suspended_case(tmp_path):
    archive = tmp_path / "backup.tar.gz"
    if not get_settings().database_url.startswith("sqlite"):
        result = subprocess.run([CLI, "backup", str(archive)], capture_output=True, text=True)
        assert result.returncode == 1 and "pg_dump" in result.stderr
        return
    case = make_case(example=BLUE_CARD)
    assert drive(case) == "Suspended"

    made = subprocess.run([CLI, "backup", str(archive)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert set(json.loads(made.stdout)["members"]) >= {
        "serviceplus.db",
        "prefect/prefect.db",
        "storage",
        "prefect/results",
    }

    target = tmp_path / "restored"
    env = restored_env(target)
    restored = subprocess.run(
        [CLI, "restore", str(archive)], env=env, capture_output=True, text=True
    )
    assert restored.returncode == 0, restored.stderr
    again = subprocess.run([CLI, "restore", str(archive)], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "new data directory" in again.stderr

    finish = subprocess.run(
        [sys.executable, "-c", FINISH, case.reference],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finish.returncode == 0, finish.stderr[-3000:]
    outcome = json.loads(finish.stdout.strip().splitlines()[-1])
    assert outcome["states"] == ["Suspended", "Completed"]
    # Completed before the backup: intake, fee notice, completeness ran once, ever.
    assert outcome["executions"] == {
        "intake#1": 1,
        "fee_notice#1": 1,
        "completeness#1": 1,
        "preapproval#1": 1,
    }
