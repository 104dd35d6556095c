"""Organisations and users: passwords, lookups, letter settings and the demo data."""

import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Session, select

from serviceplus.models import clock
from serviceplus.models.services import audit, authorities
from serviceplus.models.tables import HumanTask, Organisation, Role, TaskStatus, User

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
        "hwk",
        "Handwerkskammer Magdeburg",
        "recognition",
        "Handwerkskammer Magdeburg · Anerkennungsstelle · Gareisstraße 10 · 39106 Magdeburg",
    ),
    (
        "lvwa",
        "Landesverwaltungsamt Sachsen-Anhalt",
        "recognition",
        "Landesverwaltungsamt Sachsen-Anhalt · Gesundheitsberufe · Ernst-Kamieth-Straße 2 · "
        "06112 Halle (Saale)",
    ),
    (
        "zab",
        "Zentralstelle für ausländisches Bildungswesen",
        "recognition",
        "Zentralstelle für ausländisches Bildungswesen (ZAB) · Graurheindorfer Straße 157 · "
        "53117 Bonn",
    ),
    (
        "ba",
        "Bundesagentur für Arbeit",
        "ba",
        "Bundesagentur für Arbeit · Zentrale Auslands- und Fachvermittlung",
    ),
    ("wcst", "WelcomeCenter Sachsen-Anhalt", "advice", "WelcomeCenter Sachsen-Anhalt · Magdeburg"),
    (
        "iq-lsa",
        "IQ Netzwerk Sachsen-Anhalt",
        "advice",
        "IQ Netzwerk Sachsen-Anhalt · Anerkennungsberatung · Magdeburg",
    ),
]

# The letter settings of the demo authorities (fictitious contacts and accounts).
DEMO_LETTER_SETTINGS = {
    "abh-md": {
        "contact_name": "Frau Sabine Berger",
        "contact_phone": "0391 540-0000",
        "contact_email": "auslaenderbehoerde@magdeburg.example",
        "bank_name": "Beispielbank Magdeburg",
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "legal_remedy": "klage",
        "remedy_address": "dem Verwaltungsgericht Magdeburg, Breiter Weg 203–206, 39104 Magdeburg",
    },
    "abh-hal": {
        "contact_name": "Frau Sevgi Bayram",
        "contact_phone": "0345 221-0000",
        "contact_email": "auslaenderbehoerde@halle.example",
        "bank_name": "Beispielbank Halle",
        "iban": "DE02 1203 0000 0000 2020 51",
        "bic": "BYLADEM1001",
        "legal_remedy": "klage",
        "remedy_address": "dem Verwaltungsgericht Halle, Thüringer Straße 16, 06112 Halle (Saale)",
    },
}

DEMO_USERS = [
    ("sb.magdeburg", "Sabine Berger", Role.clerk, "abh-md"),
    ("sb2.magdeburg", "Stefan Brandt", Role.clerk, "abh-md"),
    ("sb.halle", "Sevgi Bayram", Role.clerk, "abh-hal"),
    ("fosa", "Frank Oswald", Role.clerk, "ihk-fosa"),
    ("hwk", "Heike Wendt", Role.clerk, "hwk"),
    ("lvwa", "Lars Vogt", Role.clerk, "lvwa"),
    ("zab", "Zora Abel", Role.clerk, "zab"),
    ("ba", "Britta Albers", Role.clerk, "ba"),
    ("koordination", "Karin Ostermann", Role.coordinator, "abh-md"),
    ("admin", "Anton Admin", Role.admin, "abh-md"),
    ("berater.wcst", "Wiebke Christ", Role.adviser, "wcst"),
    ("berater.iq", "Ilja Quast", Role.adviser, "iq-lsa"),
    # The partners' overview sits with the WelcomeCenter, which coordinates ServicePLUS.
    ("netzwerk", "Nora Netz", Role.network, "wcst"),
]
DEMO_PASSWORD = "demo"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def temporary_password_expired(user: User) -> bool:
    """An admin's temporary password not replaced in time (set_password clears it)."""
    until = user.temporary_password_until
    return user.must_change_password and until is not None and clock.now() > until


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username)).first()
    # An organisation that does not take part (listed authority) has no logins.
    if user is None or not user.active or not _organisation_active(session, user):
        _hasher.hash(password)  # same cost as a real check: no user enumeration by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


def _organisation_active(session: Session, user: User) -> bool:
    return session.get(Organisation, user.organisation_id).active


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
    # The other authorities of Sachsen-Anhalt: listed, inactive (routing names them).
    authorities.install(session)
    _seed_letter_settings(session)
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


def _seed_letter_settings(session: Session) -> None:
    """Fill the demo authorities' letter settings where still empty (also in
    databases seeded before the settings existed); never overwrite an admin's."""
    for slug, settings in DEMO_LETTER_SETTINGS.items():
        org = get_organisation(session, slug)
        if org is not None and not org.contact_name:
            for name, value in settings.items():
                setattr(org, name, value)
            session.add(org)


