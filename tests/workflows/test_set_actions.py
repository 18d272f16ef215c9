"""Workflow actions that set fields (``set: {field: formula}``): applied by the system
through the records service when the action decides the step, recorded in the
workflow's and the record's history; a refusal fails the action and writes nothing;
mistakes in the file are reported with file, line and key when it is loaded."""

from __future__ import annotations

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.errors import LockedError, ValidationError
from cubebase.schema_defs.errors import AppFileError
from cubebase.workflows.definitions import load_workflows_text, to_spec, validate_workflows
from cubebase.workflows.engine import install
from cubebase.workflows.models import Instance

from .conftest import build_workflow_schema
from .test_engine import complete, create, my_tasks, start

pytestmark = pytest.mark.schema.with_args(build_workflow_schema)

# The committee (c1, c2: read-only on quotes) hands a quote to its owner's manager.
HANDOVER = """workflows:
  - key: handover
    table: quotes
    start: {mode: manual}
    steps:
      - key: decide
        role: pricing_committee
        actions:
          - key: approve
            set:
              owner: owner.manager
              reason: '"from " & TEXT(ID(owner)) & " to " & TEXT(ID(owner.manager))'
              discount: BLANK()
            to: done
          - {key: reject, to: rejected, set: {reason: '"refused"'}}
"""


@pytest.fixture
def handover(platform, clock):
    engine = install(platform, clock)
    loaded = load_workflows_text(HANDOVER, "handover.yaml")
    with platform.session(write=True) as s, s.begin():
        compiled = validate_workflows(loaded.workflows, platform.schema(s), None, loaded.lines)
        engine.deploy(s, compiled)
    return engine


def new_quote(platform, admin, users, **values) -> int:
    values = {"title": "Q1", "owner": users["seller"].user_id, **values}
    return create(platform, admin, "quotes", values)


def task_of(platform, actor, record_id):
    return next(t for t in my_tasks(platform, actor) if t["record_id"] == record_id)


def quote(platform, qid):
    with platform.session() as s:
        return platform.records(s, Actor.system_actor()).get("quotes", qid).values


def test_approve_sets_the_fields_as_the_system(platform, handover, admin, users):
    seller, manager, c1 = users["seller"], users["manager"], users["c1"]
    qid = new_quote(platform, admin, users, discount="0.05")
    inst_id = start(platform, handover, admin, "handover", qid)
    # c1 may only read quotes, yet the action changes the owner: the system writes it
    complete(platform, handover, c1, task_of(platform, c1, qid)["id"], "approve")
    values = quote(platform, qid)
    assert values["owner"] == manager.user_id
    # every formula read the record as it was: the old owner, the old owner's manager
    assert values["reason"] == f"from {seller.user_id} to {manager.user_id}"
    assert values["discount"] is None
    with platform.session() as s:
        assert s.get(Instance, inst_id).status == "done"
        event = handover.history(s, inst_id)[-1]
        history = platform.records(s, Actor.system_actor()).history("quotes", qid)
    assert event["action"] == "approve" and event["actor_id"] == c1.user_id
    assert event["text"].startswith("approved by c1")
    assert event["changes"]["owner"] == [seller.user_id, manager.user_id]
    assert event["changes"]["reason"] == [None, values["reason"]]
    assert event["changes"]["discount"][1] is None
    last = history[-1]
    assert {c["field"] for c in last["changes"]} == {"owner", "reason", "discount"}


def test_the_fields_it_sets_are_locked_while_it_runs(platform, handover, admin, users):
    seller = users["seller"]
    qid = new_quote(platform, admin, users)
    start(platform, handover, admin, "handover", qid)
    for who, values in ((seller, {"reason": "mine"}), (admin, {"owner": admin.user_id})):
        with pytest.raises(LockedError), platform.session(write=True) as s, s.begin():
            platform.records(s, who).update("quotes", qid, values)
    with platform.session(write=True) as s, s.begin():  # a field it does not set is free
        platform.records(s, seller).update("quotes", qid, {"title": "Q1b"})


