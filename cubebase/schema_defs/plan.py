"""Diff an app against the live database, plan the changes, apply them in one transaction.

``make_plan`` (inside ``platform.schema_editor()``) checks the app (``validate``),
then lists the steps that turn the live schema into the app's, in an order that
always works: roles; renames; new tables; new plain fields, then links, then
formula fields (each after the formula fields it reads); type changes and changed
settings; defaults; table settings, views, validation, lock and permission rules;
field order; deletions (fields, then tables); starting records; workflows
(created, changed with a new version, adopted, deleted). Each step says
what it does in words and, when it loses data, how many values.

``apply_app`` runs the plan in the editor's single transaction: a data-losing step
is refused before anything runs unless confirmed, and a step that fails rolls
everything back (PostgreSQL and SQLite both run the DDL inside the transaction;
see docs/app-format.md). ``dry_run`` runs the same steps, measures the result on
the live data (records failing new rules, records each user would stop or start
seeing) and rolls back.

The sections of the plan are hooks in their own modules (see ``_Builder``); the
measuring is ``dry_run``, the words ``plan_words``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..platform.errors import CubebaseError
from ..platform.models import Role
from ..platform.schema_changes import DataLossError, SchemaEditor
from . import ir
from .automations_plan import plan_automations
from .dry_run import MAX_USERS_MEASURED, ReadWatch, measure_after, measure_losses, records_in
from .errors import AppFileError
from .export import default_label
from .indexes import plan_indexes
from .plan_fields import (
    plan_changed_fields,
    plan_defaults,
    plan_deletions,
    plan_new_fields,
    plan_order,
)
from .plan_rules import plan_rules
from .plan_seeds import plan_seeds
from .plan_tables import plan_table_settings, plan_users_fields
from .plan_usage import defer_deletions
from .plan_workflows import plan_app_workflows
from .reports import plan_reports
from .users_rules import plan_users_rules
from .validate import Resolved, resolve

# kept importable from here: the dry run's measuring moved to dry_run
__all__ = [
    "MAX_USERS_MEASURED",
    "Plan",
    "Result",
    "Step",
    "apply_app",
    "live_roles",
    "make_plan",
    "plan_app",
    "records_in",
]


@dataclass
class Step:
    kind: str  # create_table, rename_table, add_field, rename_field, change_type, change_field,
    # set_default, change_table, set_views, set_validations, set_lock, set_permissions,
    # set_field_permissions, reorder_fields, delete_field, delete_table, add_role, seed, ...
    text: str  # what it does, in words
    run: Callable[[SchemaEditor], Any] = field(repr=False)
    loses: int = 0  # values or records lost
    loss: str | None = None  # what would be lost, in words
    table: str | None = None
    field_key: str | None = None  # the field a field step is about
    # before running: counts what the step would lose (ConversionPreview or a count)
    measure: Callable[[SchemaEditor], Any] | None = field(default=None, repr=False)
    new_rules: list = field(default_factory=list)  # set_validations: rules to count failures of
    read_changed: bool = False  # set_permissions: a read rule changes
    now_required: bool = False  # change_field: the field becomes required


@dataclass
class Plan:
    app: ir.AppSpec
    resolved: Resolved
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps

    def losses(self) -> list[Step]:
        return [s for s in self.steps if s.loses]

    def describe(self) -> str:
        if not self.steps:
            lines = ["No changes: the database already matches the files."]
        else:
            n = len(self.steps)
            lines = [f"{n} change{'s' if n != 1 else ''} to apply:"]
            for i, s in enumerate(self.steps, start=1):
                lines.append(f"{i:>3}. {s.text}")
                if s.loss:
                    lines.append(f"       ! {s.loss}")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class Result:
    plan: Plan
    applied: bool
    report: list[str] = field(default_factory=list)  # dry run: effects on the live data
    counts: dict[str, Any] = field(default_factory=dict)  # the same as numbers, for tests

    def describe(self) -> str:
        text = self.plan.describe()
        if self.report:
            text += "\nOn the live data:\n" + "\n".join(f"  - {r}" for r in self.report)
        return text


class _Rollback(Exception):
    pass


# --- entry points ----------------------------------------------------------------------


def plan_app(platform, app: ir.AppSpec, *, demo: bool = False) -> Plan:
    """The plan, without changing anything."""
    plan: Plan | None = None
    try:
        with platform.schema_editor() as ed:
            plan = make_plan(ed, app, demo=demo)
            measure_losses(ed, plan)
            raise _Rollback
    except _Rollback:
        pass
    assert plan is not None
    return plan


def apply_app(
    platform,
    app: ir.AppSpec,
    *,
    confirm_data_loss: bool = False,
    dry_run: bool = False,
    demo: bool = False,
) -> Result:
    """Apply the app in one transaction (dry run: apply, measure, roll back)."""
    result: Result | None = None
    try:
        with platform.schema_editor() as ed:
            plan = make_plan(ed, app, demo=demo)
            measure_losses(ed, plan)
            losses = plan.losses()
            if losses and not confirm_data_loss and not dry_run:
                raise DataLossError(
                    "The plan would lose data; nothing was changed. Repeat with "
                    "--confirm-data-loss to go ahead:\n"
                    + "\n".join(f"  - {s.text}: {s.loss}" for s in losses),
                    [{"step": s.text, "lost": s.loses} for s in losses],
                )
            watch = ReadWatch(platform, ed, plan) if dry_run else None
            for step in plan.steps:
                _run(ed, step)
            result = Result(plan, applied=not dry_run and not plan.empty)
            if dry_run:
                measure_after(platform, ed, plan, result, watch)
            if dry_run or plan.empty:
                raise _Rollback
    except _Rollback:
        pass
    assert result is not None
    return result


def _run(ed: SchemaEditor, step: Step) -> None:
    try:
        step.run(ed)
    except AppFileError:
        raise
    except CubebaseError as exc:
        exc.message = f"{step.text}: {exc.message}"
        exc.args = (exc.message,)
        raise


# --- the plan --------------------------------------------------------------------------


def live_roles(session) -> dict[str, str]:
    return {r.key: r.label for r in session.scalars(sa.select(Role).order_by(Role.key))}


def make_plan(ed: SchemaEditor, app: ir.AppSpec, *, demo: bool = False) -> Plan:
    live = ed.schema
    res = resolve(app, live, live_roles(ed.session))
    plan = Plan(app, res)
    b = _Builder(ed, plan, demo)
    b.build()
    return plan


class _Builder:
    """Lists the plan's steps in an order that always works. Each section is a hook
    taking the builder (``plan_fields``, ``plan_tables``, ``plan_rules``, ``indexes``,
    ``users_rules``, ``plan_seeds``, ``plan_workflows``, ``automations_plan``,
    ``reports``); roles and renames, which every later step relies on, are here."""

    def __init__(self, ed: SchemaEditor, plan: Plan, demo: bool):
        self.ed = ed
        self.plan = plan
        self.res = plan.resolved
        self.app = plan.app
        self.live = self.res.live
        self.demo = demo
        self.new_tables = [t for t in self.app.tables if self.res.tables[t.key] is None]
        self.added: dict[str, list[str]] = {}  # table -> new fields in the order they are added

    def add(self, kind: str, text: str, run: Callable, table: str | None = None) -> Step:
        step = Step(kind, text, run, table=table)
        self.plan.steps.append(step)
        return step

    def build(self) -> None:
        self.roles()
        self.renames()
        for t in self.new_tables:
            label = t.label or default_label(t.key, table=True)
            n = len(t.fields)
            self.add(
                "create_table",
                f"Create table {label} (`{t.key}`) with {n} field{'s' if n != 1 else ''}",
                lambda ed, t=t, label=label: ed.create_table(t.key, label, app=self.app.app),
                t.key,
            )
        plan_new_fields(self)
        plan_changed_fields(self)
        plan_defaults(self)
        plan_table_settings(self)
        plan_rules(self)
        plan_indexes(self)
        plan_users_rules(self)
        plan_order(self)
        first = len(self.plan.steps)
        plan_deletions(self)
        deferred = defer_deletions(self, first)  # after the definitions that use them
        plan_users_fields(self)
        plan_seeds(self)
        plan_app_workflows(self)
        plan_automations(self)
        plan_reports(self)
        self.plan.steps += deferred

    # --- roles ---------------------------------------------------------------------
    def roles(self) -> None:
        from ..platform.users import add_role

        have = live_roles(self.ed.session)
        for role in self.app.roles:
            label = role.label or default_label(role.key, table=True)
            if role.key not in have:
                self.add(
                    "add_role",
                    f"Add role {label} (`{role.key}`)",
                    lambda ed, role=role, label=label: add_role(
                        ed, role.key, label, app=self.app.app
                    ),
                )
            elif role.label is not None and have[role.key] != role.label:
                self.add(
                    "change_role",
                    f"Rename role `{role.key}` from {have[role.key]} to {role.label}",
                    lambda ed, role=role: _set_role_label(ed, role.key, role.label),
                )
        listed = {r.key for r in self.app.roles}
        mine = self.ed.session.scalars(sa.select(Role.key).where(Role.app == self.app.app))
        for key in mine:
            if key not in listed:
                self.plan.notes.append(
                    f"role `{key}` is no longer in the files; it is kept (users may hold it)"
                )

    # --- renames -------------------------------------------------------------------
    def renames(self) -> None:
        for t in self.app.tables:
            live_t = self.res.tables[t.key]
            if live_t is not None and live_t.key != t.key:
                self.add(
                    "rename_table",
                    f"Rename table `{live_t.key}` to `{t.key}`",
                    lambda ed, old=live_t.key, new=t.key: ed.update_table(old, new_key=new),
                    t.key,
                )
        for t in self.app.tables:
            for f in t.fields:
                lf = self.res.fields[(t.key, f.key)]
                if lf is not None and lf.key != f.key:
                    self.add(
                        "rename_field",
                        f"Rename field `{t.key}.{lf.key}` to `{f.key}`",
                        lambda ed, t=t, old=lf.key, new=f.key: ed.update_field(t.key, old, key=new),
                        t.key,
                    )


# --- running steps -------------------------------------------------------------------------


def _set_role_label(ed: SchemaEditor, key: str, label: str) -> None:
    role = ed.session.scalar(sa.select(Role).where(Role.key == key))
    role.label = label
    ed.session.flush()
