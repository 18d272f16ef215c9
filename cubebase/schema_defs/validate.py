"""Checking an app's meaning against the live schema, before anything is applied.

``resolve`` matches the app's tables and fields to the live ones (by key, or by
``renamed_from``), builds the schema the app *would* make (a ``Schema`` snapshot
from metadata rows that are never saved: live ids for what exists, fresh ids for
what is new), and checks every formula, rule, link, role and setting against it,
so a formula may use a table the same app creates. Every problem is collected and
reported at once with its file, line and key; formula errors carry the formula
checker's message and caret.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .. import formula as F
from ..formula import types as ft
from ..platform.actor import ADMIN_ROLE
from ..platform.fieldtypes import FIELD_TYPES, SYSTEM_FIELDS, ConversionError
from ..platform.models import FieldDef, TableDef
from ..platform.schema import USERS, Field, Schema, Table
from ..platform.schema_changes import CONVERTIBLE, RESERVED_KEYS
from ..platform.users import USERS_FIELDS
from . import ir
from .automations_plan import check_app_automations
from .errors import Problems
from .indexes import check_indexes
from .loader import did_you_mean
from .reports import check_reports
from .users_rules import check_users_rules

BUILTIN_USER_FIELDS = frozenset(f["key"] for f in USERS_FIELDS)
SYSTEM_FIELD_KEYS = frozenset(k for k, _, _ in SYSTEM_FIELDS)
APP_FIELDS = "app_fields"  # users table setting: {app: [field keys the app added]}


@dataclass
class Resolved:
    """An app matched to the live schema: what each IR table and field is live."""

    app: ir.AppSpec
    live: Schema
    virtual: Schema  # the schema the app would make
    tables: dict[str, Table | None] = field(default_factory=dict)  # IR key -> live table
    fields: dict[tuple[str, str], Field | None] = field(default_factory=dict)
    deleted_tables: list[Table] = field(default_factory=list)
    deleted_fields: list[Field] = field(default_factory=list)
    stored: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, what) -> stored
    roles: dict[str, str] = field(default_factory=dict)  # every role after apply: key -> label
    clashes: list[tuple] = field(default_factory=list)  # (table, field) whose related_name is taken
    workflows: list = field(default_factory=list)  # workflows.definitions.Compiled, on `virtual`
    automations: list = field(default_factory=list)  # automations.CompiledAutomation

    def live_field(self, table_key: str, field_key: str) -> Field | None:
        return self.fields.get((table_key, field_key))


def app_tables(schema: Schema, app_key: str) -> list[Table]:
    return [t for t in schema.tables.values() if t.app == app_key and not t.system]


def app_user_fields(schema: Schema, app_key: str) -> list[str]:
    if not schema.has_table(USERS):
        return []
    return list((schema.table(USERS).config.get(APP_FIELDS) or {}).get(app_key) or [])


def resolve(app: ir.AppSpec, live: Schema, live_roles: dict[str, str]) -> Resolved:
    """Check the app against the live schema; AppFileError lists every problem."""
    problems = Problems()
    _check_shape(app, live, problems)
    app = _first_of_each(app)  # a key defined twice is reported; the first one is checked
    res = _match(app, live, live_roles, problems)
    res.virtual = _virtual_schema(res)
    _check_meaning(res, problems)
    res.workflows = _check_workflows(res, problems)
    check_reports(res, problems)
    res.automations = check_app_automations(res, problems)
    problems.raise_if_any()
    return res


def _check_workflows(res: Resolved, problems: Problems) -> list:
    """The `workflows:` section, checked by the workflows package against the schema the
    app would make; its problems join the others. The import is late on purpose:
    cubebase.workflows imports schema_defs (the IR, the loader), never the reverse at
    import time (docs/app-format.md, "Workflows")."""
    if not res.app.workflows:
        return []
    from ..workflows.definitions import validate_workflows

    return validate_workflows(
        res.app.workflows,
        res.virtual,
        set(res.roles),
        res.app.lines,
        problems=problems,
    )


def _first_of_each(app: ir.AppSpec) -> ir.AppSpec:
    def first(items: list, key) -> list:
        seen: set = set()
        out = []
        for item in items:
            if key(item) not in seen:
                seen.add(key(item))
                out.append(item)
        return out

    tables = [
        dataclasses.replace(t, fields=first(t.fields, lambda f: f.key))
        for t in first(app.tables, lambda t: t.key)
    ]
    return dataclasses.replace(app, tables=tables)


# --- form: keys, settings, duplicates ------------------------------------------------------


def _check_shape(app: ir.AppSpec, live: Schema, problems: Problems) -> None:
    for section in ir.LATER_SECTIONS:
        if getattr(app, section):
            problems.add(
                app.at(section),
                f"{section} are not supported yet: they come with their own issue; "
                f"remove the `{section}` section for now",
            )
    role_keys: dict[str, tuple] = {}
    for role in app.roles:
        if role.key in role_keys:
            problems.add(role.at("key"), f"role `{role.key}` is listed twice")
        role_keys[role.key] = role.at()
        if role.key == ADMIN_ROLE:
            problems.add(role.at("key"), "`admin` is built in; leave it out")
    seen: dict[str, ir.TableSpec] = {}
    for t in app.tables:
        if t.key in seen:
            file, line, _ = seen[t.key].at()
            problems.add(t.at("key"), f"table `{t.key}` is defined twice (also {file}:{line})")
            continue
        seen[t.key] = t
        if t.key in RESERVED_KEYS:
            problems.add(t.at("key"), f"`{t.key}` is a reserved word and cannot be a table key")
        if t.key == USERS:
            extra = [
                name
                for name in ("label", "display", "renamed_from", "lock", "seed", "demo")
                if getattr(t, name)
            ] + [name for name in ("validations", "views") if getattr(t, name)]
            for name in extra:
                problems.add(
                    t.at(name),
                    "the built-in users table takes only `fields` here (and the rules "
                    f"`permissions`, `field_permissions`): `{name}` is not allowed",
                )
            check_users_rules(app, t, problems)
        _check_fields(t, problems)


def _check_fields(t: ir.TableSpec, problems: Problems) -> None:
    keys: dict[str, ir.FieldSpec] = {}
    for f in t.fields:
        if f.key in keys:
            problems.add(f.at("key"), f"field `{f.key}` is defined twice in table `{t.key}`")
            continue
        keys[f.key] = f
        if f.key in RESERVED_KEYS:
            problems.add(f.at("key"), f"`{f.key}` is a reserved word and cannot be a field key")
        elif f.key in SYSTEM_FIELD_KEYS:
            problems.add(f.at("key"), f"`{f.key}` is an automatic field every table has")
        elif t.key == USERS and f.key in BUILTIN_USER_FIELDS:
            problems.add(f.at("key"), f"`users.{f.key}` is built in and cannot be redefined")
        allowed = ir.TYPE_SETTINGS[f.type]
        for name in sorted(_settings_given(f)):
            if name not in allowed:
                problems.add(f.at(name), f"`{name}` is not a setting of a {f.type} field")
        for name in ir.REQUIRED_SETTINGS.get(f.type, ()):
            if getattr(f, name) is None:
                problems.add(f.at(), f"a {f.type} field needs `{name}`")
        if f.unique and (f.type in ir.NOT_UNIQUE or f.many):
            problems.add(f.at("unique"), f"a {_kind(f)} field cannot be unique")
        if f.indexed and (f.type in ir.NOT_INDEXABLE or f.many):
            problems.add(f.at("indexed"), f"a {_kind(f)} field cannot be indexed")
        if f.default is not None and (f.type in ir.CALCULATED):
            problems.add(
                f.at("default"), f"a {f.type} field is calculated and cannot have a default"
            )
        if f.required and f.type in ir.CALCULATED:
            problems.add(f.at("required"), f"a {f.type} field is calculated and cannot be required")
        config = _platform_config(f)
        if f.type in ("select", "multi_select") and f.options is None:
            continue  # reported above
        for p in FIELD_TYPES[f.type].check_config(config):
            if "unknown setting" not in p:
                problems.add(f.at(), p)


SETTINGS = ("options", "precision", "currency", "max_length", "to", "many", "related_name")
SETTINGS += ("formula", "prefix")


def _settings_given(f: ir.FieldSpec) -> set[str]:
    return {name for name in SETTINGS if getattr(f, name) not in (None, False)}


def _kind(f: ir.FieldSpec) -> str:
    return "many-to-many link" if f.type == "link" and f.many else f.type


def _platform_config(f: ir.FieldSpec) -> dict[str, Any]:
    """The field's type settings as the platform keeps them (without the link target)."""
    out: dict[str, Any] = {}
    for name in ("options", "precision", "currency", "max_length", "prefix"):
        if getattr(f, name) is not None:
            out[name] = getattr(f, name)
    if f.indexed:
        out["indexed"] = True
    return out


