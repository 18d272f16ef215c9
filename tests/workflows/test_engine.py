"""The engine on both databases: routing, rejection with a comment, parallel
approval, self-approval, field locks, delegation, definition changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import (
    BadRequest,
    ConflictError,
    Forbidden,
    LockedError,
    ValidationError,
)
from cubebase.workflows.definitions import load_workflows_text, validate_workflows
from cubebase.workflows.engine import plan_workflows
from cubebase.workflows.inbox import inbox
from cubebase.workflows.models import Event, Instance, Task

from .conftest import build_workflow_schema

pytestmark = pytest.mark.schema.with_args(build_workflow_schema)


def create(platform, actor, table, values) -> int:
    with platform.session(write=True) as s, s.begin():
        return platform.records(s, actor).create(table, values).id


def start(platform, wf, actor, key, record_id) -> int:
    with platform.session(write=True) as s, s.begin():
        return wf.start(s, actor, key, record_id).id


def my_tasks(platform, actor, **kw):
    with platform.session() as s:
        return inbox(platform, s, actor, **kw)


def complete(platform, wf, actor, task_id, action, comment=None, fields=None):
    with platform.session(write=True) as s, s.begin():
        return wf.complete(s, actor, task_id, action, comment, fields)


def the_task(platform, actor):
    tasks = my_tasks(platform, actor)
    assert len(tasks) == 1, tasks
    return tasks[0]


def instance(platform, inst_id) -> Instance:
    with platform.session() as s:
        return s.get(Instance, inst_id)


def new_project(platform, admin, users) -> int:
    return create(
        platform,
        admin,
        "projects",
        {
            "name": "Plant audit",
            "consultant": users["consultant"].user_id,
            "group_leader": users["leader"].user_id,
        },
    )


def test_consulting_project_runs_every_step_and_rejection_goes_back_with_its_comment(
    platform, wf, admin, users
):
    pid = new_project(platform, admin, users)
    iid = start(platform, wf, admin, "consulting_project", pid)
    t = the_task(platform, users["consultant"])
    assert (t["step"], t["table"], t["record_id"]) == ("onsite_report", "projects", pid)
    # the report is required to submit
    with pytest.raises(ValidationError) as exc:
        complete(platform, wf, users["consultant"], t["id"], "submit")
    assert exc.value.problems[0].field == "report"
    complete(platform, wf, users["consultant"], t["id"], "submit", fields={"report": "Findings"})
    t = the_task(platform, users["leader"])
    assert t["step"] == "group_review"
    # a rejection needs its comment, then goes back to the consultant with it
    with pytest.raises(ValidationError):
        complete(platform, wf, users["leader"], t["id"], "reject")
    complete(platform, wf, users["leader"], t["id"], "reject", "Add the photos")
    t = the_task(platform, users["consultant"])
    assert t["step"] == "onsite_report"
    with platform.session() as s:
        assert [
            n
            for (n,) in s.execute(
                sa.text("SELECT body FROM cb_notifications WHERE kind = 'returned'")
            )
        ][0].endswith("Comment: Add the photos")
    complete(platform, wf, users["consultant"], t["id"], "submit", fields={"report": "With photos"})
    for who, step, action in [
        ("leader", "group_review", "approve"),
        ("reviewer", "company_review", "approve"),
        ("process", "process_review", "approve"),
    ]:
        t = the_task(platform, users[who])
        assert t["step"] == step
        complete(platform, wf, users[who], t["id"], action)
    t = the_task(platform, users["director"])
    assert t["step"] == "scoring"
    # the guard: a low score cannot be released
    with pytest.raises(Forbidden, match="under 60"):
        complete(platform, wf, users["director"], t["id"], "approve", fields={"score": 40})
    complete(platform, wf, users["director"], t["id"], "approve", fields={"score": 85})
    t = the_task(platform, users["print"])
    complete(platform, wf, users["print"], t["id"], "printed")
    inst = instance(platform, iid)
    assert inst.status == "done" and inst.step is None
    with platform.session() as s:
        history = wf.history(s, iid)
    steps = [(e["step"], e["action"], e["to_step"]) for e in history]
    assert steps == [
        (None, "start", None),
        ("onsite_report", "submit", "group_review"),
        ("group_review", "reject", "onsite_report"),
        ("onsite_report", "submit", "group_review"),
        ("group_review", "approve", "company_review"),
        ("company_review", "approve", "process_review"),
        ("process_review", "approve", "scoring"),
        ("scoring", "approve", "printing"),
        ("printing", "printed", "done"),
    ]
    assert history[2]["comment"] == "Add the photos"
    assert history[1]["changes"] == {"report": [None, "Findings"]}
    assert history[7]["changes"] == {"score": [None, 85]}
    assert history[2]["text"] == "rejected by leader"


def test_one_instance_per_record_and_workflow(platform, wf, admin, users):
    pid = new_project(platform, admin, users)
    start(platform, wf, admin, "consulting_project", pid)
    with pytest.raises(ConflictError, match="already running"):
        start(platform, wf, admin, "consulting_project", pid)


def test_completion_errors_change_nothing(platform, wf, admin, users):
    pid = new_project(platform, admin, users)
    start(platform, wf, admin, "consulting_project", pid)
    t = the_task(platform, users["consultant"])
    with pytest.raises(Forbidden, match="someone else"):
        complete(platform, wf, users["leader"], t["id"], "submit")
    with pytest.raises(BadRequest, match="no action"):
        complete(platform, wf, users["consultant"], t["id"], "approve")
    with pytest.raises(ValidationError, match="cannot be changed"):
        complete(platform, wf, users["consultant"], t["id"], "submit", fields={"score": 3})
    complete(platform, wf, users["consultant"], t["id"], "submit", fields={"report": "R"})
    with pytest.raises(ConflictError, match="already completed"):
        complete(platform, wf, users["consultant"], t["id"], "submit")
    lead = the_task(platform, users["leader"])
    complete(platform, wf, users["leader"], lead["id"], "reject", "no")
    # the consultant's old task belongs to a round that moved on
    with pytest.raises(ConflictError):
        complete(platform, wf, users["consultant"], t["id"], "submit")
    with platform.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event)) == 3  # start, submit, reject


def test_fields_a_step_does_not_allow_are_locked_in_the_records_service(platform, wf, admin, users):
    pid = new_project(platform, admin, users)
    start(platform, wf, admin, "consulting_project", pid)
    # score belongs to the scoring step: nobody writes it now, not even an admin
    with pytest.raises(LockedError, match="score"):
        with platform.session(write=True) as s, s.begin():
            platform.records(s, admin).update("projects", pid, {"score": 99})
    # report is editable now, but only by the step's assignee
    with pytest.raises(LockedError, match="assignees"):
        with platform.session(write=True) as s, s.begin():
            platform.records(s, admin).update("projects", pid, {"report": "x"})
    with platform.session(write=True) as s, s.begin():
        platform.records(s, admin).update("projects", pid, {"note": "free field"})
        platform.records(s, users["consultant"]).update("projects", pid, {"report": "draft"})


def test_quote_discount_routing_by_threshold(platform, wf, users):
    seller = users["seller"]
    small = create(
        platform,
        seller,
        "quotes",
        {"title": "S", "owner": seller.user_id, "discount": "0.05", "reason": "loyal"},
    )
    big = create(
        platform,
        seller,
        "quotes",
        {"title": "B", "owner": seller.user_id, "discount": "0.15", "reason": "volume"},
    )
    tasks = {t["record_id"]: t for t in my_tasks(platform, seller)}
    assert set(tasks) == {small, big}  # started when the discount became positive
    complete(platform, wf, seller, tasks[small]["id"], "submit")
    complete(platform, wf, seller, tasks[big]["id"], "submit")
    with platform.session() as s:
        status = dict(s.execute(sa.select(Instance.record_id, Instance.status)).all())
    assert status[small] == "done" and status[big] == "running"
    t = the_task(platform, users["manager"])
    assert t["record_id"] == big and t["step"] == "manager"
    complete(platform, wf, users["manager"], t["id"], "approve")
    with platform.session() as s:
        assert s.scalar(sa.select(Instance.status).where(Instance.record_id == big)) == "done"


def committee_quote(platform, wf, users, discount="0.3") -> int:
    seller = users["seller"]
    qid = create(
        platform,
        seller,
        "quotes",
        {"title": "Q", "owner": seller.user_id, "discount": discount, "reason": "strategic"},
    )
    complete(platform, wf, seller, the_task(platform, seller)["id"], "submit")
    complete(platform, wf, users["manager"], the_task(platform, users["manager"])["id"], "approve")
    return qid


def test_two_of_three_committee_and_no_self_approval(platform, wf, users):
    qid = committee_quote(platform, wf, users)
    seller_task = the_task(platform, users["seller"])  # the seller sits on the committee
    assert seller_task["step"] == "committee"
    with pytest.raises(Forbidden, match="started this workflow"):
        complete(platform, wf, users["seller"], seller_task["id"], "approve")
    complete(platform, wf, users["c1"], the_task(platform, users["c1"])["id"], "approve")
    with platform.session() as s:
        assert s.scalar(sa.select(Instance.status).where(Instance.record_id == qid)) == "running"
    complete(platform, wf, users["c2"], the_task(platform, users["c2"])["id"], "approve")
    with platform.session() as s:
        assert s.scalar(sa.select(Instance.status).where(Instance.record_id == qid)) == "done"
        # the third member's task is closed as skipped
        assert (
            s.scalar(
                sa.select(Task.status).where(
                    Task.assignee_id == users["seller"].user_id, Task.step == "committee"
                )
            )
            == "skipped"
        )
    assert my_tasks(platform, users["seller"]) == []


def test_two_of_three_rejected_once_two_approvals_cannot_be_reached(platform, wf, users):
    qid = committee_quote(platform, wf, users)
    complete(platform, wf, users["c1"], the_task(platform, users["c1"])["id"], "reject", "too much")
    with platform.session() as s:
        assert s.scalar(sa.select(Instance.status).where(Instance.record_id == qid)) == "running"
    complete(platform, wf, users["c2"], the_task(platform, users["c2"])["id"], "reject", "no")
    with platform.session() as s:
        assert s.scalar(sa.select(Instance.status).where(Instance.record_id == qid)) == "rejected"


PARALLEL = """
workflows:
  - key: board
    table: projects
    steps:
      - key: vote
        role: pricing_committee
        {mode}
        actions:
          - {{key: approve, to: done}}
          - {{key: reject, to: rejected}}
