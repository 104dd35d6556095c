"""Typed settings, read from the environment (see docs/operations.md)."""

import json
import os
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"
# What `serviceplus init` remembers about a data directory (mode and secret
# key), so the CLI beside `make run` needs no environment of its own.
INSTANCE_FILE = "instance.json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPLUS_", extra="ignore")

    data_dir: Path = PROJECT_ROOT / "data"
    database_url: str = ""
    storage_dir: Path | None = None
    secret_key: str = DEV_SECRET
    demo: bool = False
    host: str = "127.0.0.1"
    web_port: int = 5000
    prefect_port: int = 4200
    prefect_api_url: str = ""
    deployment: str = "case-flow/s81a-v1"
    work_pool: str = "cases"
    # Flow runs the worker executes at once: each is a CPU-bound process while
    # it starts, so more than two per core only queue for the CPU
    # (bench/knobs.py; docs/performance.md).
    worker_limit: int = 2 * (os.cpu_count() or 1)
    max_upload_bytes: int = 20 * 1024 * 1024
    secure_cookies: bool = False  # set when served over HTTPS
    # "user:password" for the Prefect API (server and clients). Empty: one is
    # generated on first use and kept in the data directory.
    prefect_auth: str = ""
    # Sessions end after this long, however busy (ASVS 3.3.2), or when idle.
    session_absolute_timeout: timedelta = timedelta(hours=8)
    session_idle_timeout: timedelta = timedelta(minutes=30)
    # Login throttling, counted in the app database (models/throttle.py).
    login_window: timedelta = timedelta(minutes=15)  # failures older than this are forgotten
    login_account_failures: int = 5  # per account and address, then a delay that doubles
    login_lock_base: timedelta = timedelta(minutes=1)
    login_lock_cap: timedelta = timedelta(minutes=15)
    login_address_limit: int = 30  # per address over all user names, then 429 for that address
    # Per account over all addresses: high, and it slows every attempt down
    # instead of refusing, so strangers cannot lock the owner out.
    login_account_limit: int = 100
    login_account_delay: timedelta = timedelta(seconds=2)
    # A running flow run tells the Prefect server it is alive this often
    # (Prefect's flow-run heartbeat events; Prefect's minimum is 30 s).
    heartbeat_seconds: int = 30
    # A case run Pending or Running this long without a state change and
    # without a heartbeat has lost its process: the sweeper marks it Crashed
    # and reschedules it. Three missed heartbeats and a margin.
    stuck_after: timedelta = timedelta(minutes=2)
    # Coordinators' overview: open tasks due within this span count as "bald fällig".
    soon_due: timedelta = timedelta(days=3)
    # Its figures are precomputed (models/services/overview.py): the sweeper
    # refreshes them after half this age; a page finding them older computes them.
    overview_max_age: timedelta = timedelta(minutes=5)
    # Flow runs start in a child forked from a server with everything
    # imported (serviceplus/forkserver.py); off: `python -m prefect.engine`.
    warm_start: bool = True
    # The employer's status link (docs/security.md): how long a link works,
    # the address printed in letters, and requests per address and window.
    status_link_lifetime: timedelta = timedelta(days=365)
    public_url: str = ""  # e.g. https://serviceplus.example.org; default: host and web port
    status_rate_limit: int = 60
    status_rate_window: timedelta = timedelta(minutes=1)
    # Mail (models/services/mail.py): empty host = nothing is sent; queued
    # mails wait in the outbox until a host is set. tls: none, starttls, ssl.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_sender: str = "serviceplus@localhost"
    smtp_timeout: float = 10.0
    # The clerks' daily digest: tasks due within `digest_window` or overdue,
    # sent once a day by the first sweep after `digest_hour` (UTC).
    digest_window: timedelta = timedelta(days=3)
    digest_hour: int = 6
    retention: timedelta = timedelta(days=3 * 365)  # closed cases keep personal data this long

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        given = set(self.model_fields_set)  # from the environment or the caller
        self.data_dir = self.data_dir.resolve()
        stored = read_instance(self.data_dir)
        if "demo" not in given and "demo" in stored:
            self.demo = bool(stored["demo"])
        if "secret_key" not in given and stored.get("secret_key"):
            self.secret_key = stored["secret_key"]
        # DATABASE_URL is the conventional name; accept it without our prefix.
        self.database_url = (
            self.database_url
            or os.environ.get("DATABASE_URL", "")
            or f"sqlite:///{self.data_dir / 'serviceplus.db'}"
        )
        self.storage_dir = (self.storage_dir or self.data_dir / "storage").resolve()
        self.prefect_api_url = (
            self.prefect_api_url
            or os.environ.get("PREFECT_API_URL", "")
            or f"http://127.0.0.1:{self.prefect_port}/api"
        )
        self.prefect_auth = (
            self.prefect_auth
            or os.environ.get("PREFECT_API_AUTH_STRING", "")
            or _stored_secret(self.data_dir / "prefect-auth", prefix="serviceplus:")
        )
        self.public_url = (self.public_url or f"http://{self.host}:{self.web_port}").rstrip("/")
        if self.secret_key == DEV_SECRET and not self.demo:
            raise ValueError(
                "SERVICEPLUS_SECRET_KEY must be set outside demo mode (SERVICEPLUS_DEMO=1) "
                f"until `serviceplus init` has stored one in {self.data_dir}"
            )
        return self

    @property
    def forkserver_socket(self) -> Path:
        return self.data_dir / "forkserver.sock"

    @property
    def worker_nudge_socket(self) -> Path:
        """Where this host's worker listens for "poll now" (serviceplus/worker.py)."""
        return self.data_dir / "worker.sock"

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    def prefect_env(self) -> dict[str, str]:
        """Environment for every process that talks to Prefect.

        Must be applied before `prefect` is imported: Prefect reads its
        settings once at import time.
        """
        return {
            "PREFECT_API_URL": self.prefect_api_url,
            "PREFECT_HOME": str(self.prefect_home),
            # One shared, durable result store: completed steps are not
            # repeated after a resume only if every worker sees the results.
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(self.prefect_home / "results"),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            # Nobody else on the machine may resume or cancel a case's run
            # behind the app's back (docs/security.md).
            "PREFECT_API_AUTH_STRING": self.prefect_auth,
            "PREFECT_SERVER_API_AUTH_STRING": self.prefect_auth,
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(self.heartbeat_seconds),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        }


