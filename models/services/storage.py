"""Content-addressed file storage: documents and letters, by sha256."""

import hashlib
from pathlib import Path

from serviceplus.settings import get_settings


def storage_root() -> Path:
    return get_settings().storage_dir


def store_bytes(data: bytes) -> tuple[str, str]:
    """Save data once; return (sha256, path relative to the storage root)."""
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{digest[:2]}/{digest[2:4]}/{digest}"
    target = storage_root() / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: a reader never sees half a file
    return digest, relative


def read_bytes(relative: str) -> bytes:
    return resolve(relative).read_bytes()


def resolve(relative: str) -> Path:
    root = storage_root().resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"path outside the storage directory: {relative}")
    return path
