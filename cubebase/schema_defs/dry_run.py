"""Measuring a plan on the live data: before it runs, what each data-losing step would
lose (values that cannot convert, values and records deleted); in a dry run, after it
ran and before the rollback, the records failing new validation rules, the records
missing a newly required value, and the records each user would stop or start seeing.
Reads go through a records service pinned to the editor's schema (``records_in``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..platform.actor import Actor
from ..platform.schema import USERS, Schema, Table
from ..platform.schema_changes import SchemaEditor
from .plan_words import one_line

if TYPE_CHECKING:
    from .plan import Plan, Result


MAX_USERS_MEASURED = 500


def measure_losses(ed: SchemaEditor, plan: Plan) -> None:
    """Fill in what each measured step would lose, before anything runs."""
    for step in plan.steps:
        if step.measure is None:
            continue
        got = step.measure(ed)
        if step.kind == "change_type":
            step.loses = got.failed + got.changed
            step.loss = got.loss(step.field_key, "the new type")
            if step.loss:
                step.loss = step.loss.replace(" (confirm to go ahead)", "")
                examples = ", ".join(f"`{e['value']}` ({e['message']})" for e in got.examples[:3])
                if examples:
                    step.loss += f"; e.g. {examples}"
        elif step.kind == "delete_field" and got:
            step.loses = got
            step.loss = f"{got:,} value{'s' if got != 1 else ''} would be lost"
        elif step.kind == "delete_table" and got:
            step.loses = got
            step.loss = f"{got:,} record{'s' if got != 1 else ''} would be lost"


class _Pinned:
    """The platform as seen at one snapshot: a records service built on it reads this
    schema (inside the editor's transaction) instead of the process-wide cache."""

    def __init__(self, platform, schema: Schema):
        self._platform = platform
        self._schema = schema

    def schema(self, session) -> Schema:
        return self._schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._platform, name)


def records_in(ed: SchemaEditor, actor: Actor | None = None):
    from ..platform.records import RecordsService

    return RecordsService(
        ed.session, actor or Actor.system_actor(), _Pinned(ed.platform, ed.schema)
    )


class ReadWatch:
    """Which records each user can read, before the plan runs (dry run)."""

    def __init__(self, platform, ed: SchemaEditor, plan: Plan):
        self.tables = [
            s.table
            for s in plan.steps
            if s.kind == "set_permissions"
            and s.read_changed
            and plan.resolved.tables.get(s.table) is not None
        ]
        self.users: list[Actor] = []
        self.truncated = False
        self.before: dict[tuple[int, str], set[int]] = {}
        if not self.tables:
            return
        self.users, self.truncated = _users(platform, ed)
        live_keys = {k: plan.resolved.tables[k].key for k in self.tables}
        for actor in self.users:
            for key in self.tables:
                self.before[(actor.user_id, key)] = _readable(ed, actor, live_keys[key])

    def changes(self, ed: SchemaEditor) -> list[tuple[Actor, str, int, int]]:
        out = []
        for actor in self.users:
            for key in self.tables:
                after = _readable(ed, actor, key)
                before = self.before[(actor.user_id, key)]
                lost, gained = len(before - after), len(after - before)
                if lost or gained:
                    out.append((actor, key, lost, gained))
        return out


def _users(platform, ed: SchemaEditor) -> tuple[list[Actor], bool]:
    from ..platform.users import load_actor

    table = ed.schema.table(USERS)
    ids = ed.session.scalars(
        sa.select(table.sql.c.id)
        .where(table.sql.c.deleted_at.is_(None))
        .order_by(table.sql.c.id)
        .limit(MAX_USERS_MEASURED + 1)
    ).all()
    pinned = _Pinned(platform, ed.schema)
    actors = [load_actor(pinned, ed.session, uid) for uid in ids[:MAX_USERS_MEASURED]]
    return [a for a in actors if a is not None and not a.is_admin], len(ids) > MAX_USERS_MEASURED


def _readable(ed: SchemaEditor, actor: Actor, table_key: str) -> set[int]:
    service = records_in(ed, actor)
    table = service.schema.table(table_key)
    cond = service.access.condition(table, "read")
    t = table.sql
    stmt = sa.select(t.c.id).where(t.c.deleted_at.is_(None))
    if cond is not None:
        stmt = stmt.where(cond)
    return set(ed.session.scalars(stmt))


def measure_after(platform, ed: SchemaEditor, plan: Plan, result: Result, watch) -> None:
    """The dry run's report, read after the steps ran and before the rollback."""
    report = result.report
    counts = result.counts
    for step in plan.losses():
        report.append(f"{step.text}: {step.loss}")
    service = records_in(ed)
    for step in plan.steps:
        if step.kind == "set_validations":
            t = ed.schema.table(step.table)
            if plan.resolved.tables.get(step.table) is None:
                continue  # a new table has no records
            total = service.count(t.key)
            for v in step.new_rules:
                from ..platform.records import FormulaFilter

                passing = service.count(t.key, where=FormulaFilter(v.rule))
                failing = total - passing
                counts[("fail", t.key, v.rule)] = failing
                if failing:
                    report.append(
                        f"{failing:,} {_plural(t, failing)} would fail the new rule "
                        f"`{one_line(v.rule)}` ({v.message})"
                    )
        if step.now_required:
            key = step.field_key
            t = ed.schema.table(step.table)
            from ..platform.records import FormulaFilter

            blank = service.count(t.key, where=FormulaFilter(f"ISBLANK({key})"))
            counts[("blank", t.key, key)] = blank
            if blank:
                report.append(
                    f"{blank:,} {_plural(t, blank)} have no `{key}`, which becomes required "
                    "(they are kept; the next change to each will ask for it)"
                )
    if watch is not None:
        for actor, key, lost, gained in watch.changes(ed):
            t = ed.schema.table(key)
            who = actor.email or f"#{actor.user_id}"
            counts[("read", who, key)] = (lost, gained)
            if lost:
                report.append(f"user {who} would lose read access to {lost:,} {_plural(t, lost)}")
            if gained:
                report.append(
                    f"user {who} would gain read access to {gained:,} {_plural(t, gained)}"
                )
        if watch.truncated:
            report.append(f"read access was compared for the first {MAX_USERS_MEASURED} users only")


def _plural(t: Table, n: int) -> str:
    word = t.label.lower() if t.label else t.key.replace("_", " ")
    if n == 1 and word.endswith("s"):
        return word[:-1]
    return word
