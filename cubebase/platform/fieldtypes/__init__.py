"""Field types: one registry entry (one class) per type of interfaces.md.

A field type knows its column type, how to turn input (JSON or text from a form
or CSV cell) into a Python value with a message a business user understands when
it cannot, how to write and read the database value, how to show it, and which
formula type it has. Adding a type means adding one class to the module of its
family (and importing that module here, so that it registers):

- ``base``: ``FieldType``, the registry ``FIELD_TYPES``, ``ConversionError``
- ``text``: text, long text, e-mail, phone, url
- ``numbers``: number, currency, integer, boolean
- ``dates``: date, datetime
- ``choices``: select, multi-select
- ``links``: link, user
- ``files``: file
- ``automatic``: formula, autonumber, created/updated at/by

Python values: str, Decimal, int, bool, date, datetime (aware, UTC), list[str]
for multi-select, int ids for links and users, list[int] for many-links, a dict
for files.

The import order below is the registration order (the order of FIELD_TYPES, which
the schema editor shows), so it is kept by hand rather than sorted.
"""

# ruff: noqa: I001

from .base import (
    FIELD_TYPES,
    LONG_TEXT_MAX,
    NUMBER_DIGITS,
    SQLITE_DIGITS,
    TEXT_MAX,
    ConversionError,
    FieldType,
    _clip,
    _decimal_text,
    _describe,
    _options,
    get_type,
    json_list_type,
)
from .text import EmailType, LongTextType, PhoneType, TextType, UrlType
from .numbers import BooleanType, CurrencyType, IntegerType, NumberType, _quantum, _too_large
from .dates import DateTimeType, DateType
from .choices import MultiSelectType, SelectType
from .links import LinkType, UserType, _record_id
from .files import FileType
from .automatic import (
    SYSTEM_FIELDS,
    AutonumberType,
    CreatedAtType,
    CreatedByType,
    FormulaType,
    UpdatedAtType,
    UpdatedByType,
    _json_scalar,
    ftype_from_name,
)

__all__ = [
    "FIELD_TYPES",
    "LONG_TEXT_MAX",
    "NUMBER_DIGITS",
    "SQLITE_DIGITS",
    "SYSTEM_FIELDS",
    "TEXT_MAX",
    "AutonumberType",
    "BooleanType",
    "ConversionError",
    "CreatedAtType",
    "CreatedByType",
    "CurrencyType",
    "DateTimeType",
    "DateType",
    "EmailType",
    "FieldType",
    "FileType",
    "FormulaType",
    "IntegerType",
    "LinkType",
    "LongTextType",
    "MultiSelectType",
    "NumberType",
    "PhoneType",
    "SelectType",
    "TextType",
    "UpdatedAtType",
    "UpdatedByType",
    "UrlType",
    "UserType",
    "_clip",
    "_decimal_text",
    "_describe",
    "_json_scalar",
    "_options",
    "_quantum",
    "_record_id",
    "_too_large",
    "ftype_from_name",
    "get_type",
    "json_list_type",
]
