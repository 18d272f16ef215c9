"""What a scheduled run costs per record, and the behaviour its savings must keep: the
sweep's ids in one SELECT, the record read once before its UPDATE and once after, the
automations of record events read once per schema snapshot (not per record), and a
change of automations seen at once, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.schema_defs.automations import load_automations_text, validate_automations
from cubebase.workflows.automations import engine as automation_engine
from cubebase.workflows.automations import install

from .automation_fixtures import build_automation_schema, create, deploy, notifications, rows
from .conftest import Clock
from .test_automations_schedule import EXPIRE as SCHEDULED_EXPIRE
from .test_automations_schedule import at, subscriptions

pytestmark = pytest.mark.schema.with_args(build_automation_schema)

# the first action reads nothing of the record (the update reads it itself); the
# notification shows the record as the update left it
EXPIRE = SCHEDULED_EXPIRE.replace("""& name'""", """& name & " " & status'""")
# the first action reads the record: it is read before the actions, as always
EXPIRE_READING = EXPIRE.replace(
    """'"not renewed"'""", """'IF(amount > 1000, "active", "not renewed")'"""
)
assert EXPIRE != SCHEDULED_EXPIRE and EXPIRE_READING != EXPIRE

# record events on the same table, which every update of the sweep triggers
BIG_RENEWAL = """
  - key: big_renewal
    table: subscriptions
    on: update
    when: 'amount > 1000000'
    actions:
      - update: {name: '"big"'}
