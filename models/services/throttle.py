"""Throttling of logins and of the public status pages, counted in the app
database so that every gunicorn worker and every machine sees the same
failures (see docs/security.md).

Three counters over the last `login_window` of failed logins:
- per account and address: after `login_account_failures`, that address
  waits before it may try that account again, twice as long after each
  further failure (capped). Other addresses are not affected, so a
  stranger's guessing never locks the owner out.
- per address: after `login_address_limit`, over all user names, the
  address may not log in at all until its failures age out.
- per account over all addresses: after `login_account_limit` every attempt
  on the account is slowed down, never refused.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, func, select

from serviceplus.models import clock
from serviceplus.models.services import audit
from serviceplus.models.tables import LoginAttempt, StatusRequest
from serviceplus.settings import get_settings

NO_WAIT = timedelta(0)


def key(username: str) -> str:
    """The name as counted: "FOSA" and " fosa" are the same account."""
    return username.strip().lower()[:80]


def lock_delay(failures: int) -> timedelta:
    """How long an address waits after its `failures`-th failure on an account."""
    settings = get_settings()
    over = failures - settings.login_account_failures
    if over < 0:
        return NO_WAIT
    return min(settings.login_lock_base * 2 ** min(over, 30), settings.login_lock_cap)


def _failures(session: Session, now: datetime, *conditions) -> tuple[int, datetime | None]:
    """How many failures match, and the latest, within the window."""
    since = now - get_settings().login_window
    query = select(func.count(), func.max(LoginAttempt.at)).where(
        LoginAttempt.at > since, *conditions
    )
    count, latest = session.exec(query).one()
    if latest is not None and latest.tzinfo is None:  # SQLite forgets the zone
        latest = latest.replace(tzinfo=now.tzinfo)
    return count, latest


def wait_for(session: Session, username: str, address: str, now: datetime | None = None):
    """How long `address` must wait before it may try `username` (0: go ahead)."""
    settings = get_settings()
    now = now or clock.now()
    count, latest = _failures(
        session, now, LoginAttempt.username == key(username), LoginAttempt.address == address
    )
    wait = latest + lock_delay(count) - now if count >= settings.login_account_failures else NO_WAIT
    return max(wait, _address_wait(session, address, now), NO_WAIT)


def _address_wait(session: Session, address: str, now: datetime) -> timedelta:
    """Until the address has fewer than the limit of failures in the window."""
    settings = get_settings()
    since = now - settings.login_window
    # The limit-th newest failure: once it ages out, the address may try again.
    query = (
        select(LoginAttempt.at)
        .where(LoginAttempt.address == address, LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc())
        .offset(settings.login_address_limit - 1)
        .limit(1)
    )
    at = session.exec(query).first()
    if at is None:
        return NO_WAIT
    at = at if at.tzinfo else at.replace(tzinfo=now.tzinfo)
    return at + settings.login_window - now


def slowdown(session: Session, username: str, now: datetime | None = None) -> timedelta:
    """A delay for every attempt on an account that many addresses guess at."""
    settings = get_settings()
    count, _ = _failures(session, now or clock.now(), LoginAttempt.username == key(username))
    return settings.login_account_delay if count >= settings.login_account_limit else NO_WAIT


def record_failure(session: Session, username: str, address: str, now: datetime | None = None):
    """Count a failed login; audit each lockout it causes."""
    settings = get_settings()
    now = now or clock.now()
    name = key(username)
    # Older failures no longer count: keep the table small.
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.at <= now - settings.login_window))
    session.add(LoginAttempt(at=now, username=name, address=address))
    session.flush()
    count, _ = _failures(
        session, now, LoginAttempt.username == name, LoginAttempt.address == address
    )
    if count >= settings.login_account_failures:
        _audit(
            session,
            name,
            f"Konto {name} von {address}: {count} Fehlversuche, "
            f"gesperrt für {lock_delay(count).total_seconds():.0f} s",
        )
    by_address, _ = _failures(session, now, LoginAttempt.address == address)
    if by_address == settings.login_address_limit:
        _audit(
            session,
            name,
            f"Adresse {address}: {by_address} Fehlversuche, gesperrt für alle Benutzernamen",
        )
    by_account, _ = _failures(session, now, LoginAttempt.username == name)
    if by_account == settings.login_account_limit:
        audit.record(
            session,
            actor=name,
            action="login_slowed",
            case_id=None,
            detail=f"Konto {name}: {by_account} Fehlversuche von allen Adressen, "
            "Anmeldungen werden verlangsamt",
        )


def _audit(session: Session, name: str, detail: str) -> None:
    audit.record(session, actor=name, action="login_locked", case_id=None, detail=detail)


def clear(session: Session, username: str, address: str) -> None:
    """A successful login forgets that address's failures on the account."""
    session.execute(
        sa.delete(LoginAttempt).where(
            LoginAttempt.username == key(username), LoginAttempt.address == address
        )
    )


def status_request_allowed(session: Session, address: str, now: datetime | None = None) -> bool:
    """Count a request to the public status pages; False once the address
    made more than `status_rate_limit` within `status_rate_window` (guessing
    links, or hammering a page). Counted in the database like logins, so
    every worker sees the same figure."""
    settings = get_settings()
    now = now or clock.now()
    since = now - settings.status_rate_window
    session.execute(sa.delete(StatusRequest).where(StatusRequest.at <= since))
    session.add(StatusRequest(at=now, address=address[:64]))
    session.flush()
    count = session.exec(
        select(func.count()).where(StatusRequest.address == address[:64], StatusRequest.at > since)
    ).one()
    return count <= settings.status_rate_limit
