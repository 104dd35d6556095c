"""Backup and restore of the embedded default (SQLite, local storage).

The archive holds consistent copies of both SQLite databases (made with
SQLite's online backup, so the system may keep running), the document and
letter storage, and Prefect's result storage (the cached results of
completed steps, without which a restored case would repeat them).
"""

import sqlite3
import tarfile
import tempfile
from contextlib import closing
from pathlib import Path

from serviceplus.settings import Settings

DATABASES = ["serviceplus.db", "prefect/prefect.db"]
DIRECTORIES = ["storage", "prefect/results"]


class BackupError(RuntimeError):
    pass


def _require_embedded(settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        raise BackupError(
            "backup covers the embedded default (SQLite); "
            "back up PostgreSQL with pg_dump and the storage directories"
        )
    if settings.storage_dir != settings.data_dir / "storage":
        raise BackupError("backup expects the storage inside the data directory")


def backup(settings: Settings, archive: Path) -> list[str]:
    """Write the archive; returns the members written."""
    _require_embedded(settings)
    data = settings.data_dir
    written = []
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive, "w:gz") as tar:
        for name in DATABASES:
            source = data / name
            if not source.exists():
                raise BackupError(f"missing {source}")
            copy = Path(tmp) / name.replace("/", "_")
            with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(copy)) as dst:
                src.backup(dst)
            tar.add(copy, arcname=name)
            written.append(name)
        for name in DIRECTORIES:
            if (data / name).exists():
                tar.add(data / name, arcname=name)
                written.append(name)
    return written


def restore(settings: Settings, archive: Path) -> list[str]:
    """Unpack into an empty data directory; returns the members restored."""
    _require_embedded(settings)
    data = settings.data_dir
    if (data / "serviceplus.db").exists():
        raise BackupError(f"{data} holds data already; restore into a new data directory")
    data.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if _allowed(m.name)]
        tar.extractall(data, members=members, filter="data")  # no paths outside `data`
    return sorted({m.name.split("/")[0] for m in members})


def _allowed(name: str) -> bool:
    return name in DATABASES or any(name == d or name.startswith(d + "/") for d in DIRECTORIES)