class AccountError(ValueError):
    """An account change that cannot be made; the message is German."""


# The legal remedies a Bescheid may name: setting value -> the word in letters.
LEGAL_REMEDIES = {"widerspruch": "Widerspruch", "klage": "Klage"}
# Letter settings an admin edits: field -> German label (form and messages).
LETTER_SETTINGS = {
    "contact_name": "Ansprechperson",
    "contact_phone": "Telefon",
    "contact_email": "E-Mail",
    "bank_name": "Kreditinstitut",
    "iban": "IBAN",
    "bic": "BIC",
    "legal_remedy": "Rechtsbehelf",
    "remedy_address": "Einzulegen bei",
}


def update_letter_settings(
    session: Session, *, organisation: Organisation, values: dict[str, str], by: str
) -> None:
    """Check all settings first and change nothing unless all are valid."""
    clean = {name: " ".join(values.get(name, "").split()) for name in LETTER_SETTINGS}
    clean["iban"] = _grouped_iban(clean["iban"])
    clean["bic"] = clean["bic"].replace(" ", "").upper()
    problems = list(_letter_setting_problems(clean))
    if problems:
        raise AccountError(" ".join(problems))
    for name, value in clean.items():
        setattr(organisation, name, value)
    session.add(organisation)
    audit.record(
        session,
        actor=by,
        action="organisation_settings_changed",
        case_id=None,
        detail=organisation.slug,
    )


def _letter_setting_problems(clean: dict[str, str]):
    for name, label in LETTER_SETTINGS.items():
        limit = Organisation.model_fields[name].metadata[0].max_length
        if len(clean[name]) > limit:
            yield f"{label}: höchstens {limit} Zeichen."
    if clean["contact_email"] and not re.fullmatch(
        r"[^@\s]+@[^@\s]+\.[^@\s]+", clean["contact_email"]
    ):
        yield "Die E-Mail-Adresse ist ungültig."
    if clean["iban"] and not _iban_valid(clean["iban"]):
        yield "Die IBAN ist ungültig (Prüfziffer oder Aufbau)."
    if clean["bic"] and not re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", clean["bic"]):
        yield "Die BIC ist ungültig (8 oder 11 Zeichen)."
    if clean["legal_remedy"] not in {"", *LEGAL_REMEDIES}:
        yield "Unbekannter Rechtsbehelf."
    if clean["legal_remedy"] and not clean["remedy_address"]:
        yield "Bitte geben Sie an, wo der Rechtsbehelf einzulegen ist."


def _grouped_iban(value: str) -> str:
    compact = value.replace(" ", "").upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _iban_valid(grouped: str) -> bool:
    """ISO 13616: country, check digits, account; mod 97 of the rearranged number is 1."""
    iban = grouped.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", iban):
        return False
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def create_user(
    session: Session,
    *,
    username: str,
    full_name: str,
    role: Role,
    org_slug: str,
    password: str,
    by: str,
) -> User:
    username = username.strip().lower()
    if not username or not full_name.strip():
        raise AccountError("Benutzername und Name sind erforderlich.")
    if get_user(session, username) is not None:
        raise AccountError(f"Den Benutzernamen „{username}“ gibt es bereits.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Das Passwort muss mindestens {MIN_PASSWORD_LENGTH} Zeichen lang sein.")
    org = get_organisation(session, org_slug)
    if org is None:
        raise AccountError("Unbekannte Organisation.")
    user = User(
        username=username,
        full_name=full_name.strip(),
        role=role,
        organisation_id=org.id,
        password_hash=hash_password(password),
    )
    session.add(user)
    audit.record(
        session,
        actor=by,
        action="user_created",
        case_id=None,
        detail=f"{username} ({role}, {org.slug})",
    )
    return user


def deactivate_user(session: Session, *, user: User, by: str) -> int:
    """The user can no longer log in; their claimed tasks return to the group.
    Returns how many tasks were returned."""
    if user.username == by:
        raise AccountError("Sie können sich nicht selbst deaktivieren.")
    user.active = False
    session.add(user)
    session.flush()
    end_sessions(session, user)
    returned = release_claimed_tasks(session, user)
    audit.record(
        session,
        actor=by,
        action="user_deactivated",
        case_id=None,
        detail=f"{user.username}; {returned} Aufgabe(n) zurück an die Gruppe",
    )
    return returned


