"""The checker's vocabulary, shared by its parts and the function library: the
error type, the kinds of values, type names and comparisons, and the small words
of its messages (the source excerpt a message quotes, "a"/"an")."""

from __future__ import annotations

from typing import Any

from . import ast as A
from .errors import Span
from .types import FType

ERROR = FType("error")  # internal: an expression that already has an error reported
SCALAR_KINDS = {"number", "text", "boolean", "date", "datetime"}
TO_MANY = {"reverse", "junction"}


def type_name(t: FType) -> str:
    return "Blank" if t.kind == "blank" else str(t)


def excerpt(source: str, span: Span, limit: int = 40) -> str:
    text = " ".join(source[span.start : span.end].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_blank_call(node: A.Node) -> bool:
    return isinstance(node, A.Call) and node.name == "BLANK" and not node.args


def whole_literal(node: A.TNode) -> bool:
    return (
        isinstance(node, A.TLit)
        and node.type.kind == "number"
        and node.value is not None
        and node.value == node.value.to_integral_value()
    )


def same_type(a: FType, b: FType) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "record":
        return a.table == b.table
    if a.kind == "list":
        return a.item is None or b.item is None or same_type(a.item, b.item)
    return True


def compatible(t: FType, expected: FType) -> bool:
    return t.kind in ("blank", "error") or same_type(t, expected)


def kind_name(kind: str) -> str:
    return {
        "number": "a Number",
        "text": "a Text",
        "boolean": "a condition (TRUE/FALSE)",
        "date": "a Date",
        "datetime": "a DateTime",
        "record": "a link",
        "list": "a list",
    }.get(kind, kind)


def a_or_an(name: str) -> str:
    return ("an " if name[:1] in "AEIOU" else "a ") + name


def literal_value(node: A.TNode) -> Any:
    """The value of a literal node (``None`` when it is not a literal)."""
    return node.value if isinstance(node, A.TLit) else None
