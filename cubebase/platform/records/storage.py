"""Rows into tables: ids, COPY on PostgreSQL, history rows, and turning integrity
errors lost in a race into errors a user understands."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from ..errors import (
    ConflictError,
    FieldProblem,
    ValidationError,
)
from ..schema import Table
from ..table_indexes import unique_indexes
from .unique_together import index_problems

COPY_MIN_ROWS = 100  # PostgreSQL: from this many rows, COPY beats a pipelined executemany


BUSY = ("database is locked", "deadlock detected")  # SQLite's stale snapshot, PG deadlocks


class Storage:
    """Inserting rows and history, the fast way for each database."""

    def _insert_rows(self, table: Table, db_rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows, returning their new ids in the order of ``db_rows``."""
        t = table.sql
        if self.platform.dialect == "postgresql" and db_rows:
            # Take the ids from the table's sequence first, then insert without
            # RETURNING: COPY for a batch, a pipelined executemany for a few rows
            # (RETURNING made psycopg parse huge multi-row VALUES statements anew).
            seq = sa.func.pg_get_serial_sequence(t.name, "id")
            ids = sorted(
                self.session.scalars(
                    sa.select(sa.func.nextval(seq)).select_from(
                        sa.func.generate_series(1, len(db_rows))
                    )
                )
            )
            for row, rid in zip(db_rows, ids, strict=True):
                row["id"] = rid
            if len(db_rows) >= COPY_MIN_ROWS:
                columns = list(db_rows[0])  # every row has the same keys, in one order
                json_columns = self._plan(table).json_columns
                self._copy(t.name, columns, copy_tuples(db_rows, columns, json_columns))
            else:
                self.session.execute(sa.insert(t), db_rows)
            return ids
        if len(db_rows) > 1:
            # SQLite gives a new row max(id) + 1 (the tables have no AUTOINCREMENT):
            # take the same ids ourselves and insert without RETURNING, which SQLite
            # would run one row at a time. Correct under concurrency: the read below
            # either runs under this transaction's write lock (a write session, or
            # after an earlier write) or starts its snapshot, and SQLite refuses a
            # write from a snapshot that another writer has moved past.
            start = (self.session.scalar(sa.select(sa.func.max(t.c.id))) or 0) + 1
            ids = list(range(start, start + len(db_rows)))
            for row, rid in zip(db_rows, ids, strict=True):
                row["id"] = rid
            self.session.execute(sa.insert(t), db_rows)
            return ids
        result = self.session.execute(
            sa.insert(t).returning(t.c.id, sort_by_parameter_order=True), db_rows
        )
        return [r[0] for r in result]

    def _copy(self, table_name: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        """``COPY table (columns) FROM STDIN`` on the session's own connection, inside
        its transaction and savepoint; psycopg's adapters write each value as text
        (JSON columns come as JSON text already). Errors come back as SQLAlchemy's,
        so ``IntegrityGuard`` reports a unique value lost in a race per field."""
        import psycopg
        from psycopg import sql

        dbapi = self.session.connection().connection.driver_connection
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        try:
            with dbapi.cursor() as cursor, cursor.copy(stmt) as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        except psycopg.Error as exc:
            raise sa.exc.DBAPIError.instance(
                stmt.as_string(dbapi), None, exc, psycopg.Error
            ) from exc

    def _integrity(self, table: Table, single: bool):
        return IntegrityGuard(table, single)


class IntegrityGuard:
    """Turns a unique-index violation lost in a race into a per-field error, and a
    write that lost a race for a lock into a conflict (try again), not a crash."""

    def __init__(self, table: Table, single: bool):
        self.table = table
        self.single = single

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, OperationalError):
            if any(b in str(exc.orig) for b in BUSY):
                raise ConflictError(
                    "Another change was being saved at the same time; try again"
                ) from None
            return False
        if exc_type is None or not issubclass(exc_type, IntegrityError):
            return False
        text = str(exc.orig)
        for ix in unique_indexes(self.table):
            columns = ", ".join(f"{self.table.sql.name}.{f.column_name}" for f in ix.fields)
            if ix.name in text or columns in text:
                raise ValidationError(index_problems(self.table, ix)) from None
        for f in self.table.fields.values():
            if f.unique and (
                f"uq_t{self.table.id}_f{f.id}" in text
                or f"{self.table.sql.name}.{f.column_name}" in text
            ):
                raise ValidationError(
                    [
                        FieldProblem(
                            f.key, "this value was just used by another record; choose another"
                        )
                    ]
                ) from None
        raise ConflictError(
            "The change conflicts with another change made at the same time; reload and try again"
        ) from None


class null_context:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def copy_tuples(
    rows: list[dict[str, Any]], columns: list[str], json_columns: frozenset[str]
) -> Iterable[Sequence]:
    """Rows (dicts) as sequences in ``columns`` order, JSON columns as JSON text."""
    get = operator.itemgetter(*columns)
    at = [i for i, c in enumerate(columns) if c in json_columns]
    if not at:
        return map(get, rows)
    return (json_at(list(get(r)), at) for r in rows)


def json_at(values: list, at: list[int]) -> list:
    for i in at:
        if values[i] is not None:
            values[i] = json.dumps(values[i])
    return values