# --- matching to the live schema -----------------------------------------------------------


def _match(
    app: ir.AppSpec, live: Schema, live_roles: dict[str, str], problems: Problems
) -> Resolved:
    res = Resolved(app, live, live)
    res.roles = dict(live_roles)
    for role in app.roles:
        res.roles.setdefault(role.key, role.label or role.key)
    claimed: set[str] = set()
    for t in app.tables:
        table = live.tables.get(t.key)
        if t.key == USERS:
            if table is None:  # pragma: no cover - every initialised platform has it
                problems.add(t.at("key"), "the built-in users table is missing: run cubebase init")
            res.tables[t.key] = table
            claimed.add(t.key)
            _match_fields(res, t, table, problems)
            continue
        if table is not None and table.app not in (None, app.app):
            problems.add(
                t.at("key"),
                f"table `{t.key}` belongs to the app `{table.app}`; choose another key",
            )
            continue
        if table is not None and table.system:
            problems.add(t.at("key"), f"`{t.key}` is a built-in table")
            continue
        if table is None and t.renamed_from:
            old = live.tables.get(t.renamed_from)
            if old is not None and old.app in (None, app.app) and not old.system:
                table = old
        if table is not None and table.key in claimed:
            problems.add(t.at("renamed_from"), f"table `{table.key}` is already used above")
            continue
        if table is not None:
            claimed.add(table.key)
        res.tables[t.key] = table
        _match_fields(res, t, table, problems)
    for table in app_tables(live, app.app):
        if table.key not in claimed:
            res.deleted_tables.append(table)
    return res


