"""The competent foreigners' authority: Sachsen-Anhalt's 14 districts and
cities, each with its authority and the postcodes it covers, read from the
data file models/data/authorities.yaml. A case goes to the authority of the
place of employment, found by the postcode of the employer's address
(cases.competent_authority). A postcode whose area spans two districts
names both: the user then picks one.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlmodel import Session, select

from serviceplus.models.tables import Organisation

DATA = Path(__file__).resolve().parent.parent / "data" / "authorities.yaml"
FOREIGNERS_AUTHORITY = "abh"  # Organisation.kind
# A German postcode: five digits standing alone ("39104 Magdeburg").
POSTCODE = re.compile(r"(?<!\d)(\d{5})(?!\d)")


@dataclass(frozen=True)
class District:
    slug: str  # the organisation that acts for the district
    district: str
    district_kind: str  # Landkreis or kreisfreie Stadt
    authority: str
    address: str
    places: tuple[str, ...]
    postcodes: frozenset[str]


@cache
def districts() -> tuple[District, ...]:
    rows = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return tuple(
        District(
            slug=row["slug"],
            district=row["district"],
            district_kind=row["district_kind"],
            authority=row["authority"],
            address=row["address"],
            places=tuple(row.get("places", [])),
            postcodes=frozenset(str(p) for p in row["postcodes"]),
        )
        for row in rows
    )


def postcode_of(address: str) -> str | None:
    """The postcode in an address: the last five-digit group ("Straße 1,
    39104 Magdeburg" -> "39104"); None when there is none."""
    found = POSTCODE.findall(address or "")
    return found[-1] if found else None


def districts_for(postcode: str) -> list[District]:
    """The districts whose area the postcode covers: none (outside
    Sachsen-Anhalt), one, or several (a postcode spanning a border)."""
    return [d for d in districts() if postcode in d.postcodes]


def district_of_slug(slug: str) -> District | None:
    return next((d for d in districts() if d.slug == slug), None)


def install(session: Session) -> int:
    """List every authority of the data file as an organisation; the ones
    not there yet are created inactive (data only, no one logs in there).
    Returns how many were added."""
    added = 0
    for district in districts():
        exists = session.exec(select(Organisation).where(Organisation.slug == district.slug))
        if exists.first() is None:
            session.add(
                Organisation(
                    slug=district.slug,
                    name=district.authority,
                    kind=FOREIGNERS_AUTHORITY,
                    address=district.address,
                    active=False,
                )
            )
            added += 1
    session.flush()
    return added


def active_authorities(session: Session) -> list[Organisation]:
    """The foreigners' authorities that take part: cases are opened and
    handed over only there."""
    query = select(Organisation).where(
        Organisation.kind == FOREIGNERS_AUTHORITY,
        Organisation.active == True,  # noqa: E712
    )
    return list(session.exec(query.order_by(Organisation.name)))
