"""The one clock. Everything that compares with "now" takes it from here or
as a `now` argument, so tests move time by passing `now`; nothing sleeps."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
