"""Inbox services: every action on a task, filters, saved views, who sees
which documents; and two clerks completing one task at the same moment."""

import threading
from datetime import timedelta
from uuid import UUID

import pytest
from sqlmodel import func, or_, select

from serviceplus.models import clock
from serviceplus.models.db import session_scope
from serviceplus.models.services import assignment, comments, human_tasks, inbox
from serviceplus.models.services.accounts import get_user
from serviceplus.models.services.cases import visible_documents
from serviceplus.models.tables import Case, HumanTask, PendingResume, TaskStatus
from tests.helpers import BLUE_CARD, advance, drive, make_case, open_task_of, reload

# These tests follow version 2's path (version 3 starts with the agreement).
pytestmark = pytest.mark.usefixtures("inprocess_deployment", "on_version_2")


def user(name: str):
    with session_scope() as session:
        return get_user(session, name)


def act(fn, task, **kwargs) -> HumanTask:
    """Run an assignment action on the task as stored now; return it after."""
    with session_scope() as session:
        fn(session, task=session.get(HumanTask, task.id), **kwargs)
    with session_scope() as session:
        return session.get(HumanTask, task.id)


@pytest.fixture
def task():
    case = make_case(example=BLUE_CARD)
    drive(case)
    return open_task_of(case)


def test_claim_unclaim(task):
    me = user("sb.magdeburg")
    task = act(assignment.claim, task, user=me)
    assert (task.status, task.assignee) == (TaskStatus.claimed, "sb.magdeburg")
    with pytest.raises(human_tasks.TaskError, match="bereits übernommen"):
        act(assignment.claim, task, user=user("sb2.magdeburg"))
    with pytest.raises(human_tasks.TaskError, match="Nur wer"):
        act(assignment.unclaim, task, user=user("sb2.magdeburg"))
    task = act(assignment.unclaim, task, user=me)
    assert (task.status, task.assignee) == (TaskStatus.open, None)


def test_claim_by_other_organisation_is_refused(task):
    with pytest.raises(human_tasks.TaskError, match="nicht an Sie gerichtet"):
        act(assignment.claim, task, user=user("sb.halle"))


def test_reassign_to_colleague_only(task):
    me = user("sb.magdeburg")
    task = act(assignment.reassign, task, user=me, to="sb2.magdeburg")
    assert (task.status, task.assignee) == (TaskStatus.claimed, "sb2.magdeburg")
    for target in ("sb.halle", "koordination", "nobody"):
        with pytest.raises(human_tasks.TaskError, match="Kollegin oder einen Kollegen"):
            act(assignment.reassign, task, user=user("sb2.magdeburg"), to=target)
    with pytest.raises(human_tasks.TaskError, match="übernommen"):
        act(assignment.reassign, task, user=me, to="sb2.magdeburg")


def test_delegate_and_take_back(task):
    me = user("sb.magdeburg")
    with pytest.raises(human_tasks.TaskError, match="Delegieren"):
        act(assignment.delegate, task, user=me, to="sb2.magdeburg")
    act(assignment.claim, task, user=me)
    task = act(assignment.delegate, task, user=me, to="sb2.magdeburg")
    assert (task.assignee, task.delegated_by) == ("sb2.magdeburg", "sb.magdeburg")
    with pytest.raises(human_tasks.TaskError, match="Zurücknehmen"):
        act(assignment.take_back, task, user=user("sb2.magdeburg"))
    task = act(assignment.take_back, task, user=me)
    assert (task.assignee, task.delegated_by) == ("sb.magdeburg", None)


def test_priority(task):
    task = act(assignment.set_priority, task, user=user("sb.magdeburg"), priority=1)
    assert task.priority == 1
    with pytest.raises(human_tasks.TaskError):
        act(assignment.set_priority, task, user=user("sb.magdeburg"), priority=7)


def test_bulk_claim_and_reassign():
    created = [make_case(example=BLUE_CARD) for _ in range(2)]
    for case in created:
        drive(case)
    ids = [open_task_of(c).id for c in created]
    with session_scope() as session:
        done, failures = assignment.bulk(
            session, task_ids=[*ids, 999999], user=get_user(session, "sb.magdeburg"), action="claim"
        )
    assert (done, failures) == (2, ["Aufgabe 999999: nicht gefunden."])
    with session_scope() as session:
        done, failures = assignment.bulk(
            session,
            task_ids=ids,
            action="reassign",
            user=get_user(session, "sb.magdeburg"),
            to="sb2.magdeburg",
        )
    assert (done, failures) == (2, [])
    assert {open_task_of(c).assignee for c in created} == {"sb2.magdeburg"}


def test_comments(task):
    with session_scope() as session:
        with pytest.raises(comments.CommentError, match="Bitte geben Sie"):
            comments.add(session, task=task, author="sb.magdeburg", body="   ")
        comments.add(session, task=task, author="sb.magdeburg", body="Gehalt geprüft.")
    with session_scope() as session:
        (comment,) = comments.for_case(session, task.case_id)
    assert (comment.author, comment.body) == ("sb.magdeburg", "Gehalt geprüft.")


