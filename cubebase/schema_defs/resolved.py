"""What checking an app yields and every part of the check shares: ``Resolved`` (the app
matched to the live schema, and the schema it would make), the app's tables and
users fields as the live schema records them, and a field's settings as the platform
keeps them. Split out of ``validate`` so the check's parts (``validate_match``,
``validate_virtual``, ``validate_meaning``) import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..platform.fieldtypes import SYSTEM_FIELDS
from ..platform.schema import USERS, Field, Schema, Table
from ..platform.users import USERS_FIELDS
from . import ir

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


def platform_config(f: ir.FieldSpec) -> dict[str, Any]:
    """The field's type settings as the platform keeps them (without the link target)."""
    out: dict[str, Any] = {}
    for name in ("options", "precision", "currency", "max_length", "prefix"):
        if getattr(f, name) is not None:
            out[name] = getattr(f, name)
    if f.indexed:
        out["indexed"] = True
    return out