def _match_fields(res: Resolved, t: ir.TableSpec, table: Table | None, problems: Problems) -> None:
    claimed: set[str] = set()
    for f in t.fields:
        lf = table.fields.get(f.key) if table is not None else None
        if lf is None and f.renamed_from and table is not None:
            lf = table.fields.get(f.renamed_from)
            if lf is not None and (lf.system or lf.link_kind in ("reverse", "reverse_many")):
                lf = None
        if lf is not None and lf.link_kind in ("reverse", "reverse_many"):
            problems.add(
                f.at("key"),
                f"`{t.key}.{f.key}` is the other side of the link `{lf.target_key}."
                f"{_fwd_key(res.live, lf)}` (its related_name); choose another key",
            )
            continue
        if lf is not None and lf.key in claimed:
            problems.add(f.at("renamed_from"), f"field `{lf.key}` is already used above")
            continue
        if lf is not None:
            claimed.add(lf.key)
            if lf.type != f.type and not _convertible(lf.type, f.type):
                problems.add(
                    f.at("type"),
                    f"`{t.key}.{f.key}` cannot change from {lf.type} to {f.type}: "
                    "add a new field and delete this one",
                )
            elif lf.type == f.type == "link":
                target = res.live.by_id.get(lf.config.get("to"))
                want = f.to
                if target is not None and want != target.key:
                    renamed_target = next(
                        (x.key for x in res.app.tables if x.renamed_from == target.key), None
                    )
                    if want != renamed_target:
                        problems.add(
                            f.at("to"),
                            f"where `{t.key}.{f.key}` links to cannot change in place "
                            f"(now `{target.key}`): add a new field and delete this one",
                        )
                if bool(lf.config.get("many")) != f.many:
                    problems.add(
                        f.at("many"),
                        f"`{t.key}.{f.key}` cannot switch between one and many links in place: "
                        "add a new field and delete this one",
                    )
        res.fields[(t.key, f.key)] = lf
    if table is None:
        return
    if table.key == USERS:
        owned = set(app_user_fields(res.live, res.app.app))
        candidates = [table.fields[k] for k in owned if k in table.fields]
    else:
        candidates = [
            lf
            for lf in table.fields.values()
            if not lf.system and lf.link_kind not in ("reverse", "reverse_many")
        ]
    for lf in candidates:
        if lf.key not in claimed:
            res.deleted_fields.append(lf)


