"""Four eyes as organisations do it: the proposer never confirms, a
sent-back proposal returns to its proposer with the reason, and where an
organisation has one person of the role, its settings name who confirms."""

import pytest

from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, assignment, human_tasks, versions
from serviceplus.models.tables import TaskStatus
from tests.helpers import BLUE_CARD, advance, drive, make_case, open_task_of

# Written on version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2", "halle_as_demo")


@pytest.fixture(scope="module")
def halle_as_demo(database):
    """Halle with its one demo clerk: other test modules add clerks there,
    who are set inactive for these tests and active again after them."""
    from sqlmodel import select

    from serviceplus.models.tables import User

    with session_scope() as session:
        halle = accounts.get_organisation(session, "abh-hal")
        others = session.exec(
            select(User).where(
                User.organisation_id == halle.id,
                User.username != "sb.halle",
                User.active.is_(True),
                User.role != "admin",
            )
        ).all()
        names = [u.username for u in others]
        for user in others:
            user.active = False
            session.add(user)
    yield
    with session_scope() as session:
        for user in session.exec(select(User).where(User.username.in_(names))).all():
            user.active = True
            session.add(user)


def to_decision(case, clerk: str) -> None:
    """Walk the case to its decision step (recognition and BA where asked)."""
    drive(case)
    answers = {"recognition_receipt": "received", "recognition": "full", "ba_approval": "approve"}
    for _ in range(5):
        task = open_task_of(case)
        if task.step_key == "decision":
            return
        with session_scope() as session:
            org = session.get(accounts.Organisation, task.organisation_id).slug
            user = {"abh-md": "sb.magdeburg", "abh-hal": clerk}.get(org, org.split("-")[-1])
        advance(case, task.step_key, user, answers[task.step_key])
    raise AssertionError("no decision step reached")


def test_proposer_never_sees_nor_claims_the_confirmation_and_send_back_returns_to_them(login):
    case = make_case(example=BLUE_CARD)
    to_decision(case, "sb.halle")
    advance(case, "decision", "sb.magdeburg", "approve")
    confirmation = open_task_of(case)
    assert confirmation.step_key == "decision.confirm"
    proposer = login("sb.magdeburg")
    assert f'/tasks/{confirmation.id}"' not in proposer.get("/inbox").get_data(as_text=True)
    assert f'/tasks/{confirmation.id}"' in login("sb2.magdeburg").get("/inbox").get_data(
        as_text=True
    )
    with session_scope() as session:
        user = accounts.get_user(session, "sb.magdeburg")
        task = session.get(human_tasks.HumanTask, confirmation.id)
        with pytest.raises(human_tasks.TaskError, match="zweite Person"):
            assignment.claim(session, task=task, user=user)
    advance(case, "decision.confirm", "sb2.magdeburg", "send_back", "Gehalt bitte prüfen")
    again = open_task_of(case)
    assert (again.step_key, again.attempt) == ("decision", 2)
    assert (again.status, again.assignee) == (TaskStatus.claimed, "sb.magdeburg")
    page = proposer.get(f"/tasks/{again.id}").get_data(as_text=True)
    top = page.index("Zur Überarbeitung zurückgegeben")
    assert top < page.index("Aktenzeichen") and "Gehalt bitte prüfen" in page
    assert "Stefan Brandt hat Ihren Vorschlag zurückgegeben" in page


def set_confirmer(slug: str, value: str) -> None:
    with session_scope() as session:
        org = accounts.get_organisation(session, slug)
        accounts.set_four_eyes_confirmer(session, organisation=org, value=value, by="admin")


def test_one_clerk_authority_warns_the_admin_until_a_partner_confirms(login):
    admin = login("admin")
    warning = "kann bei Ausländerbehörde Halle (Saale) niemand bestätigen"
    assert warning in admin.get("/admin/").get_data(as_text=True)
    try:
        response = admin.post("/admin/organisation/four-eyes", data={"confirmer": "nirgendwo"})
        assert response.status_code == 302
        with session_scope() as session:
            _row, definition = versions.active_definition(session, "s81a")
            assert "Ausländerbehörde Halle (Saale)" in {
                o for _t, o in human_tasks.unconfirmable_steps(session, definition)
            }
        set_confirmer("abh-hal", "abh-md")
        assert warning not in admin.get("/admin/").get_data(as_text=True)
        halle = {**BLUE_CARD["employer"], "address": "Mansfelder Straße 56, 06108 Halle (Saale)"}
        case = make_case(example=BLUE_CARD, org="abh-hal", employer=halle)
        to_decision(case, "sb.halle")
        advance(case, "decision", "sb.halle", "approve")
        confirmation = open_task_of(case)
        with session_scope() as session:
            org = session.get(accounts.Organisation, confirmation.organisation_id)
            assert (org.slug, confirmation.role) == ("abh-md", "clerk")
        assert f'/tasks/{confirmation.id}"' in login("sb2.magdeburg").get("/inbox").get_data(
            as_text=True
        )
        assert advance(case, "decision.confirm", "sb2.magdeburg", "confirm") == "Completed"
    finally:
        set_confirmer("abh-hal", "")


def test_coordinator_as_confirmer_and_unknown_partner_refused():
    with session_scope() as session:
        org = accounts.get_organisation(session, "abh-hal")
        with pytest.raises(accounts.AccountError):
            accounts.set_four_eyes_confirmer(session, organisation=org, value="abh-hal", by="a")
        with pytest.raises(accounts.AccountError):
            accounts.set_four_eyes_confirmer(
                session, organisation=org, value="gibt-es-nicht", by="a"
            )
        # Only another foreigners' authority that takes part: not the BA, not
        # an authority that is only listed.
        for other in ("ba", "abh-sdl"):
            assert accounts.get_organisation(session, other) is not None
            with pytest.raises(accounts.AccountError):
                accounts.set_four_eyes_confirmer(session, organisation=org, value=other, by="a")
        # Halle has no coordinator in the demo data: still nobody can confirm.
        org.four_eyes_confirmer = "coordinator"
        assert human_tasks.nobody_confirms(session, org, "clerk")
        org.four_eyes_confirmer = "abh-md"
        assert not human_tasks.nobody_confirms(session, org, "clerk")
        session.rollback()
