"""The one clock. Everything that compares with "now" takes it from here or
as a `now` argument, so tests move time by passing `now`; nothing sleeps.

Moments are UTC; calendar days are the authorities' (Europe/Berlin): the
date of a letter, the last day of a period, "today" in a rule."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Europe/Berlin")


def now() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    """The German calendar day of a moment (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL).date()


def today() -> date:
    return local_date(now())
