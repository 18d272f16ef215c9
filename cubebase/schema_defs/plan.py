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
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .. import formula as F
from ..formula import types as ft
from ..platform.actor import Actor
from ..platform.errors import CubebaseError, ValidationError
from ..platform.models import Role
from ..platform.schema import USERS, Field, Schema, Table
from ..platform.schema_changes import RULE_KEYS, DataLossError, SchemaEditor
from . import ir
from .automations_plan import plan_automations
from .plan_usage import defer_deletions
from .reports import plan_reports
from .errors import AppFileError, Problem
from .export import default_label, exported_fields
from .indexes import plan_indexes
from .users_rules import plan_users_rules
from .validate import (
    APP_FIELDS,
    Resolved,
    _platform_config,
    app_user_fields,
    plain_value,
    resolve,
)

MAX_USERS_MEASURED = 500


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
            _measure_losses(ed, plan)
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
            _measure_losses(ed, plan)
            losses = plan.losses()
            if losses and not confirm_data_loss and not dry_run:
                raise DataLossError(
                    "The plan would lose data; nothing was changed. Repeat with "
                    "--confirm-data-loss to go ahead:\n"
                    + "\n".join(f"  - {s.text}: {s.loss}" for s in losses),
                    [{"step": s.text, "lost": s.loses} for s in losses],
                )
            watch = _ReadWatch(platform, ed, plan) if dry_run else None
            for step in plan.steps:
                _run(ed, step)
            result = Result(plan, applied=not dry_run and not plan.empty)
            if dry_run:
                _measure_after(platform, ed, plan, result, watch)
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
        self.new_fields()
        self.changed_fields()
        self.defaults()
        self.table_settings()
        self.rules()
        plan_indexes(self)
        plan_users_rules(self)
        self.order()
        first = len(self.plan.steps)
        self.deletions()
        deferred = defer_deletions(self, first)  # after the definitions that use them
        self.users_bookkeeping()
        self.seeds()
        self.workflows()
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

    # --- new fields ----------------------------------------------------------------
    def new_fields(self) -> None:
        new = [
            (t, f)
            for t in self.app.tables
            for f in t.fields
            if self.res.fields[(t.key, f.key)] is None
        ]
        plain = [(t, f) for t, f in new if f.type not in ("link", "formula")]
        links = [(t, f) for t, f in new if f.type == "link"]
        formulas = self._formula_order([(t, f) for t, f in new if f.type == "formula"])
        for t, f in [*plain, *links, *formulas]:
            self.added.setdefault(t.key, []).append(f.key)
            self.add(
                "add_field",
                f"Add field {_field_words(f)} to `{t.key}`",
                lambda ed, t=t, f=f: ed.add_field(t.key, _add_spec(f)),
                t.key,
            )

    def _formula_order(self, items: list[tuple]) -> list[tuple]:
        """New formula fields, each after the new formula fields it reads."""
        fs = self.res.virtual.formula_schema()
        by_id = {}
        for t, f in items:
            vf = self.res.virtual.table(t.key).field(f.key)
            by_id[vf.id] = (t, f)
        graph: dict[int, set[int]] = {}
        for fid, (t, f) in by_id.items():
            checked = F.check(f.formula, fs, t.key)
            graph[fid] = {dep for _, dep in F.dependencies(checked) if dep in by_id}
        order = graphlib.TopologicalSorter(graph).static_order()
        return [by_id[i] for i in order]

    # --- changed fields ------------------------------------------------------------
    def changed_fields(self) -> None:
        for t in self.app.tables:
            for f in t.fields:
                lf = self.res.fields[(t.key, f.key)]
                if lf is None:
                    continue
                self._type_change(t, f, lf)
                self._settings_change(t, f, lf)

    def _type_change(self, t: ir.TableSpec, f: ir.FieldSpec, lf: Field) -> None:
        precision_changed = f.type in ("number", "currency") and f.precision != lf.config.get(
            "precision"
        )
        if f.type == lf.type and not precision_changed:
            return
        config = _platform_config(f)
        config.pop("indexed", None)
        what = f"`{t.key}.{f.key}`"
        if f.type == lf.type:
            text = f"Change the decimals of {what} to {f.precision if f.precision is not None else 'the default'}"
        else:
            text = f"Change the type of {what} from {lf.type} to {f.type}"
        step = self.add(
            "change_type",
            text,
            lambda ed, t=t, f=f, config=config: ed.change_field_type(
                t.key, f.key, f.type, config, confirm=True
            ),
            t.key,
        )
        step.field_key = f.key
        step.measure = lambda ed, lf=lf, f=f, config=config: ed.preview_type_change(
            lf.table_key, lf.key, f.type, config
        )

    def _settings_change(self, t: ir.TableSpec, f: ir.FieldSpec, lf: Field) -> None:
        kw: dict[str, Any] = {}
        words: list[str] = []
        label = f.label or default_label(f.key)
        if label != lf.label:
            kw["label"] = label
            words.append(f"label {label}")
        if f.required != lf.required:
            kw["required"] = f.required
            words.append("now required" if f.required else "no longer required")
        if f.unique != lf.unique:
            kw["unique"] = f.unique
            words.append("now unique" if f.unique else "no longer unique")
        if (f.help or None) != (lf.help or None):
            kw["help"] = f.help
            words.append("help text")
        config: dict[str, Any] = {}
        cfg = lf.config
        for name in ("options", "max_length", "currency", "prefix"):
            want = getattr(f, name)
            if (want or None) != (cfg.get(name) or None) and name in ir.TYPE_SETTINGS[f.type]:
                config[name] = want if want is not None else ("" if name == "prefix" else None)
                if name == "options":
                    words.append(f"options {', '.join(want or [])}")
                else:
                    words.append(
                        f"{name.replace('_', ' ')} {want if want is not None else 'cleared'}"
                    )
        if f.indexed != bool(cfg.get("indexed")):
            config["indexed"] = f.indexed
            words.append("indexed" if f.indexed else "no longer indexed")
        if f.type in ("link", "user") and (f.related_name or None) != cfg.get("related_name"):
            config["related_name"] = f.related_name
            words.append(
                f"other side named `{f.related_name}`" if f.related_name else "other side removed"
            )
        if f.type == "formula" and lf.type == "formula":
            stored = self.res.stored[(t.key, f"formula:{f.key}")]
            if stored != cfg.get("formula"):
                config["formula"] = f.formula
                words.append(f"formula `{_one_line(f.formula)}`")
        if config:
            kw["config"] = config
        if not kw:
            return
        step = self.add(
            "change_field",
            f"Change field `{t.key}.{f.key}`: {'; '.join(words)}",
            lambda ed, t=t, f=f, kw=kw: ed.update_field(t.key, f.key, **kw),
            t.key,
        )
        step.field_key = f.key
        step.now_required = kw.get("required") is True

    def defaults(self) -> None:
        for t in self.app.tables:
            for f in t.fields:
                lf = self.res.fields[(t.key, f.key)]
                old = lf.default if lf is not None else None
                new = self.res.stored.get((t.key, f"default:{f.key}"))
                if lf is not None and lf.type != f.type:
                    old = None  # a type change clears the default
                if (new or None) == (old or None):
                    continue
                text = (
                    f"Set the default of `{t.key}.{f.key}` to `{_one_line(f.default)}`"
                    if f.default
                    else f"Remove the default of `{t.key}.{f.key}`"
                )
                self.add(
                    "set_default",
                    text,
                    lambda ed, t=t, f=f: ed.update_field(t.key, f.key, default=f.default),
                    t.key,
                )

    # --- tables: label, display, views, rules ----------------------------------------
    def table_settings(self) -> None:
        for t in self.app.tables:
            if t.key == USERS:
                continue
            live_t = self.res.tables[t.key]
            label = t.label or default_label(t.key, table=True)
            if live_t is not None and label != live_t.label:
                self.add(
                    "change_table",
                    f"Rename table `{t.key}` to {label} (its label)",
                    lambda ed, t=t, label=label: ed.update_table(t.key, label=label),
                    t.key,
                )
            old_display = live_t.display_field if live_t is not None else None
            if live_t is not None and old_display is not None:
                lf = self.res.fields.get((t.key, t.display or ""))
                if lf is not None and lf.key == old_display:
                    old_display = t.display  # the display field was renamed with it
            if (t.display or None) != (old_display or None):
                if t.display:
                    self.add(
                        "change_table",
                        f"Name the records of `{t.key}` by `{t.display}`",
                        lambda ed, t=t: ed.update_table(t.key, display_field=t.display),
                        t.key,
                    )
                else:
                    self.add(
                        "change_table",
                        f"Stop naming the records of `{t.key}` by a field",
                        lambda ed, t=t: ed.clear_display_field(t.key),
                        t.key,
                    )
            views = [self._view_stored(t, v) for v in t.views]
            old_views = live_t.config.get("views") or [] if live_t is not None else []
            if views != old_views:
                self.add(
                    "set_views",
                    _list_change_words(
                        f"Views of `{t.key}`",
                        [v["key"] for v in views],
                        [v["key"] for v in old_views],
                    ),
                    lambda ed, t=t: _set_views(ed, t),
                    t.key,
                )

    def _view_stored(self, t: ir.TableSpec, v: ir.ViewDef) -> dict[str, Any]:
        out: dict[str, Any] = {"key": v.key}
        if v.label is not None:
            out["label"] = v.label
        if v.fields is not None:
            out["fields"] = list(v.fields)
        if v.filter is not None:
            out["filter"] = self.res.stored[(t.key, f"view:{v.key}:filter")]
        if v.sort is not None:
            out["sort"] = v.sort
        return out

    def rules(self) -> None:
        st = self.res.stored
        for t in self.app.tables:
            if t.key == USERS:
                continue
            live_t = self.res.tables[t.key]
            cfg = live_t.config if live_t is not None else {}
            # validations
            new_v = [
                (st[(t.key, f"validation:{i}")], v.message) for i, v in enumerate(t.validations)
            ]
            old_v = [(v["rule"], v["message"]) for v in cfg.get("validations") or []]
            if new_v != old_v:
                added = [v for v, s in zip(t.validations, new_v, strict=True) if s not in old_v]
                removed = len([o for o in old_v if o not in new_v])
                parts = [f"add `{_one_line(v.rule)}`" for v in added]
                if removed:
                    parts.append(f"remove {removed} rule{'s' if removed != 1 else ''}")
                step = self.add(
                    "set_validations",
                    f"Validation rules of `{t.key}`: {', '.join(parts) or 'reordered'}",
                    lambda ed, t=t: ed.set_validations(
                        t.key, [{"rule": v.rule, "message": v.message} for v in t.validations]
                    ),
                    t.key,
                )
                step.new_rules = added
            # lock
            new_lock = st.get((t.key, "lock"))
            if (new_lock or None) != (cfg.get("lock") or None):
                self.add(
                    "set_lock",
                    f"Lock records of `{t.key}` where `{_one_line(t.lock)}`"
                    if t.lock
                    else f"Records of `{t.key}` are no longer locked by a rule",
                    lambda ed, t=t: ed.set_lock(t.key, t.lock),
                    t.key,
                )
            # row permissions
            new_p = [
                {"role": r.role, **{a: st[(t.key, f"permission:{r.role}:{a}")] for a in _acts(r)}}
                for r in t.permissions
            ]
            old_p = cfg.get("permissions") or []
            if new_p != old_p:
                step = self.add(
                    "set_permissions",
                    _perm_words(t, old_p),
                    lambda ed, t=t: ed.set_permissions(
                        t.key,
                        [
                            {"role": r.role, **{a: getattr(r, a) for a in _acts(r)}}
                            for r in t.permissions
                        ],
                    ),
                    t.key,
                )
                old_read = {p["role"]: p.get("read") for p in old_p}
                new_read = {p["role"]: p.get("read") for p in new_p}
                step.read_changed = old_read != new_read
            # field permissions
            by_field: dict[str, list] = {}
            for r in t.field_permissions:
                by_field.setdefault(r.field, []).append(r)
            keys = list(by_field)
            if live_t is not None:
                for lf in live_t.fields.values():
                    if lf.config.get("permissions"):
                        key = self._ir_key(t, lf)
                        if key is not None and key not in keys:
                            keys.append(key)
            for fkey in keys:
                rules = by_field.get(fkey, [])
                new_r = [
                    {
                        "role": r.role,
                        **{
                            a: st[(t.key, f"field_permission:{fkey}:{r.role}:{a}")]
                            for a in _acts(r)
                        },
                    }
                    for r in rules
                ]
                lf = self.res.fields.get((t.key, fkey))
                old_r = (lf.config.get("permissions") or []) if lf is not None else []
                if new_r != old_r:
                    roles = ", ".join(r.role for r in rules) or "none"
                    self.add(
                        "set_field_permissions",
                        f"Field rules of `{t.key}.{fkey}` (roles: {roles})",
                        lambda ed, t=t, fkey=fkey, rules=rules: ed.set_field_permissions(
                            t.key,
                            fkey,
                            [
                                {"role": r.role, **{a: getattr(r, a) for a in _acts(r)}}
                                for r in rules
                            ],
                        ),
                        t.key,
                    )

    def _ir_key(self, t: ir.TableSpec, lf: Field) -> str | None:
        for f in t.fields:
            if self.res.fields.get((t.key, f.key)) is lf:
                return f.key
        return None

    # --- field order -------------------------------------------------------------------
    def order(self) -> None:
        """Deleted fields are not in ``after``; new ones come last unless moved."""
        for t in self.app.tables:
            live_t = self.res.tables[t.key]
            if t.key == USERS:
                continue
            by_id = {
                lf.id: f.key
                for f in t.fields
                if (lf := self.res.fields[(t.key, f.key)]) is not None
            }
            after = []
            if live_t is not None:
                after = [by_id[lf.id] for lf in exported_fields(live_t) if lf.id in by_id]
            after += self.added.get(t.key, [])
            want = [f.key for f in t.fields]
            if after != want and not (set(after) - set(want)):
                self.add(
                    "reorder_fields",
                    f"Put the fields of `{t.key}` in the order of the file",
                    lambda ed, t=t, want=want: ed.reorder_fields(t.key, want),
                    t.key,
                )

    # --- deletions -----------------------------------------------------------------
    def deletions(self) -> None:
        ir_key = {}
        for key, live_t in self.res.tables.items():
            if live_t is not None:
                ir_key[live_t.key] = key
        gone_tables = {t.key for t in self.res.deleted_tables}
        fields = [f for f in self.res.deleted_fields]
        fields.sort(key=lambda f: (f.type != "formula", f.position))
        for lf in fields:
            tkey = ir_key.get(lf.table_key, lf.table_key)
            step = self.add(
                "delete_field",
                f"Delete field `{tkey}.{lf.key}` ({lf.type})",
                lambda ed, tkey=tkey, key=lf.key: ed.delete_field(tkey, key, confirm=True),
                tkey,
            )
            step.measure = lambda ed, lf=lf: ed.count_values(lf.table_key, lf.key)
        # links between tables being deleted go first, so each table can go
        for t in self.res.deleted_tables:
            for lf in t.fields.values():
                if lf.link_kind in ("one", "many") and lf.target_key in gone_tables - {t.key}:
                    self.add(
                        "delete_field",
                        f"Delete field `{t.key}.{lf.key}` (a link to `{lf.target_key}`, deleted too)",
                        lambda ed, t=t, key=lf.key: ed.delete_field(t.key, key, confirm=True),
                        t.key,
                    )
        for t in self.res.deleted_tables:
            step = self.add(
                "delete_table",
                f"Delete table {t.label} (`{t.key}`)",
                lambda ed, key=t.key: ed.delete_table(key, confirm=True),
                t.key,
            )
            step.measure = lambda ed, key=t.key: ed.count_records(key)

    def users_bookkeeping(self) -> None:
        users = self.live.tables.get(USERS)
        if users is None:
            return
        want = [f.key for t in self.app.tables if t.key == USERS for f in t.fields]
        have = app_user_fields(self.live, self.app.app)
        if want == have:
            return
        self.add(
            "users_fields",
            f"Record the users fields of app `{self.app.app}`: {', '.join(want) or 'none'}",
            lambda ed, want=want: _set_user_fields(ed, self.app.app, want),
            USERS,
        )

    # --- starting records ------------------------------------------------------------
    def seeds(self) -> None:
        for t in self._seed_order():
            rows = list(t.seed) + (list(t.demo) if self.demo else [])
            live_t = self.res.tables[t.key]
            if live_t is not None and _count(self.ed, live_t) > 0:
                continue
            n = len(rows)
            self.add(
                "seed",
                f"Add {n} starting record{'s' if n != 1 else ''} to `{t.key}`",
                lambda ed, t=t: _seed(ed, self.app, t, self.demo),
                t.key,
            )

    def _seed_order(self) -> list[ir.TableSpec]:
        """Tables with starting records, each after the tables its rows link to (in file
        order otherwise), so a row can name a record another table's seed adds."""
        seeded = [t for t in self.app.tables if t.seed or (self.demo and t.demo)]
        keys = {t.key for t in seeded}
        needs = {}
        for t in seeded:
            used = {k for row in [*t.seed, *t.demo] for k in row}
            targets = {USERS if f.type == "user" else f.to for f in t.fields if f.key in used}
            needs[t.key] = (targets & keys) - {t.key}
        order: list[ir.TableSpec] = []
        done: set[str] = set()
        while len(order) < len(seeded):
            ready = [t for t in seeded if t.key not in done and needs[t.key] <= done]
            t = ready[0] if ready else next(t for t in seeded if t.key not in done)  # a cycle
            order.append(t)
            done.add(t.key)
        return order

    # --- workflows --------------------------------------------------------------------
    def workflows(self) -> None:
        """Create, version (keeping or migrating running instances), adopt or delete the
        app's workflows: last, once every table, field and starting record is in place
        (so starting records do not start workflows the same apply creates)."""
        from ..workflows.models import Workflow  # late: see validate._check_workflows

        session = self.ed.session
        live = {wf.key: wf for wf in session.scalars(sa.select(Workflow).order_by(Workflow.key))}
        if not live and not self.res.workflows:
            return
        problems: list[Problem] = []
        for c in self.res.workflows:
            self._workflow(c, live.get(c.key), problems)
        if problems:
            raise AppFileError(problems)
        listed = {c.key for c in self.res.workflows}
        for key, wf in live.items():
            if wf.app == self.app.app and key not in listed:
                self._delete_workflow(wf)

    def _workflow(self, c, wf, problems: list[Problem]) -> None:
        from ..workflows.definitions import END_STEPS

        spec = c.spec
        label = c.document["label"]
        what = f"workflow {label} (`{c.key}`) on `{c.table}`"
        if wf is not None and wf.app not in (None, self.app.app):
            file, line, path = spec.at("key")
            problems.append(
                Problem(file, line, path, f"workflow `{c.key}` belongs to the app `{wf.app}`")
            )
            return
        if wf is None:
            steps = [s["key"] for s in c.document["steps"]]
            self.add(
                "create_workflow",
                f"Create {what}: {len(steps)} step{'s' if len(steps) != 1 else ''} "
                f"({', '.join(steps)}); {_start_words(c.document['start'])}",
                lambda ed, spec=spec: _apply_workflow(ed, self.app, spec, None),
                c.table,
            )
            return
        current = _current_definition(self.ed.session, wf)
        if current == c.document:
            if wf.app is None:
                self.add(
                    "adopt_workflow",
                    f"Workflow `{c.key}` now belongs to the app `{self.app.app}`",
                    lambda ed, key=c.key: _adopt_workflow(ed, key, self.app.app),
                    c.table,
                )
            return
        running = _running_by_step(self.ed.session, wf.id)
        n = sum(running.values())
        new = wf.current_version + 1
        changes = _definition_changes(current or {"steps": []}, c.document)
        text = f"Change {what}: {changes} (new version {new}; "
        mapping = None
        if not n:
            text += "no running instances)"
        elif spec.migrate is None:
            text += (
                f"{_n(n, 'running instance')} {'keeps' if n == 1 else 'keep'} version "
                f"{wf.current_version}: {_at(running)})"
            )
        else:
            new_steps = {s["key"] for s in c.document["steps"]} | set(END_STEPS)
            mapping = {}
            moves = []
            for old, count in sorted(running.items()):
                target = spec.migrate.get(old, old)
                if target not in new_steps:
                    file, line, path = spec.at("migrate")
                    problems.append(
                        Problem(
                            file,
                            line,
                            path,
                            f"{_n(count, 'running instance')} of `{c.key}` "
                            f"{'is' if count == 1 else 'are'} at step `{old}`, which the new "
                            f"version does not have: map it under `migrate` (`{old}: STEP`)",
                        )
                    )
                    continue
                mapping[old] = target
                moves.append(
                    f"{count} at `{old}` -> `{target}`"
                    if target != old
                    else f"{count} stay at `{old}`"
                )
            text += (
                f"{_n(n, 'running instance')} {'moves' if n == 1 else 'move'} to it: "
                f"{', '.join(moves)})"
            )
        self.add(
            "change_workflow",
            text,
            lambda ed, spec=spec, mapping=mapping: _apply_workflow(ed, self.app, spec, mapping),
            c.table,
        )

    def _delete_workflow(self, wf) -> None:
        from ..workflows.models import Instance

        session = self.ed.session
        total = session.scalar(
            sa.select(sa.func.count()).select_from(Instance).where(Instance.workflow_id == wf.id)
        )
        running = sum(_running_by_step(session, wf.id).values())
        step = self.add(
            "delete_workflow",
            f"Delete workflow `{wf.key}` on `{wf.table_key}`",
            lambda ed, wid=wf.id: _delete_workflow(ed, wid),
            wf.table_key,
        )
        if total:
            step.loses = total
            step.loss = f"the history of {_n(total, 'instance')} would be lost" + (
                f" ({running} still running)" if running else ""
            )


