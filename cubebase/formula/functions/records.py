"""Records by id: ID(link). The name ``id`` (a row's own id) is resolved by the checker."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from ..types import NUMBER
from .base import Function


class Id(Function):
    name = "ID"
    category = "Records"
    signature = "ID(link)  and  id"
    description = (
        "The id (a whole number) of the linked record or user; `id` alone is the record's "
        "own id (blank before it is saved), and `link.id` is the same as ID(link). A link "
        "compared with a number compares its id: account_manager = 6, region IN (1, 2)."
    )
    example = "ID(account_manager) = 6"
    blanks = "a blank link gives blank"
    min_args, max_args = 1, 1

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        if not c.expect(args[0], {"record"}, "ID"):
            return ERROR
        return NUMBER

    def sql(self, s, n):
        return sa.type_coerce(s.as_numeric(s.value(n.args[0])), sa.Numeric(asdecimal=True))

    def py(self, p, n):
        f = p.compile(n.args[0])

        def record_id(rows, rt):
            v = f(rows, rt)
            return None if v is None else Decimal(int(v))

        return record_id
