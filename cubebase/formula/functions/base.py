"""The function base class and its registry.

Each function of the language is ONE class: its signature, its type rule, its
SQL compilation and its Python evaluation side by side, so the two back ends
cannot drift apart unnoticed. Subclassing registers the class by ``name``.
``Simple`` covers the common case: fixed argument kinds, blank in -> blank out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .. import ast as A
from ..types import FType

if TYPE_CHECKING:  # pragma: no cover
    from ..checker import Checker
    from ..interpreter import PyCompiler
    from ..to_sql import SqlCompiler

REGISTRY: dict[str, type[Function]] = {}
PyFn = Callable[[tuple, Any], Any]

NUM = {"number"}
TXT = {"text"}
BOOL = {"boolean"}
DAY = {"date", "datetime"}
SCALAR = {"number", "text", "boolean", "date", "datetime"}
ANY = SCALAR | {"record", "list"}


class Function:
    """One function of the formula language."""

    name: ClassVar[str] = ""
    category: ClassVar[str] = ""
    signature: ClassVar[str] = ""  # shown in errors and in the reference
    description: ClassVar[str] = ""
    example: ClassVar[str] = ""
    blanks: ClassVar[str] = "a blank argument gives blank"
    min_args: ClassVar[int] = 0
    max_args: ClassVar[int | None] = 0  # None: any number
    never_null: ClassVar[bool] = False  # SQL result is never NULL (Booleans)
    # The SQL reads an argument more than once (CASE guards, SQLite emulations):
    # ``Simple.sql`` then computes each non-trivial argument once (SqlCompiler.let),
    # so nesting such functions cannot multiply the SQL.
    repeats_args: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            REGISTRY[cls.name] = cls

    # ------------------------------------------------------------ checking
    def arity_error(self, n: int) -> str | None:
        lo, hi = self.min_args, self.max_args
        if lo <= n and (hi is None or n <= hi):
            return None
        if hi is None:
            want = f"at least {lo} argument{'s' * (lo != 1)}"
        elif lo == hi:
            want = f"{lo} argument{'s' * (lo != 1)}" if lo else "no arguments"
        else:
            want = f"{lo} to {hi} arguments"
        return f"{self.name} takes {want}, got {n}: {self.signature}"

    def check(self, c: Checker, call: A.Call) -> A.TNode:
        from ..checker import ERROR

        msg = self.arity_error(len(call.args))
        if msg:
            for a in call.args:  # still report problems inside the arguments
                c.check(a)
            return c.error(call.span, msg)
        args = [c.check(a) for a in call.args]
        if any(a.type == ERROR for a in args):
            return A.TLit(ERROR, call.span, None)
        extra: dict[str, Any] = {}
        t = self.type_rule(c, call, args, extra)
        if t == ERROR:
            return A.TLit(ERROR, call.span, None)
        return A.TCall(t, call.span, self, args, extra)

    def type_rule(self, c: Checker, call: A.Call, args: list[A.TNode], extra: dict) -> FType:
        raise NotImplementedError

    # ------------------------------------------------------------ back ends
    def sql(self, s: SqlCompiler, n: A.TCall):
        raise NotImplementedError

    def py(self, p: PyCompiler, n: A.TCall) -> PyFn:
        raise NotImplementedError


class Simple(Function):
    """Fixed argument kinds (the last repeats for variadic); any blank argument gives blank."""

    kinds: ClassVar[Sequence[set[str]]] = ()
    returns: ClassVar[FType]

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        ok = True
        for i, a in enumerate(args):
            kinds = self.kinds[min(i, len(self.kinds) - 1)]
            ok &= c.expect(a, kinds, f"{self.name} (argument {i + 1})")
        return self.result_type(args) if ok else ERROR

    def result_type(self, args: list[A.TNode]) -> FType:
        return self.returns

    def sql(self, s, n):
        xs = [s.value(a) for a in n.args]
        if self.repeats_args:
            return s.let(lambda *vs: self.sql_impl(s, n, *vs), *xs)
        return self.sql_impl(s, n, *xs)

    def sql_impl(self, s, n, *xs):
        raise NotImplementedError

    def py(self, p, n):
        return p.strict(n.args, self.py_impl, n)

    def py_impl(self, *vals):
        raise NotImplementedError


def literal_int(node: A.TNode) -> int | None:
    """The integer value of a literal number argument, if it is one."""
    if isinstance(node, A.TLit) and node.type.kind == "number" and node.value is not None:
        return int(node.value)
    return None