"""


@pytest.mark.parametrize(
    ("mode", "votes", "outcome"),
    [
        ("approval: all", ["approve", "approve"], "running"),
        ("approval: all", ["approve", "approve", "approve"], "done"),
        ("approval: all", ["approve", "reject"], "rejected"),
        ("approval: any", ["approve"], "done"),
        ("approval: any", ["reject", "reject"], "running"),
        ("approval: any", ["reject", "reject", "reject"], "rejected"),
        ("quorum: 2", ["approve", "reject"], "running"),
        ("quorum: 2", ["approve", "reject", "approve"], "done"),
    ],
)
def test_parallel_approval(platform, wf, admin, users, mode, votes, outcome):
    deploy_text(platform, wf, PARALLEL.format(mode=mode))
    pid = new_project(platform, admin, users)
    iid = start(platform, wf, admin, "board", pid)
    for who, vote in zip(["c1", "c2", "seller"], votes, strict=False):
        complete(platform, wf, users[who], the_task(platform, users[who])["id"], vote)
    assert instance(platform, iid).status == outcome


def deploy_text(platform, wf, text, mappings=None):
    loaded = load_workflows_text(text)
    with platform.session(write=True) as s, s.begin():
        compiled = validate_workflows(loaded.workflows, platform.schema(s), None, loaded.lines)
        return wf.deploy(s, compiled, mappings)


def test_delegation_history_says_by_whom_for_whom(platform, wf, admin, users, clock):
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
    with platform.session(write=True) as s, s.begin():
        wf.delegate(
            s, leader, boss.user_id, clock.now + timedelta(days=1), clock.now + timedelta(days=8)
        )
    task = the_task(platform, leader)
    assert my_tasks(platform, boss) == []  # not yet: the delegation starts tomorrow
    with pytest.raises(Forbidden):
        complete(platform, wf, boss, task["id"], "approve")
    clock.advance(days=2)
    delegated = the_task(platform, boss)
    assert delegated["id"] == task["id"] and delegated["on_behalf_of"] == leader.user_id
    complete(platform, wf, boss, task["id"], "approve")
    with platform.session() as s:
        last = wf.history(s, iid)[-1]
    assert last["text"] == "approved by boss for leader"
    assert (last["actor_id"], last["on_behalf_of"]) == (boss.user_id, leader.user_id)
    clock.advance(days=10)  # over: the boss may no longer act for the leader


def test_definition_change_running_instances_keep_their_version_or_move_by_mapping(
    platform, wf, admin, users
):
    two_steps = """
