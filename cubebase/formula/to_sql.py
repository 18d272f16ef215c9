"""Compile a checked formula to a SQLAlchemy Core expression.

The result is an expression over the FROM alias of the base table, with every
value a bound parameter. Link paths become correlated scalar subqueries, aggregates
correlated aggregate subqueries, ISUNDER a recursive CTE. Booleans have two
forms: ``value`` (two-valued, never NULL: what a SELECT shows) and ``cond``
(NULL may stand for FALSE: used under WHERE and CASE WHEN, where it lets us emit
index-friendly ``col = :p`` without COALESCE or function wrappers).

SQLite and PostgreSQL differ in dates, division, rounding and JSON; every
difference is handled here or in the function classes, keyed on ``dialect``.

The compiler is ``SqlCompiler``, made of parts: ``sql_context`` (SqlContext, SQL
types), ``sql_helpers`` (dialect helpers, ``let``, expression size, date range),
``sql_operators`` (operators and calls), ``sql_links`` (fields, links,
aggregates), ``sql_ranges`` (comparisons rewritten into ranges an index can
serve). This module has the entry points, the size guard and the names callers
import.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from . import ast as A
from .checker import CheckedFormula
from .errors import FormulaError
from .sql_context import NUMERIC, USER_PARAM, RowScope, SqlContext, naive_utc, sqltype
from .sql_helpers import SMALL_EXPR, SqlHelpers, day_in_range, expr_shape, expr_size
from .sql_links import SqlLinks
from .sql_operators import SqlOperators
from .sql_ranges import SqlRanges


class SqlCompiler(SqlHelpers, SqlOperators, SqlLinks, SqlRanges):
    """One compilation; ``env`` is the stack of row aliases (0: the base row)."""

    def __init__(self, ctx: SqlContext, env: list[FromClause]):
        self.ctx = ctx
        self.dialect = ctx.dialect
        self.pg = ctx.dialect == "postgresql"
        self.env = env

    def sub(self, env: list[FromClause]) -> SqlCompiler:
        return SqlCompiler(self.ctx, env)

    # ------------------------------------------------------------ entry points
    def value(self, node: A.TNode) -> ColumnElement:
        """A value expression; Booleans never NULL."""
        if not isinstance(node, A.TLit | A.TUser) and A.is_const(node) and not A.uses_user(node):
            return self.fold(node)
        return getattr(self, "_v_" + type(node).__name__)(node)

    def const_value(self, node: A.TNode):
        """The Python value of a constant sub-formula, as the interpreter computes it."""
        from .interpreter import EvalContext, PyCompiler, _Runtime

        ctx = self.ctx
        user = {"id": ctx.user_id} if ctx.user_id is not None else None
        rt = _Runtime(EvalContext(None, user, ctx.user_roles, ctx.now, ctx.today))
        return PyCompiler().compile(node)(({},), rt)

    def fold(self, node: A.TNode) -> ColumnElement:
        """A constant sub-formula (``DATE(2026, 1, 1)``, ``DATEADD(TODAY(), -30, "days")``)
        is computed once in Python and bound as one parameter: exact, and index-friendly."""
        value = self.const_value(node)
        if node.type.kind == "boolean":
            return sa.true() if value else sa.false()
        if value is None:
            return self.null(node.type)
        if node.type.kind == "record":
            return sa.literal(int(value), sa.Integer())
        return self.lit(value, node.type)

    def cond(self, node: A.TNode) -> ColumnElement:
        """A condition where NULL may mean FALSE (WHERE / CASE WHEN)."""
        if isinstance(node, A.TLogic):
            parts = [self.cond(i) for i in node.items]
            return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
        if isinstance(node, A.TCompare):
            return self.compare(node)
        if isinstance(node, A.TNot) and (neg := self.negated(node.operand)) is not None:
            return neg
        if isinstance(node, A.TIn):
            return self.membership(node)
        if isinstance(node, A.TField) and node.body is None and node.field.storage == "column":
            return sa.type_coerce(self.env[node.scope].c[node.field.column], sa.Boolean()) == (
                sa.true()
            )
        if isinstance(node, A.TCall) and hasattr(node.func, "sql_cond"):
            return node.func.sql_cond(self, node)
        if isinstance(node, A.TLit) and node.value is None:
            return sa.false()
        return self.value(node)

    def negated(self, n: A.TNode) -> ColumnElement | None:
        """Index-friendlier NOT of a plain comparison: blank sides make NOT(...) TRUE."""
        if not isinstance(n, A.TCompare) or n.left.type.kind in ("boolean", "blank"):
            return None
        if n.right.type.kind == "blank" or not (A.is_plain(n.left) and A.is_plain(n.right)):
            return None
        inverse = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}[n.op]
        test = self.compare(A.TCompare(n.type, n.span, inverse, n.left, n.right))
        blanks = [
            self.value(side).is_(None)
            for side in (n.left, n.right)
            if not (isinstance(side, A.TLit) and side.value is not None)
        ]
        return sa.or_(test, *blanks)


# The largest SQL expression a formula may compile to, in nodes as rendered (a
# node used twice counts twice). Real formulas stay far below (a page-long IFS is
# ~2,000); only shapes whose SQL multiplies with nesting get near, and those would
# stall the database rather than run.
MAX_SQL_NODES = 50_000
# ... and the deepest: SQLAlchemy compiles recursively, ~4 Python frames a level,
# so this keeps a statement well inside Python's recursion limit (1000).
MAX_SQL_DEPTH = 200


def too_complex(source: str) -> FormulaError:
    return FormulaError.at(
        source, None, "the formula is too complex to run in the database; simplify it"
    )


def _checked_size(checked: CheckedFormula, expr: ColumnElement) -> ColumnElement:
    """The guard: a formula whose SQL is too large to run (or to compile) is refused."""
    size, depth = expr_shape(expr)
    if size > MAX_SQL_NODES or depth > MAX_SQL_DEPTH:
        raise too_complex(checked.source)
    return expr


def compile_value(checked: CheckedFormula, ctx: SqlContext) -> ColumnElement:
    """The formula as a value expression over ``ctx.alias`` (Booleans never NULL).
    Raises FormulaError when the SQL would be over MAX_SQL_NODES."""
    comp = SqlCompiler(ctx, [ctx.alias if ctx.alias is not None else ctx.table.sql])
    try:
        expr = _checked_size(checked, comp.value(checked.root))
    except RecursionError:
        raise too_complex(checked.source) from None
    if checked.type.kind in ("list", "blank", "error"):
        return expr
    if checked.type.kind == "number" and comp.pg:  # integers (COUNT, LEN...) come back as Decimal
        expr = sa.cast(expr, sa.Numeric())
    return sa.type_coerce(expr, sqltype(checked.type))


def compile_condition(checked: CheckedFormula, ctx: SqlContext) -> ColumnElement:
    """The formula as a WHERE condition (index-friendly; NULL there means FALSE)."""
    if checked.type.kind not in ("boolean", "blank"):
        raise FormulaError.at(
            checked.source,
            checked.root.span,
            f"a condition must give TRUE or FALSE, but this formula gives {checked.type_name}",
        )
    comp = SqlCompiler(ctx, [ctx.alias if ctx.alias is not None else ctx.table.sql])
    try:
        return _checked_size(checked, comp.cond(checked.root))
    except RecursionError:
        raise too_complex(checked.source) from None


__all__ = [
    "MAX_SQL_DEPTH",
    "MAX_SQL_NODES",
    "NUMERIC",
    "SMALL_EXPR",
    "USER_PARAM",
    "RowScope",
    "SqlCompiler",
    "SqlContext",
    "compile_condition",
    "compile_value",
    "day_in_range",
    "expr_shape",
    "expr_size",
    "naive_utc",
    "sqltype",
    "too_complex",
]
