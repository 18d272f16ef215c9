"""The stored form of formulas, dependencies and formula-field cycles.

Stored formulas reference fields by id, written ``{#12}``, so renaming a field
(key or label) never breaks a formula. Conversion replaces only the reference
tokens at their positions, keeping the user's spacing, line breaks and case
everywhere else. ``to_display`` writes the current key, or ``{label}`` when the
key is not a plain name (or collides with a keyword), or keeps ``{#id}`` when
the field no longer exists (the checker then reports it).
"""

from __future__ import annotations

import re

from . import ast as A
from .checker import CheckedFormula, check_formula, resolve_refs
from .schema import FieldInfo, SchemaProvider

_PLAIN = re.compile(r"(?!\d)\w+\Z")
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


def _display_name(f: FieldInfo) -> str:
    if _PLAIN.match(f.key) and f.key.lower() not in _KEYWORDS:
        return f.key
    if f.label and "}" not in f.label and f.label.strip() == f.label:
        return "{" + f.label + "}"
    return "{#" + str(f.id) + "}"


def _replace(source: str, repl: list[tuple[int, int, str]]) -> str:
    out, last = [], 0
    for start, end, text in sorted(repl):
        out.append(source[last:start])
        out.append(text)
        last = end
    out.append(source[last:])
    return "".join(out)


def to_stored(source: str, schema: SchemaProvider, table_key: str) -> str:
    """The formula with every field reference as ``{#id}`` (it must check cleanly)."""
    checked = check_formula(source, schema, table_key, inline=False)
    seen: dict[int, str] = {}
    for span, _table, f in checked.refs:
        seen[span.start] = (span.end, "{#" + str(f.id) + "}")  # type: ignore[assignment]
    return _replace(source, [(s, e, t) for s, (e, t) in seen.items()])  # type: ignore[misc]


def to_display(stored: str, schema: SchemaProvider, table_key: str) -> str:
    """The stored formula with current keys (or labels) in place of ``{#id}``."""
    refs = resolve_refs(stored, schema, table_key)
    repl: dict[int, tuple[int, str]] = {}
    for span, _table, f in refs:
        repl[span.start] = (span.end, _display_name(f))
    return _replace(stored, [(s, e, t) for s, (e, t) in repl.items()])


def dependencies(checked: CheckedFormula) -> frozenset[tuple[str, int]]:
    """Every (table key, field id) the formula reads directly (links followed included)."""
    out: set[tuple[str, int]] = set()
    stack: list[A.TNode] = [checked.root]
    while stack:
        n = stack.pop()
        if isinstance(n, A.TField | A.TNav):
            out.add((n.table.key, n.field.id))
        elif isinstance(n, A.TAgg):
            out.add((n.table.key, n.link.id))
            info = n.link.link
            if n.link.storage == "reverse" and info and info.target_field:
                fk = n.item_table.fields.get(info.target_field)
                if fk is not None:
                    out.add((n.item_table.key, fk.id))
        elif isinstance(n, A.TCall) and "parent" in n.extra:
            out.add(n.extra["parent"])
        stack.extend(A.tchildren(n))
    for _span, table_key, f in checked.refs:
        out.add((table_key, f.id))
    return frozenset(out)


def find_cycle(
    schema: SchemaProvider,
    table_key: str | None = None,
    field_key: str | None = None,
    formula: str | None = None,
) -> list[tuple[str, str]] | None:
    """A cycle of formula fields as [(table, field), ..., back to the first], or None.

    Pass ``table_key``/``field_key``/``formula`` to test a formula before saving
    it into that field (the field may be new: then it only needs to exist in the
    schema if other formulas already refer to it).
    """
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for tkey in schema.table_keys():
        table = schema.table(tkey)
        if table is None:
            continue
        for f in table.fields.values():
            src = f.formula
            if tkey == table_key and f.key == field_key:
                src = formula
            if f.storage != "formula" or not src:
                continue
            graph[(tkey, f.key)] = _formula_deps(schema, tkey, src)
    if table_key and field_key and formula and (table_key, field_key) not in graph:
        graph[(table_key, field_key)] = _formula_deps(schema, table_key, formula)
    return _cycle(graph)


def _formula_deps(schema: SchemaProvider, table_key: str, source: str) -> set[tuple[str, str]]:
    try:
        refs = resolve_refs(source, schema, table_key)
    except Exception:  # noqa: BLE001 - an unparsable formula has no edges
        return set()
    return {(t, f.key) for _span, t, f in refs if f.storage == "formula"}


def _cycle(graph: dict[tuple[str, str], set[tuple[str, str]]]) -> list[tuple[str, str]] | None:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for start in graph:
        if color[start] != white:
            continue
        path = [start]
        iters = [iter(sorted(graph[start]))]
        color[start] = grey
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = black
                iters.pop()
                continue
            if nxt not in graph:
                continue
            if color[nxt] == grey:
                return [*path[path.index(nxt) :], nxt]
            if color[nxt] == white:
                color[nxt] = grey
                path.append(nxt)
                iters.append(iter(sorted(graph[nxt])))
    return None
