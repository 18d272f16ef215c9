"""The base of every field type: the registry, the conversion error and the
helpers that shape the messages a business user reads.

Kept apart from the families so each family module imports only this one.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ...formula import types as ft

if TYPE_CHECKING:
    from ..schema import Field

FIELD_TYPES: dict[str, FieldType] = {}

TEXT_MAX = 1_000  # default longest single-line text
LONG_TEXT_MAX = 100_000  # default longest long text
NUMBER_DIGITS = 28  # total digits a number or currency may have
SQLITE_DIGITS = 15  # significant digits SQLite keeps exactly (it stores numbers as floats)


class ConversionError(ValueError):
    """A value that does not fit the field; the message is shown to the user."""


def json_list_type() -> sa.types.TypeEngine:
    # none_as_null: a blank is SQL NULL (not the JSON text `null`), so IS NULL finds it
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


class FieldType:
    name: ClassVar[str] = ""
    storage: ClassVar[str] = "column"  # see cubebase.formula.schema
    writable: ClassVar[bool] = True  # users may set it
    system_column: ClassVar[str | None] = None  # fixed column name (created_at, ...)
    can_be_unique: ClassVar[bool] = True
    can_be_indexed: ClassVar[bool] = True  # ``indexed: true`` speeds up sorting and filtering
    config_keys: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            FIELD_TYPES[cls.name] = cls()

    # --- schema -------------------------------------------------------------
    def column_type(self, field: Field) -> sa.types.TypeEngine | None:
        raise NotImplementedError

    def check_config(self, config: dict) -> list[str]:
        """Problems with a field's settings (options, precision, ...)."""
        unknown = set(config) - self.config_keys - {"reverse_of", "related_name", "indexed"}
        problems = [f"unknown setting `{k}` for a {self.name} field" for k in sorted(unknown)]
        if "indexed" in config:
            if not isinstance(config["indexed"], bool):
                problems.append("indexed must be true or false")
            elif config["indexed"] and not self.can_be_indexed:
                problems.append(f"a {self.name} field cannot be indexed")
        return problems

    def formula_type(self, field: Field) -> ft.FType:
        raise NotImplementedError

    # --- values -------------------------------------------------------------
    def to_python(self, field: Field, value: Any) -> Any:
        """Input (JSON or Python) -> Python value; None stays None."""
        raise NotImplementedError

    def parse_text(self, field: Field, text: str) -> Any:
        """Text typed in a form or found in a CSV cell -> Python value."""
        text = text.strip()
        return None if text == "" else self.to_python(field, text)

    def to_db(self, field: Field, value: Any) -> Any:
        return value

    def from_db(self, field: Field, value: Any) -> Any:
        return value

    def reader(self, field: Field) -> Callable[[Any], Any] | None:
        """``from_db`` of one field as a function of the value, worked out once for
        the many rows of a list; None when the database value is the Python value."""
        if type(self).from_db is FieldType.from_db:
            return None
        from_db = self.from_db
        return lambda value: from_db(field, value)

    def to_json(self, field: Field, value: Any) -> Any:
        return value

    def writer(self, field: Field) -> Callable[[Any], Any] | None:
        """``to_json`` of one field as a function of the value, worked out once per
        table for the many values of a page (an API page of 50 records converts
        1,500 values); None when the Python value is already its JSON."""
        if type(self).to_json is FieldType.to_json:
            return None
        to_json = self.to_json
        return lambda value: to_json(field, value)

    def display(self, field: Field, value: Any) -> str:
        return "" if value is None else str(value)

    def is_blank(self, value: Any) -> bool:
        return value is None or value == "" or value == []

    def check_storable(self, field: Field, value: Any, dialect: str) -> None:
        """Raise ConversionError for a value this database could not keep exactly."""


def get_type(name: str) -> FieldType:
    return FIELD_TYPES[name]


def _decimal_text(d: Decimal) -> str:
    """A decimal in plain notation (never ``1E+3``): ``str`` of a ``Decimal`` is twice
    as fast as ``format(d, "f")`` and the same text unless it has an exponent."""
    if type(d) is not Decimal:
        return format(d, "f")
    text = str(d)
    return format(d, "f") if "E" in text else text


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _options(options: list[str]) -> str:
    shown = ", ".join(options[:10])
    return shown + (", …" if len(options) > 10 else "")