workflows:
  - key: simple
    table: projects
    steps:
      - key: draft
        assignees: consultant
        actions: [{key: submit, to: check}]
      - key: check
        assignees: group_leader
        actions: [{key: approve, to: done}]
"""
    renamed = two_steps.replace("check", "review")
    deploy_text(platform, wf, two_steps)
    a = start(platform, wf, admin, "simple", new_project(platform, admin, users))
    b = start(platform, wf, admin, "simple", new_project(platform, admin, users))
    for t in my_tasks(platform, users["consultant"]):
        complete(platform, wf, users["consultant"], t["id"], "submit")
    # a new version; running instances keep theirs
    with platform.session() as s:
        loaded = load_workflows_text(renamed)
        compiled = validate_workflows(loaded.workflows, platform.schema(s), None, loaded.lines)
        plan = plan_workflows(s, compiled)
    assert plan[0].describe() == (
        "workflow `simple`: new version; 2 running instance(s) keep their version (check: 2)"
    )
    deploy_text(platform, wf, renamed)
    assert {instance(platform, i).step for i in (a, b)} == {"check"}
    t = my_tasks(platform, users["leader"])[0]
    complete(platform, wf, users["leader"], t["id"], "approve")
    # a mapping must name every running step that the new version lacks
    third = renamed.replace("approve, to: done", "approve, to: rejected")
    with pytest.raises(ValidationError, match="need a mapping"):
        deploy_text(platform, wf, third, {"simple": {}})
    deploy_text(platform, wf, third, {"simple": {"check": "review"}})
    remaining = [i for i in (a, b) if instance(platform, i).status == "running"]
    assert len(remaining) == 1 and instance(platform, remaining[0]).step == "review"
    t = the_task(platform, users["leader"])
    assert t["step"] == "review"
    complete(platform, wf, users["leader"], t["id"], "approve")
    assert instance(platform, remaining[0]).status == "rejected"  # the new version's route


def test_validation_reports_every_mistake_with_file_line_and_key(platform):
    from cubebase.schema_defs.errors import AppFileError

    text = """workflows:
  - key: bad
    table: projects
    steps:
      - key: one
        assignees: name
        editable: [nope]
        deadline: soon
        reminder: 1d
        actions:
          - {key: go, to: nowhere}
          - {key: ok, to: done, guard: 'score +'}
      - key: two
        role: ghost
        quorum: 0
        actions: []
"""
    loaded = load_workflows_text(text, "wf.yaml")
    with platform.session() as s, pytest.raises(AppFileError) as exc:
        validate_workflows(loaded.workflows, platform.schema(s), {"admin"}, loaded.lines)
    found = {(p.line, p.path) for p in exc.value.problems}
    messages = " | ".join(p.message for p in exc.value.problems)
    assert (6, "workflows[0].steps[0].assignees") in found, messages
    assert (7, "workflows[0].steps[0].editable") in found, messages
    assert (8, "workflows[0].steps[0].deadline") in found, messages
    assert (11, "workflows[0].steps[0].actions[0].to") in found, messages
    assert (12, "workflows[0].steps[0].actions[1].guard") in found, messages
    assert (14, "workflows[0].steps[1].role") in found, messages
    assert (15, "workflows[0].steps[1].quorum") in found, messages
    assert (16, "workflows[0].steps[1].actions") in found, messages
    assert str(exc.value).startswith("8 problems")