def test_set_runs_once_when_the_action_decides_the_step(platform, handover, admin, users):
    qid = new_quote(platform, admin, users)
    inst_id = start(platform, handover, admin, "handover", qid)
    # three committee members, any one approval decides: it is rejected only when all
    # three have refused, and only that deciding refusal sets the reason
    for who in ("c2", "c1"):
        complete(platform, handover, users[who], task_of(platform, users[who], qid)["id"], "reject")
        assert quote(platform, qid)["reason"] is None
    seller = users["seller"]
    complete(platform, handover, seller, task_of(platform, seller, qid)["id"], "reject")
    assert quote(platform, qid)["reason"] == "refused"
    assert quote(platform, qid)["owner"] == users["seller"].user_id
    with platform.session() as s:
        assert s.get(Instance, inst_id).status == "rejected"


def test_a_refused_change_fails_the_action_and_writes_nothing(platform, handover, admin, users):
    c1 = users["c1"]
    with platform.schema_editor() as editor:
        editor.set_lock("quotes", 'title = "frozen"')
    frozen = new_quote(platform, admin, users, title="frozen")
    start(platform, handover, admin, "handover", frozen)
    task = task_of(platform, c1, frozen)
    with pytest.raises(LockedError) as exc:
        complete(platform, handover, c1, task["id"], "approve")
    assert "`Approve` could not update the record" in exc.value.message
    assert "closed" in exc.value.message
    assert quote(platform, frozen)["owner"] == users["seller"].user_id
    assert task_of(platform, c1, frozen)["id"] == task["id"]  # still open
    # a validation rule the new values break: the message says which and why
    with platform.schema_editor() as editor:
        editor.set_lock("quotes", None)
        editor.set_validations("quotes", [{"rule": "ISBLANK(reason)", "message": "no reasons"}])
    with pytest.raises(ValidationError) as exc:
        complete(platform, handover, c1, task["id"], "approve")
    assert "could not update the record" in exc.value.message
    assert "no reasons" in exc.value.message
    assert quote(platform, frozen)["reason"] is None
    assert task_of(platform, c1, frozen)["id"] == task["id"]


def test_set_mistakes_are_reported_with_file_line_and_key(platform):
    text = """workflows:
  - key: bad
    table: quotes
    start: {mode: manual}
    steps:
      - key: one
        assignees: owner
        actions:
          - key: go
            to: done
            set: {ownr: owner, discount: '"ten"', reason: 'title &', created_at: TODAY(),
                  owner: USER()}
"""
    loaded = load_workflows_text(text, "wf.yaml")
    with platform.session() as s, pytest.raises(AppFileError) as exc:
        validate_workflows(loaded.workflows, platform.schema(s), None, loaded.lines)
    found = {(p.line, p.path): p.message for p in exc.value.problems}
    at = "workflows[0].steps[0].actions[0].set"
    assert "no field `ownr` — did you mean `owner`?" in found[(11, f"{at}.ownr")], found
    assert "must give a Number, but it gives a Text" in found[(11, f"{at}.discount")], found
    assert "a value is missing after `&`" in found[(11, f"{at}.reason")], found
    assert "cannot be set" in found[(11, f"{at}.created_at")], found
    assert "runs as the system, where USER() is blank" in found[(11, f"{at}.owner")], found
    assert len(found) == 5


def test_set_survives_the_document_round_trip(platform, handover):
    loaded = load_workflows_text(HANDOVER, "handover.yaml")
    with platform.session() as s:
        schema = platform.schema(s)
        (compiled,) = validate_workflows(loaded.workflows, schema, None, loaded.lines)
        fs = schema.formula_schema()
        from cubebase import formula as F

        spec = to_spec(compiled.document, lambda stored: F.to_display(stored, fs, "quotes"))
        assert spec.steps[0].actions[0].set["owner"] == "owner.manager"
        (again,) = validate_workflows([spec], schema, None, {})
    assert again.document == compiled.document
