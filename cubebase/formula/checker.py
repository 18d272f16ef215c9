"""Name resolution and type checking: syntax tree -> typed tree.

Names resolve only against the schema (by key, ``{label}`` or stored ``{#id}``).
Every problem is collected (not just the first) with its span, and one
``FormulaError`` is raised at the end. Formula fields that the formula reads are
checked recursively and their typed bodies attached, so the back ends can
compile or evaluate them in place; a cycle between formula fields is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import ast as A
from .errors import ErrorItem, FormulaError, Span, make_item
from .parser import parse
from .schema import FieldInfo, SchemaProvider, TableInfo
from .types import BLANK, BOOLEAN, NUMBER, TEXT, FType

ERROR = FType("error")  # internal: an expression that already has an error reported
SCALAR_KINDS = {"number", "text", "boolean", "date", "datetime"}
TO_MANY = {"reverse", "junction"}
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "take the remainder of"}


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


def type_name(t: FType) -> str:
    return "Blank" if t.kind == "blank" else str(t)


@dataclass
class _Binding:
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


def excerpt(source: str, span: Span, limit: int = 40) -> str:
    text = " ".join(source[span.start : span.end].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_blank_call(node: A.Node) -> bool:
    return isinstance(node, A.Call) and node.name == "BLANK" and not node.args


class Checker:
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
        self.bindings: list[_Binding] = []

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
        names = " or ".join(sorted(_kind_name(k) for k in kinds))
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
                    f"`{self.text(node.obj.span)}` is {_a(type_name(cur.type))}, not a link: "
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
        self.bindings.append(_Binding(link, table, scope))
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

    # ------------------------------------------------------------ operators
    def _c_Unary(self, n: A.Unary) -> A.TNode:
        x = self.check(n.operand)
        if x.type.kind == "error":
            return x
        if x.type.kind not in ("number", "blank"):
            return self.error(n.span, f"`{self.text(n.span)}`: cannot negate {type_name(x.type)}")
        if isinstance(x, A.TLit) and x.value is not None:  # fold literals: -5 stays a literal
            return A.TLit(NUMBER, n.span, -x.value)
        return A.TUnary(NUMBER, n.span, "-", x)

    def _c_BinOp(self, n: A.BinOp) -> A.TNode:
        left, right = self.check(n.left), self.check(n.right)
        if ERROR in (left.type, right.type):
            return A.TLit(ERROR, n.span, None)
        if n.op == "&":
            for side in (left, right):
                if side.type.kind not in SCALAR_KINDS | {"blank"}:
                    return self.error(
                        side.span,
                        f"`{self.text(side.span)}` is {_a(type_name(side.type))}: "
                        "only numbers, texts, booleans and dates can be joined with &",
                    )
            return A.TBinary(TEXT, n.span, "&", left, right)
        kinds = {left.type.kind, right.type.kind} - {"blank"}
        if kinds <= {"number"}:
            return A.TBinary(NUMBER, n.span, n.op, left, right)
        msg = (
            f"`{self.text(n.span)}`: cannot {_VERBS[n.op]} {type_name(left.type)} and "
            f"{type_name(right.type)}"
        )
        if kinds & {"date", "datetime"} and n.op in "+-":
            msg += ' — use DATEADD(date, n, "days") or DATEDIFF(a, b, "days")'
        elif "text" in kinds and n.op == "+":
            msg += " — use & to join texts, or VALUE(text) to read a number"
        return self.error(n.op_span | n.span, msg)

    def _c_Compare(self, n: A.Compare) -> A.TNode:
        if is_blank_call(n.left) or is_blank_call(n.right):
            other = n.right if is_blank_call(n.left) else n.left
            if n.op not in ("=", "!="):
                return self.error(n.op_span, f"cannot use {n.op} with BLANK(); use ISBLANK(x)")
            from .functions import REGISTRY

            x = self.check(other)
            test = A.TCall(BOOLEAN, n.span, REGISTRY["ISBLANK"](), [x])
            return test if n.op == "=" else A.TNot(BOOLEAN, n.span, test)
        left, right = self.check(n.left), self.check(n.right)
        if ERROR in (left.type, right.type):
            return A.TLit(ERROR, n.span, None)
        lk, rk = left.type.kind, right.type.kind
        if {lk, rk} == {"record", "number"}:
            return self.compare_id(n, left, right)
        ok = lk == "blank" or rk == "blank" or same_type(left.type, right.type)
        if (
            ok
            and n.op not in ("=", "!=")
            and (lk in ("boolean", "record", "list") or rk in ("boolean", "record", "list"))
        ):
            return self.error(
                n.op_span,
                f"`{self.text(n.span)}`: {type_name(left.type if lk != 'blank' else right.type)} "
                f"values can only be compared with = and !=",
            )
        if ok and (lk == "list" or rk == "list"):
            return self.error(n.op_span, f"`{self.text(n.span)}`: lists cannot be compared; use IN")
        if not ok:
            msg = (
                f"`{self.text(n.span)}`: cannot compare {type_name(left.type)} and "
                f"{type_name(right.type)}"
            )
            rec = left if lk == "record" else right if rk == "record" else None
            if rec is not None and {lk, rk} & {"text"}:
                name = self.text(rec.span)
                target = self.schema.table(rec.type.table or "")
                texts = (
                    [f.key for f in target.fields.values() if f.type.kind == "text"]
                    if target
                    else []
                )
                msg += (
                    f" — compare a field of the record (e.g. {name}.{texts[0] if texts else 'name'}) "
                    f"or its id (e.g. {name} = 6)"
                )
            return self.error(n.op_span, msg)
        if lk == "number" and rk == "number":
            left, right = self.id_operands(n.op, left, right)
        return A.TCompare(BOOLEAN, n.span, n.op, left, right)

    # ------------------------------------------------------------ record ids
    def record_id(self, rec: A.TNode) -> A.TNode:
        """``ID(rec)``: the id of a link or user as a Number."""
        from .functions import REGISTRY

        return A.TCall(NUMBER, rec.span, REGISTRY["ID"](), [rec])

    def id_literal(self, num: A.TNode, rec_type: FType) -> A.TNode | None:
        """A number literal standing for a record id (``account_manager = 6``): a literal
        of the record's type, so SQL compares the integer link column with an integer
        parameter (index-friendly). None when ``num`` is not a literal."""
        if not isinstance(num, A.TLit) or num.value is None:
            return None
        value = num.value
        if value != value.to_integral_value():
            return self.error(
                num.span, f"`{self.text(num.span)}` is not a record id: ids are whole numbers"
            )
        return A.TLit(rec_type, num.span, int(value))

    def id_operands(self, op: str, left: A.TNode, right: A.TNode) -> tuple[A.TNode, A.TNode]:
        """Ids against a whole-number literal, index-friendly: ``id = 6`` binds an integer
        (not a decimal the database would convert the column to), and ``ID(link) = 6`` /
        ``link.id = 6`` compare the link column itself."""
        out = [left, right]
        for i, j in ((0, 1), (1, 0)):
            x, lit = out[i], out[j]
            if not _whole_literal(lit):
                continue
            if isinstance(x, A.TRowId):
                out[j] = A.TLit(FType("record", table=x.table.key), lit.span, int(lit.value))
            elif op in ("=", "!=") and isinstance(x, A.TCall) and x.func.name == "ID":
                rec = x.args[0]
                out[i], out[j] = rec, A.TLit(rec.type, lit.span, int(lit.value))
        return out[0], out[1]

    def compare_id(self, n: A.Compare, left: A.TNode, right: A.TNode) -> A.TNode:
        """A link (or user) compared with a number compares the record's id."""
        rec, num = (left, right) if left.type.kind == "record" else (right, left)
        if n.op not in ("=", "!="):
            return self.error(
                n.op_span,
                f"`{self.text(n.span)}`: {type_name(rec.type)} values can only be compared "
                "with = and != (a number there is the record's id)",
            )
        lit = self.id_literal(num, rec.type)
        if lit is not None and lit.type.kind == "error":
            return A.TLit(ERROR, n.span, None)
        if lit is not None:
            rec_side, num_side = rec, lit
        else:  # a computed number: compare it with the id as numbers
            rec_side, num_side = self.record_id(rec), num
        pair = (rec_side, num_side) if rec is left else (num_side, rec_side)
        return A.TCompare(BOOLEAN, n.span, n.op, *pair)

    def _c_Logic(self, n: A.Logic) -> A.TNode:
        items: list[A.TNode] = []
        for side in (n.left, n.right):
            x = self.check(side)
            self.expect_condition(x, n.op.upper())
            if isinstance(x, A.TLogic) and x.op == n.op:
                items.extend(x.items)
            else:
                items.append(x)
        if any(i.type == ERROR for i in items):
            return A.TLit(ERROR, n.span, None)
        return A.TLogic(BOOLEAN, n.span, n.op, items)

    def _c_Not(self, n: A.Not) -> A.TNode:
        x = self.check(n.operand)
        if not self.expect_condition(x, "NOT") or x.type == ERROR:
            return A.TLit(ERROR, n.span, None)
        return A.TNot(BOOLEAN, n.span, x)

    def _c_InList(self, n: A.InList) -> A.TNode:
        left = self.check(n.left)
        items = [self.check(i) for i in n.items]
        if isinstance(left, A.TCall) and left.func.name == "ID" and all(map(_whole_literal, items)):
            left = left.args[0]  # link.id IN (6, 7): the link column itself
        if left.type.kind == "record":  # account_manager IN (6, 7): ids
            items = [
                (self.id_literal(i, left.type) or i) if i.type.kind == "number" else i
                for i in items
            ]
            if any(i.type == ERROR for i in items):
                return A.TLit(ERROR, n.span, None)
            if any(i.type.kind == "number" for i in items):  # computed numbers: compare ids
                rec = left.type
                items = [self.record_id(i) if same_type(i.type, rec) else i for i in items]
                left = self.record_id(left)
        bad = self._check_member(left, [(i.type, i.span) for i in items])
        if bad or left.type == ERROR:
            return A.TLit(ERROR, n.span, None)
        if isinstance(left, A.TRowId):  # id IN (6, 7): integers, index-friendly
            items = [self.id_operands("=", left, i)[1] for i in items]
        return A.TIn(BOOLEAN, n.span, left, items=items)

    def _c_InValue(self, n: A.InValue) -> A.TNode:
        left = self.check(n.left)
        right = self.check(n.right)
        if ERROR in (left.type, right.type):
            return A.TLit(ERROR, n.span, None)
        if right.type.kind != "list" or right.type.item is None:
            return self.error(
                n.right.span,
                'the right side of IN must be a list, e.g. ("North", "South") or a '
                f"multi-select field; got {type_name(right.type)}",
            )
        if left.type.kind == "number" and right.type.item.kind == "record":  # 6 IN team
            left = self.id_literal(left, right.type.item) or left
            if left.type == ERROR:
                return A.TLit(ERROR, n.span, None)
        if self._check_member(left, [(right.type.item, right.span)]):
            return A.TLit(ERROR, n.span, None)
        return A.TIn(BOOLEAN, n.span, left, source=right)

    def _check_member(self, left: A.TNode, items: list[tuple[FType, Span]]) -> bool:
        if left.type.kind not in SCALAR_KINDS | {"record", "blank", "error"}:
            self.error(left.span, f"IN cannot test {_a(type_name(left.type))}")
            return True
        bad = False
        for t, span in items:
            if t.kind in ("blank", "error") or left.type.kind in ("blank", "error"):
                continue
            if not same_type(left.type, t):
                self.error(
                    span,
                    f"IN: cannot look for {_a(type_name(left.type))} among {type_name(t)} values",
                )
                bad = True
        return bad

    # ------------------------------------------------------------ calls
    def _c_Call(self, n: A.Call) -> A.TNode:
        from .functions import REGISTRY

        cls = REGISTRY.get(n.name)
        if cls is None:
            msg = f"unknown function `{n.name}`"
            close = difflib.get_close_matches(n.name, list(REGISTRY), n=1, cutoff=0.6)
            if close:
                msg += f" — did you mean `{close[0]}`?"
            return self.error(n.name_span, msg)
        return cls().check(self, n)

    # ------------------------------------------------------------ whole formula
    def check_all(self, root: A.Node, expected: FType | None = None) -> A.TNode:
        typed = self.check(root)
        if expected is not None and not self.errors and not compatible(typed.type, expected):
            self.error(
                root.span,
                f"this formula must give {_a(type_name(expected))}, but it gives "
                f"{_a(type_name(typed.type))}",
            )
        if self.errors:
            raise FormulaError(sorted(self.errors, key=lambda e: (e.start, e.end)))
        return typed


def _whole_literal(node: A.TNode) -> bool:
    return (
        isinstance(node, A.TLit)
        and node.type.kind == "number"
        and node.value is not None
        and node.value == node.value.to_integral_value()
    )


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


def _kind_name(kind: str) -> str:
    return {
        "number": "a Number",
        "text": "a Text",
        "boolean": "a condition (TRUE/FALSE)",
        "date": "a Date",
        "datetime": "a DateTime",
        "record": "a link",
        "list": "a list",
    }.get(kind, kind)


def _a(name: str) -> str:
    return ("an " if name[:1] in "AEIOU" else "a ") + name


def _example_field(table: TableInfo) -> str:
    for f in table.fields.values():
        if f.type.kind == "number":
            return f.key
    return next(iter(table.fields), "field")


def literal_value(node: A.TNode) -> Any:
    """The value of a literal node (``None`` when it is not a literal)."""
    return node.value if isinstance(node, A.TLit) else None


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
    "CheckedFormula",
    "Checker",
    "check_formula",
    "compatible",
    "resolve_refs",
    "same_type",
]