# --- measuring ---------------------------------------------------------------------------


def _measure_losses(ed: SchemaEditor, plan: Plan) -> None:
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


def _count(ed: SchemaEditor, table: Table) -> int:
    return records_in(ed).count(table.key)


class _ReadWatch:
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


def _measure_after(platform, ed: SchemaEditor, plan: Plan, result: Result, watch) -> None:
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
                        f"`{_one_line(v.rule)}` ({v.message})"
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


# --- running steps -------------------------------------------------------------------------


def _set_role_label(ed: SchemaEditor, key: str, label: str) -> None:
    role = ed.session.scalar(sa.select(Role).where(Role.key == key))
    role.label = label
    ed.session.flush()


def _table_settings(ed: SchemaEditor, table_key: str) -> dict[str, Any]:
    cfg = ed.schema.table(table_key).config
    return {k: v for k, v in cfg.items() if k not in RULE_KEYS}


def _set_views(ed: SchemaEditor, t: ir.TableSpec) -> None:
    from ..platform import formulas

    views = []
    for v in t.views:
        out: dict[str, Any] = {"key": v.key}
        if v.label is not None:
            out["label"] = v.label
        if v.fields is not None:
            out["fields"] = list(v.fields)
        if v.filter is not None:
            out["filter"], _ = formulas.store(
                ed.schema, t.key, v.filter, f"The filter of view `{v.key}`", ft.BOOLEAN
            )
        if v.sort is not None:
            out["sort"] = v.sort
        views.append(out)
    config = _table_settings(ed, t.key)
    if views:
        config["views"] = views
    else:
        config.pop("views", None)
    ed.update_table(t.key, config=config)


