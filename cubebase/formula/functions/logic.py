"""Logic: IF, IFS, SWITCH, AND, OR, NOT, ISBLANK, BLANK, COALESCE."""

from __future__ import annotations

import sqlalchemy as sa

from .. import ast as A
from ..types import BLANK as BLANK_T
from ..types import BOOLEAN
from .base import ANY, Function


class If(Function):
    name = "IF"
    category = "Logic"
    signature = "IF(condition, then, [else])"
    description = "`then` when the condition is TRUE, otherwise `else` (blank when omitted)."
    example = "IF(amount >= 100000, amount * 0.05, amount * 0.03)"
    blanks = "a blank condition counts as FALSE"
    min_args, max_args = 2, 3

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        if not c.expect_condition(args[0], "IF (argument 1)"):
            return ERROR
        return c.unify(args[1:], "IF")

    def sql(self, s, n):
        c, a = n.args[0], n.args[1]
        other = s.value(n.args[2]) if len(n.args) > 2 else s.null(n.type)
        return sa.case((s.cond(c), s.value(a)), else_=other)

    def py(self, p, n):
        fc, fa = p.cond(n.args[0]), p.compile(n.args[1])
        fb = p.compile(n.args[2]) if len(n.args) > 2 else None
        if fb is None:
            return lambda rows, rt: fa(rows, rt) if fc(rows, rt) else None
        return lambda rows, rt: fa(rows, rt) if fc(rows, rt) else fb(rows, rt)


class Ifs(Function):
    name = "IFS"
    category = "Logic"
    signature = "IFS(condition1, value1, condition2, value2, ..., [else])"
    description = "The value of the first TRUE condition; `else` (or blank) when none is."
    example = 'IFS(amount > 100000, "large", amount > 10000, "medium", "small")'
    blanks = "blank conditions count as FALSE"
    min_args, max_args = 2, None

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        ok = True
        for i in range(0, len(args) - 1, 2):
            ok &= c.expect_condition(args[i], f"IFS (argument {i + 1})")
        results = [args[i] for i in range(1, len(args), 2)]
        if len(args) % 2:
            results.append(args[-1])
        return c.unify(results, "IFS") if ok else ERROR

    def sql(self, s, n):
        a = n.args
        whens = [(s.cond(a[i]), s.value(a[i + 1])) for i in range(0, len(a) - 1, 2)]
        other = s.value(a[-1]) if len(a) % 2 else s.null(n.type)
        return sa.case(*whens, else_=other)

    def py(self, p, n):
        a = n.args
        pairs = [(p.cond(a[i]), p.compile(a[i + 1])) for i in range(0, len(a) - 1, 2)]
        other = p.compile(a[-1]) if len(a) % 2 else (lambda rows, rt: None)

        def ifs(rows, rt):
            for c, v in pairs:
                if c(rows, rt):
                    return v(rows, rt)
            return other(rows, rt)

        return ifs


class Switch(Function):
    name = "SWITCH"
    category = "Logic"
    signature = "SWITCH(value, case1, result1, case2, result2, ..., [else])"
    description = "The result of the first case equal to `value`; `else` (or blank) otherwise."
    example = 'SWITCH(stage, "won", 1, "lost", 0, 0.5)'
    blanks = "a blank value matches no case (gives `else`)"
    min_args, max_args = 3, None

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR, same_type

        x, rest = args[0], args[1:]
        tests = []
        ok = True
        for i in range(0, len(rest) - 1, 2):
            v = rest[i]
            kinds = {x.type.kind, v.type.kind}
            if not (kinds & {"blank"} or same_type(x.type, v.type)):
                c.error(v.span, f"SWITCH: cannot compare {x.type} with {v.type}")
                ok = False
            tests.append(A.TCompare(BOOLEAN, v.span, "=", x, v))
        results = [rest[i] for i in range(1, len(rest), 2)]
        if len(rest) % 2:
            results.append(rest[-1])
        extra["tests"] = tests
        return c.unify(results, "SWITCH") if ok else ERROR

    def sql(self, s, n):
        rest = n.args[1:]
        results = [s.value(rest[2 * i + 1]) for i in range(len(n.extra["tests"]))]
        other = s.value(rest[-1]) if len(rest) % 2 else s.null(n.type)

        def switch(x):  # the value is compiled (and computed) once for all the cases
            tests = [s.compare(t, x) for t in n.extra["tests"]]
            return sa.case(*zip(tests, results, strict=True), else_=other)

        return s.let(switch, s.value(n.args[0]))

    def py(self, p, n):
        rest = n.args[1:]
        pairs = [(p.cond(t), p.compile(rest[2 * i + 1])) for i, t in enumerate(n.extra["tests"])]
        other = p.compile(rest[-1]) if len(rest) % 2 else (lambda rows, rt: None)

        def switch(rows, rt):
            for c, v in pairs:
                if c(rows, rt):
                    return v(rows, rt)
            return other(rows, rt)

        return switch


