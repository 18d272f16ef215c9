"""Aggregates over a one-to-many or many-to-many link: COUNT, SUM, AVG, MIN, MAX and
COUNTIF, SUMIF, AVGIF, MINIF, MAXIF.

The link's rows are named by the link field: ``SUM(deals.amount)``; inside the
arguments ``deals.x`` is a field of each deal, any other name a field of the
formula's own row. Blanks are skipped, an empty set counts and sums to 0 (AVG,
MIN and MAX of nothing are blank). SQL: a correlated aggregate subquery.
MIN and MAX with several arguments are the scalar functions (blanks skipped).
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from .. import ast as A
from ..types import NUMBER
from .base import Function

_VALUE_KINDS = {
    "count": None,
    "sum": {"number"},
    "avg": {"number"},
    "min": {"number", "date", "datetime"},
    "max": {"number", "date", "datetime"},
}


class Aggregate(Function):
    agg = "count"
    conditional = False
    blanks = "blank values are skipped; no rows: COUNT and SUM give 0, the others blank"

    def check(self, c, call):
        want = 2 if self.conditional else 1
        if len(call.args) != want:
            return c.error(
                call.span, f"{self.name} takes {want} argument{'s' * (want > 1)}: {self.signature}"
            )
        return self.check_aggregate(c, call)

    def check_aggregate(self, c, call):
        from ..checker import ERROR

        first = call.args[0]
        found = c.find_link(first)
        if found is None:
            return c.error(
                first.span,
                f"{self.name} needs a one-to-many or many-to-many link of this table, "
                f"e.g. {self.example}",
            )
        link, item_table = found
        c.push_item(link, item_table)
        try:
            value = None
            if c.is_bare_link(first, link):
                c.note_ref(first)
                if self.agg != "count":
                    c.error(
                        first.span,
                        f"{self.name} needs a field of the linked rows, e.g. "
                        f"{c.text(first.span)}.amount",
                    )
                    return A.TLit(ERROR, call.span, None)
            else:
                value = c.check(first)
                kinds = _VALUE_KINDS[self.agg]
                if kinds and not c.expect(value, kinds, self.name):
                    return A.TLit(ERROR, call.span, None)
                if value.type.kind == "list":
                    return c.error(value.span, f"{self.name} cannot aggregate lists")
            cond = None
            if self.conditional:
                cond = c.check(call.args[1])
                if not c.expect_condition(cond, f"{self.name} (argument 2)"):
                    return A.TLit(ERROR, call.span, None)
        finally:
            c.pop_item()
        if (value is not None and value.type == ERROR) or (cond is not None and cond.type == ERROR):
            return A.TLit(ERROR, call.span, None)
        t = NUMBER
        if self.agg in ("min", "max") and value is not None and value.type.kind != "blank":
            t = value.type
        return A.TAgg(t, call.span, self, c.table, link, item_table, 0, value, cond)

    # ------------------------------------------------------------ SQL
    def sql_agg(self, s, n: A.TAgg):
        agg = self.agg

        def make(inner):
            if n.value is None:
                return sa.func.count()
            v = inner.value(n.value)
            if agg == "count":
                return sa.func.count(v)
            if agg == "sum":
                return sa.func.coalesce(sa.func.sum(v), 0)
            return getattr(sa.func, agg)(v)

        sub = s.aggregate(n, make)
        if n.type.kind == "number" and agg in ("count", "sum"):
            sub = sa.func.coalesce(sub, 0)
        return sa.type_coerce(sub, s.null(n.type).type)

    # ------------------------------------------------------------ Python
    def py_agg(self, p, n: A.TAgg):
        table, link, scope = n.table.key, n.link.key, n.scope
        fv = p.compile(n.value) if n.value is not None else None
        fc = p.cond(n.cond) if n.cond is not None else None
        agg = self.agg

        def aggregate(rows, rt):
            outer_id = rows[scope].get("id")
            items = rt.related(table, outer_id, link) if outer_id is not None else ()
            vals = []
            for item in items:
                sub = (*rows, item)
                if fc is not None and not fc(sub, rt):
                    continue
                if fv is None:
                    vals.append(1)
                    continue
                v = fv(sub, rt)
                if v is not None:
                    vals.append(v)
            if agg == "count":
                return Decimal(len(vals))
            if agg == "sum":
                return sum(vals, Decimal(0))
            if not vals:
                return None
            if agg == "avg":
                return sum(vals, Decimal(0)) / len(vals)
            return min(vals) if agg == "min" else max(vals)

        return aggregate


class Count(Aggregate):
    name = "COUNT"
    category = "Aggregates"
    signature = "COUNT(link)  or  COUNT(link.field)"
    description = "The number of linked rows (or of their non-blank values)."
    example = "COUNT(deals)"
    agg = "count"


class Sum(Aggregate):
    name = "SUM"
    category = "Aggregates"
    signature = "SUM(link.field)"
    description = "The total of the linked rows' values."
    example = "SUM(deals.amount)"
    agg = "sum"


class Avg(Aggregate):
    name = "AVG"
    category = "Aggregates"
    signature = "AVG(link.field)"
    description = "The average of the linked rows' non-blank values."
    example = "AVG(deals.amount)"
    agg = "avg"


class _MinMax(Aggregate):
    """MIN/MAX: the aggregate with one link argument, else the scalar function."""

    def check(self, c, call):
        from ..checker import ERROR

        if len(call.args) == 1 and c.find_link(call.args[0]) is not None:
            return self.check_aggregate(c, call)
        if not call.args:
            return c.error(call.span, f"{self.name} takes at least 1 argument: {self.signature}")
        args = [c.check(a) for a in call.args]
        if any(a.type == ERROR for a in args):
            return A.TLit(ERROR, call.span, None)
        if not all([c.expect(a, {"number", "date", "datetime"}, self.name) for a in args]):
            return A.TLit(ERROR, call.span, None)
        t = c.unify(args, self.name)
        if t == ERROR:
            return A.TLit(ERROR, call.span, None)
        return A.TCall(t, call.span, self, args, {})

    def sql(self, s, n):
        xs = [s.value(a) for a in n.args]
        if len(xs) == 1:
            return xs[0]
        if s.pg:
            fn = sa.func.least if self.agg == "min" else sa.func.greatest
            return sa.type_coerce(fn(*xs), s.null(n.type).type)
        fn = sa.func.min if self.agg == "min" else sa.func.max

        def fill(*xs):
            # SQLite's min()/max() give NULL when any argument is NULL: replace each
            # blank by the first non-blank argument so blanks are skipped, as in the
            # interpreter (computed once: the SQL stays linear in the arguments).
            return s.let(
                lambda first: fn(*[sa.func.coalesce(x, first) for x in xs]), sa.func.coalesce(*xs)
            )

        return sa.type_coerce(s.let(fill, *xs), s.null(n.type).type)

    def py(self, p, n):
        fs = [p.compile(a) for a in n.args]
        pick = min if self.agg == "min" else max

        def minmax(rows, rt):
            vals = [v for f in fs if (v := f(rows, rt)) is not None]
            return pick(vals) if vals else None

        return minmax


class Min(_MinMax):
    name = "MIN"
    category = "Aggregates"
    signature = "MIN(link.field)  or  MIN(a, b, ...)"
    description = "The smallest linked value, or the smallest argument (blanks skipped)."
    example = "MIN(deals.closed_on)"
    agg = "min"


class Max(_MinMax):
    name = "MAX"
    category = "Aggregates"
    signature = "MAX(link.field)  or  MAX(a, b, ...)"
    description = "The largest linked value, or the largest argument (blanks skipped)."
    example = "MAX(amount, 0)"
    agg = "max"


class CountIf(Aggregate):
    name = "COUNTIF"
    category = "Aggregates"
    signature = "COUNTIF(link, condition)"
    description = "The number of linked rows for which the condition is TRUE."
    example = 'COUNTIF(deals, deals.stage = "won")'
    agg = "count"
    conditional = True


class SumIf(Aggregate):
    name = "SUMIF"
    category = "Aggregates"
    signature = "SUMIF(link.field, condition)"
    description = "The total of the values of the linked rows for which the condition is TRUE."
    example = 'SUMIF(deals.amount, deals.stage = "won")'
    agg = "sum"
    conditional = True


class AvgIf(Aggregate):
    name = "AVGIF"
    category = "Aggregates"
    signature = "AVGIF(link.field, condition)"
    description = "The average over the linked rows for which the condition is TRUE."
    example = 'AVGIF(deals.amount, deals.stage = "won")'
    agg = "avg"
    conditional = True


class MinIf(Aggregate):
    name = "MINIF"
    category = "Aggregates"
    signature = "MINIF(link.field, condition)"
    description = "The smallest value among the linked rows for which the condition is TRUE."
    example = 'MINIF(deals.closed_on, deals.stage = "won")'
    agg = "min"
    conditional = True


class MaxIf(Aggregate):
    name = "MAXIF"
    category = "Aggregates"
    signature = "MAXIF(link.field, condition)"
    description = "The largest value among the linked rows for which the condition is TRUE."
    example = 'MAXIF(deals.amount, deals.stage = "won")'
    agg = "max"
    conditional = True
