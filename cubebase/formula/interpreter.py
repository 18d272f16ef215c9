"""Evaluate a checked formula for one record in memory.

The typed tree is compiled once into nested Python closures ``fn(rows, rt)``
(``rows``: the stack of row mappings, 0 = the record; ``rt``: the runtime), and
cached on the ``CheckedFormula``; evaluating is then just calling the root
closure, with no tree walking or isinstance dispatch per evaluation.

Values: Decimal (numbers, exact), str, bool, date, datetime (naive UTC), int
(record ids), list (multi-select texts / linked ids), None (blank). Link paths
and aggregates go through the ``RecordResolver``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from . import ast as A
from .checker import CheckedFormula
from .errors import FormulaError
from .schema import FieldInfo, RecordResolver
from .types import FType

Fn = Callable[[tuple, Any], Any]
_TEN9 = 9


@dataclass
class EvalContext:
    """What the interpreter needs besides the record.

    ``user`` is the signed-in user's own record (with ``"id"``), ``now`` an aware
    (or naive UTC) datetime and ``today`` the workspace's date.
    """

    resolver: RecordResolver | None = None
    user: Mapping[str, Any] | None = None
    user_roles: frozenset[str] = field(default_factory=frozenset)
    now: datetime | None = None
    today: date | None = None


class _Runtime:
    """Per-evaluation view of the EvalContext; ``now``/``today`` are computed lazily."""

    __slots__ = ("resolver", "user", "user_id", "user_roles", "_ctx", "_now", "_today")

    def __init__(self, ctx: EvalContext):
        self._ctx = ctx
        self.resolver = ctx.resolver
        self.user = ctx.user
        self.user_id = ctx.user.get("id") if ctx.user else None
        self.user_roles = ctx.user_roles
        self._now = self._today = None

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = to_datetime(self._ctx.now or datetime.now(UTC))
        return self._now

    @property
    def today(self) -> date:
        if self._today is None:
            self._today = self._ctx.today or (self._ctx.now or datetime.now(UTC)).date()
        return self._today

    def get(self, table: str, rid: Any) -> Mapping[str, Any] | None:
        if self.resolver is None:
            return None
        return self.resolver.get(table, rid)

    def related(self, table: str, rid: Any, key: str):
        if self.resolver is None:
            return ()
        return self.resolver.related(table, rid, key) or ()


# ---------------------------------------------------------------- value normalizers
def to_decimal(v: Any) -> Decimal | None:
    if v is None or type(v) is Decimal:
        return v
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    try:
        return Decimal(str(v))
    except InvalidOperation:
        return None


def to_datetime(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    return None


def to_date(v: Any) -> date | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        return date.fromisoformat(v[:10])
    return None


def to_record(v: Any) -> int | None:
    if v is None or isinstance(v, int):
        return v
    if isinstance(v, Mapping):
        return v.get("id")
    return int(v)


def _text(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


NORMALIZE: dict[str, Callable[[Any], Any]] = {
    "number": to_decimal,
    "text": _text,
    "boolean": lambda v: v is True or (v is not None and v is not False and bool(v)),
    "date": to_date,
    "datetime": to_datetime,
    "record": to_record,
    "list": lambda v: list(v) if v is not None else None,
}


def num_text(x: Decimal) -> str:
    q = x.scaleb(_TEN9).to_integral_value(ROUND_HALF_UP).scaleb(-_TEN9)
    if q == 0:
        return "0"
    s = format(q, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def text_value(v: Any, kind: str) -> str | None:
    if v is None:
        return None
    if kind == "number":
        return num_text(v)
    if kind == "boolean":
        return "TRUE" if v else "FALSE"
    if kind == "datetime":
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "date":
        return v.isoformat()
    return v


def q9(x: Decimal) -> Decimal:
    """Computed numbers compare at 9 decimals (see to_sql.cmp_operands)."""
    return x.scaleb(_TEN9).to_integral_value(ROUND_HALF_UP)


_CMP = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul}


class PyCompiler:
    """Turns typed nodes into closures; bodies of formula fields are compiled once."""

    def __init__(self, bodies: dict[int, Fn] | None = None):
        self.bodies = bodies if bodies is not None else {}

    def compile(self, node: A.TNode) -> Fn:
        return getattr(self, "_c_" + type(node).__name__)(node)

    def cond(self, node: A.TNode) -> Fn:
        """A closure giving exactly True or False (blank counts as FALSE)."""
        f = self.compile(node)
        if isinstance(node, A.TLogic | A.TCompare | A.TNot | A.TIn):
            return f
        return lambda rows, rt: f(rows, rt) is True

    def strict(self, args: list[A.TNode], impl: Callable[..., Any], n: A.TCall) -> Fn:
        """Blank in, blank out: call ``impl`` only when every argument has a value."""
        fs = [self.compile(a) for a in args]
        boolean = n.type.kind == "boolean"
        if len(fs) == 1:
            (f0,) = fs

            def one(rows, rt):
                a = f0(rows, rt)
                if a is None:
                    return False if boolean else None
                return impl(a)

            return one
        if len(fs) == 2:
            f0, f1 = fs

            def two(rows, rt):
                a = f0(rows, rt)
                if a is None:
                    return False if boolean else None
                b = f1(rows, rt)
                if b is None:
                    return False if boolean else None
                return impl(a, b)

            return two

        def many(rows, rt):
            vals = []
            for f in fs:
                v = f(rows, rt)
                if v is None:
                    return False if boolean else None
                vals.append(v)
            return impl(*vals)

        return many

    def body(self, node: A.TNode) -> Fn:
        key = id(node)
        fn = self.bodies.get(key)
        if fn is None:
            fn = self.compile(node)
            self.bodies[key] = fn
        return fn

    # ------------------------------------------------------------ leaves
    def _c_TLit(self, n: A.TLit) -> Fn:
        v = n.value
        if v is None and n.type.kind == "boolean":
            v = False
        return lambda rows, rt: v

    def reader(self, f: FieldInfo, t: FType, body: A.TNode | None, scope: int) -> Fn:
        """Read field ``f`` of ``rows[scope]``."""
        if body is not None:
            bf = self.body(body)
            if t.kind == "boolean":
                return lambda rows, rt: bf((rows[scope],), rt) is True
            return lambda rows, rt: bf((rows[scope],), rt)
        key = f.key
        kind = f.type.kind
        if kind == "number":

            def num(rows, rt):
                v = rows[scope].get(key)
                if v is None or type(v) is Decimal:
                    return v
                return to_decimal(v)

            return num
        if kind == "text":

            def txt(rows, rt):
                v = rows[scope].get(key)
                return v if v is None or type(v) is str else str(v)

            return txt
        if kind == "boolean":
            return lambda rows, rt: bool(rows[scope].get(key))
        norm = NORMALIZE.get(kind, lambda v: v)
        return lambda rows, rt: norm(rows[scope].get(key))

    def _to_many_ids(self, table: str, key: str, scope: int) -> Fn:
        def ids(rows, rt):
            rid = rows[scope].get("id")
            if rid is None:
                return []
            return [r.get("id") for r in rt.related(table, rid, key)]

        return ids

    def _c_TField(self, n: A.TField) -> Fn:
        if n.body is None and n.field.storage in ("reverse", "junction"):
            return self._to_many_ids(n.table.key, n.field.key, n.scope)
        return self.reader(n.field, n.type, n.body, n.scope)

    def _c_TNav(self, n: A.TNav) -> Fn:
        src = self.compile(n.source)
        tkey = n.table.key
        if n.body is None and n.field.storage in ("reverse", "junction"):
            read = self._to_many_ids(tkey, n.field.key, 0)
        else:
            read = self.reader(n.field, n.type, n.body, 0)
        from_user = isinstance(n.source, A.TUser)
        missing = False if n.type.kind == "boolean" else None

        def nav(rows, rt):
            rid = src(rows, rt)
            if rid is None:
                return missing
            rec = rt.user if from_user else rt.get(tkey, rid)
            if rec is None:
                return missing
            return read((rec,), rt)

        return nav

    def _c_TUser(self, n: A.TUser) -> Fn:
        return lambda rows, rt: rt.user_id

    def _c_TRowId(self, n: A.TRowId) -> Fn:
        scope = n.scope

        def row_id(rows, rt):
            v = rows[scope].get("id")
            return None if v is None else Decimal(int(v))

        return row_id

    # ------------------------------------------------------------ operators
    def _c_TUnary(self, n: A.TUnary) -> Fn:
        f = self.compile(n.operand)
        return lambda rows, rt: None if (v := f(rows, rt)) is None else -v

    def _c_TBinary(self, n: A.TBinary) -> Fn:
        if n.op == "&":
            fa, fb = self.as_text(n.left), self.as_text(n.right)
            return lambda rows, rt: fa(rows, rt) + fb(rows, rt)
        op = n.op
        if op in _ARITH:
            fn = _ARITH[op]
            fa = self.compile(n.left)
            if isinstance(n.right, A.TLit):  # the common `amount * 0.05`
                c = n.right.value
                if c is None:
                    return lambda rows, rt: None

                def arith_const(rows, rt):
                    a = fa(rows, rt)
                    return None if a is None else fn(a, c)

                return arith_const
            fb = self.compile(n.right)

            def arith(rows, rt):
                a = fa(rows, rt)
                if a is None:
                    return None
                b = fb(rows, rt)
                return None if b is None else fn(a, b)

            return arith
        fa, fb = self.compile(n.left), self.compile(n.right)
        if op == "/":

            def div(rows, rt):
                a = fa(rows, rt)
                if a is None:
                    return None
                b = fb(rows, rt)
                return None if b is None or b == 0 else a / b

            return div
        from .functions.math import py_mod

        def mod(rows, rt):
            a, b = fa(rows, rt), fb(rows, rt)
            return None if a is None or b is None else py_mod(a, b)

        return mod

    def as_text(self, node: A.TNode) -> Fn:
        f = self.text_of(node)
        return lambda rows, rt: "" if (v := f(rows, rt)) is None else v

    def text_of(self, node: A.TNode) -> Fn:
        f = self.compile(node)
        kind = node.type.kind
        if kind == "text":
            return f
        return lambda rows, rt: text_value(f(rows, rt), kind)

    def _c_TCompare(self, n: A.TCompare) -> Fn:
        if n.left.type.kind == "blank" or n.right.type.kind == "blank":
            return lambda rows, rt: False
        numeric = n.left.type.kind == "number" and not (A.is_plain(n.left) and A.is_plain(n.right))
        if numeric:  # both sides at the same scale
            fa0, fb0 = self.compile(n.left), self.compile(n.right)
            fa = lambda rows, rt: None if (v := fa0(rows, rt)) is None else q9(v)  # noqa: E731
            fb = lambda rows, rt: None if (v := fb0(rows, rt)) is None else q9(v)  # noqa: E731
        else:
            fa, fb = self.compile(n.left), self.compile(n.right)
        cmp = _CMP[n.op]
        if not numeric and isinstance(n.right, A.TLit) and n.right.value is not None:
            c = n.right.value

            def compare_const(rows, rt):
                a = fa(rows, rt)
                return False if a is None else cmp(a, c)

            return compare_const

        def compare(rows, rt):
            a = fa(rows, rt)
            if a is None:
                return False
            b = fb(rows, rt)
            if b is None:
                return False
            return cmp(a, b)

        return compare

    def _c_TLogic(self, n: A.TLogic) -> Fn:
        fs = [self.cond(i) for i in n.items]
        if n.op == "and":
            if len(fs) == 2:
                f0, f1 = fs
                return lambda rows, rt: f0(rows, rt) and f1(rows, rt)
            return lambda rows, rt: all(f(rows, rt) for f in fs)
        if len(fs) == 2:
            f0, f1 = fs
            return lambda rows, rt: f0(rows, rt) or f1(rows, rt)
        return lambda rows, rt: any(f(rows, rt) for f in fs)

    def _c_TNot(self, n: A.TNot) -> Fn:
        f = self.cond(n.operand)
        return lambda rows, rt: not f(rows, rt)

    def _c_TIn(self, n: A.TIn) -> Fn:
        if n.left.type.kind == "blank":
            return lambda rows, rt: False
        numeric = n.left.type.kind == "number"
        fx = self.compile(n.left)
        if n.items is not None:
            left_plain = A.is_plain(n.left)
            items = [
                (self.compile(i), numeric and not (left_plain and A.is_plain(i)))
                for i in n.items
                if i.type.kind != "blank"
            ]

            def in_list(rows, rt):
                x = fx(rows, rt)
                if x is None:
                    return False
                for f, rounded in items:
                    v = f(rows, rt)
                    if v is None:
                        continue
                    if (q9(v) == q9(x)) if rounded else (v == x):
                        return True
                return False

            return in_list
        fl = self.compile(n.source)

        def in_source(rows, rt):
            x = fx(rows, rt)
            if x is None:
                return False
            values = fl(rows, rt)
            return bool(values) and x in values

        return in_source

    def _c_TCall(self, n: A.TCall) -> Fn:
        f = n.func.py(self, n)
        if n.type.kind == "boolean" and not getattr(n.func, "never_null", False):
            return lambda rows, rt: f(rows, rt) is True
        return f

    def _c_TAgg(self, n: A.TAgg) -> Fn:
        return n.func.py_agg(self, n)


def compile_python(checked: CheckedFormula) -> Fn:
    fn = checked._cache.get("py")
    if fn is None:
        fn = PyCompiler().compile(checked.root)
        checked._cache["py"] = fn
    return fn


def evaluate(checked: CheckedFormula, record: Mapping[str, Any], ctx: EvalContext | None = None):
    """The formula's value for ``record`` ({field key: value}, with ``"id"`` when saved)."""
    fn = compile_python(checked)
    rt = _Runtime(ctx or EvalContext())
    try:
        return fn((record,), rt)
    except RecursionError:
        raise FormulaError.at(checked.source, None, "the formula is too complex") from None
    except ArithmeticError:
        raise FormulaError.at(
            checked.source, None, "the result is out of range (a number is too large)"
        ) from None
