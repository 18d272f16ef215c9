"""What the records service works out once and reuses: per-table plans for the
per-row loops, and statement templates of lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..fieldtypes import FieldType
from ..listing import (
    SortKey,
    encode_cursor,
    keyset_after,
    order_by,
    segment_templates,
)
from ..schema import Field, Table, needs_plain_index
from .values import Page, Record

if TYPE_CHECKING:
    from .service import RecordsService


class TablePlan:
    """What the per-row loops need to know about a table's fields, worked out once
    per table and service: tuples and bound methods instead of attribute lookups."""

    def __init__(self, table: Table, hidden: frozenset[str] = frozenset()):
        self.table = table
        fields = list(table.fields.values())
        self.writable = frozenset(f.key for f in fields if f.writable)
        self.required = [(f, f.ftype) for f in fields if f.required]
        self.columns = [
            (f, f.ftype, f.column_name, f.type == "autonumber")
            for f in fields
            if f.column_name is not None and not f.ftype.system_column
        ]
        self.history = {f.key: (f, f.ftype, str(f.id)) for f in fields}
        # the write loops' hot paths: bound methods, and None where a type keeps
        # the base class's no-op (check_storable) or identity (to_db, to_json)
        self.convert = {
            f.key: (f, f.ftype.to_python, overridden(f.ftype, "check_storable"))
            for f in fields
            if f.writable
        }
        self.to_db = [
            (f, f.key, column, overridden(ftype, "to_db")) for f, ftype, column, _ in self.columns
        ]
        # columns written as JSON text by COPY (multi-select, file)
        self.json_columns = frozenset(
            column
            for _, _, column, _ in self.columns
            if isinstance(table.sql.c[column].type, sa.JSON)
        )
        # what a read returns: fields the actor may never read are not even selected
        self.read = [
            (f, f.ftype, f.column_name)
            for f in table.data_fields()
            if f.column_name is not None and f.key not in hidden
        ]
        self.computed = [
            (f, f.ftype, f"c_{f.id}")
            for f in fields
            if f.type == "formula" and f.column_name is None and f.key not in hidden
        ]
        # (key, column, from_db as a function or None) of every value a read returns
        self.readers = [
            (f.key, column, ftype.reader(f)) for f, ftype, column in self.read + self.computed
        ]
        self.defaults = [f for f in fields if f.default and f.writable]
        self.rules = list(table.config.get("validations") or [])
        t = table.sql
        self.select = sa.select(
            t.c.id,
            t.c.version,
            t.c.deleted_at,
            *(table.column(f).label(column) for f, _, column in self.read),
        )


PAGES = ("pages",)  # statement templates of lists, in Schema.formula_cache


PAGES_MAX = 2000  # templates kept per schema snapshot (then the cache starts again)


class NoTemplate(Exception):
    pass


def untemplated(f: Field):
    raise NoTemplate  # a formula sort key: ``list`` builds it per request


def remember(cache: dict, key: tuple, value: Any) -> Any:
    if len(cache) >= PAGES_MAX:
        cache.clear()
    cache[key] = value
    return value


class PageTemplate:
    """The statements of one shape of list (see ``RecordsService._list_by_template``),
    built on first use for each cursor state, and how to turn their rows into
    records: positions and converters worked out once, no conversion for types whose
    database value is already the Python value."""

    def __init__(self, table: Table, keys, select: sa.Select, base: list, reader, many, flags):
        self.table = table
        self.keys = keys
        self.select = select
        self.base = base
        self.many = many
        self.segmented = len(keys) == 1 and not computed_key(keys[0])
        self.statements: dict[Any, list[sa.Select]] = {}
        names = list(select.selected_columns.keys())
        pos = {n: i for i, n in enumerate(names)}
        self.keys_ = [k for k, _, _ in reader]
        self.positions = [pos[c] for _, c, _ in reader]
        # the values are consecutive columns unless fields are hidden: one slice a row
        first = self.positions[0] if self.positions else 0
        self.span = (
            (first, first + len(self.positions))
            if self.positions == list(range(first, first + len(self.positions)))
            else None
        )
        self.converters = [
            (k, read) for k, _, ftype in reader if (read := ftype.reader(table.fields[k]))
        ]
        self.id_pos, self.version_pos, self.deleted_pos = (
            pos["id"],
            pos["version"],
            pos["deleted_at"],
        )
        self.sort_pos = [pos[f"_sort{i}"] for i in range(len(keys))]
        self.flags = [(k, pos[label]) for k, label in flags]  # fields hidden on some rows

    def _statements(self, state: Any) -> list[sa.Select]:
        stmts = self.statements.get(state)
        if stmts is not None:
            return stmts
        t = self.table.sql
        limit = sa.bindparam("_limit", type_=sa.Integer())
        if self.segmented:
            key = self.keys[0]
            v = sa.bindparam("_c0", type_=key.expr.type)
            last = sa.bindparam("_cid", type_=t.c.id.type)
            stmts = [
                self.select.where(*self.base, cond).order_by(*order).limit(limit)
                for cond, order in segment_templates(key, t.c.id, state, v, last)
            ]
        else:
            stmt = self.select.where(*self.base)
            if state != "first":
                values = [
                    None if blank else sa.bindparam(f"_c{i}", type_=k.expr.type)
                    for i, (k, blank) in enumerate(zip(self.keys, state, strict=True))
                ]
                last = sa.bindparam("_cid", type_=t.c.id.type)
                stmt = stmt.where(keyset_after(self.keys, t.c.id, [*values, last]))
            stmts = [stmt.order_by(*order_by(self.keys, t.c.id)).limit(limit)]
        self.statements[state] = stmts
        return stmts

    def read(self, service: RecordsService, params: dict, after, limit: int, signature: str):
        if after is None:
            state: Any = "first"
        else:
            *values, params["_cid"] = after
            for i, v in enumerate(values):
                params[f"_c{i}"] = v
            if self.segmented:
                state = "blank" if values[0] is None else "value"
            else:
                state = tuple(v is None for v in values)
        execute = service.session.execute
        rows: list = []
        n = limit + 1
        for stmt in self._statements(state):
            need = n - len(rows)
            if need <= 0:
                break
            params["_limit"] = need
            rows.extend(execute(stmt, params).all())
        more = len(rows) > limit
        rows = rows[:limit]
        table_key = self.table.key
        keys, positions, converters = self.keys_, self.positions, self.converters
        id_pos, version_pos, deleted_pos = self.id_pos, self.version_pos, self.deleted_pos
        records = []
        flags = self.flags
        withheld: frozenset[str] = frozenset()
        start, stop = self.span or (0, 0)
        for row in rows:
            if self.span is not None:
                values = dict(zip(keys, row[start:stop], strict=True))
            else:
                values = dict(zip(keys, [row[i] for i in positions], strict=True))
            for k, read in converters:
                values[k] = read(values[k])
            if flags:
                withheld = frozenset(k for k, i in flags if not row[i])
                for k in withheld:
                    values.pop(k, None)
            records.append(
                Record(table_key, row[id_pos], row[version_pos], values, row[deleted_pos], withheld)
            )
        if self.many and records:
            service._load_links(self.table, records, self.many)
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(
                signature, [*(last[i] for i in self.sort_pos), last[id_pos]]
            )
        return Page(records, next_cursor)


def computed_key(key: SortKey) -> bool:
    """A sort key no index serves (a computed formula, or a field without an index):
    one query sorts it with its blanks. Reading the page in segments (blanks, then the
    rest) pays off only when an index delivers each segment in order; without one,
    each segment scans the table (and computes a formula over it) again."""
    f = key.field
    if f is None:
        return False  # the id
    if f.type == "formula" and f.column_name is None:
        return True
    return not (f.unique or needs_plain_index(f))


def joined(t: sa.Table, joins: dict) -> sa.FromClause:
    """The table LEFT JOINed to the grouped aggregates of ``SqlContext.joins``."""
    frm: sa.FromClause = t
    for sub, on in joins.values():
        frm = frm.outerjoin(sub, on)
    return frm


def overridden(ftype: FieldType, method: str) -> Callable | None:
    """``ftype``'s bound ``method``, or None where it is the base class's."""
    if getattr(type(ftype), method) is getattr(FieldType, method):
        return None
    return getattr(ftype, method)