def _convertible(old: str, new: str) -> bool:
    return old in CONVERTIBLE and new in CONVERTIBLE


def _fwd_key(schema: Schema, reverse: Field) -> str:
    target = schema.tables.get(reverse.target_key)
    fwd = target.field_by_id(reverse.config.get("reverse_of")) if target else None
    return fwd.key if fwd else "?"


# --- the schema the app would make -----------------------------------------------------------


def _virtual_schema(res: Resolved) -> Schema:
    live = res.live
    new_ids = itertools.count(10_000_000 + max([0, *live.by_id] + _field_ids(live)))
    ir_by_key = {t.key: t for t in res.app.tables}
    gone_tables = {t.id for t in res.deleted_tables}
    gone_fields = {f.id for f in res.deleted_fields}
    table_ids: dict[str, int] = {}
    for key, table in res.tables.items():
        table_ids[key] = table.id if table is not None else next(new_ids)
    rebuilt = {table_ids[k] for k in ir_by_key if k != USERS and k in table_ids}
    field_ids: dict[tuple[str, str], int] = {}
    for (tkey, fkey), lf in res.fields.items():
        field_ids[(tkey, fkey)] = lf.id if lf is not None else next(new_ids)
    ir_field_ids = set(field_ids.values())

    tdefs: list[TableDef] = []
    fdefs: list[FieldDef] = []
    for table in live.tables.values():
        if table.id in gone_tables or table.id in rebuilt:
            continue
        tdefs.append(_tdef(table.id, table.key, table.label, table.display_field, table))
    for t in res.app.tables:
        if t.key == USERS or t.key not in table_ids:
            continue
        live_t = res.tables[t.key]
        tdefs.append(
            _tdef(table_ids[t.key], t.key, t.label or t.key, t.display, live_t, app=res.app.app)
        )
        for pos, (fkey, flabel, ftype) in enumerate(SYSTEM_FIELDS):
            lf = live_t.fields.get(fkey) if live_t is not None else None
            fdefs.append(
                FieldDef(
                    id=lf.id if lf else next(new_ids),
                    table_id=table_ids[t.key],
                    key=fkey,
                    label=flabel,
                    type=ftype,
                    system=True,
                    position=1000 + pos,
                    config={},
                    required=False,
                    unique=False,
                )
            )
    # live fields that stay as they are
    for table in live.tables.values():
        if table.id in gone_tables:
            continue
        for lf in table.fields.values():
            if lf.id in gone_fields or lf.id in ir_field_ids:
                continue
            if table.id in rebuilt and lf.link_kind not in ("reverse", "reverse_many"):
                continue
            if lf.link_kind in ("reverse", "reverse_many"):
                fwd = lf.config.get("reverse_of")
                if fwd in ir_field_ids or fwd in gone_fields or _in_tables(live, fwd, gone_tables):
                    continue
            fdefs.append(_fdef_live(lf))
    # the app's fields, then the reverse sides they name
    used: dict[int, set[str]] = {}
    for fd in fdefs:
        used.setdefault(fd.table_id, set()).add(fd.key)
    reverse: list[tuple[ir.FieldSpec, int, int, int]] = []
    for t in res.app.tables:
        if t.key not in table_ids:
            continue  # refused above
        for pos, f in enumerate(t.fields, start=1):
            fid = field_ids.get((t.key, f.key))
            if fid is None:
                continue  # refused above
            config = _platform_config(f)
            if f.type == "link":
                config["to"] = table_ids.get(f.to) or _live_id(live, f.to)
                if config["to"] is None:
                    continue  # a link to an unknown table: reported below
                if f.many:
                    config["many"] = True
            if f.type == "formula":
                config["formula"] = f.formula
                config["result_type"] = "text"
            if f.related_name:
                config["related_name"] = f.related_name
                target_key = USERS if f.type == "user" else f.to
                target_id = table_ids.get(target_key) or _live_id(live, target_key)
                if target_id is not None:
                    reverse.append((t, f, fid, target_id, pos))
            used.setdefault(table_ids[t.key], set()).add(f.key)
            fdefs.append(
                FieldDef(
                    id=fid,
                    table_id=table_ids[t.key],
                    key=f.key,
                    label=f.label or f.key,
                    type=f.type,
                    required=f.required,
                    unique=f.unique,
                    default=None,
                    help=f.help,
                    position=(300 if t.key == USERS else 0) + pos,
                    system=False,
                    config=config,
                )
            )
    for t, f, fid, target_id, pos in reverse:
        if f.related_name in used.setdefault(target_id, set()):
            res.clashes.append((t, f))
            continue
        used[target_id].add(f.related_name)
        lf = res.fields[(t.key, f.key)]
        live_rev = _live_reverse(live, lf, f.related_name) if lf is not None else None
        rcfg: dict[str, Any] = {"reverse_of": fid}
        if f.many:
            rcfg["many"] = True
        fdefs.append(
            FieldDef(
                id=live_rev.id if live_rev is not None else next(new_ids),
                table_id=target_id,
                key=f.related_name,
                label=f.related_name,
                type="link",
                position=500 + pos,
                config=rcfg,
                required=False,
                unique=False,
                system=False,
            )
        )
    fdefs.sort(key=lambda d: (d.position, d.id))
    schema = Schema.from_defs(0, tdefs, fdefs, live.timezone)
    return _settle_result_types(schema, tdefs, fdefs, table_ids, field_ids)


