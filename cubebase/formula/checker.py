"""Name resolution and type checking: syntax tree -> typed tree.

Names resolve only against the schema (by key, ``{label}`` or stored ``{#id}``).
Every problem is collected (not just the first) with its span, and one
``FormulaError`` is raised at the end. Formula fields that the formula reads are
checked recursively and their typed bodies attached, so the back ends can
compile or evaluate them in place; a cycle between formula fields is an error.

The checker is ``Checker``, made of parts: ``check_types`` (the error type, type
names and comparisons, message words), ``check_names`` (fields, link paths,
formula fields in place, aggregate items), ``check_operators`` (operators, record
ids, logic, IN, calls). This module has the walk, the reporting helpers the
function library uses, the entry points and the names callers import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import ast as A
from .check_names import Binding, CheckNames
from .check_operators import CheckOperators
from .check_types import (
    ERROR,
    SCALAR_KINDS,
    TO_MANY,
    a_or_an,
    compatible,
    excerpt,
    is_blank_call,
    kind_name,
    literal_value,
    same_type,
    type_name,
)
from .errors import ErrorItem, FormulaError, Span, make_item
from .parser import parse
from .schema import FieldInfo, SchemaProvider, TableInfo
from .types import BLANK, BOOLEAN, NUMBER, TEXT, FType


@dataclass
class CheckedFormula:
    """A formula that passed the checker: its typed tree and what it resolved."""

    source: str
    table_key: str
    root: A.TNode
    type: FType
    refs: list[tuple[Span, str, FieldInfo]] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def type_name(self) -> str:
        return type_name(self.type)


class Checker(CheckNames, CheckOperators):
    """Checks one formula of one table; see ``check_formula``."""

    def __init__(
        self,
        schema: SchemaProvider,
        table: TableInfo,
        source: str,
        *,
        inline: bool = True,
        stack: tuple[tuple[str, int], ...] = (),
        cache: dict | None = None,
    ):
        self.schema = schema
        self.table = table
        self.source = source
        self.inline = inline
        self.stack = stack
        self.cache = cache if cache is not None else {}
        self.errors: list[ErrorItem] = []
        self.refs: list[tuple[Span, str, FieldInfo]] = []
        self.bindings: list[Binding] = []

    # ------------------------------------------------------------ reporting
    def error(self, span: Span, message: str) -> A.TNode:
        self.errors.append(make_item(self.source, span, message))
        return A.TLit(ERROR, span, None)

    def text(self, span: Span) -> str:
        return excerpt(self.source, span)

    def expect(self, node: A.TNode, kinds: Iterable[str], what: str) -> bool:
        """Report unless ``node`` has one of ``kinds`` (blank and errors always pass)."""
        kinds = set(kinds)
        if node.type.kind in kinds or node.type.kind in ("blank", "error"):
            return True
        names = " or ".join(sorted(kind_name(k) for k in kinds))
        self.error(node.span, f"{what} expects {names}, got {type_name(node.type)}")
        return False

    def expect_condition(self, node: A.TNode, what: str) -> bool:
        if node.type.kind in ("boolean", "blank", "error"):
            return True
        self.error(
            node.span, f"{what} expects a condition (TRUE/FALSE), got {type_name(node.type)}"
        )
        return False

    def unify(self, nodes: list[A.TNode], what: str) -> FType:
        """The common type of alternative results (IF branches, COALESCE...)."""
        result = BLANK
        for n in nodes:
            t = n.type
            if t.kind == "error":
                return ERROR
            if t.kind == "blank":
                continue
            if result.kind == "blank":
                result = t
            elif not same_type(result, t):
                self.error(
                    n.span,
                    f"{what}: all results must have the same type, "
                    f"got {type_name(result)} and {type_name(t)}",
                )
                return ERROR
        for n in nodes:
            if isinstance(n, A.TLit) and n.type.kind == "blank":
                n.type = result
        return result

    def literal_text(self, node: A.Node, allowed: tuple[str, ...], what: str) -> str | None:
        """A unit argument: must be a literal text among ``allowed`` (checked now)."""
        if isinstance(node, A.Str) and node.value.strip().lower() in allowed:
            return node.value.strip().lower()
        shown = ", ".join(f'"{a}"' for a in allowed)
        self.error(node.span, f"{what} must be one of {shown}, written as text")
        return None

    # ------------------------------------------------------------ entry
    def run(self, node: A.Node) -> A.TNode:
        return self.check(node)

    def check(self, node: A.Node) -> A.TNode:
        method = getattr(self, "_c_" + type(node).__name__)
        return method(node)

    # ------------------------------------------------------------ literals
    def _c_Num(self, n: A.Num) -> A.TNode:
        return A.TLit(NUMBER, n.span, n.value)

    def _c_Str(self, n: A.Str) -> A.TNode:
        return A.TLit(TEXT, n.span, n.value)

    def _c_Bool(self, n: A.Bool) -> A.TNode:
        return A.TLit(BOOLEAN, n.span, n.value)

    # ------------------------------------------------------------ whole formula
    def check_all(self, root: A.Node, expected: FType | None = None) -> A.TNode:
        typed = self.check(root)
        if expected is not None and not self.errors and not compatible(typed.type, expected):
            self.error(
                root.span,
                f"this formula must give {a_or_an(type_name(expected))}, but it gives "
                f"{a_or_an(type_name(typed.type))}",
            )
        if self.errors:
            raise FormulaError(sorted(self.errors, key=lambda e: (e.start, e.end)))
        return typed


def check_formula(
    source: str,
    schema: SchemaProvider,
    table_key: str,
    expected: FType | None = None,
    *,
    field_key: str | None = None,
    inline: bool = True,
) -> CheckedFormula:
    """Parse and check ``source`` for ``table_key``; raise FormulaError listing all problems."""
    root = parse(source)
    table = schema.table(table_key)
    if table is None:
        raise FormulaError.at(source, Span(0, 0), f"unknown table `{table_key}`")
    stack: tuple[tuple[str, int], ...] = ()
    if field_key is not None and (f := table.fields.get(field_key)) is not None:
        stack = ((table.key, f.id),)
    checker = Checker(schema, table, source, inline=inline, stack=stack)
    typed = checker.check_all(root, expected)
    return CheckedFormula(source, table_key, typed, typed.type, checker.refs)


def resolve_refs(source: str, schema: SchemaProvider, table_key: str) -> list:
    """Resolved references of ``source`` even when it has type errors (for display)."""
    root = parse(source)
    table = schema.table(table_key)
    if table is None:
        return []
    checker = Checker(schema, table, source, inline=False)
    try:
        checker.check(root)
    except RecursionError:  # pragma: no cover - bounded by the parser's depth limit
        return []
    return checker.refs


__all__ = [
    "ERROR",
    "SCALAR_KINDS",
    "TO_MANY",
    "CheckedFormula",
    "Checker",
    "check_formula",
    "compatible",
    "excerpt",
    "is_blank_call",
    "literal_value",
    "resolve_refs",
    "same_type",
    "type_name",
]
