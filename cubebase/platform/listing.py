"""Lists of records: conditions, sort orders and keyset cursors as SQLAlchemy
expressions.

Sort order: blanks sort after every value ascending and before every value
descending (PostgreSQL's default, applied on SQLite too), ties broken by id in
the same direction. A page continues from a cursor that holds the last row's
sort values and id.

With one sort key the page is read in two index-friendly segments, the rows
with a value and the blank rows, each as ``(key, id) > (:v, :id) ORDER BY key,
id LIMIT n``: exactly the query a DBA writes for keyset paging, so an index on
the sort field serves it. A sort by the id alone is one segment (the id is never
blank). With several sort keys a general null-aware keyset predicate is used
(correct, but it may need a sort).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .errors import BadRequest
from .fieldtypes import ConversionError, _record_id
from .schema import Field, Table

TEXT_TYPES = frozenset({"text", "long_text", "email", "phone", "url", "select"})
UNCOMPARABLE = frozenset({"multi_select", "file"})  # JSON values: blank or not only
OPERATORS = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "contains",
    "startswith",
    "in",
    "isblank",
    "notblank",
)


@dataclass(frozen=True)
class Condition:
    """``field op value``, e.g. Condition("amount", "ge", "1000")."""

    field: str
    op: str = "eq"
    value: Any = None


@dataclass(frozen=True)
class SortKey:
    expr: sa.ColumnElement
    desc: bool
    field: Field | None = None


def parse_sort(
    table: Table,
    sort: str | list[str] | None,
    computed: Callable[[Field], sa.ColumnElement] | None = None,
) -> list[SortKey]:
    """``"-amount,name"`` -> sort keys on those fields (blank: by id). ``computed``
    gives the SQL expression of a formula field, so lists sort by formulas too."""
    if not sort:
        return []
    parts = sort.split(",") if isinstance(sort, str) else list(sort)
    keys: list[SortKey] = []
    for raw in parts:
        name = raw.strip()
        desc = name.startswith("-")
        name = name.lstrip("-+").strip()
        if not name:
            continue
        if name == "id":
            keys.append(SortKey(table.sql.c.id, desc))
            continue
        f = table.fields.get(name)
        if f is None:
            raise BadRequest(f"Cannot sort by `{name}`: table `{table.key}` has no such field")
        if (
            f.type == "formula"
            and f.column_name is None  # a stored formula sorts by its column
            and computed is not None
            and not f.config.get("result_type", "").startswith("list")
        ):
            keys.append(SortKey(computed(f), desc, f))
            continue
        if f.column_name is None or f.type in ("multi_select", "file"):
            raise BadRequest(f"Cannot sort by `{name}`: a {f.type} field has no order")
        keys.append(SortKey(table.column(f), desc, f))
    if len(keys) > 5:
        raise BadRequest("Sort by at most 5 fields")
    return keys


def condition_expr(table: Table, cond: Condition) -> sa.ColumnElement:
    """A condition as a WHERE clause on the table (values become bound parameters)."""
    _shape, build, params = condition_template(table, cond, "cond")
    return build(params, True)


def condition_template(
    table: Table, cond: Condition, name: str
) -> tuple[tuple, Callable[[dict | None, bool], sa.ColumnElement], dict[str, Any]]:
    """A condition as a template: ``(shape, build, params)``. Conditions of the same
    shape share one WHERE clause, ``build()``, whose bound parameters (named from
    ``name``) take ``params``; ``build(params, True)`` binds the values in (unique
    names). Values are converted and checked here, so a bad one is a BadRequest."""
    if cond.op not in OPERATORS:
        raise BadRequest(f"`{cond.op}` is not a filter operator (one of {', '.join(OPERATORS)})")
    if cond.field == "id":
        col, f = table.sql.c.id, None
    else:
        f = table.fields.get(cond.field)
        if f is None:
            raise BadRequest(
                f"Cannot filter by `{cond.field}`: table `{table.key}` has no such field"
            )
        if f.column_name is None:
            raise BadRequest(f"Cannot filter by `{cond.field}` with a condition; use a formula")
        col = table.column(f)
    shape: tuple = (cond.field, cond.op)
    if cond.op == "isblank":
        return shape, lambda params=None, bound=False: col.is_(None), {}
    if cond.op == "notblank":
        return shape, lambda params=None, bound=False: col.is_not(None), {}
    if f is not None and f.type in UNCOMPARABLE:
        raise BadRequest(
            f"A {f.type} field can only be filtered for blanks with a condition; use a formula"
        )

    def convert(v: Any) -> Any:
        if f is None:
            try:
                return _record_id(v)
            except ConversionError:
                raise BadRequest(f"Filter on id: `{v}` is not a record id") from None
        try:
            py = f.ftype.to_python(f, v) if not isinstance(v, str) else f.ftype.parse_text(f, v)
            return f.ftype.to_db(f, py)
        except ConversionError as exc:
            raise BadRequest(f"Filter on `{f.key}`: {exc}") from None

    def param(params: dict | None, bound: bool, **kw: Any) -> sa.BindParameter:
        if bound:
            return sa.bindparam(name, params[name], type_=col.type, unique=True, **kw)
        return sa.bindparam(name, type_=col.type, **kw)

    if cond.op == "in":
        values = cond.value if isinstance(cond.value, list | tuple) else [cond.value]
        return (
            shape,
            lambda params=None, bound=False: col.in_(param(params, bound, expanding=True)),
            {name: [convert(v) for v in values]},
        )
    if cond.op in ("contains", "startswith"):
        if f is None or f.type not in TEXT_TYPES or not isinstance(cond.value, str):
            raise BadRequest(f"`{cond.op}` needs a text field and a text value")
        # what ``autoescape=True`` does, on a value that is a bound parameter
        text = cond.value.replace("/", "//").replace("%", "/%").replace("_", "/_")
        like = col.contains if cond.op == "contains" else col.startswith
        return (
            shape,
            lambda params=None, bound=False: like(param(params, bound), escape="/"),
            {name: text},
        )
    value = convert(cond.value)
    if value is None:
        blank = col.is_(None) if cond.op == "eq" else col.is_not(None)
        return (*shape, None), lambda params=None, bound=False: blank, {}
    ops = {
        "eq": col.__eq__,
        "ne": lambda v: sa.or_(col != v, col.is_(None)),
        "lt": col.__lt__,
        "le": col.__le__,
        "gt": col.__gt__,
        "ge": col.__ge__,
    }
    op = ops[cond.op]
    return shape, lambda params=None, bound=False: op(param(params, bound)), {name: value}


def order_by(keys: list[SortKey], id_col: sa.ColumnElement) -> list[sa.ColumnElement]:
    desc = keys[0].desc if len(keys) == 1 else (keys[-1].desc if keys else False)
    out = [k.expr.desc().nulls_first() if k.desc else k.expr.asc().nulls_last() for k in keys]
    out.append(id_col.desc() if desc else id_col.asc())
    return out


def tie_direction(keys: list[SortKey]) -> bool:
    """Whether the id tie-breaker runs descending (it follows the last sort key)."""
    return keys[-1].desc if keys else False


def keyset_after(
    keys: list[SortKey], id_col: sa.ColumnElement, cursor: list[Any]
) -> sa.ColumnElement:
    """Rows strictly after the cursor in the (null-aware) order of ``keys``."""
    *values, last_id = cursor
    id_desc = tie_direction(keys)
    clauses = []
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        ties = [_tie(keys[j].expr, values[j]) for j in range(i)]
        after = _after(k.expr, v, k.desc)
        if after is not None:
            clauses.append(sa.and_(*ties, after))
    ties = [_tie(k.expr, v) for k, v in zip(keys, values, strict=True)]
    clauses.append(sa.and_(*ties, id_col < last_id if id_desc else id_col > last_id))
    return sa.or_(*clauses)


def _tie(expr: sa.ColumnElement, v: Any) -> sa.ColumnElement:
    return expr.is_(None) if v is None else expr == _param(expr, v)


def _after(expr: sa.ColumnElement, v: Any, desc: bool) -> sa.ColumnElement | None:
    if not desc:  # ascending, blanks last
        return sa.or_(expr > _param(expr, v), expr.is_(None)) if v is not None else None
    return expr < _param(expr, v) if v is not None else expr.is_not(None)


def _param(expr: sa.ColumnElement, v: Any) -> sa.BindParameter:
    # a bound parameter of the column's type (SQLAlchemy refuses `col > True`);
    # statement templates pass their own (valueless) bound parameters
    return v if isinstance(v, sa.BindParameter) else sa.literal(v, expr.type)


def segments(key: SortKey, id_col: sa.ColumnElement, cursor: list[Any] | None):
    """For one sort key: the (where, order) pairs to read in turn, each served by an
    index on (key, id)."""
    if cursor is None:
        return segment_templates(key, id_col, "first")
    v, last = cursor
    if v is None:
        return segment_templates(key, id_col, "blank", None, last)
    return segment_templates(key, id_col, "value", _param(key.expr, v), last)


def segment_templates(
    key: SortKey, id_col: sa.ColumnElement, state: str, v: Any = None, last: Any = None
):
    """``segments`` by the cursor's state: "first" (no cursor), "blank" (the cursor's
    sort value is blank) or "value"; ``v`` and ``last`` may be bound parameters, so
    the same statements serve every cursor of that state.

    A sort by the id itself is one segment: the id is never blank and is its own
    tie-breaker (``WHERE ... [AND id > :last] ORDER BY id``), so no ``id IS NOT NULL``,
    no ``ORDER BY id, id`` and no second statement for blank ids."""
    if key.field is None:  # the id
        order = [id_col.desc() if key.desc else id_col.asc()]
        if state == "first":
            return [(sa.true(), order)]  # and_() leaves it out: no condition
        if state == "blank":  # only a tampered cursor: its rows were the blank ids, none
            return [(sa.false(), order)]
        return [(id_col < last if key.desc else id_col > last, order)]
    k = key.expr
    if key.desc:
        valued_order = [k.desc(), id_col.desc()]
        blank = (k.is_(None), [id_col.desc()])
        valued = (k.is_not(None), valued_order)
        if state == "first":
            return [blank, valued]
        if state == "blank":
            return [(sa.and_(k.is_(None), id_col < last), [id_col.desc()]), valued]
        return [(sa.tuple_(k, id_col) < sa.tuple_(v, last), valued_order)]
    valued_order = [k.asc(), id_col.asc()]
    valued = (k.is_not(None), valued_order)
    blank = (k.is_(None), [id_col.asc()])
    if state == "first":
        return [valued, blank]
    if state == "blank":
        return [(sa.and_(k.is_(None), id_col > last), [id_col.asc()])]
    return [(sa.tuple_(k, id_col) > sa.tuple_(v, last), valued_order), blank]


# --- cursors -------------------------------------------------------------------


def encode_cursor(signature: str, values: list[Any]) -> str:
    payload = json.dumps([signature, [_tag(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(signature: str, cursor: str, keys: list[SortKey] | None = None) -> list[Any]:
    """The sort values and id a cursor holds; with ``keys``, each value is checked
    against its sort key's type, so a tampered cursor is a bad request, not an
    SQL error."""
    invalid = BadRequest("The cursor is not valid; start again from the first page")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sig, tagged = json.loads(raw)
        if sig != signature:
            raise BadRequest(
                "This cursor belongs to another sort order; start again from the first page"
            )
        values = [_untag(v) for v in tagged]
    except BadRequest:
        raise
    except (binascii.Error, ValueError, TypeError, KeyError, ArithmeticError):
        raise BadRequest("The cursor is not valid; start again from the first page") from None
    if not values or not _fits(int, values[-1]) or values[-1] < 1:
        raise invalid
    if keys is not None:
        if len(values) != len(keys) + 1:
            raise invalid
        for k, v in zip(keys, values, strict=False):
            try:
                expected = k.expr.type.python_type
            except NotImplementedError:
                expected = None
            if v is not None and not _fits(expected, v):
                raise invalid
    return values


def _fits(expected: type | None, v: Any) -> bool:
    """Whether a cursor value can be compared with a column of this Python type."""
    if isinstance(v, bool) or expected is bool:
        return isinstance(v, bool) and expected in (bool, None)
    if isinstance(v, int):
        return expected in (int, Decimal, float, None) and -(2**63) <= v < 2**63
    if isinstance(v, Decimal | float):
        finite = v.is_finite() if isinstance(v, Decimal) else v == v and abs(v) != float("inf")
        return expected in (Decimal, float, None) and finite and abs(v) < 10**28
    if isinstance(v, datetime):
        return expected in (datetime, None)
    if isinstance(v, date):
        return expected in (date, None)
    return isinstance(v, str) and expected in (str, None)


def _tag(v: Any) -> Any:
    if isinstance(v, Decimal):
        return {"n": str(v)}
    if isinstance(v, datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, date):
        return {"d": v.isoformat()}
    if isinstance(v, float):
        return {"f": repr(v)}
    if v is None or isinstance(v, bool | int | str):
        return v
    return {"s": str(v)}


def _untag(v: Any) -> Any:
    if isinstance(v, dict):
        ((tag, text),) = v.items()
        if not isinstance(text, str):
            raise ValueError("bad cursor value")
        return {
            "n": Decimal,
            "dt": datetime.fromisoformat,
            "d": date.fromisoformat,
            "f": float,
            "s": str,
        }[tag](text)
    if isinstance(v, list):
        raise ValueError("bad cursor value")
    return v