def _set_user_fields(ed: SchemaEditor, app_key: str, keys: list[str]) -> None:
    config = _table_settings(ed, USERS)
    owned = dict(config.get(APP_FIELDS) or {})
    if keys:
        owned[app_key] = keys
    else:
        owned.pop(app_key, None)
    config[APP_FIELDS] = owned
    ed.update_table(USERS, config=config)


def _seed(ed: SchemaEditor, app: ir.AppSpec, t: ir.TableSpec, demo: bool) -> None:
    service = records_in(ed)
    table = service.schema.table(t.key)
    sections = [("seed", t.seed)] + ([("demo", t.demo)] if demo else [])
    if service.count(t.key) > 0:
        return
    for section, rows in sections:
        for i, row in enumerate(rows):
            try:
                values = {k: _seed_value(service, table.field(k), v) for k, v in row.items()}
                service.create(t.key, values)
            except (ValidationError, CubebaseError) as exc:
                file, line, _ = t.at(section)
                base = f"{t.at()[2]}.{section}" if t.at()[2] else section
                line = app.lines.get((file, f"{base}[{i}]"), line)
                raise AppFileError([Problem(file, line, f"{base}[{i}]", exc.message)]) from None


def _seed_value(service, f: Field, value: Any) -> Any:
    """Links in seed rows may name the record by its display value (or e-mail for users)."""
    kind = f.link_kind
    if kind not in ("one", "many") or value is None:
        return plain_value(value)
    values = value if isinstance(value, list) else [value]
    ids = []
    for v in values:
        if isinstance(v, str) and not v.isdigit():
            ids.append(_find(service, f.target_key, v))
        else:
            ids.append(v)
    return ids if isinstance(value, list) else ids[0]


