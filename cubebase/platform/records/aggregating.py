"""Grouped aggregates for charts and reports: one GROUP BY statement, under the
actor's rights, instead of reading records and adding them up in Python.

Up to two group fields; a date or date-time field may be grouped by a grain
(``closed_on:month``: day, week (from Monday), month, quarter, year), computed in
SQL (PostgreSQL ``date_trunc``, SQLite ``strftime``) in the workspace time zone for
date-times. A group by grain answers the first day of its period as a ``date``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ..errors import BadRequest
from ..schema import Field, Table
from .plans import joined
from .values import Where

MEASURES = ("count", "sum", "avg", "min", "max")
GRAINS = ("day", "week", "month", "quarter", "year")
MAX_GROUPS = 1000
MAX_GROUP_FIELDS = 2
_NUMERIC = frozenset({"number", "currency", "integer", "autonumber"})
_DATES = frozenset({"date", "datetime", "created_at", "updated_at"})
_ORDERED = _NUMERIC | _DATES
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
GROUPABLE, NUMERIC, DATES = _GROUPABLE, _NUMERIC, _DATES  # for reports.py
GROUP_KEYS = ("group", "group2")  # the row keys of the first and the second group


@dataclass
class Groups:
    """``rows``: one dict per group, ``{"group": value, "count": n, "sum:amount": ...}``
    (with two group fields also ``"group2"``) in group order (blank first; a select
    field in the order of its options) or in ``sort`` order; ``more``: there were more
    groups than returned."""

    rows: list[dict[str, Any]]
    more: bool


@dataclass
class _Group:
    spec: str  # as asked: "stage" or "closed_on:month"
    field: Field
    grain: str | None
    expr: sa.ColumnElement
    order: sa.ColumnElement


class Aggregating:
    """Grouped reads; mixed into ``RecordsService``."""

    def aggregate(
        self,
        table_key: str,
        *,
        group_by: str | Sequence[str] | None = None,
        measures: Sequence[tuple[str, str | None]] = (("count", None),),
        where: Where | Sequence[Where] | None = None,
        limit: int = MAX_GROUPS,
        sort: str | None = None,
    ) -> Groups:
        """Count, sum, average, min and max of the records the actor may read that match
        ``where``, per value of ``group_by`` (one field or a list of up to two, each
        ``field`` or ``field:grain``; one group without it). ``sort`` is a group (as
        written in ``group_by``) or a measure name (``count``, ``sum:amount``), ``-`` in
        front for descending. Fields hidden from the actor cannot be grouped or
        measured; blanks are skipped by the measures, as in formulas (an empty sum is 0)."""
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
        specs = [group_by] if isinstance(group_by, str) else list(group_by or [])
        if len(specs) > MAX_GROUP_FIELDS or not all(isinstance(s, str) for s in specs):
            raise BadRequest(f"Group by at most {MAX_GROUP_FIELDS} fields")
        groups = [self._group(table, spec, conds, joins) for spec in specs]
        if len({g.spec for g in groups}) < len(groups):
            raise BadRequest("The same group is asked for twice")
        keys = [g.expr.label(f"g{i}") for i, g in enumerate(groups)]
        order: list[sa.ColumnElement] = []
        if sort is not None:
            order += _sort_terms(sort, groups, names, columns)
        for g in groups:
            order += [g.expr.is_not(None), g.order]
        stmt = sa.select(*keys, *columns).select_from(joined(t, joins)).where(*conds)
        if groups:
            stmt = stmt.group_by(*keys).order_by(*order).limit(limit + 1)
        rows = self.session.execute(stmt).all()
        more = len(rows) > limit
        out = []
        for row in rows[:limit]:
            values = list(row)
            item: dict[str, Any] = {}
            for name, g in zip(GROUP_KEYS, groups, strict=False):
                item[name] = _group_value(g, values.pop(0))
            for name, f, value in zip(names, fields, values, strict=True):
                item[name] = _measure_value(name, f, value)
            out.append(item)
        return Groups(out, more)

    def _group(self, table: Table, spec: str, conds: list, joins: dict) -> _Group:
        key, _, grain = spec.partition(":")
        f = self._aggregate_field(table, key.strip(), "group by")
        kind = f.config.get("result_type", "") if f.type == "formula" else f.type
        expr = self._aggregate_expr(table, f)
        if grain:
            if grain not in GRAINS:
                raise BadRequest(f"Unknown grain `{grain}` (one of: {', '.join(GRAINS)})")
            if kind not in _DATES:
                raise BadRequest(
                    f"Cannot group `{f.key}` by {grain}: a {f.type} field (only dates can be)"
                )
            if kind != "date":
                expr = self._local_time(table, expr, conds, joins)
            expr = _truncate(self.session, expr, grain)
            return _Group(spec, f, grain, expr, expr)
        if f.type not in _GROUPABLE and f.type != "formula":
            hint = " (give a grain, e.g. `:month`)" if kind in _DATES else ""
            raise BadRequest(f"Cannot group by `{f.key}`: a {f.type} field{hint}")
        order = expr
        if f.type == "select":
            options = list(f.ftype.options(f))
            if options:
                order = sa.case(
                    {o: i for i, o in enumerate(options)}, value=expr, else_=len(options)
                )
        return _Group(spec, f, None, expr, order)

    def _local_time(
        self, table: Table, expr: sa.ColumnElement, conds: list, joins: dict
    ) -> sa.ColumnElement:
        """An instant as the workspace's wall-clock time (naive): PostgreSQL converts by
        the zone's name; SQLite adds the zone's offset, by a CASE over the zone's
        changes (summer time) between the earliest and the latest value read."""
        tz = self.schema.timezone
        if self.session.get_bind().dialect.name == "postgresql":
            return sa.func.timezone(getattr(tz, "key", "UTC"), expr)
        lo, hi = self.session.execute(
            sa.select(sa.func.min(expr), sa.func.max(expr))
            .select_from(joined(table.sql, joins))
            .where(*conds)
        ).one()
        if lo is None:
            return sa.func.datetime(expr)
        changes = _offset_changes(tz, _instant(lo), _instant(hi))
        first = _minutes(tz, _instant(lo))
        if not changes:
            return sa.func.datetime(expr, f"{first:+d} minutes")
        whens = []
        prev = first
        for at, minutes in changes:
            whens.append((expr < at.replace(tzinfo=None), f"{prev:+d} minutes"))
            prev = minutes
        return sa.func.datetime(expr, sa.case(*whens, else_=f"{prev:+d} minutes"))

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


def _sort_terms(
    sort: Any, groups: list[_Group], names: list[str], columns: list[sa.ColumnElement]
) -> list[sa.ColumnElement]:
    if not isinstance(sort, str) or not sort.strip():
        raise BadRequest("sort must name a group or a measure, e.g. -count")
    text = sort.strip()
    desc = text.startswith("-")
    name = text.lstrip("-+").strip()
    for g in groups:
        if g.spec == name or g.field.key == name:
            if desc:  # blanks last
                return [g.expr.is_(None), g.order.desc()]
            return [g.expr.is_not(None), g.order]
    if name in names:
        col = columns[names.index(name)]
        return [col.is_(None), col.desc() if desc else col]
    known = [g.spec for g in groups] + names
    raise BadRequest(f"Cannot sort by `{name}`: sort by one of {', '.join(known)}")


def _truncate(session, expr: sa.ColumnElement, grain: str) -> sa.ColumnElement:
    """The first day of ``expr``'s period, as a date (PostgreSQL) or 'YYYY-MM-DD' text."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.date_trunc(grain, expr), sa.Date)
    if grain == "day":
        return sa.func.date(expr)
    if grain == "week":  # to the next Sunday (or stay), back six days: the Monday
        return sa.func.date(expr, "weekday 0", "-6 days")
    if grain == "month":
        return sa.func.strftime("%Y-%m-01", expr)
    if grain == "year":
        return sa.func.strftime("%Y-01-01", expr)
    month = sa.cast(sa.func.strftime("%m", expr), sa.Integer)
    first = (month - 1) // 3 * 3 + 1
    text = sa.func.printf("%s-%02d-01", sa.func.strftime("%Y", expr), first)
    return sa.case((expr.is_(None), sa.null()), else_=text)


def _instant(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _minutes(tz: tzinfo, at: datetime) -> int:
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def _offset_changes(tz: tzinfo, lo: datetime, hi: datetime) -> list[tuple[datetime, int]]:
    """(UTC instant, offset in minutes from then on) of each change of the zone's offset
    between ``lo`` and ``hi``: a day-by-day walk, each change then found to the minute."""
    out = []
    day = timedelta(days=1)
    at = lo - day
    current = _minutes(tz, at)
    while at <= hi:
        nxt = at + day
        minutes = _minutes(tz, nxt)
        if minutes != current:
            a, b = at, nxt  # the change is in (a, b]
            while b - a > timedelta(minutes=1):
                mid = a + (b - a) / 2
                if _minutes(tz, mid) == current:
                    a = mid
                else:
                    b = mid
            out.append((b.replace(second=0, microsecond=0), minutes))
            current = minutes
        at = nxt
    return out


def _group_value(g: _Group, raw: Any) -> Any:
    if g.grain is not None:
        if raw is None or isinstance(raw, date):
            return raw
        return date.fromisoformat(str(raw)[:10])
    return g.field.ftype.from_db(g.field, raw)


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
