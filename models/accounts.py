"""Organisations and users: passwords, lookups and the demo data."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Session, select

from models.tables import Organisation, Role, User

_hasher = PasswordHasher()

DEMO_ORGANISATIONS = [
    (
        "abh-md",
        "Ausländerbehörde Magdeburg",
        "abh",
        "Landeshauptstadt Magdeburg · Ausländerbehörde · Breiter Weg 222 · 39104 Magdeburg",
    ),
    (
        "abh-hal",
        "Ausländerbehörde Halle (Saale)",
        "abh",
        "Stadt Halle (Saale) · Ausländerbehörde · Am Stadion 6 · 06122 Halle (Saale)",
    ),
    ("ihk-fosa", "IHK FOSA", "recognition", "IHK FOSA · Ulmenstraße 52g · 90443 Nürnberg"),
    (
        "ba",
        "Bundesagentur für Arbeit",
        "ba",
        "Bundesagentur für Arbeit · Zentrale Auslands- und Fachvermittlung",
    ),
    ("wcst", "WelcomeCenter Sachsen-Anhalt", "advice", "WelcomeCenter Sachsen-Anhalt · Magdeburg"),
]

DEMO_USERS = [
    ("sb.magdeburg", "Sabine Berger", Role.clerk, "abh-md"),
    ("sb2.magdeburg", "Stefan Brandt", Role.clerk, "abh-md"),
    ("sb.halle", "Sevgi Bayram", Role.clerk, "abh-hal"),
    ("fosa", "Frank Oswald", Role.clerk, "ihk-fosa"),
    ("ba", "Britta Albers", Role.clerk, "ba"),
    ("koordination", "Karin Ostermann", Role.coordinator, "abh-md"),
    ("admin", "Anton Admin", Role.admin, "abh-md"),
]
DEMO_PASSWORD = "demo"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        _hasher.hash(password)  # same cost as a real check: no user enumeration by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


def get_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def get_organisation(session: Session, slug: str) -> Organisation | None:
    return session.exec(select(Organisation).where(Organisation.slug == slug)).first()


def seed_demo_accounts(session: Session) -> None:
    """Create the demo organisations and users that do not exist yet."""
    for slug, name, kind, address in DEMO_ORGANISATIONS:
        if get_organisation(session, slug) is None:
            session.add(Organisation(slug=slug, name=name, kind=kind, address=address))
    session.flush()
    password_hash = hash_password(DEMO_PASSWORD)
    for username, full_name, role, org_slug in DEMO_USERS:
        if get_user(session, username) is None:
            org = get_organisation(session, org_slug)
            session.add(
                User(
                    username=username,
                    full_name=full_name,
                    password_hash=password_hash,
                    role=role,
                    organisation_id=org.id,
                )
            )
