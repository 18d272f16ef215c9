"""The small schema interface the formula language is handed.

``formula`` never imports the platform. The platform describes its tables with
these dataclasses (see ``cubebase.platform.formula_schema``), and the formula
pipeline resolves names, types, columns and links only through them.

Storage of a field (``FieldInfo.storage``):

- ``column``    a plain column ``TableInfo.sql.c[FieldInfo.column]`` on the table
                (this includes many-to-one links and user fields: an integer id);
- ``json_list`` a multi-select: a JSON array of texts in one column
                (SQLite TEXT holding JSON, PostgreSQL JSONB);
- ``reverse``   the one-to-many reverse side of a many-to-one link on another
                table (``link.target`` table, its field ``link.target_field``);
- ``junction``  a many-to-many link through ``link.junction``
                (columns ``link.source_column`` -> this row, ``link.target_column``
                -> the target row);
- ``formula``   a formula field: ``FieldInfo.formula`` holds its stored formula
                text and is compiled/evaluated in place; when ``column`` is set
                too, the platform keeps the value in that column (a stored
                formula) and SQL reads the column, while the interpreter still
                computes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from .types import FType


@dataclass(frozen=True)
class LinkInfo:
    target: str  # key of the table the link points to
    target_field: str | None = None  # reverse: the many-to-one field key on ``target``
    junction: sa.Table | None = None  # junction: the link table
    source_column: str | None = None  # junction: column holding this row's id
    target_column: str | None = None  # junction: column holding the target row's id


@dataclass(frozen=True)
class FieldInfo:
    id: int
    key: str
    label: str
    type: FType  # the formula type of the field's value
    storage: str = "column"  # column | json_list | reverse | junction | formula
    column: str | None = None  # SQL column name for column/json_list storage
    link: LinkInfo | None = None
    formula: str | None = None  # stored formula text for formula fields
    options: tuple[str, ...] | None = None  # select / multi_select options
    precision: int | None = None  # decimals for number/currency


@dataclass
class TableInfo:
    id: int
    key: str
    label: str
    sql: sa.Table  # primary key column ``id``
    fields: dict[str, FieldInfo] = field(default_factory=dict)  # by key
    parent_field: str | None = None  # key of the self-link that makes this a tree

    def by_id(self, field_id: int) -> FieldInfo | None:
        for f in self.fields.values():
            if f.id == field_id:
                return f
        return None

    def by_label(self, label: str) -> FieldInfo | None:
        for f in self.fields.values():
            if f.label == label:
                return f
        return None


class SchemaProvider(Protocol):
    """Looks tables up by key. Implemented by the platform."""

    def table(self, key: str) -> TableInfo | None: ...

    def table_keys(self) -> Sequence[str]: ...


class RecordResolver(Protocol):
    """Fetches related records for the interpreter (through the records service)."""

    def get(self, table: str, record_id: int) -> Mapping[str, Any] | None:
        """One record as {field key: value}, or None when it is missing or not visible."""

    def related(self, table: str, record_id: int, field_key: str) -> Sequence[Mapping[str, Any]]:
        """The rows behind a reverse or many-to-many field of one record."""

    def is_under(self, table: str, node_id: int, ancestor_id: int) -> bool:
        """True when ``node_id`` is ``ancestor_id`` or below it in the tree ``table``."""