def _find(service, table_key: str, text: str) -> int:
    from ..platform.records import Condition

    table = service.schema.table(table_key)
    key = "email" if table_key == USERS else table.display_field
    if key is None:
        raise ValidationError(
            [_problem(f"`{table_key}` has no display field: link to its records by id")]
        )
    page = service.list(table_key, where=Condition(key, "eq", text), limit=2)
    if len(page.records) != 1:
        found = "no" if not page.records else "more than one"
        raise ValidationError([_problem(f"{found} record of `{table_key}` has {key} `{text}`")])
    return page.records[0].id


def _problem(message: str):
    from ..platform.errors import FieldProblem

    return FieldProblem(None, message)


# --- workflows -------------------------------------------------------------------------------
# cubebase.workflows is imported inside these functions only (it imports schema_defs).


def _current_definition(session, wf) -> dict | None:
    from ..workflows.models import WorkflowVersion

    return session.scalar(
        sa.select(WorkflowVersion.definition).where(
            WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.current_version
        )
    )


def _running_by_step(session, workflow_id: int) -> dict[str, int]:
    from ..workflows.models import Instance

    return dict(
        session.execute(
            sa.select(Instance.step, sa.func.count())
            .where(Instance.workflow_id == workflow_id, Instance.status == "running")
            .group_by(Instance.step)
        ).all()
    )


