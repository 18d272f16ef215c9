"""Field types: one registry entry (one class) per type of interfaces.md.

A field type knows its column type, how to turn input (JSON or text from a form
or CSV cell) into a Python value with a message a business user understands when
it cannot, how to write and read the database value, how to show it, and which
formula type it has. Adding a type means adding one class here.

Python values: str, Decimal, int, bool, date, datetime (aware, UTC), list[str]
for multi-select, int ids for links and users, list[int] for many-links, a dict
for files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..formula import types as ft

if TYPE_CHECKING:
    from .schema import Field

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

    def display(self, field: Field, value: Any) -> str:
        return "" if value is None else str(value)

    def is_blank(self, value: Any) -> bool:
        return value is None or value == "" or value == []

    def check_storable(self, field: Field, value: Any, dialect: str) -> None:
        """Raise ConversionError for a value this database could not keep exactly."""


# --- text-like ---------------------------------------------------------------


class TextType(FieldType):
    name = "text"
    default_max = TEXT_MAX
    config_keys = frozenset({"max_length"})

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Text()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.TEXT

    def max_length(self, field: Field) -> int:
        return int(field.config.get("max_length") or self.default_max)

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConversionError(f"expected text, got {_describe(value)}")
        if "\x00" in value:
            raise ConversionError("text must not contain NUL characters")
        limit = self.max_length(field)
        if len(value) > limit:
            raise ConversionError(f"is too long ({len(value):,} characters; at most {limit:,})")
        return value

    def parse_text(self, field: Field, text: str) -> Any:
        return None if text.strip() == "" else self.to_python(field, text)


class LongTextType(TextType):
    name = "long_text"
    default_max = LONG_TEXT_MAX


class EmailType(TextType):
    name = "email"
    default_max = 320
    pattern = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    def to_python(self, field: Field, value: Any) -> Any:
        value = super().to_python(field, value)
        if value is None:
            return None
        value = value.strip().lower()
        if not self.pattern.match(value):
            raise ConversionError(f"`{_clip(value)}` is not an e-mail address")
        return value


class PhoneType(TextType):
    name = "phone"
    default_max = 40
    pattern = re.compile(r"^\+?[0-9 ()./\-]+((ext\.?|x) ?[0-9]+)?$", re.IGNORECASE)

    def to_python(self, field: Field, value: Any) -> Any:
        value = super().to_python(field, value)
        if value is None:
            return None
        value = value.strip()
        if not self.pattern.match(value) or sum(map(str.isdigit, value)) < 3:
            raise ConversionError(f"`{_clip(value)}` is not a phone number")
        return value


class UrlType(TextType):
    name = "url"
    default_max = 2000

    def to_python(self, field: Field, value: Any) -> Any:
        value = super().to_python(field, value)
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
            raise ConversionError(f"`{_clip(value)}` is not a web address (http:// or https://)")
        return value


# --- numbers -----------------------------------------------------------------


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


# --- dates -------------------------------------------------------------------


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
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else value.isoformat().replace("+00:00", "Z")


# --- choices -----------------------------------------------------------------


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


# --- links -------------------------------------------------------------------


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


class FileType(FieldType):
    """A file: the bytes live in the file store, the field holds its descriptor."""

    name = "file"
    can_be_indexed = False
    can_be_unique = False
    keys = ("key", "name", "size", "content_type")

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.JSON(none_as_null=True)

    def formula_type(self, field: Field) -> ft.FType:
        return ft.TEXT

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            raise ConversionError("expected an uploaded file ({key, name, size, content_type})")
        if not re.fullmatch(r"[0-9a-f]{64}", value["key"]):
            raise ConversionError("refers to no uploaded file")
        name = value.get("name") or "file"
        if not isinstance(name, str) or len(name) > 255 or "/" in name or "\\" in name:
            raise ConversionError("has an invalid file name")
        size = value.get("size")
        ctype = value.get("content_type") or "application/octet-stream"
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(ctype, str)
        ):
            raise ConversionError("has an invalid size or content type")
        return {"key": value["key"], "name": name, "size": size, "content_type": ctype[:100]}

    def parse_text(self, field: Field, text: str) -> Any:
        if text.strip():
            raise ConversionError("files cannot be given as text; upload them on the form")
        return None

    def display(self, field: Field, value: Any) -> str:
        return "" if not value else value["name"]


# --- computed and automatic ---------------------------------------------------


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


# --- helpers -----------------------------------------------------------------


def get_type(name: str) -> FieldType:
    return FIELD_TYPES[name]


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


_QUANTA = {scale: Decimal(1).scaleb(-scale) for scale in range(11)}


def _quantum(scale: int) -> Decimal:
    """``Decimal(1).scaleb(-scale)``, made once per scale (0 to 10)."""
    q = _QUANTA.get(scale)
    return q if q is not None else Decimal(1).scaleb(-scale)


def _too_large(scale: int) -> ConversionError:
    return ConversionError(
        f"is too large (at most {NUMBER_DIGITS - scale} digits before the point)"
    )


def _decimal_text(d: Decimal) -> str:
    text = format(d, "f")
    return text


def _json_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


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
