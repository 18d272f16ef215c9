"""What the records service hands out: records, pages, and filters written as formulas."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
        keys = list(fields) if fields is not None else list(self.values)
        out = {}
        for k in keys:
            if k in self.values:
                f = table.fields[k]
                out[k] = f.ftype.to_json(f, self.values[k])
        doc = {"id": self.id, "version": self.version, "fields": out}
        if self.deleted_at is not None:
            doc["deleted_at"] = self.deleted_at.isoformat().replace("+00:00", "Z")
        return doc


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
