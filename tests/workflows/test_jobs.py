"""Reminders, escalations and notifications under a controlled clock (the
in-process sweep), and two users completing one task at the same moment."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import ConflictError
from cubebase.workflows import jobs
from cubebase.workflows.models import Event, Instance, Notification, Task

from .conftest import build_workflow_schema
from .test_engine import complete, create, my_tasks, new_project, start, the_task

pytestmark = pytest.mark.schema.with_args(build_workflow_schema)


def notifications(platform, kind=None):
    with platform.session() as s:
        q = sa.select(Notification.key, Notification.user_id).order_by(Notification.id)
        if kind:
            q = q.where(Notification.kind == kind)
        return s.execute(q).all()


def test_reminder_then_escalation_by_the_clock_each_once(platform, wf, admin, users, clock):
    pid = new_project(platform, admin, users)
    start(platform, wf, admin, "consulting_project", pid)
    consultant = users["consultant"]
    t = the_task(platform, consultant)  # deadline 5d, reminder 1d before, escalation 1d after
    assert notifications(platform, "assigned") == [(f"assigned:{t['id']}", consultant.user_id)]
    assert jobs.sweep(platform, clock.advance(days=3)) == {
        "reminders": 0,
        "escalations": 0,
        "automations": 0,
        "mail": 0,
    }
    assert my_tasks(platform, consultant, filter="due_soon")[0]["id"] == t["id"]
    assert my_tasks(platform, consultant, filter="overdue") == []
    clock.advance(days=1, hours=1)  # 4d 1h: inside the reminder window
    assert jobs.sweep(platform, clock.now)["reminders"] == 1
    assert jobs.sweep(platform, clock.now)["reminders"] == 0  # twice: one reminder
    assert jobs.remind_due(platform, clock.now, [t["id"]]) == 0
    assert notifications(platform, "reminder") == [(f"reminder:{t['id']}", consultant.user_id)]
    clock.advance(days=1)  # overdue, not yet escalated
    assert my_tasks(platform, consultant, filter="overdue")[0]["id"] == t["id"]
    assert jobs.sweep(platform, clock.now)["escalations"] == 0
    clock.advance(days=1)
    assert jobs.sweep(platform, clock.now)["escalations"] == 1
    assert jobs.sweep(platform, clock.now)["escalations"] == 0
    # notify: the group leader hears of it; the consultant keeps the task
    leader = users["leader"].user_id
    assert notifications(platform, "escalation") == [(f"escalation:{t['id']}:{leader}", leader)]
    assert the_task(platform, consultant)["id"] == t["id"]


def test_escalation_reassigns_to_the_formulas_user(platform, wf, admin, users, clock):
    pid = new_project(platform, admin, users)
    iid = start(platform, wf, admin, "consulting_project", pid)
    consultant, leader, boss = users["consultant"], users["leader"], users["boss"]
    complete(
        platform,
        wf,
        consultant,
        the_task(platform, consultant)["id"],
        "submit",
        fields={"report": "R"},
    )
    task = the_task(platform, leader)  # deadline 2d, escalation 1d after: to leader.manager
    clock.advance(days=3, minutes=1)
    assert jobs.sweep(platform, clock.now)["escalations"] == 1
    assert my_tasks(platform, leader) == []
    moved = the_task(platform, boss)
    assert moved["step"] == "group_review" and moved["id"] != task["id"]
    with pytest.raises(ConflictError):
        complete(platform, wf, leader, task["id"], "approve")
    complete(platform, wf, boss, moved["id"], "approve")
    with platform.session() as s:
        assert s.get(Instance, iid).step == "company_review"
        reassign = s.scalars(sa.select(Event).where(Event.action == "reassign")).one()
        assert reassign.changes == {"assignee": [leader.user_id, boss.user_id]}


def test_the_sweep_is_one_indexed_query(platform, wf, admin, users, clock):
    for _ in range(3):
        start(platform, wf, admin, "consulting_project", new_project(platform, admin, users))
    statements = []
    every = []

    def record(conn, cursor, statement, parameters, *args):
        every.append(statement)
        if "cb_wf_tasks" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(platform.engine, "before_cursor_execute", record)
    try:
        jobs.remind_due(platform, clock.advance(days=4, hours=1))
    finally:
        sa.event.remove(platform.engine, "before_cursor_execute", record)
    due = [s for s in statements if "remind_at <=" in s[0]]
    assert len(due) == 1  # one query finds every due task, whatever their number
    assert "cb_wf_instances" in due[0][0]  # with their instances: no lookup per task
    work = [w for w in every if not w.lstrip().upper().startswith(("BEGIN", "PRAGMA"))]
    assert len(work) == 4, "\n".join(
        w[:150] for w in work
    )  # find, count existing, insert, clear remind_at: for 3 tasks
    with platform.session() as s:
        assert (
            s.scalar(
                sa.select(sa.func.count())
                .select_from(Notification)
                .where(Notification.kind == "reminder")
            )
            == 3
        )
    if platform.dialect == "sqlite":
        sql, params = due[0]
        with platform.engine.connect() as conn:
            plan = " ".join(map(str, conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)))
        assert "ix_cb_wf_tasks_remind_at" in plan, plan


def test_two_users_complete_one_task_at_the_same_moment_exactly_one_wins(
    platform, wf, admin, users, clock
):
    pid = new_project(platform, admin, users)
    iid = start(platform, wf, admin, "consulting_project", pid)
    consultant, leader, boss = users["consultant"], users["leader"], users["boss"]
    complete(
        platform,
        wf,
        consultant,
        the_task(platform, consultant)["id"],
        "submit",
        fields={"report": "R"},
    )
    with platform.session(write=True) as s, s.begin():  # the boss acts for the leader
        wf.delegate(s, leader, boss.user_id, clock.now, clock.now + timedelta(days=5))
    task = the_task(platform, leader)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(name, actor, action, comment):
        barrier.wait()
        try:
            complete(platform, wf, actor, task["id"], action, comment)
            results[name] = "won"
        except ConflictError as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=run, args=("leader", leader, "approve", None)),
        threading.Thread(target=run, args=("boss", boss, "reject", "no")),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(str(type(v).__name__) for v in results.values()) == ["ConflictError", "str"]
    with platform.session() as s:
        done = s.scalars(sa.select(Task).where(Task.step == "group_review")).all()
        events = s.scalars(sa.select(Event).where(Event.step == "group_review")).all()
        inst = s.get(Instance, iid)
    assert [t.status for t in done] == ["done"] and len(events) == 1
    winner = "leader" if results["leader"] == "won" else "boss"
    assert inst.step == ("company_review" if winner == "leader" else "onsite_report")


def test_on_create_and_start_when_condition_becomes_true(platform, wf, users):
    seller = users["seller"]
    qid = create(
        platform, seller, "quotes", {"title": "Q", "owner": seller.user_id, "discount": "0"}
    )
    assert my_tasks(platform, seller) == []
    with platform.session(write=True) as s, s.begin():
        platform.records(s, seller).update("quotes", qid, {"discount": "0.02"})
    assert the_task(platform, seller)["record_id"] == qid
    with platform.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Instance)) == 1
