"""Computed and automatic field types: formulas, autonumbers and the system
fields every table has (created/updated at/by)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...formula import types as ft
from .base import FieldType, _decimal_text
from .dates import DateTimeType
from .links import UserType
from .numbers import IntegerType

if TYPE_CHECKING:
    from ..schema import Field


class FormulaType(FieldType):
    name = "formula"
    can_be_indexed = False
    storage = "formula"
    writable = False
    can_be_unique = False
    config_keys = frozenset({"formula", "result_type", "stored"})

    def column_type(self, field: Field) -> sa.types.TypeEngine | None:
        """A column only for a stored formula (one that reads other tables, see
        ``materialized.py``), of the type the formula's SQL gives."""
        if not field.config.get("stored"):
            return None
        kind = field.config.get("result_type", "text").split(":")[0]
        return {
            "number": sa.Numeric(),
            "boolean": sa.Boolean(),
            "date": sa.Date(),
            "datetime": sa.DateTime(),
            "record": sa.Integer(),
        }.get(kind, sa.Text())

    def formula_type(self, field: Field) -> ft.FType:
        return ftype_from_name(field.config.get("result_type", "text"))

    def to_python(self, field: Field, value: Any) -> Any:
        return value

    def to_json(self, field: Field, value: Any) -> Any:
        return _json_scalar(value)

    def writer(self, field: Field) -> Callable[[Any], Any] | None:
        """By the formula's result type: text, true/false, record ids and lists are
        their own JSON, numbers and dates are written as text."""
        if type(self).to_json is not FormulaType.to_json:
            return super().writer(field)
        kind = field.config.get("result_type", "text").split(":")[0]
        if kind in ("text", "boolean", "record", "list"):
            return _json_if_needed
        return _json_scalar


class AutonumberType(FieldType):
    name = "autonumber"
    writable = False
    config_keys = frozenset({"prefix"})

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.BigInteger()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.NUMBER

    def to_python(self, field: Field, value: Any) -> Any:
        return IntegerType.to_python(self, field, value)  # type: ignore[arg-type]

    def display(self, field: Field, value: Any) -> str:
        return "" if value is None else f"{field.config.get('prefix', '')}{value}"


class CreatedAtType(DateTimeType):
    name = "created_at"
    writable = False
    system_column = "created_at"
    can_be_unique = False


class UpdatedAtType(CreatedAtType):
    name = "updated_at"
    system_column = "updated_at"


class CreatedByType(UserType):
    name = "created_by"
    writable = False
    system_column = "created_by"
    can_be_unique = False
    config_keys = frozenset()


class UpdatedByType(CreatedByType):
    name = "updated_by"
    system_column = "updated_by"


SYSTEM_FIELDS = (
    ("created_at", "Created at", "created_at"),
    ("created_by", "Created by", "created_by"),
    ("updated_at", "Updated at", "updated_at"),
    ("updated_by", "Updated by", "updated_by"),
)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _json_if_needed(value: Any) -> Any:
    """``_json_scalar`` for a formula whose values are their own JSON: one type test
    instead of three ``isinstance`` calls for each of a page's values."""
    if value is None or type(value) in _OWN_JSON:
        return value
    return _json_scalar(value)


_OWN_JSON = frozenset({str, bool, int, list})


def ftype_from_name(name: str | None) -> ft.FType:
    """A formula field's result type from its stored name (``number``, ``record:users``...)."""
    name = name or "text"
    if name.startswith("record:"):
        return ft.record_of(name.split(":", 1)[1])
    if name.startswith("list:"):
        item = name.split(":", 1)[1]
        return ft.list_of(ft.TEXT if item == "text" else ft.record_of(item))
    return {
        "number": ft.NUMBER,
        "text": ft.TEXT,
        "boolean": ft.BOOLEAN,
        "date": ft.DATE,
        "datetime": ft.DATETIME,
    }.get(name, ft.TEXT)
