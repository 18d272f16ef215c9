"""Number-like field types: number, currency, whole number, and yes/no."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...formula import types as ft
from .base import (
    NUMBER_DIGITS,
    SQLITE_DIGITS,
    ConversionError,
    FieldType,
    _clip,
    _decimal_text,
    _describe,
)

if TYPE_CHECKING:
    from ..schema import Field


class NumberType(FieldType):
    name = "number"
    default_precision: int | None = None
    config_keys = frozenset({"precision"})

    def precision(self, field: Field) -> int | None:
        p = field.config.get("precision", self.default_precision)
        return None if p is None else int(p)

    def check_config(self, config: dict) -> list[str]:
        problems = super().check_config(config)
        p = config.get("precision")
        if p is not None and (not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 10):
            problems.append("precision must be a whole number from 0 to 10")
        return problems

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        p = self.precision(field)
        return sa.Numeric(NUMBER_DIGITS, 10 if p is None else p, asdecimal=True)

    def formula_type(self, field: Field) -> ft.FType:
        return ft.NUMBER

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ConversionError("expected a number, got true/false")
        if isinstance(value, int | Decimal):
            d = Decimal(value)
        elif isinstance(value, float):
            d = Decimal(repr(value))
        elif isinstance(value, str):
            try:
                d = Decimal(value.strip().replace(",", ""))
            except InvalidOperation:
                raise ConversionError(f"`{_clip(value)}` is not a number") from None
        else:
            raise ConversionError(f"expected a number, got {_describe(value)}")
        if not d.is_finite():
            raise ConversionError("must be a finite number")
        p = self.precision(field)
        scale = 10 if p is None else p
        if d and d.adjusted() >= NUMBER_DIGITS - scale:
            raise _too_large(scale)  # checked first: rounding 1e100 to the scale would overflow
        d = d.quantize(_quantum(scale), rounding=ROUND_HALF_UP)
        if d and d.adjusted() >= NUMBER_DIGITS - scale:
            raise _too_large(scale)
        if not d:
            d = d.copy_abs()  # -0.000 is 0.000 (the databases drop the sign)
        return d.normalize() if p is None else d

    def check_storable(self, field: Field, value: Any, dialect: str) -> None:
        # SQLite keeps numbers as 8-byte floats: beyond 15 significant digits the
        # value would silently come back different, so refuse it instead.
        if dialect == "sqlite" and value is not None and value:
            digits = len(value.normalize().as_tuple().digits)
            if digits > SQLITE_DIGITS:
                raise ConversionError(
                    f"has too many digits to be stored exactly ({digits}; at most "
                    f"{SQLITE_DIGITS} significant digits)"
                )

    def from_db(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        p = self.precision(field)
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
        return (
            d.quantize(Decimal(1).scaleb(-p), rounding=ROUND_HALF_UP)
            if p is not None
            else d.normalize()
        )

    def reader(self, field: Field) -> Callable[[Any], Any] | None:
        p = self.precision(field)
        if p is None or type(self).from_db is not NumberType.from_db:
            return super().reader(field)
        quantum = Decimal(1).scaleb(-p)

        def read(value: Any) -> Any:  # from_db with the quantum worked out once
            if value is None:
                return None
            d = value if isinstance(value, Decimal) else Decimal(str(value))
            return d.quantize(quantum, rounding=ROUND_HALF_UP)

        return read

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else _decimal_text(value)

    def writer(self, field: Field) -> Callable[[Any], Any] | None:
        if type(self).to_json is not NumberType.to_json:
            return super().writer(field)
        return _number_json

    def display(self, field: Field, value: Any) -> str:
        if value is None:
            return ""
        p = self.precision(field)
        return f"{value:,.{p}f}" if p is not None else _decimal_text(value)


class CurrencyType(NumberType):
    name = "currency"
    default_precision = 2
    config_keys = frozenset({"precision", "currency"})


class IntegerType(FieldType):
    name = "integer"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.BigInteger()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.NUMBER

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ConversionError("expected a whole number, got true/false")
        if isinstance(value, int):
            result = value
        else:
            d = (
                NumberType().to_python(field, value)
                if isinstance(value, str | float | Decimal)
                else None
            )
            if d is None:
                raise ConversionError(f"expected a whole number, got {_describe(value)}")
            if d != d.to_integral_value():
                raise ConversionError(f"`{_clip(str(value))}` is not a whole number")
            result = int(d)
        if not -(2**63) < result < 2**63:
            raise ConversionError("is too large for a whole number field")
        return result

    def to_json(self, field: Field, value: Any) -> Any:
        return value

    def writer(self, field: Field) -> Callable[[Any], Any] | None:
        return None if type(self).to_json is IntegerType.to_json else super().writer(field)


class BooleanType(FieldType):
    name = "boolean"
    can_be_unique = False
    truthy = {"true", "yes", "y", "1", "x", "on"}
    falsy = {"false", "no", "n", "0", "off"}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Boolean()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.BOOLEAN

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        raise ConversionError(f"expected true or false, got {_describe(value)}")

    def parse_text(self, field: Field, text: str) -> Any:
        t = text.strip().lower()
        if t == "":
            return None
        if t in self.truthy:
            return True
        if t in self.falsy:
            return False
        raise ConversionError(f"`{_clip(text)}` is not yes/no")

    def display(self, field: Field, value: Any) -> str:
        return "" if value is None else ("Yes" if value else "No")


_QUANTA = {scale: Decimal(1).scaleb(-scale) for scale in range(11)}


def _quantum(scale: int) -> Decimal:
    """``Decimal(1).scaleb(-scale)``, made once per scale (0 to 10)."""
    q = _QUANTA.get(scale)
    return q if q is not None else Decimal(1).scaleb(-scale)


def _too_large(scale: int) -> ConversionError:
    return ConversionError(
        f"is too large (at most {NUMBER_DIGITS - scale} digits before the point)"
    )


def _number_json(value: Any) -> Any:
    """``NumberType.to_json`` without the field: a decimal as plain text."""
    return None if value is None else _decimal_text(value)