class _LogicCall(Function):
    """AND(...)/OR(...) are the infix operators in call form: checked into TLogic."""

    min_args, max_args = 1, None
    op = ""
    blanks = "blank arguments count as FALSE"

    def check(self, c, call):
        from ..checker import ERROR

        msg = self.arity_error(len(call.args))
        if msg:
            return c.error(call.span, msg)
        items = [c.check(a) for a in call.args]
        ok = all([c.expect_condition(x, self.name) for x in items])
        if not ok or any(x.type == ERROR for x in items):
            return A.TLit(ERROR, call.span, None)
        return A.TLogic(BOOLEAN, call.span, self.op, items)


class And(_LogicCall):
    name = "AND"
    category = "Logic"
    signature = "AND(condition1, condition2, ...)  or  a AND b"
    description = "TRUE when every condition is TRUE."
    example = 'AND(amount > 0, stage = "won")'
    op = "and"


class Or(_LogicCall):
    name = "OR"
    category = "Logic"
    signature = "OR(condition1, condition2, ...)  or  a OR b"
    description = "TRUE when at least one condition is TRUE."
    example = 'OR(stage = "won", stage = "lost")'
    op = "or"


class Not(Function):
    name = "NOT"
    category = "Logic"
    signature = "NOT(condition)  or  NOT condition"
    description = "TRUE when the condition is not TRUE."
    example = 'NOT(region = "North")'
    blanks = "a blank condition counts as FALSE, so NOT gives TRUE"
    min_args, max_args = 1, 1
    # ``NOT(x)`` parses as the prefix operator applied to ``(x)``; this class only
    # documents it and catches the odd call with several arguments.

    def check(self, c, call):
        return c.error(call.span, self.arity_error(len(call.args)) or "NOT takes 1 argument")


class IsBlank(Function):
    name = "ISBLANK"
    category = "Logic"
    signature = "ISBLANK(value)"
    description = (
        "TRUE when the value is blank. Empty text and an empty multi-select count as blank; "
        "a Boolean is never blank (blank reads as FALSE)."
    )
    example = "ISBLANK(account_manager)"
    blanks = "this is the blank test"
    min_args, max_args = 1, 1
    never_null = True

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR, TO_MANY

        x = args[0]
        src = getattr(x, "field", None)
        if x.type.kind == "list" and src is not None and src.storage in TO_MANY:
            c.error(
                x.span, f"ISBLANK cannot test a list of records; use COUNT({c.text(x.span)}) = 0"
            )
            return ERROR
        c.expect(x, ANY, "ISBLANK")
        return BOOLEAN

    def sql(self, s, n):
        x = n.args[0]
        kind = x.type.kind
        if kind == "boolean":
            return sa.false()
        v = s.value(x)
        if kind == "blank":
            return sa.true()
        if kind == "text":
            return sa.or_(v.is_(None), v == "")
        if kind == "list":
            # NULL, a JSON null and [] are all blank
            if s.pg:
                from sqlalchemy.dialects.postgresql import JSONB

                j = sa.type_coerce(v, JSONB)
                return sa.case(
                    (sa.func.jsonb_typeof(j) == "array", sa.func.jsonb_array_length(j) == 0),
                    else_=sa.true(),
                )
            return sa.func.coalesce(sa.func.json_array_length(v), 0) == 0
        return v.is_(None)

    sql_cond = sql

    def py(self, p, n):
        x = n.args[0]
        if x.type.kind == "boolean":
            return lambda rows, rt: False
        f = p.compile(x)
        if x.type.kind in ("text", "list"):
            return lambda rows, rt: not f(rows, rt)
        return lambda rows, rt: f(rows, rt) is None


class Blank(Function):
    name = "BLANK"
    category = "Logic"
    signature = "BLANK()"
    description = "The blank value. `x = BLANK()` is the same as ISBLANK(x)."
    example = "IF(amount > 0, amount, BLANK())"
    blanks = "—"

    def check(self, c, call):
        if call.args:
            return c.error(call.span, self.arity_error(len(call.args)) or "")
        return A.TLit(BLANK_T, call.span, None)


class Coalesce(Function):
    name = "COALESCE"
    category = "Logic"
    signature = "COALESCE(value1, value2, ...)"
    description = "The first value that is not blank (empty text counts as blank)."
    example = 'COALESCE(nickname, first_name, "friend")'
    blanks = "skips blanks; blank only when every value is blank"
    min_args, max_args = 1, None

    def type_rule(self, c, call, args, extra):
        for a in args:
            c.expect(a, {"number", "text", "boolean", "date", "datetime", "record"}, "COALESCE")
        return c.unify(args, "COALESCE")

    def sql(self, s, n):
        xs = [s.value(a) for a in n.args]
        if n.type.kind == "text":
            xs = [sa.func.nullif(x, "") for x in xs]
        if len(xs) == 1:
            return xs[0]
        return sa.func.coalesce(*xs, type_=s.null(n.type).type)

    def py(self, p, n):
        fs = [p.compile(a) for a in n.args]

        def coalesce(rows, rt):
            for f in fs:
                v = f(rows, rt)
                if v is not None and v != "":
                    return v
            return None

        return coalesce