def read_instance(data_dir: Path) -> dict:
    """The mode and secret `serviceplus init` stored in the data directory."""
    try:
        stored = json.loads((data_dir / INSTANCE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{data_dir / INSTANCE_FILE}: unreadable ({exc})") from None
    return stored if isinstance(stored, dict) else {}


def remember_instance(settings: Settings) -> None:
    """Store the data directory's mode and secret key (owner-readable only):
    every later process on it, the CLI beside `make run` included, uses the
    same ones without being told. The development key is never stored: a
    demo directory gets a random key of its own."""
    secret = settings.secret_key
    if secret == DEV_SECRET:
        secret = read_instance(settings.data_dir).get("secret_key") or secrets.token_urlsafe(32)
    path = settings.data_dir / INSTANCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"demo": settings.demo, "secret_key": secret}, f)
    os.replace(draft, path)  # whole or not at all


def _stored_secret(path: Path, prefix: str = "") -> str:
    """A random secret kept in `path` (created once, readable by its owner only)."""
    if not path.exists():
        # Written aside, then linked: of two processes starting at once, one
        # wins and both read the same complete secret.
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(prefix + secrets.token_urlsafe(24))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def apply_prefect_env(settings: Settings | None = None) -> None:
    """Point this process at our Prefect server unless the caller chose another."""
    for key, value in (settings or get_settings()).prefect_env().items():
        os.environ.setdefault(key, value)
