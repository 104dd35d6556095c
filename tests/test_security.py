"""Security: headers, secrets, the append-only audit log,
bad uploads, retention, and property-based input tests."""

import io
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from serviceplus.demo import blank_pdf
from serviceplus.models import clock
from serviceplus.models.db import get_engine, session_scope
from serviceplus.models.services import cases, retention, storage
from serviceplus.models.tables import AuditEvent, Case, Document, Letter
from serviceplus.settings import Settings
from tests.helpers import BLUE_CARD, advance, drive, make_case, reload

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


def test_security_headers_on_every_page(app):
    response = app.test_client().get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_secure_cookies_setting(database):
    from serviceplus.webui import create_app

    assert create_app().config["SESSION_COOKIE_SECURE"] is False
    import os

    os.environ["SERVICEPLUS_SECURE_COOKIES"] = "1"
    try:
        from serviceplus.settings import get_settings

        get_settings.cache_clear()
        assert create_app().config["SESSION_COOKIE_SECURE"] is True
    finally:
        del os.environ["SERVICEPLUS_SECURE_COOKIES"]
        get_settings.cache_clear()


def test_refuses_default_secret_outside_demo_mode(tmp_path):
    with pytest.raises(ValueError, match="SERVICEPLUS_SECRET_KEY must be set"):
        Settings(demo=False, data_dir=tmp_path)
    assert Settings(demo=False, secret_key="a-real-secret").secret_key == "a-real-secret"


def test_web_process_refuses_to_start_without_secret(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SERVICEPLUS_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import webui; webui.create_app()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SERVICEPLUS_SECRET_KEY must be set" in result.stderr


def test_cli_names_the_missing_secret_without_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SERVICEPLUS_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    cli = Path(sys.executable).parent / "serviceplus"
    result = subprocess.run([cli, "cases"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error: settings: SERVICEPLUS_SECRET_KEY must be set")
    assert "Traceback" not in result.stderr


def test_audit_log_is_append_only(database):
    case = make_case(example=BLUE_CARD, start=False)
    with get_engine().connect() as connection:
        for statement in (
            sa.update(AuditEvent).where(AuditEvent.case_id == case.id).values(actor="x"),
            sa.delete(AuditEvent).where(AuditEvent.case_id == case.id),
        ):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                connection.execute(statement)
            connection.rollback()
    with session_scope() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.case_id == case.id)
        assert session.exec(query).one() == 1


def document_count() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Document)).one()


