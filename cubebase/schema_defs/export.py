"""The live schema back to app files: live tables -> IR -> YAML.

Keys come out in the IR's declaration order and settings at their defaults are
left out, so the same schema always gives the same bytes; formulas are shown
with today's field names. Fields are written one per line as flow mappings
(``- {key: name, type: text}``) when short enough, in form order. Seed and demo
records are data, not schema: they are not exported. Workflows come out as their
current version, one workflow file each in ``workflows/``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..platform import formulas
from ..platform.models import Role
from ..platform.schema import USERS, Field, Schema, Table
from . import ir
from .automations_plan import live_automations
from .indexes import live_indexes
from .loader import WORKFLOWS_DIR
from .reports import live_dashboards, live_reports
from .users_rules import add_users_rules
from .validate import APP_FIELDS, app_tables, app_user_fields

FLOW_WIDTH = 100


def default_label(key: str, *, table: bool = False) -> str:
    text = key.replace("_", " ")
    return text.title() if table else text.capitalize()


def live_field(schema: Schema, table: Table, f: Field) -> ir.FieldSpec:
    cfg = f.config
    spec = ir.FieldSpec(key=f.key, type=f.type)  # type: ignore[arg-type]
    if f.label != default_label(f.key):
        spec.label = f.label
    spec.required = f.required
    spec.unique = f.unique
    spec.indexed = bool(cfg.get("indexed"))
    spec.default = formulas.display(schema, table.key, f.default) if f.default else None
    spec.help = f.help or None
    for name in ("options", "precision", "currency", "max_length", "prefix"):
        if cfg.get(name) not in (None, ""):  # "" is how a cleared prefix is kept
            setattr(spec, name, cfg[name])
    if f.type == "link":
        spec.to = f.target_key
        spec.many = bool(cfg.get("many"))
    if f.type in ("link", "user"):
        spec.related_name = cfg.get("related_name")
    if f.type == "formula":
        spec.formula = formulas.display(schema, table.key, cfg.get("formula"))
    return spec


def exported_fields(table: Table, only: list[str] | None = None) -> list[Field]:
    """The fields a file declares, in form order; with ``only``, those fields in the
    order of ``only`` (the users table: the order the app's file gave them, which the
    users table's own field order does not keep, since several apps share it and a link
    field is added once its target table exists)."""
    out = [
        f
        for f in table.fields.values()
        if not f.system and f.link_kind not in ("reverse", "reverse_many")
    ]
    if only is not None:
        by_key = {f.key: f for f in out}
        out = [by_key[k] for k in only if k in by_key]
    return out


def live_table(
    schema: Schema, table: Table, *, only_fields: list[str] | None = None
) -> ir.TableSpec:
    key = table.key
    spec = ir.TableSpec(key=key)
    show = lambda stored: formulas.display(schema, key, stored)  # noqa: E731
    spec.fields = [live_field(schema, table, f) for f in exported_fields(table, only_fields)]
    if table.system:
        return spec
    if table.label != default_label(key, table=True):
        spec.label = table.label
    spec.display = table.display_field
    cfg = table.config
    spec.validations = [
        ir.ValidationDef(rule=show(v["rule"]), message=v["message"])
        for v in cfg.get("validations") or []
    ]
    spec.lock = show(cfg.get("lock")) if cfg.get("lock") else None
    spec.permissions = [
        ir.RowPermission(
            role=r["role"],
            **{a: show(r[a]) for a in ("read", "create", "update", "delete") if r.get(a)},
        )
        for r in cfg.get("permissions") or []
    ]
    spec.field_permissions = [
        ir.FieldPermission(
            field=f.key, role=r["role"], **{a: show(r[a]) for a in ("read", "write") if r.get(a)}
        )
        for f in table.fields.values()
        for r in f.config.get("permissions") or []
    ]
    spec.views = [
        ir.ViewDef(
            key=v["key"],
            label=v.get("label"),
            fields=v.get("fields"),
            filter=show(v["filter"]) if v.get("filter") else None,
            sort=v.get("sort"),
        )
        for v in cfg.get("views") or []
    ]
    spec.indexes = live_indexes(table)
    return spec


def live_app(schema: Schema, session, app_key: str | None) -> ir.AppSpec:
    """The live schema as an app: the tables of ``app_key`` (None: every table) and the
    users fields the app added."""
    import sqlalchemy as sa

    roles_q = sa.select(Role).order_by(Role.id)
    if app_key is not None:
        roles_q = roles_q.where(Role.app == app_key)
    roles = [
        ir.RoleDef(
            key=r.key, label=None if r.label == default_label(r.key, table=True) else r.label
        )
        for r in session.scalars(roles_q)
        if r.key != "admin"
    ]
    if app_key is None:
        tables = [t for t in schema.tables.values() if not t.system]
        user_fields = _all_user_fields(schema)
    else:
        tables = app_tables(schema, app_key)
        user_fields = app_user_fields(schema, app_key)
    specs = []
    if user_fields:
        specs.append(live_table(schema, schema.table(USERS), only_fields=user_fields))
    add_users_rules(specs, schema, app_key, [r.key for r in roles])
    specs += [live_table(schema, t) for t in tables]
    workflows = live_workflows(schema, session, app_key)
    automations = live_automations(schema, session, app_key)
    reports = live_reports(schema, session, app_key)
    dashboards = live_dashboards(session, app_key)
    if app_key is None:  # every table: named after their app when they share one
        owners = {t.app for t in tables} - {None}
        app_key = owners.pop() if len(owners) == 1 else "app"
    return ir.AppSpec(
        app=app_key,
        roles=roles,
        tables=specs,
        workflows=workflows,
        automations=automations,
        reports=reports,
        dashboards=dashboards,
    )


def live_workflows(schema: Schema, session, app_key: str | None) -> list[ir.WorkflowSpec]:
    """The current version of each workflow of ``app_key`` (None: every workflow), back
    in the IR (cubebase.workflows is imported here, not at the top: it imports
    schema_defs)."""
    import sqlalchemy as sa

    from ..workflows.definitions import to_spec
    from ..workflows.models import Workflow, WorkflowVersion

    q = (
        sa.select(Workflow.table_key, WorkflowVersion.definition)
        .join(
            WorkflowVersion,
            sa.and_(
                WorkflowVersion.workflow_id == Workflow.id,
                WorkflowVersion.version == Workflow.current_version,
            ),
        )
        .order_by(Workflow.key)
    )
    if app_key is not None:
        q = q.where(Workflow.app == app_key)
    out = []
    for table_key, definition in session.execute(q):
        if not schema.has_table(table_key):
            continue  # its table is gone: nothing it could run on
        out.append(
            to_spec(definition, lambda stored, t=table_key: formulas.display(schema, t, stored))
        )
    return out


def _all_user_fields(schema: Schema) -> list[str]:
    """Every users field not built in: each app's in the order its file gave them (as
    recorded), then any other in form order."""
    if not schema.has_table(USERS):
        return []
    from .validate import BUILTIN_USER_FIELDS

    users = schema.table(USERS)
    live = [f.key for f in exported_fields(users) if f.key not in BUILTIN_USER_FIELDS]
    recorded = [k for keys in (users.config.get(APP_FIELDS) or {}).values() for k in keys]
    out = list(dict.fromkeys(k for k in recorded if k in live))
    return out + [k for k in live if k not in out]


# --- IR -> plain data -> YAML ---------------------------------------------------------


class _Flow(dict):
    """A mapping written on one line."""


def _flow_representer(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, _flow_representer)
_Dumper.add_representer(str, _str_representer)


def to_data(node: Any) -> Any:
    """An IR object as plain data in declaration order, defaults left out."""
    if dataclasses.is_dataclass(node):
        out = {}
        for f in ir.ir_fields(type(node)):
            value = getattr(node, f.name)
            if value is None or value == [] or value == ir.default_of(f):
                continue  # (a flag is written when it differs from its default)
            if ir.marker(ir.unwrap_optional(ir.hints(type(node))[f.name])[0]) is ir.RULE:
                value = {"TRUE": True, "FALSE": False}.get(value, value)
            out[ir.yaml_key(f)] = to_data(value)
        shorthand = getattr(type(node), "__shorthand__", None)
        if shorthand and list(out) == [shorthand]:
            return out[shorthand]
        return out
    if isinstance(node, list):
        return [to_data(v) for v in node]
    return node


def _flowed(data: Any, depth: int = 0) -> Any:
    """Short mappings inside lists are written on one line."""
    if isinstance(data, dict):
        return {k: _flowed(v, depth + 1) for k, v in data.items()}
    if isinstance(data, list):
        out = []
        for item in data:
            if isinstance(item, dict) and _short(item):
                out.append(_Flow(item))
            else:
                out.append(_flowed(item, depth + 1))
        return out
    return data


def _short(item: dict) -> bool:
    if any(isinstance(v, dict) or (isinstance(v, str) and "\n" in v) for v in item.values()):
        return False
    text = yaml.dump(item, Dumper=_Dumper, default_flow_style=True, width=10_000, sort_keys=False)
    return len(text) <= FLOW_WIDTH


def dump(data: Any) -> str:
    return yaml.dump(
        _flowed(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=FLOW_WIDTH
    )


def app_files(app: ir.AppSpec) -> dict[str, str]:
    """File name -> text: ``app.yaml`` (app, roles, the users fields), one file per table
    and one workflow file per workflow in ``workflows/``."""
    head = to_data(
        dataclasses.replace(app, tables=[t for t in app.tables if t.key == USERS], workflows=[])
    )
    files = {"app.yaml": dump(head)}
    for t in app.tables:
        if t.key == USERS:
            continue
        name = f"{t.key}.yaml" if t.key != "app" else "app_table.yaml"
        files[name] = dump(to_data(t))
    for wf in app.workflows:
        files[f"{WORKFLOWS_DIR}/{wf.key}.yaml"] = dump(to_data(ir.WorkflowFile(workflows=[wf])))
    return files


def write_app(app: ir.AppSpec, out: Path) -> list[Path]:
    """Write the app's files into ``out`` (created when missing); other .yaml files there
    and in its ``workflows/`` are removed, so the folder is exactly the app."""
    out.mkdir(parents=True, exist_ok=True)
    files = app_files(app)
    for folder in (out, out / WORKFLOWS_DIR):
        if not folder.is_dir():
            continue
        for old in folder.iterdir():
            name = old.relative_to(out).as_posix()
            if old.suffix in (".yaml", ".yml") and old.is_file() and name not in files:
                old.unlink()
    written = []
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


__all__ = ["APP_FIELDS", "app_files", "live_app", "live_table", "write_app"]
