"""Users and roles: USER, HAS_ROLE, ISUNDER."""

from __future__ import annotations

import sqlalchemy as sa

from .. import ast as A
from ..types import BOOLEAN, USER
from .base import TXT, Function


class User(Function):
    name = "USER"
    category = "Users"
    signature = "USER()  and  USER().field"
    description = (
        "The signed-in user (a record of the users table); follow it to the user's own "
        "fields, e.g. USER().region. Blank when nobody is signed in."
    )
    example = "account_manager = USER()"
    blanks = "—"

    def check(self, c, call):
        if call.args:
            return c.error(call.span, self.arity_error(len(call.args)) or "")
        return A.TUser(USER, call.span)


class HasRole(Function):
    name = "HAS_ROLE"
    category = "Users"
    signature = "HAS_ROLE(role)"
    description = "TRUE when the signed-in user has the role (exact name)."
    example = 'HAS_ROLE("Director")'
    blanks = "FALSE for a blank role"
    min_args, max_args = 1, 1
    never_null = True

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        return BOOLEAN if c.expect(args[0], TXT, "HAS_ROLE") else ERROR

    def sql(self, s, n):
        roles = sorted(s.ctx.user_roles)
        arg = n.args[0]
        if isinstance(arg, A.TLit):
            return sa.true() if arg.value in s.ctx.user_roles else sa.false()
        if not roles:
            return sa.false()
        return s.coalesce_false(s.value(arg).in_([sa.literal(r, sa.String()) for r in roles]))

    def py(self, p, n):
        f = p.compile(n.args[0])
        return lambda rows, rt: f(rows, rt) in rt.user_roles


class IsUnder(Function):
    name = "ISUNDER"
    category = "Users"
    signature = "ISUNDER(node, ancestor)"
    description = (
        "TRUE when `node` is `ancestor` or below it in a tree table (a table with a parent "
        "link to itself, e.g. Regions or Departments). Row permissions do not hide tree "
        "levels here: the tree structure is always followed in full."
    )
    example = "ISUNDER(region, USER().region)"
    blanks = "FALSE when either side is blank"
    min_args, max_args = 2, 2
    never_null = True

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        node, anc = args
        for a in args:
            if a.type.kind not in ("record", "blank"):
                c.error(a.span, f"ISUNDER expects links to rows of a tree table, got {a.type}")
                return ERROR
        tables = {a.type.table for a in args if a.type.kind == "record"}
        if len(tables) > 1:
            c.error(
                call.span,
                f"ISUNDER: both sides must link to the same table, got {' and '.join(sorted(tables))}",
            )
            return ERROR
        if tables:
            t = c.schema.table(tables.pop())
            if t is None or not t.parent_field or t.parent_field not in t.fields:
                name = t.label if t else "?"
                c.error(
                    call.span, f"ISUNDER needs a tree table (with a parent link); {name} has none"
                )
                return ERROR
            extra["table"] = t.key
            extra["parent"] = (t.key, t.fields[t.parent_field].id)
        return BOOLEAN

    def _in_tree(self, s, n):
        if "table" not in n.extra:
            return sa.false()
        t = s.table(n.extra["table"])
        parent_col = t.fields[t.parent_field].column
        node, anc = s.value(n.args[0]), s.value(n.args[1])
        top = t.sql.alias()
        # An anonymous CTE: SQLAlchemy names it (anon_N) when the statement is
        # compiled, so the same formula always builds the same statement (one
        # compiled-cache entry) and several ISUNDERs never clash. Nested: it is
        # rendered inside the IN subquery, where the outer row is in scope; the
        # anchor correlates explicitly (a CTE does not auto-correlate), so an
        # ancestor read from the row (``ISUNDER(x, region)``) is this row's.
        down = (
            sa.select(top.c.id.label("id"))
            .where(top.c.id == anc)
            .correlate_except(top)
            .cte(recursive=True, nesting=True)
        )
        child = t.sql.alias()
        down = down.union(sa.select(child.c.id).join(down, child.c[parent_col] == down.c.id))
        return node.in_(sa.select(down.c.id))

    def sql(self, s, n):
        return s.coalesce_false(self._in_tree(s, n))

    def sql_cond(self, s, n):
        # Under WHERE, NULL means FALSE: SQLite then searches the node's index with
        # the subtree (COALESCE made it scan the table). PostgreSQL keeps COALESCE:
        # with it, it checks each row against the hashed subtree, where the bare IN
        # got a parallel plan several times slower (benchmarks/README.md).
        return self.sql(s, n) if s.pg else self._in_tree(s, n)

    def py(self, p, n):
        table = n.extra.get("table")
        fnode, fanc = p.compile(n.args[0]), p.compile(n.args[1])

        def isunder(rows, rt):
            a, b = fnode(rows, rt), fanc(rows, rt)
            if a is None or b is None or table is None or rt.resolver is None:
                return False
            return a == b or bool(rt.resolver.is_under(table, a, b))

        return isunder
