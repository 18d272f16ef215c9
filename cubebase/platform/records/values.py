"""What the records service hands out: records, pages, and filters written as formulas."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa

from ..access import singular
from ..errors import (
    NotFound,
)
from ..listing import (
    Condition,
)
from ..schema import Table


@dataclass(frozen=True)
class FormulaFilter:
    """A filter written as a formula, e.g. ``FormulaFilter('amount > 100 AND stage = "won"')``."""

    formula: str


Where = Condition | FormulaFilter | sa.ColumnElement | Callable[[Table], sa.ColumnElement]


@dataclass
class Record:
    table: str
    id: int
    version: int
    values: dict[str, Any]  # field key -> Python value
    deleted_at: datetime | None = None
    withheld: frozenset[str] = frozenset()  # fields the reader may not see on this record

    def to_json(self, table: Table, fields: Iterable[str] | None = None) -> dict[str, Any]:
        values = self.values
        writers, converted = json_writers(table)
        if fields is None:
            out = values.copy()
            for k, write in converted:
                if k in out:
                    out[k] = write(out[k])
        else:
            out = {}
            for k in fields:
                if k in values:
                    write = writers.get(k)  # a key the table lacks passes as it is
                    out[k] = values[k] if write is None else write(values[k])
        doc = {"id": self.id, "version": self.version, "fields": out}
        if self.deleted_at is not None:
            doc["deleted_at"] = self.deleted_at.isoformat().replace("+00:00", "Z")
        return doc


Writer = Callable[[Any], Any]
_WRITERS: WeakKeyDictionary[Table, tuple[dict[str, Writer | None], list[tuple[str, Writer]]]] = (
    WeakKeyDictionary()
)


def json_writers(table: Table) -> tuple[dict[str, Writer | None], list[tuple[str, Writer]]]:
    """Each field's ``to_json`` as a function of the value (None: the value is its own
    JSON), and the fields that have one, worked out once per table of a schema
    snapshot rather than looked up for each of a page's values."""
    found = _WRITERS.get(table)
    if found is None:
        writers = {k: f.ftype.writer(f) for k, f in table.fields.items()}
        found = writers, [(k, w) for k, w in writers.items() if w is not None]
        _WRITERS[table] = found
    return found


@dataclass
class Page:
    records: list[Record]
    next_cursor: str | None


def record_id_of(value: Any, table: Table) -> int:
    if isinstance(value, bool):
        raise NotFound(f"No {singular(table)} with id {value}")
    try:
        rid = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"No {singular(table)} with id {value}") from None
    if not 0 < rid < 2**63:
        raise NotFound(f"No {singular(table)} with id {value}")
    return rid


def as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]
