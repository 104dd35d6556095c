"""Every registered route, for every role and organisation: who gets in,
who gets 403 or 404. A route missing from ROUTES fails the suite, so no
new page can go without an access decision."""

import pytest
from sqlmodel import select

from serviceplus.demo import blank_pdf
from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, advice, cases
from serviceplus.models.tables import Document, HumanTask, Letter, SavedView
from serviceplus.settings import get_settings
from tests.helpers import BLUE_CARD, EXAMPLE, drive, make_case

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


USERS = [
    "sb.magdeburg",
    "sb2.magdeburg",
    "koordination",
    "admin",
    "sb.halle",
    "ba",
    "berater.wcst",
    "berater.iq",
    "netzwerk",
]
ADVISERS = {"berater.wcst", "berater.iq"}
WCST = {"berater.wcst"}  # the pre-check below is the WelcomeCenter's
CLERKS_MD = {"sb.magdeburg", "sb2.magdeburg"}
CASE_ROLES_MD = CLERKS_MD | {"koordination"}
EVERYONE = set(USERS)
# Admins read no case data (segregation of duties); advisers and the network
# overview have their own pages and none of an authority's.
AUTHORITIES = EVERYONE - {"admin", "netzwerk"} - ADVISERS

# endpoint: (method, url, users allowed in). Everyone else gets 403 or 404.
ROUTES = {
    "index": ("GET", "/", EVERYONE),
    "auth.logout": ("POST", "/logout", EVERYONE),
    "auth.password": ("GET", "/password", EVERYONE),
    "auth.notifications": ("POST", "/account/notifications", EVERYONE),
    "inbox.index": ("GET", "/inbox", AUTHORITIES),
    "inbox.bulk": ("POST", "/inbox/bulk", CLERKS_MD | {"sb.halle", "ba"}),  # acts on own tasks only
    "inbox.save_view": ("POST", "/inbox/views", AUTHORITIES),
    "inbox.delete_view": ("POST", "/inbox/views/{view}/delete", {"sb.magdeburg"}),
    "inbox.task_page": ("GET", "/tasks/{task}", CASE_ROLES_MD),
    "inbox.live_queue": ("GET", "/inbox/live", AUTHORITIES),
    "inbox.live_task": ("GET", "/tasks/{task}/live", CASE_ROLES_MD),
    "inbox.claim": ("POST", "/tasks/{task}/claim", CLERKS_MD),
    "inbox.unclaim": ("POST", "/tasks/{task}/unclaim", CLERKS_MD),
    "inbox.reassign": ("POST", "/tasks/{task}/reassign", CLERKS_MD),
    "inbox.delegate": ("POST", "/tasks/{task}/delegate", CLERKS_MD),
    "inbox.take_back": ("POST", "/tasks/{task}/take-back", CLERKS_MD),
    "inbox.priority": ("POST", "/tasks/{task}/priority", CLERKS_MD),
    "inbox.extend": ("POST", "/tasks/{task}/extend", CLERKS_MD),
    "inbox.comment": ("POST", "/tasks/{task}/comments", CASE_ROLES_MD),
    "inbox.complete": ("POST", "/tasks/{task}/complete", CLERKS_MD),
    "inbox.recheck": ("POST", "/tasks/{task}/recheck", CLERKS_MD),
    "cases.index": ("GET", "/cases/", CASE_ROLES_MD | {"sb.halle", "ba"}),
    "cases.new": ("GET", "/cases/new", CLERKS_MD | {"sb.halle"}),
    "cases.requirements": ("GET", "/cases/new/requirements", CLERKS_MD | {"sb.halle"}),
    "cases.live_case": ("GET", "/cases/{ref}/live", CASE_ROLES_MD),
    "cases.detail": ("GET", "/cases/{ref}", CASE_ROLES_MD),
    "cases.upload": ("POST", "/cases/{ref}/documents", CLERKS_MD),
    "cases.document": ("GET", "/cases/{ref}/documents/{doc}", CASE_ROLES_MD),
    "cases.preview": ("GET", "/cases/{ref}/documents/{doc}/preview", CASE_ROLES_MD),
    "cases.letter": ("GET", "/cases/{ref}/letters/{letter}", CASE_ROLES_MD),
    "cases.issue_status_link": ("POST", "/cases/{ref}/status-link", CLERKS_MD),
    "cases.revoke_status_link": ("POST", "/cases/{ref}/status-link/revoke", CLERKS_MD),
    "cases.representative": ("POST", "/cases/{ref}/representative", CLERKS_MD),
    "cases.handover": ("POST", "/cases/{ref}/handover", CLERKS_MD),
    "monitor.index": ("GET", "/monitor/", {"koordination"}),
    "monitor.figure_download": ("GET", "/monitor/figures/weekly.xlsx", {"koordination"}),
    "monitor.case_list": ("GET", "/monitor/cases", {"koordination"}),
    "monitor.case_detail": ("GET", "/monitor/cases/{ref}", {"koordination"}),
    "monitor.incidents": ("GET", "/monitor/incidents", {"koordination"}),
    "monitor.retry": ("POST", "/monitor/cases/{ref}/retry", {"koordination"}),
    "monitor.cancel": ("POST", "/monitor/cases/{ref}/cancel", {"koordination"}),
    "monitor.reassign": ("POST", "/monitor/tasks/{task}/reassign", {"koordination"}),
    "monitor.priority": ("POST", "/monitor/tasks/{task}/priority", {"koordination"}),
    "admin.index": ("GET", "/admin/", {"admin"}),
    "admin.version": ("GET", "/admin/definitions/s81a/1", {"admin"}),
    "admin.draft": ("GET", "/admin/definitions/s81a/draft", {"admin"}),
    "admin.publish": ("POST", "/admin/definitions/s81a/1/publish", {"admin"}),
    "admin.activate": ("POST", "/admin/definitions/s81a/2/activate", {"admin"}),
    "admin.diff": ("GET", "/admin/definitions/s81a/diff?a=1&b=1", {"admin"}),
    "admin.migrate": ("GET", "/admin/definitions/s81a/migrate?source=1&target=1", {"admin"}),
    "admin.users": ("GET", "/admin/users", {"admin"}),
    "admin.deactivate": ("POST", "/admin/users/1/deactivate", {"admin"}),
    "admin.role": ("POST", "/admin/users/1/role", {"admin"}),
    "admin.reset_password": ("POST", "/admin/users/1/password", {"admin"}),
    "admin.organisation": ("GET", "/admin/organisation", {"admin"}),
    "admin.four_eyes": ("POST", "/admin/organisation/four-eyes", {"admin"}),
    "advice.index": ("GET", "/advice/", ADVISERS),
    "advice.new": ("GET", "/advice/new", ADVISERS),
    "advice.detail": ("GET", "/advice/{precheck}", WCST),
    "advice.upload": ("POST", "/advice/{precheck}/documents", WCST),
    "advice.checklist": ("GET", "/advice/{precheck}/checklist.pdf", WCST),
    "advice.handover": ("POST", "/advice/{precheck}/handover", WCST),
    "advice.progress": ("GET", "/advice/{precheck}/progress", WCST),
    "advice.letter": ("GET", "/advice/{precheck}/letters/{precheck_letter}", WCST),
    "network.index": ("GET", "/network/", {"netzwerk"}),
    "network.figure_download": ("GET", "/network/figures/deadlines.xlsx", {"netzwerk"}),
}


