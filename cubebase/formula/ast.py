"""The two trees of the pipeline: the syntax tree and the checked (typed) tree.

The parser builds the syntax nodes (``Node`` subclasses) from lark; nothing
downstream ever sees a lark tree. The checker turns them into typed nodes
(``TNode`` subclasses) whose names are resolved to schema fields, which is all
the SQL compiler and the interpreter work from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import Span
from .types import FType

if TYPE_CHECKING:  # pragma: no cover
    from .functions.base import Function
    from .schema import FieldInfo, TableInfo


# ---------------------------------------------------------------- syntax tree
@dataclass(slots=True)
class Node:
    span: Span


@dataclass(slots=True)
class Num(Node):
    value: Decimal


@dataclass(slots=True)
class Str(Node):
    value: str


@dataclass(slots=True)
class Bool(Node):
    value: bool


@dataclass(slots=True)
class Ref(Node):
    """A field name: ``amount`` (key), ``{Deal Amount}`` (label) or ``{#12}`` (id)."""

    name: str
    kind: str  # key | label | id


@dataclass(slots=True)
class Attr(Node):
    """``obj.ref``: follow a link (or read a field of ``USER()``)."""

    obj: Node
    ref: Ref


@dataclass(slots=True)
class Unary(Node):
    op: str  # "-"
    operand: Node


@dataclass(slots=True)
class BinOp(Node):
    op: str  # + - * / % &
    left: Node
    right: Node
    op_span: Span


@dataclass(slots=True)
class Compare(Node):
    op: str  # = != < <= > >=
    left: Node
    right: Node
    op_span: Span


@dataclass(slots=True)
class Logic(Node):
    op: str  # and | or
    left: Node
    right: Node
    op_span: Span


@dataclass(slots=True)
class Not(Node):
    operand: Node


@dataclass(slots=True)
class InList(Node):
    left: Node
    items: list[Node]


@dataclass(slots=True)
class InValue(Node):
    left: Node
    right: Node


@dataclass(slots=True)
class Call(Node):
    name: str  # upper-cased
    args: list[Node]
    name_span: Span


def walk(node: Node):
    """Yield ``node`` and every syntax node below it (iteratively)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(children(n))


def children(n: Node) -> list[Node]:
    if isinstance(n, Attr):
        return [n.obj, n.ref]
    if isinstance(n, Unary | Not):
        return [n.operand]
    if isinstance(n, BinOp | Compare | Logic):
        return [n.left, n.right]
    if isinstance(n, InList):
        return [n.left, *n.items]
    if isinstance(n, InValue):
        return [n.left, n.right]
    if isinstance(n, Call):
        return list(n.args)
    return []


# ---------------------------------------------------------------- typed tree
@dataclass(slots=True, eq=False)
class TNode:
    type: FType
    span: Span


@dataclass(slots=True, eq=False)
class TLit(TNode):
    value: Any  # Decimal | str | bool | None


@dataclass(slots=True, eq=False)
class TField(TNode):
    """A field of the row at ``scope`` (0: the formula's own row, 1+: aggregate items)."""

    table: TableInfo
    field: FieldInfo
    scope: int = 0
    body: TNode | None = None  # checked formula of a formula field (its own row at scope 0)


@dataclass(slots=True, eq=False)
class TNav(TNode):
    """A field of the row (of ``table``) whose id ``source`` evaluates to."""

    source: TNode
    table: TableInfo
    field: FieldInfo
    body: TNode | None = None


@dataclass(slots=True, eq=False)
class TUser(TNode):
    """``USER()``: the id of the current user."""


@dataclass(slots=True, eq=False)
class TRowId(TNode):
    """``id``: the id (a Number) of the row at ``scope`` (0: the formula's own row)."""

    table: TableInfo
    scope: int = 0


@dataclass(slots=True, eq=False)
class TUnary(TNode):
    op: str
    operand: TNode


@dataclass(slots=True, eq=False)
class TBinary(TNode):
    op: str  # + - * / % &
    left: TNode
    right: TNode


@dataclass(slots=True, eq=False)
class TCompare(TNode):
    op: str  # = != < <= > >=
    left: TNode
    right: TNode


@dataclass(slots=True, eq=False)
class TLogic(TNode):
    op: str  # and | or
    items: list[TNode]


@dataclass(slots=True, eq=False)
class TNot(TNode):
    operand: TNode


@dataclass(slots=True, eq=False)
class TIn(TNode):
    """``left IN (items...)`` or ``left IN source`` (a list-typed field)."""

    left: TNode
    items: list[TNode] | None = None
    source: TNode | None = None


@dataclass(slots=True, eq=False)
class TCall(TNode):
    func: Function
    args: list[TNode]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. a validated unit


@dataclass(slots=True, eq=False)
class TAgg(TNode):
    """An aggregate over the rows behind a to-many ``link`` of the row at ``scope``."""

    func: Function
    table: TableInfo  # the table owning ``link``
    link: FieldInfo  # storage reverse or junction
    item_table: TableInfo
    scope: int
    value: TNode | None  # None: count the rows
    cond: TNode | None


def tchildren(n: TNode) -> list[TNode]:
    """Direct typed children (formula bodies excluded: they are other formulas)."""
    if isinstance(n, TNav):
        return [n.source]
    if isinstance(n, TUnary | TNot):
        return [n.operand]
    if isinstance(n, TBinary | TCompare):
        return [n.left, n.right]
    if isinstance(n, TLogic):
        return list(n.items)
    if isinstance(n, TIn):
        out = [n.left, *(n.items or [])]
        if n.source is not None:
            out.append(n.source)
        return out
    if isinstance(n, TCall):
        return list(n.args)
    if isinstance(n, TAgg):
        return [x for x in (n.value, n.cond) if x is not None]
    return []


# Functions whose value depends on more than their arguments and the context
# constants (today, now, user id, roles): they are never folded into a literal.
NOT_CONSTANT_FUNCTIONS = frozenset({"ISUNDER"})


def is_const(n: TNode) -> bool:
    """True when the node's value depends only on literals and context constants."""
    if isinstance(n, TLit | TUser):
        return True
    if isinstance(n, TField | TNav | TAgg | TRowId):
        return False
    if isinstance(n, TIn) and n.source is not None:
        return False
    if isinstance(n, TCall) and n.func.name in NOT_CONSTANT_FUNCTIONS:
        return False
    return all(is_const(c) for c in tchildren(n))


def uses_user(n: TNode) -> bool:
    """True when USER() appears in the node (bodies of formula fields aside)."""
    return isinstance(n, TUser) or any(uses_user(c) for c in tchildren(n))


def is_plain(n: TNode) -> bool:
    """A stored value or a literal as written: compared exactly (index-friendly in SQL).

    Anything computed, even from constants (``1 / 3 * 3``), is compared at 9 decimals.
    """
    if isinstance(n, TField | TNav):
        return n.body is None
    return isinstance(n, TLit | TUser | TRowId)
