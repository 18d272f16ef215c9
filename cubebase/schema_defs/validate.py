"""Checking an app's meaning against the live schema, before anything is applied.

``resolve`` matches the app's tables and fields to the live ones (by key, or by
``renamed_from``), builds the schema the app *would* make (a ``Schema`` snapshot
from metadata rows that are never saved: live ids for what exists, fresh ids for
what is new), and checks every formula, rule, link, role and setting against it,
so a formula may use a table the same app creates. Every problem is collected and
reported at once with its file, line and key; formula errors carry the formula
checker's message and caret.

This module keeps the entry point and the checks of form (keys, settings,
duplicates); the parts live beside it: ``validate_match`` (matching to the live
schema), ``validate_virtual`` (the schema the app would make), ``validate_meaning``
(links, rules, views, seeds, formulas) and ``resolved`` (``Resolved`` and what they
share). The names callers import from here are re-exported.
"""

from __future__ import annotations

import dataclasses

from ..platform.actor import ADMIN_ROLE
from ..platform.fieldtypes import FIELD_TYPES
from ..platform.schema import USERS, Schema
from ..platform.schema_changes import RESERVED_KEYS
from . import ir
from .automations_plan import check_app_automations
from .errors import Problems
from .reports import check_reports
from .resolved import (
    APP_FIELDS,
    BUILTIN_USER_FIELDS,
    SYSTEM_FIELD_KEYS,
    Resolved,
    app_tables,
    app_user_fields,
)
from .resolved import platform_config as _platform_config
from .users_rules import check_users_rules
from .validate_match import match_live
from .validate_meaning import (
    check_meaning,
    formula_checks,
    plain_value,
    res_field_id,
    seed_value_problem,
)
from .validate_virtual import virtual_schema

# the names callers import from here (plan, export, reports), wherever they now live
__all__ = [
    "APP_FIELDS",
    "BUILTIN_USER_FIELDS",
    "SETTINGS",
    "SYSTEM_FIELD_KEYS",
    "Resolved",
    "_platform_config",
    "app_tables",
    "app_user_fields",
    "formula_checks",
    "plain_value",
    "res_field_id",
    "resolve",
    "seed_value_problem",
]


def resolve(app: ir.AppSpec, live: Schema, live_roles: dict[str, str]) -> Resolved:
    """Check the app against the live schema; AppFileError lists every problem."""
    problems = Problems()
    _check_shape(app, live, problems)
    app = _first_of_each(app)  # a key defined twice is reported; the first one is checked
    res = match_live(app, live, live_roles, problems)
    res.virtual = virtual_schema(res)
    check_meaning(res, problems)
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
