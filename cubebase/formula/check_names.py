"""Names and link paths of ``Checker``: fields by key, ``{label}`` or ``{#id}`` (with a
"did you mean"), the row's ``id``, many-to-one paths, referenced formula fields
checked in place (cycles are errors), and the item rows of aggregates over
to-many links."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from . import ast as A
from .check_types import ERROR, TO_MANY, a_or_an, type_name
from .errors import FormulaError, Span
from .parser import parse
from .schema import FieldInfo, TableInfo
from .types import NUMBER


@dataclass
class Binding:
    link: FieldInfo
    table: TableInfo  # the item table
    scope: int


@dataclass
class _Row:
    """A path prefix that names a whole row (an aggregate's item), not a value."""

    table: TableInfo
    scope: int
    span: Span
    link: FieldInfo


class CheckNames:
    """Names, link paths and aggregate items of ``Checker`` (a part of it)."""

    # ------------------------------------------------------------ names
    def resolve(self, table: TableInfo, ref: A.Ref, *, base: bool) -> FieldInfo | None:
        f = _lookup(table, ref)
        if f is not None:
            self.refs.append((ref.span, table.key, f))
            return f
        if ref.kind == "id":
            self.error(ref.span, f"field #{ref.name} no longer exists")
            return None
        shown = ref.name if ref.kind == "key" else "{" + ref.name + "}"
        where = "" if base else f" in {table.label or table.key}"
        msg = f"unknown field `{shown}`{where}"
        pool = (
            [f.key for f in table.fields.values()]
            if ref.kind == "key"
            else [f.label for f in table.fields.values()]
        )
        close = difflib.get_close_matches(ref.name, pool, n=1, cutoff=0.6)
        if not close and ref.kind == "key":
            close = [
                "{" + c + "}"
                for c in difflib.get_close_matches(
                    ref.name, [f.label for f in table.fields.values()], n=1, cutoff=0.6
                )
            ]
        elif close and ref.kind == "label":
            close = ["{" + close[0] + "}"]
        if close:
            msg += f" — did you mean `{close[0]}`?"
        self.error(ref.span, msg)
        return None

    def field_node(self, table: TableInfo, f: FieldInfo, scope: int, span: Span) -> A.TNode:
        body = self.formula_body(table, f, span) if f.storage == "formula" else None
        t = body.type if body is not None and body.type.kind not in ("blank", "error") else f.type
        return A.TField(t, span, table, f, scope, body)

    def formula_body(self, table: TableInfo, f: FieldInfo, span: Span) -> A.TNode | None:
        """Check a referenced formula field's own formula (once; cycles are errors)."""
        if not self.inline:
            return None
        key = (table.key, f.id)
        if key in self.stack:
            names = [self._field_name(t, i) for t, i in self.stack[self.stack.index(key) :]]
            chain = " → ".join([*names, self._field_name(*key)])
            self.error(span, f"formula fields refer to each other in a cycle: {chain}")
            return None
        if key in self.cache:
            return self.cache[key]
        if not f.formula:
            self.error(span, f"formula field `{f.key}` has no formula")
            return None
        from .checker import Checker

        sub = Checker(
            self.schema, table, f.formula, inline=True, stack=(*self.stack, key), cache=self.cache
        )
        try:
            body = sub.check_all(parse(f.formula))
        except FormulaError as exc:
            first = exc.errors[0].message if exc.errors else "invalid formula"
            self.error(span, f"formula field `{f.key}` has an invalid formula: {first}")
            return None
        self.cache[key] = body
        return body

    def _field_name(self, table_key: str, field_id: int) -> str:
        t = self.schema.table(table_key)
        f = t.by_id(field_id) if t else None
        return f"{table_key}.{f.key if f else field_id}"

    def _path(self, node: A.Node) -> A.TNode | _Row:
        """Resolve a ``Ref`` or ``Attr`` chain; may return a whole item row."""
        if isinstance(node, A.Ref):
            if _is_id(self.table, node):
                return A.TRowId(NUMBER, node.span, self.table, 0)
            f = self.resolve(self.table, node, base=True)
            if f is None:
                return A.TLit(ERROR, node.span, None)
            for b in reversed(self.bindings):
                if b.link.id == f.id:
                    return _Row(b.table, b.scope, node.span, f)
            return self.field_node(self.table, f, 0, node.span)
        if isinstance(node, A.Attr):
            cur = (
                self._path(node.obj)
                if isinstance(node.obj, A.Ref | A.Attr)
                else self.check(node.obj)
            )
            if isinstance(cur, _Row):
                if _is_id(cur.table, node.ref):
                    return A.TRowId(NUMBER, node.span, cur.table, cur.scope)
                f = self.resolve(cur.table, node.ref, base=False)
                if f is None:
                    return A.TLit(ERROR, node.span, None)
                return self.field_node(cur.table, f, cur.scope, node.span)
            if cur.type.kind == "error":
                return cur
            if cur.type.kind != "record":
                return self.error(
                    node.ref.span,
                    f"`{self.text(node.obj.span)}` is {a_or_an(type_name(cur.type))}, not a link: "
                    "it has no fields",
                )
            target = self.schema.table(cur.type.table or "")
            if target is None:
                return self.error(node.span, f"the table `{cur.type.table}` no longer exists")
            if _is_id(target, node.ref):  # link.id is ID(link): no lookup of the row
                return self.record_id(cur)
            f = self.resolve(target, node.ref, base=False)
            if f is None:
                return A.TLit(ERROR, node.span, None)
            body = self.formula_body(target, f, node.span) if f.storage == "formula" else None
            t = (
                body.type
                if body is not None and body.type.kind not in ("blank", "error")
                else (f.type)
            )
            return A.TNav(t, node.span, cur, target, f, body)
        return self.check(node)

    def value_path(self, node: A.Node) -> A.TNode:
        cur = self._path(node)
        if isinstance(cur, _Row):
            return self.error(
                cur.span,
                f"`{self.text(cur.span)}` names the rows of a link; name one of their fields, "
                f"e.g. {self.text(cur.span)}.{_example_field(cur.table)}",
            )
        return cur

    def _c_Ref(self, n: A.Ref) -> A.TNode:
        return self.value_path(n)

    def _c_Attr(self, n: A.Attr) -> A.TNode:
        return self.value_path(n)

    # ------------------------------------------------------------ aggregates support
    def find_link(self, node: A.Node) -> tuple[FieldInfo, TableInfo] | None:
        """The to-many field of this table that heads a path inside ``node``, if any."""
        for n in A.walk(node):
            if isinstance(n, A.Attr | A.Ref):
                head = n
                while isinstance(head, A.Attr):
                    head = head.obj
                if isinstance(head, A.Ref):
                    f = _lookup(self.table, head)
                    if f is not None and f.storage in TO_MANY and f.link is not None:
                        target = self.schema.table(f.link.target)
                        if target is not None:
                            return f, target
        return None

    def push_item(self, link: FieldInfo, table: TableInfo) -> int:
        scope = len(self.bindings) + 1
        self.bindings.append(Binding(link, table, scope))
        return scope

    def pop_item(self) -> None:
        self.bindings.pop()

    def is_bare_link(self, node: A.Node, link: FieldInfo) -> bool:
        return (
            isinstance(node, A.Ref)
            and (f := _lookup(self.table, node)) is not None
            and (f.id == link.id)
        )

    def note_ref(self, ref: A.Node) -> None:
        if isinstance(ref, A.Ref):
            f = _lookup(self.table, ref)
            if f is not None:
                self.refs.append((ref.span, self.table.key, f))


def _is_id(table: TableInfo, ref: A.Ref) -> bool:
    """``id`` names the row's own id (a reserved key: no field is called that)."""
    return ref.kind == "key" and ref.name.lower() == "id" and _lookup(table, ref) is None


def _lookup(table: TableInfo, ref: A.Ref) -> FieldInfo | None:
    if ref.kind == "id":
        return table.by_id(int(ref.name))
    if ref.kind == "label":
        f = table.by_label(ref.name)
        if f is None:
            hits = [x for x in table.fields.values() if x.label.lower() == ref.name.lower()]
            f = hits[0] if len(hits) == 1 else None
        return f
    f = table.fields.get(ref.name)
    if f is None:
        hits = [x for x in table.fields.values() if x.key.lower() == ref.name.lower()]
        if len(hits) != 1:
            hits = [x for x in table.fields.values() if x.label.lower() == ref.name.lower()]
        f = hits[0] if len(hits) == 1 else None
    return f


def _example_field(table: TableInfo) -> str:
    for f in table.fields.values():
        if f.type.kind == "number":
            return f.key
    return next(iter(table.fields), "field")
