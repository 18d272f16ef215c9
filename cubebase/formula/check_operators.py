"""Operators of ``Checker``: arithmetic, text joins, comparisons (record ids
compared as whole numbers, index-friendly), logic, IN, and function calls."""

from __future__ import annotations

import difflib

from . import ast as A
from .check_types import (
    ERROR,
    SCALAR_KINDS,
    a_or_an,
    is_blank_call,
    same_type,
    type_name,
    whole_literal,
)
from .errors import Span
from .types import BOOLEAN, NUMBER, TEXT, FType

_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "take the remainder of"}


class CheckOperators:
    """Operators and calls of ``Checker`` (a part of it)."""

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
                        f"`{self.text(side.span)}` is {a_or_an(type_name(side.type))}: "
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
            if not whole_literal(lit):
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
        if isinstance(left, A.TCall) and left.func.name == "ID" and all(map(whole_literal, items)):
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
            self.error(left.span, f"IN cannot test {a_or_an(type_name(left.type))}")
            return True
        bad = False
        for t, span in items:
            if t.kind in ("blank", "error") or left.type.kind in ("blank", "error"):
                continue
            if not same_type(left.type, t):
                self.error(
                    span,
                    f"IN: cannot look for {a_or_an(type_name(left.type))} among {type_name(t)} values",
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
