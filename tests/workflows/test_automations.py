"""Record-event automations on both databases: every action, becomes-true semantics,
no double runs, a failing action undoes the write, the depth limit, bulk creates."""

from __future__ import annotations

from datetime import date

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.errors import ConflictError, LockedError, ValidationError

from .automation_fixtures import (
    build_automation_schema,
    create,
    deploy,
    notifications,
    rows,
    runs,
    update,
    user_id,
)

pytestmark = pytest.mark.schema.with_args(build_automation_schema)

CREDIT = """
automations:
  - key: credit_won_deals
    label: Credit a won deal to its sellers
    table: opportunities
    on: change
    when: 'stage = "won"'
    actions:
      - update: {closed_on: 'DATE(2026, 3, 14)'}
      - find_or_create: commission_statements
        as: statement
        match: {salesperson: owner, month: 'DATE(YEAR(closed_on), MONTH(closed_on), 1)'}
        values: {note: '"opened by " & name'}
      - create: commission_credits
        values: {opportunity: id, salesperson: owner, statement: statement, share: '100 - co_share'}
      - notify: {to: owner, subject: '"Deal won: " & name', body: 'statement.note'}
"""


def test_when_becomes_true_runs_every_action_once(platform):
    deploy(platform, CREDIT)
    ann = user_id(platform, "ann@example.com")
    rid = create(
        platform, "opportunities", {"name": "Acme", "stage": "open", "owner": ann, "co_share": 20}
    )
    assert rows(platform, "commission_credits") == []  # false on create: nothing
    update(platform, "opportunities", rid, {"stage": "won"})
    (opp,) = rows(platform, "opportunities")
    assert opp["closed_on"] == date(2026, 3, 14)
    (st,) = rows(platform, "commission_statements")
    assert st["salesperson"] == ann and st["month"] == date(2026, 3, 1)
    assert st["note"] == "opened by Acme"
    (credit,) = rows(platform, "commission_credits")
    assert credit["opportunity"] == rid and credit["statement"] == st["id"]
    assert credit["salesperson"] == ann and credit["share"] == 80
    assert notifications(platform) == [(ann, "Deal won: Acme", "opened by Acme")]
    # still won: it does not become true again, nothing more happens
    update(platform, "opportunities", rid, {"amount": 10})
    assert len(rows(platform, "commission_credits")) == 1
    # a second won deal of the same seller and month finds the statement
    rid2 = create(
        platform, "opportunities", {"name": "Beta", "stage": "won", "owner": ann, "co_share": 0}
    )
    assert len(rows(platform, "commission_statements")) == 1
    credits = rows(platform, "commission_credits")
    assert [c["opportunity"] for c in credits] == [rid, rid2]
    assert credits[1]["statement"] == st["id"] and credits[1]["share"] == 100
    # back to open, then won again: it becomes true again
    update(platform, "opportunities", rid, {"stage": "open"})
    update(platform, "opportunities", rid, {"stage": "won"})
    assert len(rows(platform, "commission_credits")) == 3
    assert [r[2] for r in runs(platform)] == ["done"] * 3


def test_events_create_update_delete(platform):
    deploy(
        platform,
        """
automations:
  - key: on_create
    table: subscriptions
    on: create
    actions: [{update: {status: '"active"'}}]
  - key: on_update
    table: subscriptions
    on: update
    when: 'amount > 100'
    actions: [{notify: {role: admin_office, subject: '"Big: " & name'}}]
  - key: on_delete
    table: subscriptions
    on: delete
    actions: [{notify: {role: admin_office, subject: '"Deleted: " & name'}}]
""",
    )
    office = user_id(platform, "office@example.com")
    rid = create(platform, "subscriptions", {"name": "S1", "amount": 500})
    assert rows(platform, "subscriptions")[0]["status"] == "active"
    assert notifications(platform) == []  # on: update does not run on create
    update(platform, "subscriptions", rid, {"amount": 50})
    update(platform, "subscriptions", rid, {"amount": 200})
    assert notifications(platform) == [(office, "Big: S1", "")]
    with platform.session(write=True) as s, s.begin():
        platform.records(s, Actor.system_actor()).delete("subscriptions", rid)
    assert notifications(platform)[-1] == (office, "Deleted: S1", "")


def test_a_refused_action_fails_the_write_naming_the_automation(platform, admin):
    deploy(
        platform,
        """
automations:
  - key: bad_credit
    label: Credit with a bad share
    table: opportunities
    on: create
    actions:
      - create: commission_statements
        values: {note: '"x"'}
      - update: {stage: '"no such stage"'}
""",
    )
    with pytest.raises(ValidationError) as exc:
        create(platform, "opportunities", {"name": "Acme"}, admin)
    assert "Automation `Credit with a bad share`" in exc.value.message
    assert rows(platform, "opportunities") == []
    assert rows(platform, "commission_statements") == []  # nothing half-applied
    assert runs(platform) == []


