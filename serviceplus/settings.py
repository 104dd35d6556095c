"""Typed settings, read from the environment (see docs/operations.md)."""

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"


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
    retention: timedelta = timedelta(days=3 * 365)  # closed cases keep personal data this long

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        self.data_dir = self.data_dir.resolve()
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
        if self.secret_key == DEV_SECRET and not self.demo and not os.environ.get("TESTING"):
            raise ValueError(
                "SERVICEPLUS_SECRET_KEY must be set outside demo mode (SERVICEPLUS_DEMO=1)"
            )
        return self

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
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        }


@lru_cache
def get_settings() -> Settings:
    return Settings()


def apply_prefect_env(settings: Settings | None = None) -> None:
    """Point this process at our Prefect server unless the caller chose another."""
    for key, value in (settings or get_settings()).prefect_env().items():
        os.environ.setdefault(key, value)
