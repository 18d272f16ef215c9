"""Compile a checked formula to a SQLAlchemy Core expression.

The result is an expression over the FROM alias of the base table, with every
value a bound parameter. Link paths become correlated scalar subqueries, aggregates
correlated aggregate subqueries, ISUNDER a recursive CTE. Booleans have two
forms: ``value`` (two-valued, never NULL: what a SELECT shows) and ``cond``
(NULL may stand for FALSE: used under WHERE and CASE WHEN, where it lets us emit
index-friendly ``col = :p`` without COALESCE or function wrappers).

SQLite and PostgreSQL differ in dates, division, rounding and JSON; every
difference is handled here or in the function classes, keyed on ``dialect``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from . import ast as A
from .checker import CheckedFormula
from .errors import FormulaError
from .schema import FieldInfo, SchemaProvider, TableInfo
from .types import FType

NUMERIC = sa.Numeric(asdecimal=True)
USER_PARAM = "cb_user_id"  # the bound parameter USER() compiles to
RowScope = Callable[[TableInfo, FromClause], "ColumnElement[bool] | None"]


@dataclass
class SqlContext:
    """Everything the SQL compiler needs besides the formula.

    ``alias`` is the FROM clause the base table is selected under (defaults to
    ``table.sql``). ``now``/``today`` are bound parameters, so the database sees
    the same instant as the interpreter; ``now`` should be timezone-aware (it is
    converted to naive UTC, the DateTime storage convention). ``row_scope`` is
    called for every other table a link path or aggregate reads; the condition
    it returns is added to that subquery (None: no restriction).

    ``joins``: when a dict is given, aggregates over the base row compile to a
    column of a grouped derived table (``SELECT link, agg(...) ... GROUP BY link``)
    instead of a correlated subquery, and the derived table is put in ``joins``
    (signature -> (subquery, ON clause)) for the caller to LEFT JOIN to the base
    table, once per distinct aggregate. One pass over the linked rows instead of
    an index probe per row: for filters and sorts, which read every row.
    """

    schema: SchemaProvider
    table: TableInfo
    alias: FromClause | None = None
    dialect: str = "sqlite"
    now: datetime | None = None
    today: date | None = None
    user_id: int | None = None
    user_roles: frozenset[str] = field(default_factory=frozenset)
    row_scope: RowScope | None = None
    joins: dict[Any, tuple[FromClause, ColumnElement]] | None = None

    def __post_init__(self) -> None:
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {self.dialect!r}")
        if self.now is None:
            self.now = datetime.now(UTC)
        if self.today is None:
            self.today = self.now.date()


def sqltype(t: FType) -> sa.types.TypeEngine:
    return {
        "number": NUMERIC,
        "text": sa.String(),
        "boolean": sa.Boolean(),
        "date": sa.Date(),
        "datetime": sa.DateTime(),
        "record": sa.Integer(),
    }.get(t.kind, sa.String())


def naive_utc(dt: datetime) -> datetime:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


class SqlCompiler:
    """One compilation; ``env`` is the stack of row aliases (0: the base row)."""

    def __init__(self, ctx: SqlContext, env: list[FromClause]):
        self.ctx = ctx
        self.dialect = ctx.dialect
        self.pg = ctx.dialect == "postgresql"
        self.env = env

    def sub(self, env: list[FromClause]) -> SqlCompiler:
        return SqlCompiler(self.ctx, env)

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
        """SQLite: round binary-float noise away before floor/ceil/trunc (x.9999999 -> x+1)."""
        return expr if self.pg else sa.func.round(expr, 9)

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

    # ------------------------------------------------------------ entry points
    def value(self, node: A.TNode) -> ColumnElement:
        """A value expression; Booleans never NULL."""
        if not isinstance(node, A.TLit | A.TUser) and A.is_const(node) and not A.uses_user(node):
            return self.fold(node)
        return getattr(self, "_v_" + type(node).__name__)(node)

    def fold(self, node: A.TNode) -> ColumnElement:
        """A constant sub-formula (``DATE(2026, 1, 1)``, ``DATEADD(TODAY(), -30, "days")``)
        is computed once in Python and bound as one parameter: exact, and index-friendly."""
        from .interpreter import EvalContext, PyCompiler, _Runtime

        ctx = self.ctx
        user = {"id": ctx.user_id} if ctx.user_id is not None else None
        rt = _Runtime(EvalContext(None, user, ctx.user_roles, ctx.now, ctx.today))
        value = PyCompiler().compile(node)(({},), rt)
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

    # ------------------------------------------------------------ values
    def _v_TLit(self, n: A.TLit) -> ColumnElement:
        if n.value is None:
            return sa.false() if n.type.kind == "boolean" else self.null(n.type)
        if n.type.kind == "record":  # a record id (account_manager = 6): an integer
            return sa.literal(int(n.value), sa.Integer())
        return self.lit(n.value, n.type)

    def _v_TRowId(self, n: A.TRowId) -> ColumnElement:
        return sa.type_coerce(self.env[n.scope].c.id, NUMERIC)

    def read(self, alias: FromClause, table: TableInfo, f: FieldInfo, body: A.TNode | None):
        """The value of field ``f`` on the row ``alias``."""
        if f.storage == "formula" and f.column is not None:
            # a stored formula (the platform keeps its column up to date)
            col = alias.c[f.column]
            if f.type.kind == "boolean":
                return self.coalesce_false(col)
            return sa.type_coerce(col, sqltype(f.type))
        if body is not None:
            return self.sub([alias]).value(body)
        if f.storage in ("column", "json_list"):
            col = alias.c[f.column]
            if f.storage == "json_list":
                return col
            if f.type.kind == "boolean":
                return self.coalesce_false(col)
            return sa.type_coerce(col, sqltype(f.type))
        raise FormulaError.at(
            "", None, f"`{f.key}` is a list of records; use it in COUNT/SUM/... or after IN"
        )

    def _v_TField(self, n: A.TField) -> ColumnElement:
        return self.read(self.env[n.scope], n.table, n.field, n.body)

    def _v_TNav(self, n: A.TNav) -> ColumnElement:
        src = self.value(n.source)
        a = n.table.sql.alias()
        inner = self.read(a, n.table, n.field, n.body)
        where = [a.c.id == src]
        if not isinstance(n.source, A.TUser):
            where += self.scope_filter(n.table, a)
        sub = sa.select(inner).select_from(a).where(*where).correlate_except(a).scalar_subquery()
        if n.type.kind == "boolean":
            return self.coalesce_false(sub)
        return sa.type_coerce(sub, sqltype(n.type))

    def _v_TUser(self, n: A.TUser) -> ColumnElement:
        # One named parameter for the whole statement: a statement built for one user
        # runs for another with ``{USER_PARAM: id}`` (no user: NULL, never equal).
        uid = self.ctx.user_id
        return sa.bindparam(USER_PARAM, None if uid is None else int(uid), type_=sa.Integer())

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

    def list_contains(self, src: A.TNode, x: ColumnElement) -> ColumnElement:
        """``x`` is a member of the list-typed field ``src`` (direct or via a link)."""
        table, f = src.table, src.field  # type: ignore[attr-defined]
        if isinstance(src, A.TField):
            alias, where = self.env[src.scope], []
            outer_id = alias.c.id
        else:
            alias = table.sql.alias()
            outer_id = self.value(src.source)  # type: ignore[attr-defined]
            where = [alias.c.id == outer_id]
            if not isinstance(src.source, A.TUser):  # type: ignore[attr-defined]
                where += self.scope_filter(table, alias)
        if f.storage == "json_list":
            col = alias.c[f.column]
            if self.pg:
                test = sa.type_coerce(col, JSONB).has_key(sa.cast(x, sa.String()))
                if not where:
                    return test
                return sa.exists(
                    sa.select(1).select_from(alias).where(*where, test).correlate_except(alias)
                )
            je = sa.func.json_each(col).table_valued("value")
            if not where:
                return x.in_(sa.select(je.c.value).select_from(je).correlate_except(je))
            q = sa.select(je.c.value).select_from(alias).join(je, sa.true()).where(*where)
            return x.in_(q.correlate_except(alias, je))
        item_table = self.table(f.link.target)
        item = item_table.sql.alias()
        frm, item_where, own = self.to_many(outer_id, f, item_table, item)
        if isinstance(src, A.TNav) and len(where) > 1:
            item_where.append(
                sa.exists(sa.select(1).select_from(alias).where(*where).correlate_except(alias))
            )
        q = sa.select(item.c.id).select_from(frm).where(*item_where).correlate_except(*own)
        return x.in_(q)

    def to_many(
        self, outer_id: ColumnElement, link: FieldInfo, item_table: TableInfo, item: FromClause
    ) -> tuple[FromClause, list[ColumnElement], list[FromClause]]:
        """FROM and WHERE selecting the rows of ``item_table`` behind ``link`` of row ``outer_id``."""
        info = link.link
        assert info is not None
        if link.storage == "reverse":
            fk = item_table.fields[info.target_field].column
            where = [item.c[fk] == outer_id]
            frm: FromClause = item
            own = [item]
        else:
            j = info.junction.alias()
            frm = item.join(j, j.c[info.target_column] == item.c.id)
            where = [j.c[info.source_column] == outer_id]
            own = [item, j]
        where += self.scope_filter(item_table, item)
        return frm, where, own

    def _v_TIn(self, n: A.TIn) -> ColumnElement:
        return self.coalesce_false(self.membership(n))

    def _v_TCall(self, n: A.TCall) -> ColumnElement:
        expr = n.func.sql(self, n)
        if n.type.kind == "boolean" and not getattr(n.func, "never_null", False):
            return self.coalesce_false(expr)
        return expr

    def _v_TAgg(self, n: A.TAgg) -> ColumnElement:
        return n.func.sql_agg(self, n)

    def aggregate(self, n: A.TAgg, make: Callable[[SqlCompiler], ColumnElement]):
        """A correlated subquery over the items of ``n.link``; ``make`` builds the aggregate."""
        outer = self.env[n.scope]
        if self.ctx.joins is not None and self._groupable(n, outer):
            return self.grouped(n, make)
        item = n.item_table.sql.alias()
        frm, where, own = self.to_many(outer.c.id, n.link, n.item_table, item)
        inner = self.sub([*self.env, item])
        if n.cond is not None:
            where.append(inner.cond(n.cond))
        q = sa.select(make(inner)).select_from(frm).where(*where).correlate_except(*own)
        return q.scalar_subquery()

    def _groupable(self, n: A.TAgg, outer: FromClause) -> bool:
        """An aggregate over the base row whose value and condition read only the items."""
        base = self.ctx.alias if self.ctx.alias is not None else self.ctx.table.sql
        if outer is not base or n.scope != 0:
            return False
        stack = [x for x in (n.value, n.cond) if x is not None]
        while stack:
            node = stack.pop()
            if getattr(node, "scope", None) == n.scope:
                return False  # reads the base row: stays correlated
            stack.extend(A.tchildren(node))
        return True

    def grouped(self, n: A.TAgg, make: Callable[[SqlCompiler], ColumnElement]):
        """The aggregate as a column of ``SELECT link, agg GROUP BY link``, registered
        in ``ctx.joins`` (blank for base rows without items, like the subquery's NULL)."""
        info = n.link.link
        assert info is not None and self.ctx.joins is not None
        item = n.item_table.sql.alias()
        if n.link.storage == "reverse":
            key = item.c[n.item_table.fields[info.target_field].column]
            frm: FromClause = item
        else:
            j = info.junction.alias()
            frm = item.join(j, j.c[info.target_column] == item.c.id)
            key = j.c[info.source_column]
        where = self.scope_filter(n.item_table, item)
        inner = self.sub([*self.env, item])
        if n.cond is not None:
            where.append(inner.cond(n.cond))
        q = sa.select(key.label("k"), make(inner).label("v")).select_from(frm).where(*where)
        q = q.group_by(key)
        ck = q._generate_cache_key()
        sig = (ck.key, tuple(repr(b.effective_value) for b in ck.bindparams))
        if sig not in self.ctx.joins:
            g = q.subquery()
            base = self.env[0]
            self.ctx.joins[sig] = (g, g.c.k == base.c.id)
        return self.ctx.joins[sig][0].c.v


# The largest SQL expression a formula may compile to, in nodes as rendered (a
# node used twice counts twice). Real formulas stay far below (a page-long IFS is
# ~2,000); only shapes whose SQL multiplies with nesting get near, and those would
# stall the database rather than run.
MAX_SQL_NODES = 50_000
# ... and the deepest: SQLAlchemy compiles recursively, ~4 Python frames a level,
# so this keeps a statement well inside Python's recursion limit (1000).
MAX_SQL_DEPTH = 200
SMALL_EXPR = 8  # repeated as is; anything larger is computed once (SqlCompiler.let)
_LEAF = (sa.Column, sa.sql.elements.ColumnClause, sa.TableClause)


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