def test_automations_triggering_each_other_stop_at_the_depth_limit(platform):
    deploy(
        platform,
        """
automations:
  - key: count_touches
    table: opportunities
    on: update
    actions: [{update: {touches: 'IF(ISBLANK(touches), 1, touches + 1)'}}]
""",
    )
    rid = create(platform, "opportunities", {"name": "Loop"})
    with pytest.raises(ConflictError, match="more than 5 levels deep") as exc:
        update(platform, "opportunities", rid, {"amount": 1})
    assert "count_touches -> count_touches" in exc.value.message
    assert rows(platform, "opportunities")[0]["amount"] is None


def test_chained_automations_within_the_limit_run(platform):
    deploy(
        platform,
        """
automations:
  - key: won_sets_date
    table: opportunities
    on: update
    when: 'stage = "won"'
    actions: [{update: {closed_on: 'DATE(2026, 1, 2)'}}]
  - key: dated_counts
    table: opportunities
    on: update
    when: 'NOT ISBLANK(closed_on)'
    actions: [{update: {touches: '7'}}]
""",
    )
    rid = create(platform, "opportunities", {"name": "Chain"})
    update(platform, "opportunities", rid, {"stage": "won"})
    (opp,) = rows(platform, "opportunities")
    assert opp["closed_on"] == date(2026, 1, 2) and opp["touches"] == 7


def test_bulk_create_runs_matching_rows_only(platform):
    deploy(
        platform,
        """
automations:
  - key: won_credit
    table: opportunities
    on: create
    when: 'stage = "won"'
    actions:
      - create: commission_credits
        values: {opportunity: id, share: '100'}
""",
    )
    with platform.session(write=True) as s, s.begin():
        rs = platform.records(s, Actor.system_actor())
        ids = rs.bulk_create(
            "opportunities",
            [{"name": f"o{i}", "stage": "won" if i % 10 == 0 else "open"} for i in range(50)],
        )
    credits = rows(platform, "commission_credits")
    assert [c["opportunity"] for c in credits] == ids[::10]


def test_start_workflow_action_and_disabled_automations(platform):
    from cubebase.workflows.definitions import load_workflows_text, validate_workflows
    from cubebase.workflows.engine import install as install_workflows
    from cubebase.workflows.models import Instance

    wf = install_workflows(platform)
    loaded = load_workflows_text(
        """
workflows:
  - key: review
    table: opportunities
    steps:
      - key: check
        assignees: owner
        actions: [{key: ok, to: done}]
"""
    )
    with platform.session(write=True) as s, s.begin():
        wf.deploy(s, validate_workflows(loaded.workflows, platform.schema(s), None, loaded.lines))
    deploy(
        platform,
        """
automations:
  - key: review_won
    table: opportunities
    on: change
    when: 'stage = "won"'
    actions: [{start_workflow: review}]
  - key: never
    table: opportunities
    on: create
    enabled: false
    actions: [{update: {touches: '1'}}]
""",
    )
    ann = user_id(platform, "ann@example.com")
    rid = create(platform, "opportunities", {"name": "A", "stage": "won", "owner": ann})
    with platform.session() as s:
        inst = s.query(Instance).all()
    assert [(i.record_id, i.status) for i in inst] == [(rid, "running")]
    assert rows(platform, "opportunities")[0]["touches"] is None


def test_renamed_tables_and_fields_keep_automations_working(platform):
    deploy(
        platform,
        """
automations:
  - key: credit
    table: opportunities
    on: create
    when: 'co_share > 0'
    actions:
      - create: commission_credits
        values: {opportunity: id, share: '100 - co_share'}
""",
    )
    with platform.schema_editor() as ed:
        ed.update_field("opportunities", "co_share", key="partner_share")
        ed.update_field("commission_credits", "share", key="percent")
        ed.update_table("commission_credits", new_key="credits")
    rid = create(platform, "opportunities", {"name": "R", "partner_share": 30})
    (credit,) = rows(platform, "credits")
    assert credit["opportunity"] == rid and credit["percent"] == 70