def _apply_workflow(ed: SchemaEditor, app: ir.AppSpec, spec, mapping) -> None:
    """Check the workflow again on the schema as changed so far (its formulas are stored
    by the ids the new fields got) and create it or add its new version, migrating the
    running instances when ``mapping`` is given."""
    from ..workflows.definitions import validate_workflows
    from ..workflows.engine import install, plan_workflows

    compiled = validate_workflows([spec], ed.schema, None, app.lines)
    engine = install(ed.platform)
    _forget_definitions_on_rollback(ed.session, engine)
    mappings = {spec.key: mapping} if mapping is not None else None
    engine.apply_plan(ed.session, plan_workflows(ed.session, compiled, mappings, app.app))


def _forget_definitions_on_rollback(session, engine) -> None:
    """A dry run (or a failed apply) rolls back versions the engine may have cached by id;
    SQLite hands those ids out again."""
    if session.info.get("cb_wf_forget"):
        return
    session.info["cb_wf_forget"] = True
    sa.event.listen(session, "after_rollback", lambda s: engine._definitions.clear(), once=True)


def _adopt_workflow(ed: SchemaEditor, key: str, app_key: str) -> None:
    from ..workflows.models import Workflow

    ed.session.execute(sa.update(Workflow).where(Workflow.key == key).values(app=app_key))


