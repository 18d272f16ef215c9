"""The SQL compiler's helpers: literals, numbers and rounding per dialect, computing
an argument once (``let``), the size of an expression, and the date range guard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from .errors import FormulaError
from .schema import TableInfo
from .sql_context import NUMERIC, naive_utc, sqltype
from .types import FType

if TYPE_CHECKING:  # pragma: no cover
    from .to_sql import SqlCompiler

SMALL_EXPR = 8  # repeated as is; anything larger is computed once (SqlHelpers.let)
_LEAF = (sa.Column, sa.sql.elements.ColumnClause, sa.TableClause)


class SqlHelpers:
    """Helpers of ``SqlCompiler`` (a part of it): ``self.ctx``, ``self.pg``."""

    # ------------------------------------------------------------ helpers
    def null(self, t: FType) -> ColumnElement:
        if t.kind in ("blank", "error", "list"):
            return sa.null()
        return sa.cast(sa.null(), sqltype(t))

    def lit(self, value: Any, t: FType | None = None) -> ColumnElement:
        if value is None:
            return self.null(t or FType("blank"))
        if isinstance(value, bool):
            return sa.true() if value else sa.false()
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            return self.num(value)
        if isinstance(value, datetime):
            return sa.literal(naive_utc(value), sa.DateTime())
        if isinstance(value, date):
            return sa.literal(value, sa.Date())
        return sa.literal(str(value), sa.String())

    def num(self, value: Decimal | int) -> ColumnElement:
        value = Decimal(value)
        if self.pg:
            return sa.literal(value, NUMERIC)
        if value == value.to_integral_value() and abs(value) < 2**53:
            return sa.literal(int(value), sa.Integer())
        return sa.literal(float(value), sa.Float())

    def as_numeric(self, expr: ColumnElement) -> ColumnElement:
        """PG: make sure a number is NUMERIC (integer columns, double results)."""
        return sa.cast(expr, sa.Numeric()) if self.pg else expr

    def to_int(self, expr: ColumnElement) -> ColumnElement:
        """Truncate toward zero to an integer (PG's ::int would round)."""
        if self.pg:
            return sa.cast(sa.func.trunc(sa.cast(expr, sa.Numeric())), sa.Integer())
        return sa.cast(expr, sa.Integer())

    def clamp(self, x: ColumnElement, lo: int | None = None, hi: int | None = None):
        """Limit an integer to [lo, hi]; blank stays blank (PG's GREATEST ignores NULL)."""
        if self.pg:

            def limit(x):
                out = x
                if hi is not None:
                    out = sa.func.least(out, hi)
                if lo is not None:
                    out = sa.func.greatest(out, lo)
                return out + (x - x)

            return self.let(limit, x)
        out = x
        if hi is not None:
            out = sa.func.min(out, hi)
        if lo is not None:
            out = sa.func.max(out, lo)
        return out

    def snap(self, expr: ColumnElement) -> ColumnElement:
        """The value at 9 decimals, before floor/ceil/trunc decide: on SQLite it drops
        binary-float noise (x.9999999999 -> x+1); on PostgreSQL the last digit of a
        division, which it rounds at another place than the interpreter does (1/7 at
        20 decimals against 28 digits), so both land on the same side of a whole
        number. ``functions.math.snap9`` is the interpreter's."""
        return sa.func.round(expr, 9)

    def floor(self, expr: ColumnElement) -> ColumnElement:
        """floor(); on SQLite as -ceil(-x), since SQLAlchemy's pysqlite replaces floor()
        with Python's math.floor, which fails on NULL."""
        return sa.func.floor(expr) if self.pg else -sa.func.ceil(-expr)

    def coalesce_false(self, expr: ColumnElement) -> ColumnElement:
        return sa.func.coalesce(expr, sa.false(), type_=sa.Boolean())

    def let(self, fn: Callable[..., ColumnElement], *exprs: ColumnElement) -> ColumnElement:
        """``fn(*exprs)`` with every non-trivial expression computed once.

        SQL has no variables, so functions that need an argument several times
        (CASE guards, SQLite emulations) used to repeat its SQL, and nesting them
        multiplied it: a few nested date functions made 50 kB statements that ran
        for minutes. A large argument is instead bound as a column of a one-row
        derived table, ``(SELECT fn(v0) FROM (SELECT <arg> AS v0 OFFSET 0))``;
        OFFSET 0 keeps both databases from flattening it back into copies.
        Small arguments (a column, a parameter) are repeated as they are; so is an
        untyped one on PostgreSQL, where a derived table would make it text."""
        big = [
            i
            for i, e in enumerate(exprs)
            if expr_size(e) > SMALL_EXPR and not (self.pg and isinstance(e.type, sa.types.NullType))
        ]
        if not big:
            return fn(*exprs)
        inner = (
            sa.select(*[exprs[i].label(f"v{i}") for i in big])
            .correlate_except(None)  # reads only the enclosing rows
            .offset(sa.literal_column("0"))
            .subquery()
        )
        args = [inner.c[f"v{i}"] if i in big else e for i, e in enumerate(exprs)]
        body = fn(*args)
        q = sa.select(body).select_from(inner).correlate_except(inner).scalar_subquery()
        return sa.type_coerce(q, body.type)

    def text_order(self, expr: ColumnElement) -> ColumnElement:
        return expr.collate("C") if self.pg else expr

    def scope_filter(self, table: TableInfo, alias: FromClause) -> list[ColumnElement]:
        if self.ctx.row_scope is None:
            return []
        extra = self.ctx.row_scope(table, alias)
        return [] if extra is None else [extra]

    def table(self, key: str) -> TableInfo:
        t = self.ctx.schema.table(key)
        if t is None:  # pragma: no cover - the checker resolved it
            raise FormulaError.at("", None, f"unknown table `{key}`")
        return t


def expr_size(expr: Any) -> int:
    """Nodes of ``expr`` as the SQL renders it: a sub-expression that appears twice
    counts twice."""
    return expr_shape(expr)[0]


def expr_shape(expr: Any, memo: dict[int, tuple[int, int]] | None = None) -> tuple[int, int]:
    """(nodes, depth) of ``expr`` as the SQL renders it. Memoised per object, so
    counting is linear in the objects built even when rendering would not be."""
    memo = {} if memo is None else memo
    key = id(expr)
    if key in memo:
        return memo[key]
    size, depth = 1, 0
    if not isinstance(expr, _LEAF):
        for child in expr.get_children():
            s, d = expr_shape(child, memo)
            size, depth = size + s, max(depth, d)
    memo[key] = (size, depth + 1)
    return memo[key]


def day_in_range(s: SqlCompiler, r: ColumnElement, kind: str = "date") -> ColumnElement:
    """Blank for dates outside years 1-9999 (Python cannot hold them; the interpreter
    gives blank there too). ``r`` appears once, so nesting date functions cannot
    multiply their SQL: PG clamps to just outside the range and NULLIFs the clamp
    values; SQLite re-reads the text (a 5-digit year does not parse) and maps years
    0 and below ('0000-...', '-0001-...', which sort before '0001') to NULL."""
    if s.pg:
        if kind == "date":
            lo, hi = "DATE '0001-12-31 BC'", "DATE '10000-01-01'"
        else:
            lo, hi = "TIMESTAMP '0001-12-31 23:59:59.999999 BC'", "TIMESTAMP '10000-01-01'"
        t = sa.Date() if kind == "date" else sa.DateTime()
        lo_x, hi_x = sa.literal_column(lo, t), sa.literal_column(hi, t)
        clamped = sa.func.greatest(sa.func.least(r, hi_x), lo_x)
        return sa.func.nullif(sa.func.nullif(clamped, hi_x), lo_x, type_=t)
    from .functions.dates import SQLITE_DT

    t = sa.Date() if kind == "date" else sa.DateTime()
    text = sa.func.date(r) if kind == "date" else sa.func.strftime(SQLITE_DT, r)
    return sa.func.nullif(sa.func.max(text, "0001"), "0001", type_=t)