def _settle_result_types(schema: Schema, tdefs, fdefs, table_ids, field_ids) -> Schema:
    """A formula field's type is its formula's, and a formula reading it through a link
    (``parent.total``, ``SUM(children.total)``) takes it from the field's ``result_type``:
    check the app's formula fields and rebuild until every result type holds."""
    from ..platform.formulas import result_type_name

    ids = {fid: key for key, fid in field_ids.items()}
    formula_defs = [
        (ids[fd.id], fd)
        for fd in fdefs
        if fd.type == "formula" and fd.id in ids and fd.config.get("formula")
    ]
    for _ in range(len(formula_defs) + 1):
        fs = schema.formula_schema()
        changed = False
        for (tkey, fkey), fd in formula_defs:
            try:
                checked = F.check(fd.config["formula"], fs, tkey, field_key=fkey)
            except F.FormulaError:
                continue
            kind = result_type_name(checked.type)
            if fd.config.get("result_type") != kind:
                fd.config = {**fd.config, "result_type": kind}
                changed = True
        if not changed:
            break
        schema = Schema.from_defs(0, tdefs, fdefs, schema.timezone)
    return schema


def _live_reverse(schema: Schema, fwd: Field, name: str) -> Field | None:
    """The live reverse side of link ``fwd``, when it keeps the name ``name``."""
    target = schema.tables.get(fwd.target_key or "")
    if target is None:
        return None
    rf = target.fields.get(name)
    return rf if rf is not None and rf.config.get("reverse_of") == fwd.id else None


def _field_ids(schema: Schema) -> list[int]:
    return [f.id for t in schema.tables.values() for f in t.fields.values()]


def _in_tables(schema: Schema, field_id: Any, table_ids: set[int]) -> bool:
    return any(
        t.field_by_id(field_id) is not None for t in schema.tables.values() if t.id in table_ids
    )


def _live_id(schema: Schema, key: str | None) -> int | None:
    t = schema.tables.get(key) if key else None
    return t.id if t else None


