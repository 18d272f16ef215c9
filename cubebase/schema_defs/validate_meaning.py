"""The app's meaning against the schema it would make: links, display fields, rules and
their roles, views, indexes, starting rows and every formula (checked with the formula
checker's message and caret, and kept in their stored form for the plan); part of
``validate.resolve``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from .. import formula as F
from ..formula import types as ft
from ..platform.actor import ADMIN_ROLE
from ..platform.fieldtypes import ConversionError
from ..platform.schema import USERS, Field, Schema, Table
from . import ir
from .errors import Problems
from .indexes import check_indexes
from .loader import did_you_mean
from .resolved import Resolved


def check_meaning(res: Resolved, problems: Problems) -> None:
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
