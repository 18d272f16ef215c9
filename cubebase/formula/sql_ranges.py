"""Comparisons rewritten into ranges an index can serve.

``DATEDIFF(x, f, "days") <op> k`` (and ``DATEDIFF(f, x, "days")``, and the mirrored
``k <op> DATEDIFF(...)``), with ``f`` a Date column of the row and ``x``, ``k`` not
reading the record, is the bare column compared with one date computed in Python
(``f <= :today_plus_30``) instead of date arithmetic on every row. The result is
the interpreter's on every row: the difference is a whole number of days, compared
with ``k`` at 9 decimals (``<= 30.5`` is ``<= 30``; ``= 30.5`` never holds); a blank
``f`` gives NULL (FALSE), a blank ``x`` or ``k`` gives FALSE; a bound beyond the
years 1-9999 makes the comparison hold for every date or for none.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from . import ast as A
from .types import DATE

FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
_SCALE = 10**9  # computed numbers compare at 9 decimals (interpreter.q9)


def day_diff(n: A.TNode) -> bool:
    return isinstance(n, A.TCall) and n.func.name == "DATEDIFF" and n.extra.get("unit") == "days"


def date_column(n: A.TNode) -> bool:
    """A Date field of a row, stored in a column of its own and read as it is."""
    return (
        isinstance(n, A.TField)
        and n.body is None
        and n.field.storage == "column"
        and n.type.kind == "date"
    )


def row_free(n: A.TNode) -> bool:
    """Computed once for the whole statement (literals, TODAY(), NOW(), roles; not USER(),
    which is a parameter bound per run)."""
    return A.is_const(n) and not A.uses_user(n)


def whole_days(op: str, k: Decimal) -> tuple[str, int]:
    """``d <op> k`` for a whole number ``d``, as ``d <op'> m`` with a whole ``m``
    (``op'``: "<=", ">=", "=", "!=", or "all"/"none" for every or no ``d``)."""
    from .interpreter import q9

    q = int(q9(k))
    lo, hi = q // _SCALE, -(-q // _SCALE)  # floor and ceiling of k at 9 decimals
    whole = lo == hi
    return {
        "<": ("<=", hi - 1),
        "<=": ("<=", lo),
        ">": (">=", lo + 1),
        ">=": (">=", hi),
        "=": ("=", lo) if whole else ("none", 0),
        "!=": ("!=", lo) if whole else ("all", 0),
    }[op]


class SqlRanges:
    """Range rewrites of ``SqlCompiler`` (a part of it)."""

    def date_range(self, n: A.TCompare) -> ColumnElement | None:
        """``DATEDIFF(x, f, "days") <op> k`` as ``f <op'> :date``, or None when ``n`` is
        not of that shape."""
        diff, op, k = n.left, n.op, n.right
        if not day_diff(diff):
            diff, op, k = n.right, FLIPPED[n.op], n.left
        if not day_diff(diff) or k.type.kind != "number" or not row_free(k):
            return None
        a, b = diff.args[:2]  # type: ignore[attr-defined]  (the third is the unit)
        if date_column(b) and row_free(a):  # f - x
            f, x, sign = b, a, 1
        elif date_column(a) and row_free(b):  # x - f
            f, x, sign = a, b, -1
        else:
            return None
        xv, kv = self.const_value(x), self.const_value(k)
        if xv is None or kv is None:
            return sa.false()
        if not Decimal(kv).is_finite():  # pragma: no cover - the interpreter gives none
            return None
        op, m = whole_days(op, Decimal(kv))
        if op in ("all", "none"):
            return self.value(f).is_not(None) if op == "all" else sa.false()
        # sign * (f - x) <op> m  <=>  f <op''> x + sign * m  (x: a date, or a DateTime's
        # UTC date, whose ordinal is its date's)
        if sign < 0:
            op = FLIPPED[op]
        return self.column_vs_day(self.value(f), op, xv.toordinal() + sign * m)

    def column_vs_day(self, col: ColumnElement, op: str, day: int) -> ColumnElement:
        """``col <op> date.fromordinal(day)``; a day outside years 1-9999 is before or
        after every date the column can hold."""
        first, last = 1, date.max.toordinal()
        if first <= day <= last:
            bound = self.lit(date.fromordinal(day), DATE)
            tests = {"<=": col.__le__, ">=": col.__ge__, "=": col.__eq__, "!=": col.__ne__}
            return tests[op](bound)
        every = (op == "<=" and day > last) or (op == ">=" and day < first) or op == "!="
        return col.is_not(None) if every else sa.false()