"""
ON_UPDATE = "\nautomations:" + BIG_RENEWAL


def ended(platform, n: int) -> list[int]:
    return subscriptions(platform, n, ended=n)


class Statements:
    """Every statement sent to the database while counting."""

    def __init__(self, platform):
        self.engine = platform.engine
        self.sent: list[str] = []

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.sent.append(statement)

    def __enter__(self) -> Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)

    def count(self, test=lambda s: True) -> int:
        return sum(1 for s in self.sent if test(s))


def _table_name(platform, key: str) -> str:
    with platform.session() as s:
        return platform.schema(s).table(key).sql.name


def _run(platform, engine, clock, n: int) -> Statements:
    """``n`` more due records, then the run of the next due time, counted."""
    ended(platform, n)
    with Statements(platform) as sent:
        (result,) = engine.run_due(clock.advance(days=1))
    assert (result.done, result.failed, result.skipped) == (n, 0, 0)
    return sent


@pytest.mark.parametrize("automation", [EXPIRE, EXPIRE.rstrip("\n") + BIG_RENEWAL])
def test_a_scheduled_run_costs_a_few_statements_per_record(platform, automation):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, automation, clock)
    table = _table_name(platform, "subscriptions")
    _run(platform, engine, clock, 1)  # warm: the schema snapshot, checked formulas
    few = _run(platform, engine, clock, 2)
    many = _run(platform, engine, clock, 5)

    def per_record(test=lambda s: True) -> float:
        return (many.count(test) - few.count(test)) / 3

    # the run row (savepoint, insert, release), the schema version, the savepoint of
    # the actions, the record read before its UPDATE (by the update), the update's
    # savepoint, UPDATE, history, release, the record read after it, the role's
    # holders, the notification (savepoint, insert, release), the release of the
    # actions: 16 (SQLite: BEGIN too); before, 20 and 21 (the record read twice before
    # and after, the automations of record events, the role holders' blank ids)
    budget = 17 if platform.engine.dialect.name == "sqlite" else 16
    assert per_record() <= budget, many.sent[-30:]
    # the record: once before the UPDATE (the update's own read), once after it
    reads = per_record(lambda s: s.lstrip().upper().startswith("SELECT") and table in s)
    assert reads == 2
    assert per_record(lambda s: s.lstrip().upper().startswith("UPDATE " + table.upper())) == 1
    # the automations of record events: not read again for each record
    assert per_record(lambda s: "cb_automations" in s) == 0
    # the sweep's ids: one SELECT however many records are due, without paging terms
    (sweep,) = [s for s in many.sent if "ORDER BY" in s.upper() and table in s]
    assert ".id IS NOT NULL" not in sweep and "LIMIT" not in sweep.upper()


@pytest.mark.parametrize("automation", [EXPIRE, EXPIRE_READING])
def test_later_actions_see_the_record_as_the_update_left_it(platform, automation):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, automation, clock)
    ended(platform, 2)
    (result,) = engine.run_due(clock.advance(days=1))
    assert (result.done, result.failed) == (2, 0)
    assert [r["status"] for r in rows(platform, "subscriptions")] == ["not renewed"] * 2
    subjects = sorted(subject for _, subject, _ in notifications(platform))
    assert subjects == ["Not renewed: s0 not renewed", "Not renewed: s1 not renewed"]


@pytest.mark.parametrize("automation", [EXPIRE, EXPIRE_READING])
def test_a_record_gone_before_its_turn_fails_alone_with_the_same_message(
    platform, monkeypatch, automation
):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, automation, clock)
    first, gone, last = ended(platform, 3)
    real = automation_engine.AutomationEngine._matching

    def then_deleted(system, table, when):
        ids = real(system, table, when)
        with platform.session(write=True) as s, s.begin():
            platform.records(s, Actor.system_actor()).delete("subscriptions", gone)
        return ids

    monkeypatch.setattr(automation_engine.AutomationEngine, "_matching", staticmethod(then_deleted))
    (result,) = engine.run_due(clock.advance(days=1))
    assert (result.done, result.failed) == (2, 1)
    # whether the record was read first or by the update: the read's own refusal
    assert result.messages == [f"record {gone}: No subscription with id {gone}"]
    status = {r["id"]: r["status"] for r in rows(platform, "subscriptions")}
    assert (status[first], status[last]) == ("not renewed", "not renewed")


def test_an_automation_saved_later_runs_on_the_next_write(platform):
    """The automations of record events are kept per schema snapshot: saving one
    advances the schema version, so the next write sees it."""
    sid = create(platform, "subscriptions", {"name": "a", "amount": 5})
    create(platform, "subscriptions", {"name": "b", "amount": 5})  # the snapshot's list
    deploy(platform, ON_UPDATE)
    with platform.session(write=True) as s, s.begin():
        platform.records(s, Actor.system_actor()).update(
            "subscriptions", sid, {"amount": 2_000_000}
        )
    assert [r["name"] for r in rows(platform, "subscriptions")] == ["big", "b"]


def test_an_automation_saved_in_the_same_transaction_runs_on_its_writes(platform):
    sid = create(platform, "subscriptions", {"name": "a", "amount": 5})
    engine = install(platform)
    specs, lines = load_automations_text(ON_UPDATE)
    with platform.session(write=True) as s, s.begin():
        system = platform.records(s, Actor.system_actor())
        system.update("subscriptions", sid, {"amount": 6})  # reads the list: none
        schema = platform.schema(s)
        compiled = validate_automations(specs, schema, {"admin_office", "sales"}, lines)
        engine.save(s, schema, compiled)
        platform.records(s, Actor.system_actor()).update(
            "subscriptions", sid, {"amount": 2_000_000}
        )
    assert [r["name"] for r in rows(platform, "subscriptions")] == ["big"]


class _Undo(Exception):
    pass


def test_an_automation_saved_then_rolled_back_never_runs(platform):
    sid = create(platform, "subscriptions", {"name": "a", "amount": 5})
    engine = install(platform)
    specs, lines = load_automations_text(ON_UPDATE)
    with pytest.raises(_Undo), platform.session(write=True) as s, s.begin():
        schema = platform.schema(s)
        compiled = validate_automations(specs, schema, {"admin_office", "sales"}, lines)
        engine.save(s, schema, compiled)
        platform.records(s, Actor.system_actor()).update("subscriptions", sid, {"amount": 6})
        raise _Undo
    with platform.session(write=True) as s, s.begin():
        platform.records(s, Actor.system_actor()).update(
            "subscriptions", sid, {"amount": 2_000_000}
        )
    assert [r["name"] for r in rows(platform, "subscriptions")] == ["a"]