@pytest.fixture(scope="module")
def ids(app):
    case = make_case(example=BLUE_CARD)
    drive(case)
    with session_scope() as session:
        task = session.exec(select(HumanTask).where(HumanTask.case_id == case.id)).one()
        doc = session.exec(select(Document).where(Document.case_id == case.id)).first()
        letter = session.exec(select(Letter).where(Letter.case_id == case.id)).first()
        view = SavedView(organisation_id=task.organisation_id, owner="sb.magdeburg", name="v")
        session.add(view)
        session.flush()
        found = {
            "task": task.id,
            "ref": case.reference,
            "doc": doc.id,
            "letter": letter.id,
            "view": view.id,
        }
    found["precheck"], found["precheck_letter"] = handed_over_precheck()
    return found


def handed_over_precheck() -> tuple[int, int]:
    """A WelcomeCenter pre-check handed over to Magdeburg, and a letter of its case."""
    data = {k: v for k, v in EXAMPLE.items() if k != "documents"}
    docs = [cases.NewDocument(d["kind"], d["file"], blank_pdf()) for d in EXAMPLE["documents"]]
    with session_scope() as session:
        adviser = accounts.get_user(session, "berater.wcst")
        row = advice.create(
            session,
            data=cases.parse_case_input(data),
            documents=docs,
            adviser=adviser,
            max_upload_bytes=get_settings().max_upload_bytes,
        )
    case, _ = advice.handover(
        precheck_id=row.id, user=adviser, max_upload_bytes=get_settings().max_upload_bytes
    )
    drive(case)
    with session_scope() as session:
        letter = session.exec(
            select(Letter).where(Letter.case_id == case.id, Letter.kind == "fee_notice")
        ).one()
        return row.id, letter.id


# The employer's status pages need no login: their link is the key, and
# tests/test_status.py checks every one with right, wrong and revoked links.
PUBLIC = {"static", "auth.login", "status.page", "status.letter", "status.upload", "status.answer"}


def test_every_route_is_in_the_table(app):
    registered = {r.endpoint for r in app.url_map.iter_rules()} - PUBLIC
    assert registered == set(ROUTES)


# State-changing routes are checked here for the users they must refuse;
# what they do for allowed users is covered by the behaviour tests.
CASES = [
    (endpoint, username)
    for endpoint, (method, _url, allowed) in sorted(ROUTES.items())
    for username in USERS
    if method == "GET" or username not in allowed
]


@pytest.mark.parametrize(("endpoint", "username"), CASES)
def test_access(endpoint, username, login, ids):
    method, url, allowed = ROUTES[endpoint]
    with login(username).open(url.format(**ids), method=method) as response:
        status = response.status_code
    if username in allowed:
        assert status in (200, 302), status
    else:
        assert status in (403, 404), status
