"""The app format's single source of truth: typed dataclasses (the IR).

The YAML loader builds these classes by walking their annotations (so a key the
classes do not declare is an error), the exporter writes them back in their
declaration order, and ``json_schema()`` derives the JSON Schema committed as
``app-format.schema.json`` (a test checks the two are equal). Adding a key means
adding one dataclass field to its class, with its ``doc``.

Annotations understood by the walkers: ``str``, ``int``, ``bool``, ``Any``,
``Literal[...]``, ``list[T]``, ``T | None``, ``dict[str, Any]`` (plain values) and
``dict[str, T]`` (each value a T), the marked
strings ``Key`` and ``Formula`` (``Rule``: a formula or true/false), and nested IR
dataclasses (a class with ``__shorthand__`` also accepts a bare string for
that field, as ``roles: [sales]`` for ``roles: [{key: sales}]``).

The classes live in modules by concept, all imported from here (the import path
every other module uses): ``ir_base`` (the marked strings, ``doc``, ``IRNode`` and
the annotation walkers), ``ir_tables`` (tables, fields, rules, roles, views,
indexes), ``ir_workflows``, ``ir_automations`` and ``ir_reports`` (reports and
dashboards). This module holds the top of an app file (``AppSpec``) and the JSON
Schema.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .ir_automations import AutomationActionSpec, AutomationSpec, NotifySpec, SendReportSpec
from .ir_base import (
    FORMULA,
    KEY,
    KEY_PATTERN,
    RULE,
    Formula,
    IRNode,
    Key,
    Rule,
    _Marker,
    _where,
    default_of,
    doc,
    hints,
    ir_fields,
    is_required,
    marker,
    unwrap_optional,
    yaml_key,
)
from .ir_reports import ChartName, DashboardItemSpec, DashboardSpec, ReportSpec
from .ir_tables import (
    CALCULATED,
    COMMON_FIELD_KEYS,
    NOT_INDEXABLE,
    NOT_UNIQUE,
    REQUIRED_SETTINGS,
    TYPE_SETTINGS,
    FieldPermission,
    FieldSpec,
    FieldTypeName,
    IndexDef,
    RoleDef,
    RowPermission,
    TableSpec,
    ValidationDef,
    ViewDef,
)
from .ir_workflows import (
    ActionSpec,
    EscalationSpec,
    RouteSpec,
    StartSpec,
    StepSpec,
    WorkflowFile,
    WorkflowSpec,
)

__all__ = [
    "CALCULATED",
    "COMMON_FIELD_KEYS",
    "FORMULA",
    "IR_CLASSES",
    "KEY",
    "KEY_PATTERN",
    "LATER_SECTIONS",
    "NOT_INDEXABLE",
    "NOT_UNIQUE",
    "REQUIRED_SETTINGS",
    "RULE",
    "SCHEMA_ID",
    "TYPE_SETTINGS",
    "ActionSpec",
    "AppSpec",
    "AutomationActionSpec",
    "AutomationSpec",
    "ChartName",
    "DashboardItemSpec",
    "DashboardSpec",
    "EscalationSpec",
    "FieldPermission",
    "FieldSpec",
    "FieldTypeName",
    "Formula",
    "IRNode",
    "IndexDef",
    "Key",
    "NotifySpec",
    "ReportSpec",
    "RoleDef",
    "RouteSpec",
    "RowPermission",
    "Rule",
    "SendReportSpec",
    "StartSpec",
    "StepSpec",
    "TableSpec",
    "ValidationDef",
    "ViewDef",
    "WorkflowFile",
    "WorkflowSpec",
    "_Marker",
    "default_of",
    "doc",
    "hints",
    "ir_fields",
    "is_required",
    "json_schema",
    "marker",
    "unwrap_optional",
    "yaml_key",
]

# Sections of later issues: reserved keys, accepted only empty for now.
LATER_SECTIONS: tuple[str, ...] = ()


@dataclass
class AppSpec(IRNode):
    """An app: the top of an app file (its tables may also live in files of their own)."""

    app: Key = doc("the app's key; tables created by the app belong to it")
    roles: list[RoleDef] = doc("roles the app uses (created when missing)", default_factory=list)
    tables: list[TableSpec] = doc("the app's tables", default_factory=list)
    workflows: list[WorkflowSpec] = doc(
        "the app's workflows (also in workflow files: `workflows:` at their top)",
        default_factory=list,
    )
    automations: list[AutomationSpec] = doc(
        "automations: actions on record events or schedules (docs/automations.md)",
        default_factory=list,
    )
    reports: list[ReportSpec] = doc(
        "reports: summaries and lists of a table, run as the viewer (docs/reports.md)",
        default_factory=list,
    )
    dashboards: list[DashboardSpec] = doc(
        "dashboards: reports as charts, tables and numbers", default_factory=list
    )
    where: dict = _where()
    lines: dict = _where()  # (file, key path) -> line: formulas and seed rows


# --- the JSON Schema -------------------------------------------------------------------

SCHEMA_ID = "https://cubebase.dev/schemas/app-format.schema.json"
IR_CLASSES = (
    RoleDef,
    FieldSpec,
    ValidationDef,
    RowPermission,
    FieldPermission,
    ViewDef,
    IndexDef,
    TableSpec,
    StartSpec,
    RouteSpec,
    ActionSpec,
    EscalationSpec,
    StepSpec,
    WorkflowSpec,
    WorkflowFile,
    NotifySpec,
    SendReportSpec,
    AutomationActionSpec,
    AutomationSpec,
    ReportSpec,
    DashboardItemSpec,
    DashboardSpec,
)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an app file, derived from the IR dataclasses."""
    defs = {cls.__name__: _class_schema(cls) for cls in IR_CLASSES}
    app = _class_schema(AppSpec)
    app["required"] = ["app"]
    table_file = {"$ref": "#/$defs/TableSpec"}
    workflow_file = {"$ref": "#/$defs/WorkflowFile"}
    defs["WorkflowFile"]["required"] = ["workflows"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Cubebase app file",
        "description": (
            "An app file (with `app:`), a table file (one table at the top level) or a "
            "workflow file (`workflows:` at the top level). "
            "Generated from cubebase/schema_defs/ir.py: do not edit by hand."
        ),
        "oneOf": [app, table_file, workflow_file],
        "$defs": defs,
    }