@pytest.fixture(scope="module")
def own_case(inprocess_deployment):
    return make_case(example=BLUE_CARD, start=False)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bild.gif", b"GIF89a" + b"\0" * 20, "kein PDF, JPEG oder PNG"),
        ("leer.pdf", b"", "Die Datei ist leer."),
        ("kaputt.pdf", b"%PDF-1.7\n garbage", "beschädigt oder nicht lesbar"),
        ("a\x00b.pdf", blank_pdf(), "Steuerzeichen"),
        ("x" * 300 + ".pdf", blank_pdf(), "länger als 255 Zeichen"),
        ("programm.pdf", b"MZ\x90\x00" + b"\0" * 100, "kein PDF, JPEG oder PNG"),
    ],
)
def test_bad_upload_gets_german_message_and_changes_nothing(login, own_case, name, data, message):
    before = document_count()
    client = login("sb.magdeburg")
    response = client.post(
        f"/cases/{own_case.reference}/documents",
        data={"kind": "passport", "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert message in page
    assert document_count() == before


def test_upload_over_the_size_limit(login, own_case):
    from serviceplus.webui import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "MAX_CONTENT_LENGTH": 1000})
    client = app.test_client()
    client.post("/login", data={"username": "sb.magdeburg", "password": "demo"})
    before = document_count()
    response = client.post(
        f"/cases/{own_case.reference}/documents",
        data={"kind": "passport", "file": (io.BytesIO(b"%PDF-" + b"0" * 5000), "gross.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "höchstens" in response.get_data(as_text=True)
    assert document_count() == before


def test_path_parts_in_file_names_are_dropped(login, own_case):
    client = login("sb.magdeburg")
    client.post(
        f"/cases/{own_case.reference}/documents",
        data={"kind": "cv", "file": (io.BytesIO(blank_pdf()), "../../etc/lebenslauf.pdf")},
        content_type="multipart/form-data",
    )
    with session_scope() as session:
        names = session.exec(select(Document.original_name).where(Document.case_id == own_case.id))
        assert "lebenslauf.pdf" in list(names)
    assert cases.safe_filename("C:\\Users\\x\\pass.pdf") == "pass.pdf"
    assert cases.safe_filename("/etc/passwd") == "passwd"


def test_downloads_are_attachments_and_audited(login, own_case):
    with session_scope() as session:
        doc = session.exec(select(Document).where(Document.case_id == own_case.id)).first()
    with login("sb.magdeburg").get(f"/cases/{own_case.reference}/documents/{doc.id}") as response:
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    with session_scope() as session:
        query = select(AuditEvent.action).where(AuditEvent.case_id == own_case.id)
        actions = list(session.exec(query))
    assert "document_downloaded" in actions


def test_retention_deletes_personal_data_of_old_closed_cases():
    case = make_case(example=BLUE_CARD)
    drive(case)
    advance(case, "decision", "sb.magdeburg", "approve")
    assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"
    with session_scope() as session:
        letter_paths = list(
            session.exec(select(Letter.storage_path).where(Letter.case_id == case.id))
        )
    later = clock.now() + timedelta(days=3 * 365 + 1)
    with session_scope() as session:
        dry = retention.purge(
            session, older_than=timedelta(days=1095), dry_run=True, actor="test", now=later
        )
    assert case.reference in dry.cases
    assert reload(case).applicant_name == case.applicant_name  # dry run changed nothing
    with session_scope() as session:
        report = retention.purge(
            session, older_than=timedelta(days=1095), dry_run=False, actor="test", now=later
        )
    assert case.reference in report.cases
    gone = reload(case)
    assert (gone.applicant_name, gone.facts, gone.outcome) == ("[gelöscht]", {}, "approved")
    with session_scope() as session:
        assert session.exec(select(Document).where(Document.case_id == case.id)).first() is None
        assert session.exec(select(Letter).where(Letter.case_id == case.id)).first() is None
    assert not any(storage.resolve(p).exists() for p in letter_paths)


# --- property-based -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
case_like = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | st.just(BLUE_CARD[key])
        for key in (
            "organisation",
            "residence_purpose",
            "applicant",
            "employer",
            "facts",
            "planned_entry",
            "documents",
        )
    },
)


# Hypothesis notes any change of the global `random` state while it draws an
# example. Our strategies use none; but the websocket of Prefect's events
# client, alive in a background thread since the in-process flow runs of
# earlier tests, draws its keep-alive ping from `random` whenever it pings.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(json_values, case_like))
def test_random_case_json_is_refused_cleanly_or_accepted_whole(data):
    before = _counts()
    try:
        parsed = cases.parse_case_input(data)
        parsed = parsed.model_copy(update={"documents": [], "submission_key": str(uuid.uuid4())})
        with session_scope() as session:
            cases.create_case(
                session=session,
                data=parsed,
                documents=[],
                actor="hypothesis",
                max_upload_bytes=1000,
            )
    except cases.CaseInputError as exc:
        assert exc.messages and all(isinstance(m, str) for m in exc.messages)
        assert _counts() == before  # no partial rows
    else:
        assert _counts()[0] == before[0] + 1


def _counts() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.exec(select(func.count()).select_from(Case)).one(),
            session.exec(select(func.count()).select_from(Document)).one(),
        )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.text(min_size=1, max_size=300),
    data=st.binary(max_size=2000) | st.builds(lambda b: b"%PDF-" + b, st.binary(max_size=500)),
    kind=st.sampled_from(["passport", "cv", "attachment", "nonsense", "../x"]),
)
def test_random_uploads_never_fail_the_server(app, own_case, name, data, kind):
    client = app.test_client()
    client.post("/login", data={"username": "sb.magdeburg", "password": "demo"})
    before = _counts()
    response = client.post(
        f"/cases/{own_case.reference}/documents",
        data={"kind": kind, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code in (302, 400)
    after = _counts()
    assert after[1] in (before[1], before[1] + 1)
    root = storage.storage_root().resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root)
    with session_scope() as session:
        for stored in session.exec(select(Document.storage_path)):
            assert storage.resolve(stored).is_file()


def test_cli_names_the_field_and_exits_non_zero(tmp_path):
    bad = tmp_path / "case.json"
    bad.write_text(json.dumps({**BLUE_CARD, "applicant": {"name": "X"}}), encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "serviceplus"), "case", "start", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "applicant.birth_date: Field required" in result.stderr
