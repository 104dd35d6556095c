"""Health checks of the moving parts, for `serviceplus health` (systemd
units and monitoring call it; deploy/systemd/)."""

import base64
import socket
import urllib.request

from sqlalchemy import text

from serviceplus.settings import Settings


def checks(settings: Settings, *, web_url: str | None = None, forkserver: bool = False):
    """(part, problem) pairs; the problem is "" when the part is healthy."""
    yield "database", _problem(_database)
    yield "prefect", _problem(lambda: _http(f"{settings.prefect_api_url}/health", settings))
    if web_url:
        yield "web", _problem(lambda: _http(f"{web_url.rstrip('/')}/login"))
    if forkserver:
        yield "forkserver", _problem(lambda: _unix_socket(str(settings.forkserver_socket)))


def _problem(check) -> str:
    try:
        check()
    except Exception as error:  # any failure is the answer, not a crash
        return f"failed: {error}"
    return ""


def _database() -> None:
    from serviceplus.models.db import session_scope

    with session_scope() as session:
        session.exec(text("select 1"))


def _http(url: str, settings: Settings | None = None) -> None:
    request = urllib.request.Request(url)
    if settings is not None and settings.prefect_auth:
        token = base64.b64encode(settings.prefect_auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status >= 400:
            raise RuntimeError(f"HTTP {response.status}")


def _unix_socket(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        client.connect(path)
