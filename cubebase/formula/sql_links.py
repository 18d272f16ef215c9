"""Fields, link paths, membership in list fields, and aggregates over to-many links
(correlated subqueries, or grouped derived tables LEFT JOINed once for filters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from . import ast as A
from .errors import FormulaError
from .schema import FieldInfo, TableInfo
from .sql_context import USER_PARAM, sqltype

if TYPE_CHECKING:  # pragma: no cover
    from .to_sql import SqlCompiler


class SqlLinks:
    """Fields, links and aggregates of ``SqlCompiler`` (a part of it)."""

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
