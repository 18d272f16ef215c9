"""Cubebase's formula language: one parser and checker, two back ends.

Pipeline (one module per stage): ``parser`` (grammar.lark -> ``ast``),
``checker`` (names and types -> typed tree), ``functions`` (the library: each
function one class with its type rule, SQL and Python side by side),
``to_sql`` (SQLAlchemy Core expression), ``interpreter`` (Python closures),
``stored`` (stored form, dependencies, cycles).

The package is pure: it knows tables only through ``schema`` (FieldInfo,
LinkInfo, TableInfo, SchemaProvider, RecordResolver) and ``types`` (FType).

Public API::

    check(source, schema, table_key, expected=None, *, field_key=None) -> CheckedFormula
    check_result(source, schema, table_key, expected=None) -> {"type": ...} | {"errors": [...]}
    compile_value(checked, SqlContext(...)) -> ColumnElement       # SELECT / ORDER BY
    compile_condition(checked, SqlContext(...)) -> ColumnElement   # WHERE (index-friendly)
    evaluate(checked, record, EvalContext(...)) -> value           # one record in memory
    to_stored(source, schema, table_key) -> str    # references as {#id}
    to_display(stored, schema, table_key) -> str   # references as current keys
    dependencies(checked) -> frozenset[(table_key, field_id)]
    find_cycle(schema, table_key=None, field_key=None, formula=None) -> [(table, field), ...] | None

Every problem a user can cause raises ``FormulaError`` (``.errors``: items with
message, line, column, excerpt). ``field_key`` tells ``check`` which formula
field the source belongs to, so a formula referring back to itself is a cycle.
"""

from __future__ import annotations

from typing import Any

from .checker import CheckedFormula, check_formula
from .errors import ErrorItem, FormulaError, Span
from .interpreter import EvalContext, evaluate
from .schema import FieldInfo, LinkInfo, RecordResolver, SchemaProvider, TableInfo
from .stored import dependencies, find_cycle, to_display, to_stored
from .to_sql import SqlContext, compile_condition, compile_value
from .types import FType


def check(
    source: str,
    schema: SchemaProvider,
    table_key: str,
    expected: FType | None = None,
    *,
    field_key: str | None = None,
) -> CheckedFormula:
    """Parse and type-check a formula of ``table_key``; raise FormulaError listing all errors."""
    try:
        return check_formula(source, schema, table_key, expected, field_key=field_key)
    except RecursionError:
        raise FormulaError.at(str(source)[:200], None, "the formula is too complex") from None


def check_result(
    source: str,
    schema: SchemaProvider,
    table_key: str,
    expected: FType | None = None,
    *,
    field_key: str | None = None,
) -> dict[str, Any]:
    """``{"type": "Number"}`` or ``{"errors": [{message, line, column, excerpt}, ...]}``."""
    try:
        checked = check(source, schema, table_key, expected, field_key=field_key)
    except FormulaError as exc:
        return {"errors": exc.to_dicts()}
    return {"type": checked.type_name}


__all__ = [
    "CheckedFormula",
    "ErrorItem",
    "EvalContext",
    "FType",
    "FieldInfo",
    "FormulaError",
    "LinkInfo",
    "RecordResolver",
    "SchemaProvider",
    "Span",
    "SqlContext",
    "TableInfo",
    "check",
    "check_result",
    "compile_condition",
    "compile_value",
    "dependencies",
    "evaluate",
    "find_cycle",
    "to_display",
    "to_stored",
]