def _tdef(tid, key, label, display, live_t: Table | None, app=None) -> TableDef:
    return TableDef(
        id=tid,
        key=key,
        label=label,
        display_field=display,
        app=live_t.app if live_t is not None and app is None else app,
        system=live_t.system if live_t is not None else False,
        config={},
    )


def _fdef_live(lf: Field) -> FieldDef:
    return FieldDef(
        id=lf.id,
        table_id=lf.table_id,
        key=lf.key,
        label=lf.label,
        type=lf.type,
        required=lf.required,
        unique=lf.unique,
        default=lf.default,
        help=lf.help,
        position=lf.position,
        system=lf.system,
        config=dict(lf.config),
    )


# --- meaning: links, roles, formulas ---------------------------------------------------------


def _check_meaning(res: Resolved, problems: Problems) -> None:
    vs = res.virtual
    app = res.app
    tables = list(vs.tables)
    for _t, f in res.clashes:
        target = USERS if f.type == "user" else f.to
        problems.add(
            f.at("related_name"),
            f"`{f.related_name}` is already a field of `{target}`; choose another related_name",
        )
    for t in app.tables:
        vt = vs.tables.get(t.key)
        if vt is None:
            continue
        for f in t.fields:
            if f.type == "link" and f.to is not None and not vs.has_table(f.to):
                problems.add(f.at("to"), f"unknown table `{f.to}`{did_you_mean(f.to, tables)}")
        if t.display and t.display not in vt.fields:
            problems.add(
                t.at("display"), f"unknown field `{t.display}`{did_you_mean(t.display, vt.fields)}"
            )
        _check_rules(res, t, vt, problems)
        _check_views(t, vt, problems)
        check_indexes(t, vt, problems)
        for section in ("seed", "demo"):
            for i, row in enumerate(getattr(t, section)):
                for k, value in row.items():
                    if k in vt.fields and vt.fields[k].writable:
                        problem = seed_value_problem(vt.fields[k], value)
                        if problem:
                            problems.add(_seed_at(app, t, section, i), f"`{k}`: {problem}")
                        continue
                    if k not in vt.fields or not vt.fields[k].writable:
                        where = _seed_at(app, t, section, i)
                        if k in vt.fields:
                            problems.add(
                                where, f"`{k}` is calculated; a {section} row cannot set it"
                            )
                        else:
                            problems.add(where, f"unknown field `{k}`{did_you_mean(k, vt.fields)}")
    _check_formulas(res, problems)


