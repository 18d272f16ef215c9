"""Operators in SQL: literals, arithmetic, text joins and TEXT(), comparisons (at 9
decimals for computed numbers), logic, IN a list, and function calls."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from . import ast as A
from .sql_context import NUMERIC


class SqlOperators:
    """Operators of ``SqlCompiler`` (a part of it)."""

    # ------------------------------------------------------------ values
    def _v_TLit(self, n: A.TLit) -> ColumnElement:
        if n.value is None:
            return sa.false() if n.type.kind == "boolean" else self.null(n.type)
        if n.type.kind == "record":  # a record id (account_manager = 6): an integer
            return sa.literal(int(n.value), sa.Integer())
        return self.lit(n.value, n.type)

    def _v_TRowId(self, n: A.TRowId) -> ColumnElement:
        return sa.type_coerce(self.env[n.scope].c.id, NUMERIC)

    def _v_TUnary(self, n: A.TUnary) -> ColumnElement:
        return sa.type_coerce(-self.value(n.operand), NUMERIC)

    def _v_TBinary(self, n: A.TBinary) -> ColumnElement:
        if n.op == "&":
            return self.as_text(n.left).concat(self.as_text(n.right))
        a, b = self.value(n.left), self.value(n.right)
        if n.op in "+-*":
            a, b = self.as_number(a), self.as_number(b)  # one level per term in a + b + c
            return a + b if n.op == "+" else a - b if n.op == "-" else a * b
        if n.op == "/":
            return self.divide(a, b)
        return self.modulo(a, b)

    def as_number(self, x: ColumnElement) -> ColumnElement:
        return x if isinstance(x.type, sa.Numeric) else sa.type_coerce(x, NUMERIC)

    def divide(self, a: ColumnElement, b: ColumnElement) -> ColumnElement:
        num = sa.cast(a, sa.Numeric()) if self.pg else sa.cast(a, sa.Float())
        return sa.type_coerce(num.op("/")(sa.func.nullif(b, 0)), NUMERIC)

    def modulo(self, a: ColumnElement, b: ColumnElement) -> ColumnElement:
        """Remainder with the sign of the divisor (like spreadsheets); x mod 0 is blank."""
        if self.pg:

            def signed(m, b):
                return sa.case((sa.and_(m != 0, (m < 0) != (b < 0)), m + b), else_=m)

            def pg_mod(a, b):
                m = sa.func.mod(
                    sa.cast(a, sa.Numeric()), sa.func.nullif(sa.cast(b, sa.Numeric()), 0)
                )
                return self.let(signed, m, b)

            return sa.type_coerce(self.let(pg_mod, a, b), NUMERIC)

        def sqlite_mod(a, b):
            q = self.floor(self.snap(sa.cast(a, sa.Float()).op("/")(sa.func.nullif(b, 0))))
            return a - b * q

        return sa.type_coerce(self.let(sqlite_mod, a, b), NUMERIC)

    def as_text(self, node: A.TNode) -> ColumnElement:
        """The text form used by & and CONCAT: blank joins as ""."""
        if isinstance(node, A.TBinary) and node.op == "&":  # never blank: a & b & c stays flat
            return self.value(node)
        return sa.func.coalesce(self.text_of(node), sa.literal("", sa.String()), type_=sa.String())

    def text_of(self, node: A.TNode) -> ColumnElement:
        """TEXT(x): numbers at most 9 decimals without trailing zeros, ISO dates."""
        kind = node.type.kind
        x = self.value(node)
        if kind == "text":
            return x
        if kind == "blank":
            return sa.cast(sa.null(), sa.String())
        if kind == "boolean":
            return sa.case((x, sa.literal("TRUE")), else_=sa.literal("FALSE"))
        if kind == "date":
            if self.pg:
                return sa.func.to_char(x, "YYYY-MM-DD")
            return sa.func.strftime("%Y-%m-%d", x)
        if kind == "datetime":
            if self.pg:
                return sa.func.to_char(x, "YYYY-MM-DD HH24:MI:SS")
            return sa.func.strftime("%Y-%m-%d %H:%M:%S", x)
        if kind == "number":
            if self.pg:
                r = sa.func.round(sa.cast(x, sa.Numeric()), 9)
                return sa.cast(sa.func.trim_scale(r), sa.String())

            def sqlite_text(x):
                r = sa.func.round(x, 9)
                s = sa.func.rtrim(sa.func.rtrim(sa.func.printf("%.9f", r), "0"), ".")
                return sa.case((r.is_(None), None), (r == 0, sa.literal("0")), else_=s)

            return self.let(sqlite_text, x)
        return sa.cast(x, sa.String())

    def cmp_operands(
        self, a: A.TNode, b: A.TNode, left: ColumnElement | None = None
    ) -> tuple[ColumnElement, ColumnElement]:
        """Both sides of a comparison. Computed numbers compare at 9 decimals, like a
        spreadsheet's display, so 0.1 + 0.2 = 0.3 holds on SQLite's binary floats too;
        stored values against constants compare exactly (and index-friendly).
        ``left``: ``a`` already compiled (SWITCH and IN compare one value many times)."""
        x, y = self.value(a) if left is None else left, self.value(b)
        if a.type.kind == "number" and not (A.is_plain(a) and A.is_plain(b)):
            x = sa.func.round(self.as_numeric(x), 9)
            y = sa.func.round(self.as_numeric(y), 9)
        return x, y

    def compare(self, n: A.TCompare, left: ColumnElement | None = None) -> ColumnElement:
        """Lax comparison: NULL when a side is blank (FALSE under WHERE)."""
        if n.left.type.kind == "blank" or n.right.type.kind == "blank":
            return sa.false()
        if left is None and (day_range := self.date_range(n)) is not None:
            return day_range  # DATEDIFF(TODAY(), f, "days") <= 30: f <= :date
        a, b = self.cmp_operands(n.left, n.right, left)
        if n.op not in ("=", "!=") and n.left.type.kind == "text":
            a, b = self.text_order(a), self.text_order(b)
        ops = {
            "=": a.__eq__,
            "!=": a.__ne__,
            "<": a.__lt__,
            "<=": a.__le__,
            ">": a.__gt__,
            ">=": a.__ge__,
        }
        return ops[n.op](b)

    def _v_TCompare(self, n: A.TCompare) -> ColumnElement:
        return self.coalesce_false(self.compare(n))

    def _v_TLogic(self, n: A.TLogic) -> ColumnElement:
        parts = [self.value(i) for i in n.items]
        return sa.and_(*parts) if n.op == "and" else sa.or_(*parts)

    def _v_TNot(self, n: A.TNot) -> ColumnElement:
        return sa.not_(self.value(n.operand))

    def membership(self, n: A.TIn) -> ColumnElement:
        """Lax ``x IN ...``."""
        if n.left.type.kind == "blank":
            return sa.false()
        if n.items is not None:
            items = [i for i in n.items if i.type.kind != "blank"]
            if not items:
                return sa.false()
            if all(A.is_plain(i) for i in [n.left, *items]):
                return self.value(n.left).in_([self.value(i) for i in items])

            def tests(left):
                pairs = [self.cmp_operands(n.left, i, left) for i in items]
                return sa.or_(*[x == y for x, y in pairs])

            return self.let(tests, self.value(n.left))  # the left side is compiled once
        return self.list_contains(n.source, self.value(n.left))

    def _v_TIn(self, n: A.TIn) -> ColumnElement:
        return self.coalesce_false(self.membership(n))

    def _v_TCall(self, n: A.TCall) -> ColumnElement:
        expr = n.func.sql(self, n)
        if n.type.kind == "boolean" and not getattr(n.func, "never_null", False):
            return self.coalesce_false(expr)
        return expr
