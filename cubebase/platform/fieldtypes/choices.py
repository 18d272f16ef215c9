"""Choice field types: one option (select) or several (multi-select)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...formula import types as ft
from .base import ConversionError, FieldType, _clip, _describe, _options, json_list_type

if TYPE_CHECKING:
    from ..schema import Field


class SelectType(FieldType):
    name = "select"
    config_keys = frozenset({"options"})

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(200)

    def formula_type(self, field: Field) -> ft.FType:
        return ft.TEXT

    def check_config(self, config: dict) -> list[str]:
        problems = super().check_config(config)
        opts = config.get("options")
        if not isinstance(opts, list) or not opts:
            problems.append("needs a list of options")
        elif not all(isinstance(o, str) and o.strip() and len(o) <= 200 for o in opts):
            problems.append("options must be non-empty texts of at most 200 characters")
        elif len(set(opts)) != len(opts):
            problems.append("options must not repeat")
        return problems

    def options(self, field: Field) -> list[str]:
        return list(field.config.get("options") or [])

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConversionError(f"expected one of the options, got {_describe(value)}")
        if value not in self.options(field):
            raise ConversionError(
                f"`{_clip(value)}` is not one of the options ({_options(self.options(field))})"
            )
        return value


class MultiSelectType(SelectType):
    name = "multi_select"
    can_be_indexed = False
    storage = "json_list"
    can_be_unique = False

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return json_list_type()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.list_of(ft.TEXT)

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise ConversionError(f"expected a list of options, got {_describe(value)}")
        result: list[str] = []
        for v in value:
            one = SelectType.to_python(self, field, v)
            if one not in result:
                result.append(one)
        return result

    def parse_text(self, field: Field, text: str) -> Any:
        return self.to_python(field, [p.strip() for p in text.split(",") if p.strip()])

    def to_db(self, field: Field, value: Any) -> Any:
        return value or None

    def from_db(self, field: Field, value: Any) -> Any:
        if value is None:
            return []
        return json.loads(value) if isinstance(value, str) else list(value)

    def display(self, field: Field, value: Any) -> str:
        return ", ".join(value or [])