def set_role(session: Session, *, user: User, role: Role, by: str) -> int:
    """Like a deactivation for the old role: the user's claimed tasks return
    to the group, since nobody else of that role could release them.
    Returns how many tasks were returned."""
    if user.username == by:
        # Segregation of duties: an admin must not make themselves a clerk.
        raise AccountError("Sie können Ihre eigene Rolle nicht selbst ändern.")
    if user.role == role:
        return 0
    user.role = role
    session.add(user)
    session.flush()
    end_sessions(session, user)  # they log in again with the new role
    returned = release_claimed_tasks(session, user)
    audit.record(
        session,
        actor=by,
        action="user_role_changed",
        case_id=None,
        detail=f"{user.username}: {role}; {returned} Aufgabe(n) zurück an die Gruppe",
    )
    return returned


def end_sessions(session: Session, user: User) -> None:
    """Every session of the user ends at its next request (see webui/auth.py).
    Counted up in the database, so two logouts at once both count."""
    session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
    )


MIN_PASSWORD_LENGTH = 12


def set_password(session: Session, *, user: User, password: str, by: str) -> None:
    """A new password ends every session, also one a thief holds."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Das Passwort muss mindestens {MIN_PASSWORD_LENGTH} Zeichen lang sein.")
    user.password_hash = hash_password(password)
    user.must_change_password, user.temporary_password_until = False, None
    session.add(user)
    session.flush()
    end_sessions(session, user)
    audit.record(session, actor=by, action="password_changed", case_id=None, detail=user.username)


def change_own_password(
    session: Session, *, user: User, current: str, new: str, repeat: str
) -> None:
    """The user's own change: the current password proves it is them; nothing
    changes unless every check passes."""
    if authenticate(session, username=user.username, password=current) is None:
        raise AccountError("Das bisherige Passwort ist falsch.")
    if new != repeat:
        raise AccountError("Die beiden neuen Passwörter stimmen nicht überein.")
    if new == current:
        raise AccountError("Das neue Passwort muss sich vom bisherigen unterscheiden.")
    set_password(session, user=user, password=new, by=user.username)


# Letters and digits that cannot be mistaken for each other when read aloud
# or copied from the screen (no 0/O, 1/l/I).
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def temporary_password() -> str:
    """Four groups of four, e.g. "k7dm-q2xa-9wfe-htr4": 19 characters, about 79 bits."""
    groups = ("".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


# Long enough to reach a colleague on leave for a day or two, short enough
# that a password written on a note stops working.
TEMPORARY_PASSWORD_DAYS = 3


def reset_password(session: Session, *, user: User, admin: User) -> str:
    """An admin sets a temporary password for a user of their own organisation;
    the user must replace it at their next login. Ends the user's sessions.
    Returns the temporary password, to be shown to the admin once."""
    if user.organisation_id != admin.organisation_id:
        raise AccountError(
            "Sie können nur Passwörter von Benutzerkonten Ihrer eigenen Organisation zurücksetzen."
        )
    if user.id == admin.id:
        raise AccountError("Ihr eigenes Passwort ändern Sie unter „Passwort ändern“.")
    if not user.active:
        raise AccountError("Das Benutzerkonto ist deaktiviert.")
    password = temporary_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.temporary_password_until = clock.now() + timedelta(days=TEMPORARY_PASSWORD_DAYS)
    session.add(user)
    session.flush()
    end_sessions(session, user)
    audit.record(
        session, actor=admin.username, action="password_reset", case_id=None, detail=user.username
    )
    return password


def release_claimed_tasks(session: Session, user: User) -> int:
    """The user's claimed tasks go back to the group; returns how many."""
    return session.execute(
        sa.update(HumanTask)
        .where(HumanTask.assignee == user.username, HumanTask.status == TaskStatus.claimed)
        .values(status=TaskStatus.open, assignee=None, claimed_at=None, delegated_by=None)
    ).rowcount


def confirming_partners(session: Session, organisation: Organisation) -> list[Organisation]:
    """Who may confirm for an organisation: another foreigners' authority
    of the same kind that takes part (its clerks decide such steps too)."""
    query = select(Organisation).where(
        Organisation.id != organisation.id,
        Organisation.kind == organisation.kind,
        Organisation.active.is_(True),
    )
    return list(session.exec(query.order_by(Organisation.name)))


def set_four_eyes_confirmer(
    session: Session, *, organisation: Organisation, value: str, by: str
) -> None:
    """Who confirms four-eyes proposals when the organisation has fewer than
    two people of the role: "" (nobody else), "coordinator", or a partner
    organisation's slug."""
    value = value.strip()
    if value not in ("", "coordinator") and value not in {
        o.slug for o in confirming_partners(session, organisation)
    }:
        raise AccountError("Bitte wählen Sie eine andere Organisation aus der Liste.")
    organisation.four_eyes_confirmer = value
    session.add(organisation)
    audit.record(
        session,
        actor=by,
        action="four_eyes_confirmer_set",
        case_id=None,
        detail=f"{organisation.slug}: {value or 'keine Vertretung'}",
    )
