"""Date field types: date, and date and time (kept in UTC)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...formula import types as ft
from .base import ConversionError, FieldType, _clip, _describe

if TYPE_CHECKING:
    from ..schema import Field


class DateType(FieldType):
    name = "date"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Date()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.DATE

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime):
            raise ConversionError("expected a date without a time")
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ConversionError(f"`{_clip(value)}` is not a date (YYYY-MM-DD)") from None
        raise ConversionError(f"expected a date, got {_describe(value)}")

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def writer(self, field: Field) -> Callable[[Any], Any] | None:
        return _date_json if type(self).to_json is DateType.to_json else super().writer(field)


class DateTimeType(FieldType):
    name = "datetime"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.DateTime(timezone=True)

    def formula_type(self, field: Field) -> ft.FType:
        return ft.DATETIME

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise ConversionError(
                    f"`{_clip(value)}` is not a date and time (ISO 8601, e.g. 2026-05-01T09:30:00Z)"
                ) from None
        if not isinstance(value, datetime):
            raise ConversionError(f"expected a date and time, got {_describe(value)}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=field.timezone)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ConversionError("is too close to the year 1 or 9999 to be stored") from None

    def to_db(self, field: Field, value: Any) -> Any:
        return value

    def from_db(self, field: Field, value: Any) -> Any:
        return _utc(value)

    def reader(self, field: Field) -> Callable[[Any], Any] | None:
        return _utc if type(self).from_db is DateTimeType.from_db else super().reader(field)

    def to_json(self, field: Field, value: Any) -> Any:
        return _datetime_json(value)

    def writer(self, field: Field) -> Callable[[Any], Any] | None:
        if type(self).to_json is not DateTimeType.to_json:
            return super().writer(field)
        return _datetime_json


def _utc(value: Any) -> Any:
    """A date and time read from the database, in UTC (SQLite gives it naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date_json(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _datetime_json(value: Any) -> Any:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