def _delete_workflow(ed: SchemaEditor, workflow_id: int) -> None:
    """The workflow, its versions, instances, tasks and history (explicitly, child rows
    first: SQLite runs the editor without foreign-key cascades)."""
    from ..workflows.models import Event, Instance, Task, Workflow, WorkflowVersion

    session = ed.session
    instances = sa.select(Instance.id).where(Instance.workflow_id == workflow_id)
    session.execute(sa.delete(Task).where(Task.instance_id.in_(instances)))
    session.execute(sa.delete(Event).where(Event.instance_id.in_(instances)))
    session.execute(sa.delete(Instance).where(Instance.workflow_id == workflow_id))
    session.execute(sa.delete(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id))
    session.execute(sa.delete(Workflow).where(Workflow.id == workflow_id))


def _start_words(start: dict) -> str:
    if start["mode"] == "on_create":
        return "starts when a record is created"
    if start["mode"] == "when":
        return "starts when its condition becomes true"
    return "started by hand"


def _definition_changes(old: dict, new: dict) -> str:
    """What changed between two versions, in words."""
    before = {s["key"]: s for s in old["steps"]}
    after = {s["key"]: s for s in new["steps"]}
    parts = []
    added = [k for k in after if k not in before]
    removed = [k for k in before if k not in after]
    changed = [k for k in after if k in before and after[k] != before[k]]
    if added:
        parts.append("add step " + ", ".join(f"`{k}`" for k in added))
    if removed:
        parts.append("remove step " + ", ".join(f"`{k}`" for k in removed))
    if changed:
        parts.append("change step " + ", ".join(f"`{k}`" for k in changed))
    if [k for k in after if k in before] != [k for k in before if k in after]:
        parts.append("reorder the steps")
    rest = {k: v for k, v in new.items() if k != "steps"}
    if rest != {k: v for k, v in old.items() if k != "steps"}:
        names = [k for k in rest if rest[k] != old.get(k)]
        parts.append("change " + ", ".join(f"`{k}`" for k in names))
    return "; ".join(parts) or "change the definition"


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _at(running: dict[str, int]) -> str:
    return ", ".join(f"{c} at `{s}`" for s, c in sorted(running.items()))


