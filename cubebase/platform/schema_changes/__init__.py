"""Online schema changes: tables and fields are created, renamed, retyped and
deleted while the data stays.

Every change writes the metadata rows and runs the DDL through Alembic's
operations on the same connection, inside the transaction opened by
``Platform.schema_editor()``: a failure anywhere rolls back both. Renames touch
metadata only (columns are named from ids). On SQLite, dropping a link column
rebuilds the table in Alembic batch mode; other changes use SQLite's own
ALTER TABLE.

One module per concept, each a mixin of ``SchemaEditor``: ``tables``, ``fields``
(links, options, autonumbers), ``retype`` (type changes with their preview),
``rules`` (validations, permissions, lock, formulas, defaults), ``indexes``;
``common`` holds what they share. Callers import from this package.
"""

from .common import (
    BUILTIN_USER_FIELDS,
    CONVERTIBLE,
    FIELD_ATTRS,
    KEY_RE,
    PREVIEW_ROWS,
    RESERVED_KEYS,
    RULE_KEYS,
    DataLossError,
    check_key,
    check_label,
    split_spec,
    user_types,
)
from .editor import SchemaEditor
from .retype import NUMERIC, ConversionPreview, convert_value, narrowed

__all__ = [
    "BUILTIN_USER_FIELDS",
    "CONVERTIBLE",
    "FIELD_ATTRS",
    "KEY_RE",
    "NUMERIC",
    "PREVIEW_ROWS",
    "RESERVED_KEYS",
    "RULE_KEYS",
    "ConversionPreview",
    "DataLossError",
    "SchemaEditor",
    "check_key",
    "check_label",
    "convert_value",
    "narrowed",
    "split_spec",
    "user_types",
]
