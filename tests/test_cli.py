"""The `serviceplus` command as users call it: in a subprocess, beside a
running system, with no environment of its own beyond the data directory."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from serviceplus.models.db import session_scope
from serviceplus.models.services import audit, cases
from serviceplus.settings import INSTANCE_FILE, Settings
from tests.helpers import make_case

CLI = str(Path(sys.executable).parent / "serviceplus")
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], env=env or dict(os.environ), capture_output=True, text=True, timeout=120
    )


def bare_env(data_dir: Path) -> dict[str, str]:
    """The environment of a shell beside `make run`: only where the data lives."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVICEPLUS_", "PREFECT_"))}
    env.pop("DATABASE_URL", None)
    env["SERVICEPLUS_DATA_DIR"] = str(data_dir)
    return env


def test_data_directory_remembers_demo_mode_and_secret(tmp_path, monkeypatch):
    env = bare_env(tmp_path)
    refused = run_cli("cases", "--json", env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: settings: SERVICEPLUS_SECRET_KEY must be set")
    assert "Error" not in refused.stderr

    init = run_cli("init", env={**env, "SERVICEPLUS_DEMO": "1"})
    assert init.returncode == 0, init.stderr
    instance = tmp_path / INSTANCE_FILE
    assert stat.S_IMODE(instance.stat().st_mode) == 0o600
    stored = json.loads(instance.read_text())
    assert stored["demo"] is True and len(stored["secret_key"]) >= 32

    # Without SERVICEPLUS_DEMO or a key: the directory's own mode and key.
    listed = run_cli("cases", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    monkeypatch.delenv("SERVICEPLUS_DEMO")  # what this process was started with
    settings = Settings(data_dir=tmp_path)
    assert (settings.demo, settings.secret_key) == (True, stored["secret_key"])
    # A second init keeps the key (sessions stay valid across restarts).
    assert run_cli("init", env=env).returncode == 0
    assert json.loads(instance.read_text())["secret_key"] == stored["secret_key"]


def test_production_directory_keeps_the_key_it_was_initialised_with(tmp_path, monkeypatch):
    env = bare_env(tmp_path)
    init = run_cli("init", env={**env, "SERVICEPLUS_SECRET_KEY": "a-real-secret-key-1234567890"})
    assert init.returncode == 0, init.stderr
    monkeypatch.delenv("SERVICEPLUS_DEMO")  # what this process was started with
    settings = Settings(data_dir=tmp_path)
    assert (settings.demo, settings.secret_key) == (False, "a-real-secret-key-1234567890")
    # The environment still wins over what the directory remembers.
    assert Settings(data_dir=tmp_path, demo=True).demo is True


def test_usage_errors_are_lowercase_one_liners(database):
    unknown = run_cli("nonsense")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[-1] == "error: No such command 'nonsense'."
    missing = run_cli("case", "start", "/nonexistent/case.json")
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[-1].startswith("error: Invalid value for 'FILE'")
    assert not any(line.startswith("Error") for line in missing.stderr.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["cases", "--json"],
        ["tasks", "--json"],
        ["case", "show", "NONE"],
        ["mails"],
        ["health"],
    ],
)
def test_read_only_commands_do_not_import_prefect(database, args):
    # `prefect` costs about a second of every call that imports it.
    probe = (
        "import sys\n"
        "from serviceplus.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        "print('prefect' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120
    )
    assert result.stderr.splitlines()[-1] == "False", result.stderr


def test_add_document_to_a_case(database, tmp_path):
    case = make_case(kinds=["passport"], start=False)
    added = run_cli(
        "case",
        "add-document",
        case.reference,
        "qualification",
        str(EXAMPLES / "qualification.pdf"),
        "--as",
        "sb.magdeburg",
    )
    assert added.returncode == 0, added.stderr
    result = json.loads(added.stdout)
    assert (result["kind"], result["file"], result["media_type"]) == (
        "qualification",
        "qualification.pdf",
        "application/pdf",
    )
    with session_scope() as session:
        kinds = sorted(d.kind for d in cases.documents_of(session, case.id))
        events = [
            (e.actor, e.detail)
            for e in audit.events_for_case(session, case.id)
            if e.action == "document_added"
        ]
    assert kinds == ["passport", "qualification"]
    assert events == [
        ("sb.magdeburg", "Qualifikationsnachweis mit deutscher Übersetzung: qualification.pdf")
    ]


def test_add_document_refuses_what_the_web_upload_refuses(database, tmp_path):
    case = make_case(kinds=["passport"], start=False)
    text = tmp_path / "notes.pdf"
    text.write_text("not a pdf at all")
    bad_file = run_cli("case", "add-document", case.reference, "cv", str(text))
    assert bad_file.returncode == 1
    assert (
        bad_file.stderr
        == "error: documents.notes.pdf: file is not a PDF, JPEG or PNG (by content)\n"
    )
    bad_kind = run_cli(
        "case", "add-document", case.reference, "horoscope", str(EXAMPLES / "cv.pdf")
    )
    assert bad_kind.returncode == 1
    assert "unknown kind 'horoscope'" in bad_kind.stderr
    no_case = run_cli("case", "add-document", "ABH-MD-1900-999999", "cv", str(EXAMPLES / "cv.pdf"))
    assert (no_case.returncode, no_case.stderr) == (1, "error: no case ABH-MD-1900-999999\n")
    # Recorded as somebody: only a clerk of the case's own authority, as on the web.
    cv = str(EXAMPLES / "cv.pdf")
    other = run_cli("case", "add-document", case.reference, "cv", cv, "--as", "sb.halle")
    assert (other.returncode, other.stderr) == (
        1,
        f"error: sb.halle is not a clerk of the authority of case {case.reference}\n",
    )
    nobody = run_cli("case", "add-document", case.reference, "cv", cv, "--as", "koordination")
    assert (nobody.returncode, nobody.stderr) == (1, "error: no active clerk koordination\n")
    with session_scope() as session:
        assert [d.kind for d in cases.documents_of(session, case.id)] == ["passport"]
