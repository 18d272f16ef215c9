"""Link field types: links to records of another table, and users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...formula import types as ft
from .base import ConversionError, FieldType, _describe

if TYPE_CHECKING:
    from ..schema import Field


class LinkType(FieldType):
    """A link to rows of another table: many-to-one (a foreign-key column) or,
    with ``many: true``, many-to-many (a junction table). A field with
    ``reverse_of`` is the read-only other side, named by ``related_name``."""

    name = "link"
    can_be_unique = True
    config_keys = frozenset({"to", "many", "related_name", "reverse_of", "on_delete"})

    def kind(self, field: Field) -> str:
        if field.config.get("reverse_of"):
            return "reverse_many" if field.config.get("many") else "reverse"
        return "many" if field.config.get("many") else "one"

    def column_type(self, field: Field) -> sa.types.TypeEngine | None:
        return sa.Integer() if self.kind(field) == "one" else None

    def formula_type(self, field: Field) -> ft.FType:
        target = field.target_key
        rec = ft.record_of(target)
        return rec if self.kind(field) == "one" else ft.list_of(rec)

    def to_python(self, field: Field, value: Any) -> Any:
        if self.kind(field) == "one":
            return _record_id(value)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise ConversionError(f"expected a list of record ids, got {_describe(value)}")
        ids: list[int] = []
        for v in value:
            rid = _record_id(v)
            if rid is not None and rid not in ids:
                ids.append(rid)
        return sorted(ids)  # a set of links: stored and read back in id order

    def parse_text(self, field: Field, text: str) -> Any:
        text = text.strip()
        if self.kind(field) == "one":
            return None if not text else _record_id(text)
        return self.to_python(field, [p.strip() for p in text.split(",") if p.strip()])

    def is_blank(self, value: Any) -> bool:
        return value is None or value == []


class UserType(LinkType):
    name = "user"
    config_keys = frozenset({"related_name", "on_delete"})

    def kind(self, field: Field) -> str:
        return "one"

    def formula_type(self, field: Field) -> ft.FType:
        return ft.USER


def _record_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if isinstance(value, bool):
        raise ConversionError("expected a record id, got true/false")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0 or value >= 2**63:
        raise ConversionError(f"expected a record id, got {_describe(value)}")
    return value