def _class_schema(cls: type) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required = []
    for f in ir_fields(cls):
        tp = hints(cls)[f.name]
        schema = _type_schema(tp)
        if f.name in LATER_SECTIONS and cls is AppSpec:
            schema = {"type": "array", "maxItems": 0}
        schema = {"description": f.metadata.get("doc", ""), **schema}
        d = default_of(f)
        if dataclasses.is_dataclass(d) and getattr(d, "__shorthand__", None):
            d = getattr(d, d.__shorthand__)  # e.g. `start: manual`
        if d is not dataclasses.MISSING and d not in (None, []):
            schema["default"] = d
        props[yaml_key(f)] = schema
        if is_required(f):
            required.append(yaml_key(f))
    out: dict[str, Any] = {
        "type": "object",
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    if cls is FieldSpec:
        out["allOf"] = _type_rules()
    shorthand = getattr(cls, "__shorthand__", None)
    if shorthand:
        return {"anyOf": [_type_schema(hints(cls)[shorthand]), out]}
    return out


def _type_rules() -> list[dict[str, Any]]:
    """Per field type: the settings it needs and the ones it does not take."""
    settings = set().union(*TYPE_SETTINGS.values())
    rules = []
    for tname, allowed in TYPE_SETTINGS.items():
        then: dict[str, Any] = {"properties": {k: False for k in sorted(settings - allowed)}}
        if tname in REQUIRED_SETTINGS:
            then["required"] = list(REQUIRED_SETTINGS[tname])
        rules.append({"if": {"properties": {"type": {"const": tname}}}, "then": then})
    return rules


def _type_schema(tp: Any) -> dict[str, Any]:
    inner, optional = unwrap_optional(tp)
    if optional:
        s = _type_schema(inner)
        return {"anyOf": [s, {"type": "null"}]}
    m = marker(tp)
    if m is KEY:
        return {"type": "string", "pattern": KEY_PATTERN}
    if m is FORMULA:
        return {"type": "string", "minLength": 1}
    if m is RULE:
        return {"type": ["string", "boolean"]}
    origin = typing.get_origin(tp)
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0])}
    if origin is dict:
        value = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        if value is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": _type_schema(value)}
    if tp is Any:
        return {}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if dataclasses.is_dataclass(tp):
        return {"$ref": f"#/$defs/{tp.__name__}"}
    raise TypeError(f"no JSON Schema for {tp!r}")  # pragma: no cover - a new annotation kind
