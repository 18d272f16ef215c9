"""Tables and their fields, as the caller may see them."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ...platform.formulas import display
from ...platform.schema import Field, Schema, Table
from . import bp
from .visibility import service, visible_fields, visible_table, visible_tables

# field settings a caller may see (permission rules and internal ids stay out)
FIELD_SETTINGS = (
    "options",
    "precision",
    "currency",
    "max_length",
    "many",
    "related_name",
    "prefix",
    "indexed",
    "result_type",
)


def describe_field(schema: Schema, table: Table, f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"key": f.key, "label": f.label, "type": f.type}
    if f.target_key:
        out["to"] = f.target_key
    for name in FIELD_SETTINGS:
        if name in f.config and f.config[name] is not None:
            out[name] = f.config[name]
    if f.type == "formula" and f.config.get("formula"):
        out["formula"] = display(schema, table.key, f.config["formula"])
    if f.link_kind in ("reverse", "reverse_many"):
        out["reverse"] = True
    for name in ("required", "unique", "system"):
        if getattr(f, name):
            out[name] = True
    if f.default:
        out["default"] = display(schema, table.key, f.default)
    if f.help:
        out["help"] = f.help
    out["read_only"] = not f.writable
    return out


def describe_table(
    schema: Schema, table: Table, fields: list[Field] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": table.key,
        "label": table.label,
        "display_field": table.display_field,
        "app": table.app,
        "system": table.system,
    }
    if fields is not None:
        out["fields"] = [describe_field(schema, table, f) for f in fields]
    return out


@bp.get("/tables")
def list_tables():
    svc = service()
    return jsonify({"tables": [describe_table(svc.schema, t) for t in visible_tables(svc)]})


@bp.get("/tables/<table>")
def get_table(table: str):
    svc = service()
    t = visible_table(svc, table)
    return jsonify(describe_table(svc.schema, t, visible_fields(svc, t)))