def plain_value(value: Any) -> Any:
    """YAML reads `2024-05-01` as a date: values go to the records service as in JSON."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value


def seed_value_problem(f: Field, value: Any) -> str | None:
    """Why a seed value does not fit its field (links are looked up when applied)."""
    if f.link_kind is not None or f.type == "file":
        return None
    try:
        f.ftype.to_python(f, plain_value(value))
    except ConversionError as exc:
        return str(exc)
    return None


def res_field_id(schema: Schema, table_key: str, field_key: str) -> int | None:
    t = schema.tables.get(table_key)
    f = t.fields.get(field_key) if t else None
    return f.id if f else None


def _seed_at(app: ir.AppSpec, t: ir.TableSpec, section: str, i: int) -> tuple[str, int, str]:
    file, line, path = t.at(section)
    base = f"{t.at()[2]}.{section}" if t.at()[2] else section
    line = app.lines.get((file, f"{base}[{i}]"), line)
    return (file, line, f"{base}[{i}]")


def _check_rules(res: Resolved, t: ir.TableSpec, vt: Table, problems: Problems) -> None:
    roles = res.roles
    seen: set[str] = set()
    for rule in t.permissions:
        _check_role(rule, roles, problems)
        if rule.role in seen:
            problems.add(
                rule.at("role"), f"role `{rule.role}` already has a rule here; merge the two"
            )
        seen.add(rule.role)
    pairs: set[tuple[str, str]] = set()
    for rule in t.field_permissions:
        _check_role(rule, roles, problems)
        if rule.field not in vt.fields:
            problems.add(
                rule.at("field"),
                f"unknown field `{rule.field}`{did_you_mean(rule.field, vt.fields)}",
            )
        if (rule.field, rule.role) in pairs:
            problems.add(
                rule.at("role"),
                f"field `{rule.field}` already has a rule for role `{rule.role}`; merge the two",
            )
        pairs.add((rule.field, rule.role))


def _check_role(rule, roles: dict[str, str], problems: Problems) -> None:
    if rule.role == ADMIN_ROLE:
        problems.add(rule.at("role"), "administrators are not limited by rules; remove this rule")
    elif rule.role not in roles:
        problems.add(
            rule.at("role"),
            f"unknown role `{rule.role}`{did_you_mean(rule.role, roles)} "
            "(list it under `roles` in the app file)",
        )


def _check_views(t: ir.TableSpec, vt: Table, problems: Problems) -> None:
    keys: set[str] = set()
    for v in t.views:
        if v.key in keys:
            problems.add(v.at("key"), f"view `{v.key}` is defined twice")
        keys.add(v.key)
        for i, fk in enumerate(v.fields or []):
            if fk not in vt.fields:
                file, line, path = v.at("fields")
                problems.add(
                    (file, line, f"{path}[{i}]"),
                    f"unknown field `{fk}`{did_you_mean(fk, vt.fields)}",
                )
        for part in (v.sort or "").split(","):
            name = part.strip().lstrip("-+").strip()
            if part.strip() and name not in vt.fields:
                problems.add(v.at("sort"), f"unknown field `{name}`{did_you_mean(name, vt.fields)}")


def formula_checks(res: Resolved) -> list[tuple]:
    """Every formula of the app: (table key, what, source, expected type, field key, IR node,
    IR key). ``what`` names it in the plan and the stored map."""
    vs = res.virtual
    out: list[tuple] = []
    for t in res.app.tables:
        vt = vs.tables.get(t.key)
        if vt is None:
            continue
        for f in t.fields:
            if f.key not in vt.fields:
                continue
            if f.formula is not None and f.type == "formula":
                out.append((t.key, f"formula:{f.key}", f.formula, None, f.key, f, "formula"))
            if f.default is not None:
                vf = vt.fields[f.key]
                out.append(
                    (
                        t.key,
                        f"default:{f.key}",
                        f.default,
                        vf.ftype.formula_type(vf),
                        None,
                        f,
                        "default",
                    )
                )
        for i, v in enumerate(t.validations):
            out.append((t.key, f"validation:{i}", v.rule, ft.BOOLEAN, None, v, "rule"))
        if t.lock is not None:
            out.append((t.key, "lock", t.lock, ft.BOOLEAN, None, t, "lock"))
        for rule in t.permissions:
            for action in ("read", "create", "update", "delete"):
                src = getattr(rule, action)
                if src is not None:
                    out.append(
                        (
                            t.key,
                            f"permission:{rule.role}:{action}",
                            src,
                            ft.BOOLEAN,
                            None,
                            rule,
                            action,
                        )
                    )
        for rule in t.field_permissions:
            for action in ("read", "write"):
                src = getattr(rule, action)
                if src is not None:
                    what = f"field_permission:{rule.field}:{rule.role}:{action}"
                    out.append((t.key, what, src, ft.BOOLEAN, None, rule, action))
        for v in t.views:
            if v.filter is not None:
                out.append((t.key, f"view:{v.key}:filter", v.filter, ft.BOOLEAN, None, v, "filter"))
    return out


def _check_formulas(res: Resolved, problems: Problems) -> None:
    fs = res.virtual.formula_schema()
    for table_key, what, source, expected, field_key, node, key in formula_checks(res):
        file, line, path = node.at(key)
        line = res.app.lines.get((file, path), line)
        if fs.table(table_key) is None:
            continue
        try:
            F.check(source, fs, table_key, expected, field_key=field_key)
            res.stored[(table_key, what)] = F.to_stored(source, fs, table_key)
        except F.FormulaError as exc:
            for item in exc.errors:
                problems.add(
                    (file, line + item.line - 1, path),
                    item.message,
                    item.excerpt,
                )