# --- words -----------------------------------------------------------------------------------


def _acts(rule) -> list[str]:
    names = ("read", "create", "update", "delete", "write")
    return [a for a in names if getattr(rule, a, None) is not None]


def _one_line(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= 80 else text[:77] + "..."


def _field_words(f: ir.FieldSpec) -> str:
    label = f.label or default_label(f.key)
    extra = []
    if f.type == "link":
        extra.append(f"{'many links' if f.many else 'a link'} to `{f.to}`")
    elif f.type == "formula":
        extra.append(f"= `{_one_line(f.formula)}`")
    else:
        extra.append(f.type.replace("_", " "))
    if f.required:
        extra.append("required")
    if f.unique:
        extra.append("unique")
    return f"{label} (`{f.key}`, {', '.join(extra)})"


def _list_change_words(what: str, new: list[str], old: list[str]) -> str:
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old]
    parts = []
    if added:
        parts.append("add " + ", ".join(f"`{k}`" for k in added))
    if removed:
        parts.append("remove " + ", ".join(f"`{k}`" for k in removed))
    if changed and not added and not removed:
        parts.append("change " + ", ".join(f"`{k}`" for k in changed))
    return f"{what}: {'; '.join(parts)}"


def _perm_words(t: ir.TableSpec, old: list[dict]) -> str:
    old_roles = [p["role"] for p in old]
    new_roles = [r.role for r in t.permissions]
    text = _list_change_words(f"Row permissions of `{t.key}`", new_roles, old_roles)
    reads = [f"{r.role} reads `{_one_line(r.read)}`" for r in t.permissions if r.read]
    return text + (f" ({'; '.join(reads)})" if reads else "")


def _add_spec(f: ir.FieldSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": f.key, "type": f.type}
    if f.label:
        spec["label"] = f.label
    if f.required:
        spec["required"] = True
    if f.unique:
        spec["unique"] = True
    if f.help:
        spec["help"] = f.help
    spec.update(_platform_config(f))
    if f.type == "link":
        spec["to"] = f.to
        if f.many:
            spec["many"] = True
    if f.related_name:
        spec["related_name"] = f.related_name
    if f.type == "formula":
        spec["formula"] = f.formula
    return spec
