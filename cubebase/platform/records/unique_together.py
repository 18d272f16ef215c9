"""Unique indexes over several fields (a table's ``indexes``), checked on every
write path before anything is written, so a repeated combination is a field
problem on the index's fields with the index's message, like a unique field's
repeated value. A write that loses a race still meets the database's partial
unique index; ``IntegrityGuard`` turns that into the same problem.

A record with any of the fields blank never conflicts (SQL semantics), and
trashed records do not count (restoring one is checked again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..access import singular
from ..errors import FieldProblem
from ..schema import Table
from ..table_indexes import TableIndex, unique_indexes

if TYPE_CHECKING:
    from .service import RecordsService

CHUNK = 500


def index_problems(
    table: Table, ix: TableIndex, message: str | None = None, extra: dict | None = None
) -> list[FieldProblem]:
    """One problem per field of the index, each saying what conflicts."""
    text = message or ix.conflict_message(singular(table))
    return [FieldProblem(k, text, {"index": list(ix.keys), **(extra or {})}) for k in ix.keys]


def unique_together_problems(
    service: RecordsService,
    table: Table,
    rows: list[dict[str, Any]],
    own_id: int | None,
    single: bool,
    offset: int,
    changed: set[str] | None = None,
) -> list[FieldProblem]:
    """Problems of ``rows`` (whole records as they would be saved) against the
    table's unique indexes: repeated within the batch or used by another live
    record. ``changed``: the keys an update sets (indexes over none are skipped)."""
    indexes = unique_indexes(table)
    if changed is not None:
        indexes = [ix for ix in indexes if changed.intersection(ix.keys)]
    problems: list[FieldProblem] = []
    for ix in indexes:
        seen: dict[tuple, int] = {}
        for i, row in enumerate(rows):
            key = _combination(ix, [row.get(k) for k in ix.keys], to_python=False)
            if key is None:
                continue
            if key in seen:
                extra = {} if single else {"row": offset + i}
                text = (
                    ix.conflict_message(singular(table)) + " (the same combination is twice here)"
                )
                problems += index_problems(table, ix, text, extra)
                continue
            seen[key] = i
        if not seen:
            continue
        t = table.sql
        cols = [table.column(f) for f in ix.fields]
        keys = list(seen)
        taken: set[tuple] = set()
        for s in range(0, len(keys), CHUNK):
            stmt = sa.select(*cols).where(
                sa.tuple_(*cols).in_(keys[s : s + CHUNK]), t.c.deleted_at.is_(None)
            )
            if own_id is not None:
                stmt = stmt.where(t.c.id != own_id)
            for found in service.session.execute(stmt):
                key = _combination(ix, list(found), to_python=True)
                if key is not None:
                    taken.add(key)
        for key in taken & set(seen):
            extra = {} if single else {"row": offset + seen[key]}
            problems += index_problems(table, ix, None, extra)
    return problems


def _combination(ix: TableIndex, values: list[Any], *, to_python: bool) -> tuple | None:
    """The database values of one combination, comparable between input and what the
    database returns; None when a field is blank."""
    out = []
    for f, v in zip(ix.fields, values, strict=True):
        if v is None:
            return None
        if to_python:
            v = f.ftype.from_db(f, v)
        if f.ftype.is_blank(v):
            return None
        out.append(f.ftype.to_db(f, v))
    return tuple(out)