def test_bulk_create_costs_no_query_per_row_when_no_automation_matches(platform):
    import sqlalchemy as sa

    deploy(
        platform,
        """
automations:
  - key: never_matches
    table: opportunities
    on: create
    when: 'stage = "lost" AND amount > 1000000'
    actions: [{update: {touches: '1'}}]
""",
    )

    def statements(n: int) -> int:
        count = 0

        def counted(*args):
            nonlocal count
            count += 1

        sa.event.listen(platform.engine, "before_cursor_execute", counted)
        try:
            with platform.session(write=True) as s, s.begin():
                platform.records(s, Actor.system_actor()).bulk_create(
                    "opportunities", [{"name": f"o{i}", "stage": "open"} for i in range(n)]
                )
        finally:
            sa.event.remove(platform.engine, "before_cursor_execute", counted)
        return count

    statements(5), statements(5)  # warm caches
    few = statements(30)
    many = statements(300)
    assert many <= few  # the same statements (PostgreSQL batches a big insert its own way)
    assert len(rows(platform, "opportunities")) == 340


def test_a_match_value_that_does_not_fit_its_field_is_a_clear_refusal(platform):
    deploy(
        platform,
        """
automations:
  - key: statement_by_name
    label: Statement by name
    table: opportunities
    on: create
    actions:
      - find_or_create: commission_statements
        match: {month: 'DATE(2026, 2, 30)', salesperson: owner}
      - find_or_create: subscriptions
        match: {status: name}
""",
    )
    with pytest.raises(ValidationError) as exc:
        create(platform, "opportunities", {"name": "not a status"})
    assert exc.value.message.startswith("Automation `Statement by name`: status:")
    assert rows(platform, "opportunities") == []


def test_over_the_api_a_refusal_is_a_4xx_naming_the_automation(platform):
    from cubebase.platform.users import create_token
    from cubebase.web import create_app

    deploy(
        platform,
        """
automations:
  - key: won_needs_a_valid_stage
    label: Won deals
    table: opportunities
    on: update
    when: 'stage = "won"'
    actions: [{update: {stage: '"archived"'}}]
  - key: count_touches
    table: opportunities
    on: update
    when: 'amount > 0'
    actions: [{update: {touches: '1'}}]
  - key: touch_again
    table: opportunities
    on: update
    actions: [{update: {touches: 'touches + 1'}}]
""",
    )
    app = create_app(platform.config, platform)  # the API installs the engine's hooks
    with platform.session(write=True) as s, s.begin():
        token = create_token(platform, s, "admin@example.com")
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    r = c.post("/api/v1/tables/opportunities/records", json={"fields": {"name": "A"}})
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    url = f"/api/v1/tables/opportunities/records/{rid}"
    r = c.patch(url, json={"fields": {"stage": "won"}})
    assert r.status_code == 422
    assert r.get_json()["error"]["message"].startswith("Automation `Won deals`: stage:")
    r = c.patch(url, json={"fields": {"amount": 5}})
    assert r.status_code == 409 and "levels deep" in r.get_json()["error"]["message"]
    (opp,) = rows(platform, "opportunities")
    assert opp["stage"] is None and opp["amount"] is None and opp["touches"] is None


def test_deleting_a_field_it_uses_is_refused_naming_it_until_it_changes(platform):
    automation = """
automations:
  - key: big_deals
    label: Big deals
    table: opportunities
    on: create
    when: '{condition}'
    actions: [{{update: {{touches: '1'}}}}]
"""
    deploy(platform, automation.format(condition="co_share > 50"))
    for key in ("co_share", "touches"):  # read by `when`; set by an action
        with pytest.raises(ConflictError) as exc, platform.schema_editor() as ed:
            ed.delete_field("opportunities", key, confirm=True)
        assert exc.value.message == (
            f"Field `opportunities.{key}` cannot be deleted: it is used by the automation "
            "`Big deals`. Change those first."
        )
    create(platform, "opportunities", {"name": "A", "co_share": 60})  # writes go on
    assert rows(platform, "opportunities")[0]["touches"] == 1
    deploy(platform, automation.format(condition="amount > 50"))  # changed: it may go
    with platform.schema_editor() as ed:
        ed.delete_field("opportunities", "co_share", confirm=True)
    create(platform, "opportunities", {"name": "B", "amount": 60})
    assert [r["touches"] for r in rows(platform, "opportunities")] == [1, 1]


def test_the_lock_rule_holds_for_automations_too(platform):
    with platform.schema_editor() as ed:
        ed.set_lock("opportunities", 'stage = "lost"')
    deploy(
        platform,
        """
automations:
  - key: date_lost_deals
    label: Date lost deals
    table: opportunities
    on: update
    when: 'stage = "lost"'
    actions: [{update: {closed_on: 'DATE(2026, 1, 1)'}}]
""",
    )
    rid = create(platform, "opportunities", {"name": "L", "stage": "open"})
    with pytest.raises(LockedError) as exc:
        update(platform, "opportunities", rid, {"stage": "lost"})
    assert exc.value.message.startswith("Automation `Date lost deals`: This ")
    assert rows(platform, "opportunities")[0]["stage"] == "open"