def test_inbox_filters_and_order():
    late = make_case(example=BLUE_CARD, employer={"name": "Zebra Filter GmbH", "address": "X"})
    drive(late)
    me = user("sb.magdeburg")
    with session_scope() as session:
        found = inbox.queue_for(session, me, inbox.InboxFilter(q="zebra filter"))
        assert [c.id for _, c in found.rows] == [late.id]
        # Overdue only when the deadline (2 weeks) has passed.
        overdue = inbox.InboxFilter(q="zebra", due="overdue")
        assert inbox.queue_for(session, me, overdue).total == 0
        later = clock.now() + timedelta(days=15)
        assert inbox.queue_for(session, me, overdue, now=later).total == 1
        assert inbox.queue_for(session, me, inbox.InboxFilter(q="zebra", view="mine")).total == 0
        assert inbox.queue_for(session, me, inbox.InboxFilter(q="zebra", view="group")).total == 1
        everything = inbox.queue_for(session, me).rows
        dues = [t.due_at for t, _ in everything]
        dated = [d for d in dues if d is not None]
        assert dues[: len(dated)] == sorted(dated)  # by deadline, undated tasks last
        assert inbox.queue_for(session, user("sb.halle"), inbox.InboxFilter(q="zebra")).total == 0


def test_inbox_sorts_undated_last_and_shows_only_active_tasks():
    employer = {"name": "Sortierprobe GmbH", "address": "Magdeburg"}
    first, second, third = (make_case(example=BLUE_CARD, employer=employer) for _ in range(3))
    for case in (first, second, third):
        drive(case)
    with session_scope() as session:
        mine = {c.id: session.get(HumanTask, open_task_of(c).id) for c in (first, second, third)}
        mine[first.id].due_at = None  # a step without a deadline
        mine[second.id].status = TaskStatus.claimed
        mine[third.id].status = TaskStatus.cancelled
    me = user("sb.magdeburg")
    with session_scope() as session:
        page = inbox.queue_for(session, me, inbox.InboxFilter(q="sortierprobe"))
        assert [c.id for _, c in page.rows] == [second.id, first.id]  # undated last
        assert page.total == 2
        # Without a case filter the count skips the join; it must still agree.
        active = select(func.count()).where(
            HumanTask.organisation_id == me.organisation_id,
            HumanTask.role == me.role,
            HumanTask.status.in_([TaskStatus.open, TaskStatus.claimed]),
            # The confirmation of one's own proposal is not shown (four eyes).
            or_(HumanTask.proposed_by.is_(None), HumanTask.proposed_by != me.username),
        )
        assert inbox.queue_for(session, me).total == session.exec(active).one()


def test_saved_views_shared_within_organisation():
    with session_scope() as session:
        me = get_user(session, "sb.magdeburg")
        inbox.save_view(
            session, user=me, name="Blaue Karten", flt=inbox.InboxFilter(purpose="18g"), shared=True
        )
        inbox.save_view(session, user=me, name="Privat", flt=inbox.InboxFilter(q="x"), shared=False)
    with session_scope() as session:
        colleague = {v.name for v in inbox.views_for(session, get_user(session, "sb2.magdeburg"))}
        other = {v.name for v in inbox.views_for(session, get_user(session, "sb.halle"))}
        mine = inbox.views_for(session, get_user(session, "sb.magdeburg"))
    assert "Blaue Karten" in colleague and "Privat" not in colleague
    assert not {"Blaue Karten", "Privat"} & other
    assert next(v for v in mine if v.name == "Blaue Karten").params == {"purpose": "18g"}


def test_ba_sees_only_the_documents_its_step_needs():
    case = make_case(facts={"anabin_equivalent": True})
    drive(case)
    assert open_task_of(case).step_key == "ba_approval"
    with session_scope() as session:
        c = session.get(Case, case.id)
        ba = {d.kind for d in visible_documents(session, get_user(session, "ba"), c)}
        own = {d.kind for d in visible_documents(session, get_user(session, "sb.magdeburg"), c)}
        stranger = visible_documents(session, get_user(session, "fosa"), c)
    assert ba == {"passport", "employment_contract", "employer_declaration"}
    assert "qualification" in own and "power_of_attorney" in own
    assert stranger == []


def test_two_clerks_completing_at_once_exactly_one_wins(app, login):
    case = make_case(example=BLUE_CARD)
    drive(case)
    task = open_task_of(case)
    clients = [login("sb.magdeburg"), login("sb2.magdeburg")]
    barrier = threading.Barrier(2)
    results = [None, None]

    def submit(i):
        barrier.wait()
        response = clients[i].post(f"/tasks/{task.id}/complete", data={"decision": "approve"})
        results[i] = (response.status_code, response.get_data(as_text=True))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(code for code, _ in results)
    assert codes == [302, 409]
    loser = next(text for code, text in results if code == 409)
    assert "bereits erledigt" in loser
    with session_scope() as session:
        count = (
            select(func.count()).select_from(PendingResume).where(PendingResume.task_id == task.id)
        )
        assert session.exec(count).one() == 1
    assert drive(case) == "Suspended"  # at the confirmation: resumed exactly once
    from prefect import get_client

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(case_flow_run(case)))
    assert [s.name for s in states].count("Resuming") == 1


def case_flow_run(case) -> str:
    with session_scope() as session:
        return session.get(Case, case.id).flow_run_id


def test_proposer_never_sees_nor_claims_the_confirmation_of_own_proposal():
    case = make_case(example=BLUE_CARD)
    drive(case)
    assert advance(case, "decision", "sb.magdeburg", "approve") == "Suspended"
    confirmation = open_task_of(case)
    reference = reload(case).reference
    with session_scope() as session:
        shown = lambda name: [  # noqa: E731
            t.id
            for t, _ in inbox.queue_for(session, user(name), inbox.InboxFilter(q=reference)).rows
        ]
        assert confirmation.id not in shown("sb.magdeburg")
        assert confirmation.id in shown("sb2.magdeburg")
        with pytest.raises(human_tasks.TaskError, match="zweite Person"):
            assignment.claim(session, task=confirmation, user=user("sb.magdeburg"))
