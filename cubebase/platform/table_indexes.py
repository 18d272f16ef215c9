"""Table-level indexes: an index over several fields, plain (faster lists and
filters) or unique (no two live records share the combination).

They are kept in the table's settings under ``indexes`` as
``{"fields": [field ids], "unique": bool, "message": str}``: fields by id, so a
renamed field keeps its index, and the database index is named from ids
(``uqm_t<table>_f<a>_f<b>`` / ``ixm_...``), so renames never touch the database.
Like a unique field, a unique index covers live records only (the trash does not
block a combination), and a record with any of the fields blank never conflicts
(SQL semantics: blank is not equal to anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import BadRequest
from .schema import Field, Table

INDEXES = "indexes"  # the table setting
MIN_FIELDS, MAX_FIELDS = 2, 6


@dataclass(frozen=True)
class TableIndex:
    """One index of a table, its fields resolved against a schema snapshot."""

    table_id: int
    fields: tuple[Field, ...]
    unique: bool = False
    message: str | None = None

    @property
    def field_ids(self) -> tuple[int, ...]:
        return tuple(f.id for f in self.fields)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    @property
    def name(self) -> str:
        return index_name(self.table_id, self.field_ids, self.unique)

    @property
    def identity(self) -> tuple:
        """What makes two indexes the same database index (the message is not part)."""
        return (self.field_ids, self.unique)

    def stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fields": list(self.field_ids)}
        if self.unique:
            out["unique"] = True
        if self.message:
            out["message"] = self.message
        return out

    def conflict_message(self, record: str) -> str:
        """What a user is told when a write would repeat a unique combination."""
        if self.message:
            return self.message
        return (
            f"Another {record} already has this {and_list([f.label.lower() for f in self.fields])}"
        )


def index_name(table_id: int, field_ids: tuple[int, ...], unique: bool) -> str:
    return f"{'uqm' if unique else 'ixm'}_t{table_id}_" + "_".join(f"f{i}" for i in field_ids)


def and_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def can_be_in_index(f: Field) -> bool:
    """Fields with a column of their own and a type a database index can order."""
    return (
        f.column_name is not None
        and f.ftype.can_be_indexed
        and f.link_kind not in ("many", "reverse", "reverse_many")
        and f.type != "formula"
    )


def table_indexes(table: Table) -> list[TableIndex]:
    """The table's indexes (an entry naming a field no longer there is skipped)."""
    out = []
    for entry in table.config.get(INDEXES) or []:
        fields = [table.field_by_id(fid) for fid in entry.get("fields") or []]
        if not fields or any(f is None for f in fields):
            continue
        out.append(
            TableIndex(table.id, tuple(fields), bool(entry.get("unique")), entry.get("message"))
        )
    return out


def unique_indexes(table: Table) -> list[TableIndex]:
    if not table.config.get(INDEXES):
        return []
    return [ix for ix in table_indexes(table) if ix.unique]


def resolve_index(table: Table, spec: Any, n: int) -> TableIndex:
    """An index as given to the schema editor (``{fields: [keys], unique, message}``),
    checked: two to six distinct fields of the table that can be indexed."""
    where = f"Index {n}"
    if not isinstance(spec, dict):
        raise BadRequest(f"{where} must be an object with `fields` (and `unique`, `message`)")
    unknown = sorted(set(spec) - {"fields", "unique", "message"})
    if unknown:
        raise BadRequest(f"{where}: unknown setting `{unknown[0]}`")
    keys = spec.get("fields")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadRequest(f"{where} needs `fields`: a list of field keys")
    if not MIN_FIELDS <= len(keys) <= MAX_FIELDS:
        raise BadRequest(
            f"{where} needs {MIN_FIELDS} to {MAX_FIELDS} fields (one field: set "
            "`indexed` or `unique` on the field itself)"
        )
    if len(set(keys)) != len(keys):
        raise BadRequest(f"{where} names a field twice")
    fields = []
    for key in keys:
        if key not in table.fields:
            raise BadRequest(f"{where}: table `{table.key}` has no field `{key}`")
        f = table.fields[key]
        if not can_be_in_index(f):
            raise BadRequest(f"{where}: a {f.type} field (`{key}`) cannot be in an index")
        fields.append(f)
    unique = spec.get("unique", False)
    if not isinstance(unique, bool):
        raise BadRequest(f"{where}: `unique` must be true or false")
    message = spec.get("message")
    if message is not None and (not isinstance(message, str) or not message.strip()):
        raise BadRequest(f"{where}: `message` must be a text")
    if message is not None and not unique:
        raise BadRequest(f"{where}: only a unique index has a `message`")
    return TableIndex(table.id, tuple(fields), unique, message.strip() if message else None)
