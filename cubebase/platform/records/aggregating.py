"""Grouped aggregates for charts and reports: one GROUP BY statement, under the
actor's rights, instead of reading records and adding them up in Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ..errors import BadRequest
from ..schema import Field, Table
from .plans import joined
from .values import Where

MEASURES = ("count", "sum", "avg", "min", "max")
MAX_GROUPS = 1000
_NUMERIC = frozenset({"number", "currency", "integer", "autonumber"})
_ORDERED = _NUMERIC | {"date", "datetime", "created_at", "updated_at"}
_GROUPABLE = frozenset(
    {
        "text",
        "email",
        "phone",
        "url",
        "select",
        "boolean",
        "integer",
        "date",
        "link",
        "user",
        "created_by",
        "updated_by",
        "autonumber",
    }
)


@dataclass
class Groups:
    """``rows``: one dict per group, ``{"group": value, "count": n, "sum:amount": ...}``
    in group order (blank first); ``more``: there were more groups than returned."""

    rows: list[dict[str, Any]]
    more: bool


class Aggregating:
    """Grouped reads; mixed into ``RecordsService``."""

    def aggregate(
        self,
        table_key: str,
        *,
        group_by: str | None = None,
        measures: Sequence[tuple[str, str | None]] = (("count", None),),
        where: Where | Sequence[Where] | None = None,
        limit: int = MAX_GROUPS,
    ) -> Groups:
        """Count, sum, average, min and max of the records the actor may read that match
        ``where``, per value of ``group_by`` (one group without it). Fields hidden from
        the actor cannot be grouped or measured; blanks are skipped by the measures, as
        in formulas (an empty sum is 0)."""
        table = self.table(table_key)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_GROUPS:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_GROUPS}")
        if not isinstance(measures, list | tuple) or not measures:
            raise BadRequest("Give at least one measure, e.g. (count)")
        t = table.sql
        joins: dict = {}
        conds = self._live(table) + self._where(table, where, joins)
        columns: list[sa.ColumnElement] = []
        names: list[str] = []
        fields: list[Field | None] = []
        for item in measures:
            name, expr, f = self._measure(table, item)
            fields.append(f)
            if name in names:
                raise BadRequest(f"The measure `{name}` is asked for twice")
            names.append(name)
            columns.append(expr.label(f"m{len(columns)}"))
        group_field = None
        if group_by is not None:
            group_field = self._aggregate_field(table, group_by, "group by")
            if group_field.type not in _GROUPABLE and group_field.type != "formula":
                raise BadRequest(f"Cannot group by `{group_by}`: a {group_field.type} field")
            key = self._aggregate_expr(table, group_field).label("g")
            stmt = (
                sa.select(key, *columns)
                .select_from(joined(t, joins))
                .where(*conds)
                .group_by(key)
                .order_by(key.is_not(None), key)
                .limit(limit + 1)
            )
        else:
            stmt = sa.select(*columns).select_from(joined(t, joins)).where(*conds)
        rows = self.session.execute(stmt).all()
        more = len(rows) > limit
        out = []
        for row in rows[:limit]:
            values = list(row)
            item: dict[str, Any] = {}
            if group_field is not None:
                raw = values.pop(0)
                item["group"] = group_field.ftype.from_db(group_field, raw)
            for name, f, value in zip(names, fields, values, strict=True):
                item[name] = _measure_value(name, f, value)
            out.append(item)
        return Groups(out, more)

    def _aggregate_field(self, table: Table, key: Any, what: str) -> Field:
        f = table.fields.get(key) if isinstance(key, str) else None
        if f is None or f.link_kind in ("many", "reverse", "reverse_many"):
            raise BadRequest(f"Cannot {what} `{key}`: table `{table.key}` has no such field")
        self.access.check_field_readable(table, f.key, what.capitalize(), "group or measure")
        return f

    def _aggregate_expr(self, table: Table, f: Field) -> sa.ColumnElement:
        if f.column_name is not None:
            return table.column(f)
        return self.formulas.field_expr(table, f)  # a formula computed on read

    def _measure(self, table: Table, item: Any) -> tuple[str, sa.ColumnElement, Field | None]:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise BadRequest("A measure is (function, field), e.g. (sum, amount) or (count,)")
        func, key = item
        if func not in MEASURES:
            raise BadRequest(f"Unknown measure `{func}` (one of: {', '.join(MEASURES)})")
        if func == "count":
            if key is None:
                return "count", sa.func.count(), None
            f = self._aggregate_field(table, key, "count")
            return f"count:{f.key}", sa.func.count(self._aggregate_expr(table, f)), f
        f = self._aggregate_field(table, key, func)
        kind = f.config.get("result_type", "") if f.type == "formula" else f.type
        allowed = _NUMERIC | {"number"} if func in ("sum", "avg") else _ORDERED | {"number"}
        if kind not in allowed:
            raise BadRequest(f"Cannot take the {func} of `{f.key}`: a {f.type} field")
        expr = self._aggregate_expr(table, f)
        if func == "sum":
            return f"sum:{f.key}", sa.func.coalesce(sa.func.sum(expr), 0), f
        return f"{func}:{f.key}", getattr(sa.func, func)(expr), f


def _measure_value(name: str, f: Field | None, value: Any) -> Any:
    """Counts as whole numbers, sums and averages as exact decimals (SQLite answers in
    floats), minimums and maximums as the field's own values."""
    if f is None or name.startswith("count:"):
        return int(value or 0)
    if value is None:
        return None
    if name.startswith(("sum:", "avg:")):
        return value if isinstance(value, Decimal) else Decimal(repr(value)).normalize()
    if f.type == "formula":
        return value
    return f.ftype.from_db(f, value)
