"""Reports (cb_reports) and dashboards (cb_dashboards): saved questions about one
table, always answered as the viewer.

A *summary* report groups the records it reads (``group_by``: up to two fields, dates
by a grain) and measures them (``count``, ``sum(amount)``, ...) in one GROUP BY through
``RecordsService.aggregate``; a *list* report shows ``columns`` of the records,
read through ``RecordsService.list`` in pages, at most ``LIST_CAP`` rows. Either way
the data is the viewer's: row rules limit the records, a field hidden from the viewer
is refused, never shown. ``roles`` only decides who finds the report in the Reports
menu (admins find every report).

Definitions are kept by field id with formulas in stored form, so renaming a field or
the table keeps the report; ``to_spec`` gives them back with today's keys (the app
format's words, see docs/reports.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from .. import formula as F
from ..formula import types as ft
from . import formulas
from .errors import BadRequest, NotFound
from .models import Dashboard, Report
from .records import FormulaFilter, RecordsService
from .records.aggregating import DATES, GRAINS, GROUPABLE, MAX_GROUP_FIELDS, MAX_GROUPS, NUMERIC
from .report_text import (  # noqa: F401  (safe_cell, number_text: for callers)
    LinkNames,
    ReportResult,
    group_text,
    is_number,
    measure_text,
    number_text,
    safe_cell,
    value_text,
)
from .schema import Field, Schema, Table

LIST_CAP = 10_000  # rows of a list report (pages of MAX_PAGE)
CHARTS = ("bar", "line", "pie", "funnel", "table", "number")
FUNCTIONS = ("count", "sum", "avg", "min", "max")
MEASURE_RE = re.compile(r"^\s*(count|sum|avg|min|max)\s*(?:\(\s*([a-z][a-z0-9_]*)\s*\))?\s*$")
FUNCTION_WORDS = {
    "count": "Records",
    "sum": "Sum of",
    "avg": "Average of",
    "min": "Lowest",
    "max": "Highest",
}
GRAIN_WORDS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}


class ReportProblem(BadRequest):
    """A definition that does not fit the table: ``key`` is the definition's key at
    fault (filter, group_by, ...), ``formula_error`` the checker's error when it is a
    formula."""

    def __init__(self, key: str, message: str, formula_error: Any = None):
        super().__init__(message)
        self.key = key
        self.formula_error = formula_error


# --- definitions -----------------------------------------------------------------------


@dataclass
class Measure:
    fn: str
    field: Field | None

    @property
    def name(self) -> str:
        """The records service's name for it (``count``, ``sum:amount``)."""
        if self.field is None:
            return "count"
        return f"{self.fn}:{self.field.key}"

    @property
    def text(self) -> str:
        """As written in the app format (``count``, ``sum(amount)``)."""
        return self.fn if self.field is None else f"{self.fn}({self.field.key})"

    @property
    def label(self) -> str:
        if self.field is None:
            return "Records"
        if self.fn == "count":
            return f"Records with {self.field.label}"
        return f"{FUNCTION_WORDS[self.fn]} {self.field.label}"


@dataclass
class GroupBy:
    field: Field
    grain: str | None

    @property
    def text(self) -> str:
        return self.field.key if self.grain is None else f"{self.field.key}:{self.grain}"

    @property
    def label(self) -> str:
        return self.field.label if self.grain is None else f"{self.field.label} ({self.grain})"


@dataclass
class ReportDef:
    """A report resolved against today's schema (``get_report``)."""

    key: str
    label: str
    table: Table
    app: str | None = None
    filter: str | None = None  # the formula with today's names
    group_by: list[GroupBy] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    columns: list[Field] = field(default_factory=list)
    sort: str | None = None  # as written: -sum(amount), closed_on:month, -name
    limit: int | None = None
    roles: list[str] = field(default_factory=list)

    @property
    def is_list(self) -> bool:
        return bool(self.columns)

    def spec(self) -> dict[str, Any]:
        """The definition in the app format's words (None and [] left out)."""
        out: dict[str, Any] = {"label": self.label, "table": self.table.key}
        if self.filter:
            out["filter"] = self.filter
        if self.group_by:
            out["group_by"] = [g.text for g in self.group_by]
        if self.measures and not (self.group_by and [m.text for m in self.measures] == ["count"]):
            out["measures"] = [m.text for m in self.measures]
        if self.columns:
            out["columns"] = [f.key for f in self.columns]
        for name in ("sort", "limit"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.roles:
            out["roles"] = list(self.roles)
        return out


def parse_measure(table: Table, text: Any) -> Measure:
    m = MEASURE_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise BadRequest(
            f"`{text}` is not a measure: write count, or sum, avg, min, max or count of a "
            "field, e.g. sum(amount)"
        )
    fn, key = m.group(1), m.group(2)
    if key is None:
        if fn != "count":
            raise BadRequest(f"`{fn}` needs a field, e.g. {fn}(amount)")
        return Measure("count", None)
    f = table.fields.get(key)
    if f is None or f.link_kind in ("many", "reverse", "reverse_many"):
        raise BadRequest(f"unknown field `{key}` in table `{table.key}`")
    kind = f.config.get("result_type", "") if f.type == "formula" else f.type
    if fn in ("sum", "avg") and kind not in NUMERIC:
        raise BadRequest(f"cannot take the {fn} of `{key}`: a {f.type} field (numbers only)")
    if fn in ("min", "max") and kind not in NUMERIC | DATES:
        raise BadRequest(f"cannot take the {fn} of `{key}`: a {f.type} field")
    return Measure(fn, f)


def parse_group(table: Table, text: Any) -> GroupBy:
    if not isinstance(text, str):
        raise BadRequest("a group is a field key, with a grain for dates: closed_on:month")
    key, _, grain = text.partition(":")
    f = table.fields.get(key.strip())
    if f is None or f.link_kind in ("many", "reverse", "reverse_many"):
        raise BadRequest(f"unknown field `{key.strip()}` in table `{table.key}`")
    kind = f.config.get("result_type", "") if f.type == "formula" else f.type
    if grain:
        if grain not in GRAINS:
            raise BadRequest(f"unknown grain `{grain}` (one of: {', '.join(GRAINS)})")
        if kind not in DATES:
            raise BadRequest(f"cannot group `{f.key}` by {grain}: a {f.type} field (dates only)")
        return GroupBy(f, grain)
    if kind in DATES and f.type not in GROUPABLE:
        raise BadRequest(f"group `{f.key}` by a grain, e.g. {f.key}:month")
    if f.type not in GROUPABLE and f.type != "formula":
        raise BadRequest(f"cannot group by `{f.key}`: a {f.type} field")
    return GroupBy(f, None)


def build(schema: Schema, key: str, spec: dict[str, Any], app: str | None = None) -> ReportDef:
    """A report from the app format's words (``spec``: label, table, filter, group_by,
    measures, columns, sort, limit, roles); ReportProblem names the key at fault. The
    filter is checked as a Boolean formula; roles are the caller's to check."""
    table_key = spec.get("table")
    if not isinstance(table_key, str) or not schema.has_table(table_key):
        raise ReportProblem("table", f"unknown table `{table_key}`")
    table = schema.table(table_key)
    rep = ReportDef(key, str(spec.get("label") or default_label(key)), table, app)
    source = spec.get("filter")
    if source not in (None, ""):
        if not isinstance(source, str):
            raise ReportProblem("filter", "the filter is a formula (a text)")
        try:
            F.check(source, schema.formula_schema(), table.key, ft.BOOLEAN)
        except F.FormulaError as exc:
            first = exc.errors[0].message if exc.errors else "the formula is not valid"
            raise ReportProblem("filter", f"The filter: {first}", exc) from None
        rep.filter = source
    columns = spec.get("columns") or []
    groups = spec.get("group_by") or []
    measures = spec.get("measures") or []
    if columns and (groups or measures):
        raise ReportProblem(
            "columns", "a report lists `columns` or summarises (group_by, measures), not both"
        )
    if not columns and not groups and not measures:
        raise ReportProblem("table", "give `columns` (a list) or `group_by`/`measures` (a summary)")
    for name, items in (("group_by", groups), ("measures", measures), ("columns", columns)):
        if not isinstance(items, list):
            raise ReportProblem(name, "expected a list")
    if len(groups) > MAX_GROUP_FIELDS:
        raise ReportProblem("group_by", f"group by at most {MAX_GROUP_FIELDS} fields")
    try:
        rep.group_by = [parse_group(table, g) for g in groups]
    except BadRequest as exc:
        raise ReportProblem("group_by", exc.message) from None
    if len({g.field.key for g in rep.group_by}) < len(rep.group_by):
        raise ReportProblem("group_by", "the same field is grouped twice")
    try:
        rep.measures = [parse_measure(table, m) for m in measures] or (
            [Measure("count", None)] if groups else []
        )
    except BadRequest as exc:
        raise ReportProblem("measures", exc.message) from None
    if len({m.text for m in rep.measures}) < len(rep.measures):
        raise ReportProblem("measures", "a measure is listed twice")
    for c in columns:
        f = table.fields.get(c) if isinstance(c, str) else None
        if f is None:
            raise ReportProblem("columns", f"unknown field `{c}` in table `{table.key}`")
        rep.columns.append(f)
    sort = spec.get("sort")
    if sort not in (None, ""):
        rep.sort = _check_sort(rep, sort)
    limit = spec.get("limit")
    if limit is not None:
        cap = LIST_CAP if rep.is_list else MAX_GROUPS
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= cap:
            raise ReportProblem("limit", f"limit must be a whole number from 1 to {cap:,}")
        rep.limit = limit
    roles = spec.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ReportProblem("roles", "expected a list of role keys")
    rep.roles = list(roles)
    return rep


def _check_sort(rep: ReportDef, sort: Any) -> str:
    """The sort in its one canonical spelling, so the report is stored, shown, exported
    and compared the same however it was written: no ``+``, no spaces, and a group named
    by its field key written as in ``group_by`` (``-month`` with ``month:month`` is
    ``-month:month``)."""
    if not isinstance(sort, str):
        raise ReportProblem("sort", "expected a text, e.g. -sum(amount)")
    parts = [(p.strip().startswith("-"), p.strip().lstrip("-+").strip()) for p in sort.split(",")]
    if rep.is_list:
        for _desc, name in parts:
            if name not in {f.key for f in rep.columns} and name not in rep.table.fields:
                raise ReportProblem("sort", f"unknown field `{name}` in table `{rep.table.key}`")
        return ",".join(("-" if desc else "") + name for desc, name in parts)
    desc, name = parts[0] if len(parts) == 1 else (False, sort.strip())
    name = name.replace(" ", "")
    groups = [g.text for g in rep.group_by]
    if name not in groups and name not in (m.text for m in rep.measures):
        # a field is grouped once at most (build refuses it twice), so its key names one group
        same_field = [g.text for g in rep.group_by if g.field.key == name]
        if not same_field:
            choices = groups + [m.text for m in rep.measures]
            raise ReportProblem(
                "sort", f"sort by a group or a measure: one of {', '.join(choices)}"
            )
        name = same_field[0]
    return ("-" if desc else "") + name


def default_label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def to_stored(schema: Schema, rep: ReportDef) -> dict[str, Any]:
    """The definition as kept in cb_reports: fields by id, the filter in stored form."""
    out: dict[str, Any] = {}
    if rep.filter:
        out["filter"] = formulas.store(schema, rep.table.key, rep.filter, "The filter")[0]
    out["group_by"] = [{"field": g.field.id, "grain": g.grain} for g in rep.group_by]
    out["measures"] = [{"fn": m.fn, "field": m.field.id if m.field else None} for m in rep.measures]
    out["columns"] = [f.id for f in rep.columns]
    if rep.sort:
        desc = rep.sort.startswith("-")
        name = rep.sort.lstrip("-+")
        sort: dict[str, Any] = {"desc": desc}
        if rep.is_list:
            sort = {"fields": [_sort_field(rep.table, p) for p in rep.sort.split(",")]}
        else:
            groups = [g.text for g in rep.group_by]
            keys = [g.field.key for g in rep.group_by]
            if name in groups or name in keys:
                sort["group"] = groups.index(name) if name in groups else keys.index(name)
            else:
                sort["measure"] = [m.text for m in rep.measures].index(name)
        out["sort"] = sort
    out["limit"] = rep.limit
    out["roles"] = list(rep.roles)
    return out


def _sort_field(table: Table, part: str) -> dict[str, Any]:
    part = part.strip()
    return {"field": table.fields[part.lstrip("-+").strip()].id, "desc": part.startswith("-")}


def from_stored(schema: Schema, row: Report) -> ReportDef:
    """A stored report against today's schema; BadRequest when a field it uses is gone."""
    table = schema.by_id.get(row.table_id)
    if table is None:
        raise BadRequest(f"The table of report `{row.key}` no longer exists")
    d = row.definition or {}
    rep = ReportDef(row.key, row.label, table, row.app)

    def fld(fid: Any) -> Field:
        f = table.field_by_id(fid) if isinstance(fid, int) else None
        if f is None:
            raise BadRequest(f"Report `{row.key}` uses a field that no longer exists")
        return f

    if d.get("filter"):
        rep.filter = formulas.display(schema, table.key, d["filter"])
    rep.group_by = [GroupBy(fld(g["field"]), g.get("grain")) for g in d.get("group_by") or []]
    rep.measures = [
        Measure(m["fn"], fld(m["field"]) if m.get("field") is not None else None)
        for m in d.get("measures") or []
    ]
    rep.columns = [fld(c) for c in d.get("columns") or []]
    sort = d.get("sort")
    if sort:
        if "fields" in sort:
            rep.sort = ",".join(
                ("-" if s.get("desc") else "") + fld(s["field"]).key for s in sort["fields"]
            )
        elif "group" in sort and sort["group"] < len(rep.group_by):
            rep.sort = ("-" if sort.get("desc") else "") + rep.group_by[sort["group"]].text
        elif "measure" in sort and sort["measure"] < len(rep.measures):
            rep.sort = ("-" if sort.get("desc") else "") + rep.measures[sort["measure"]].text
    rep.limit = d.get("limit")
    rep.roles = list(d.get("roles") or [])
    return rep


def stored_field_ids(d: dict[str, Any]) -> set[int]:
    """The ids of the fields a stored definition names (groups, measures, columns,
    sort), its filter aside."""
    ids = {g.get("field") for g in d.get("group_by") or []}
    ids |= {m.get("field") for m in d.get("measures") or []}
    ids |= set(d.get("columns") or [])
    ids |= {s.get("field") for s in (d.get("sort") or {}).get("fields") or []}
    return {i for i in ids if isinstance(i, int)}


def report_users(session, schema: Schema, what) -> list:
    """Finder (``hooks.deletion_users``): the reports that use a field (or the table) a
    delete removes, from their stored definitions (field ids, the filter's stored form).
    Dashboards show reports and name no field, so the report stands for them."""
    from .usage import Use, fields_read

    fs = schema.formula_schema()
    out = []
    for row in session.scalars(sa.select(Report).order_by(Report.key)):
        table = schema.by_id.get(row.table_id)
        if table is None:
            continue
        d = row.definition or {}
        used = what.whole_table and table.id == what.table.id
        used = used or bool(stored_field_ids(d) & what.ids)
        used = used or bool(fields_read(d.get("filter"), fs, table.key) & what.ids)
        if used:
            out.append(Use("report", row.key, f"the report `{row.label}`", row.app))
    return out


# --- storage -----------------------------------------------------------------------------


def save_report(session, schema: Schema, rep: ReportDef) -> Report:
    """Create or replace the report ``rep.key`` (the caller commits)."""
    now = datetime.now(UTC)
    row = session.scalar(sa.select(Report).where(Report.key == rep.key))
    if row is None:
        row = Report(key=rep.key, created_at=now)
        session.add(row)
    row.app = rep.app
    row.table_id = rep.table.id
    row.label = rep.label
    row.definition = to_stored(schema, rep)
    row.updated_at = now
    session.flush()
    return row


def delete_report(session, key: str) -> None:
    session.execute(sa.delete(Report).where(Report.key == key))


def save_dashboard(
    session, key: str, label: str, roles: list[str], items: list[dict], app: str | None = None
) -> Dashboard:
    """Create or replace a dashboard: ``items`` are ``{report, chart}`` (label optional)."""
    now = datetime.now(UTC)
    row = session.scalar(sa.select(Dashboard).where(Dashboard.key == key))
    if row is None:
        row = Dashboard(key=key, created_at=now)
        session.add(row)
    row.app = app
    row.label = label
    row.definition = {"roles": list(roles), "items": [dict(i) for i in items]}
    row.updated_at = now
    session.flush()
    return row


def delete_dashboard(session, key: str) -> None:
    session.execute(sa.delete(Dashboard).where(Dashboard.key == key))


def _may_see(service: RecordsService, roles: list[str]) -> bool:
    return service.actor.is_admin or bool(set(roles) & set(service.actor.roles))


def visible_reports(service: RecordsService) -> list[Report]:
    """The stored reports the actor finds in the Reports menu, by label."""
    rows = service.session.scalars(sa.select(Report).order_by(Report.label, Report.key))
    return [
        r
        for r in rows
        if r.table_id in service.schema.by_id
        and _may_see(service, list((r.definition or {}).get("roles") or []))
    ]


def get_report(service: RecordsService, key: str) -> ReportDef:
    """The report ``key`` as the actor may open it; NotFound when there is none or their
    roles may not see it (BadRequest when a field it uses was deleted)."""
    row = (
        service.session.scalar(sa.select(Report).where(Report.key == key))
        if isinstance(key, str)
        else None
    )
    if row is None or not _may_see(service, list((row.definition or {}).get("roles") or [])):
        raise NotFound(f"There is no report `{key}`")
    return from_stored(service.schema, row)


def find_report(service: RecordsService, key: str) -> ReportDef:
    """The report ``key`` whatever its roles: a dashboard shows its reports to the
    dashboard's roles (the data is still the actor's own). NotFound when absent."""
    row = (
        service.session.scalar(sa.select(Report).where(Report.key == key))
        if isinstance(key, str)
        else None
    )
    if row is None:
        raise NotFound(f"There is no report `{key}`")
    return from_stored(service.schema, row)


def visible_dashboards(service: RecordsService) -> list[Dashboard]:
    rows = service.session.scalars(sa.select(Dashboard).order_by(Dashboard.label, Dashboard.key))
    return [r for r in rows if _may_see(service, list((r.definition or {}).get("roles") or []))]


def get_dashboard(service: RecordsService, key: str) -> Dashboard:
    row = (
        service.session.scalar(sa.select(Dashboard).where(Dashboard.key == key))
        if isinstance(key, str)
        else None
    )
    if row is None or not _may_see(service, list((row.definition or {}).get("roles") or [])):
        raise NotFound(f"There is no dashboard `{key}`")
    return row


# --- running -----------------------------------------------------------------------------


def run_report(
    service: RecordsService,
    report: ReportDef,
    limit: int | None = None,
    narrow: str | None = None,
) -> ReportResult:
    """Run the report as the service's actor (rows they may read, fields they may see;
    a hidden field is refused with BadRequest). ``limit`` lowers the report's own;
    ``narrow`` is the viewer's own filter formula (e.g. a period), ANDed with the
    report's and checked like any filter the viewer writes."""
    where = [FormulaFilter(report.filter)] if report.filter else []
    if narrow is not None and narrow.strip():
        where.append(FormulaFilter(narrow.strip()))
    if report.is_list:
        return _run_list(service, report, where, limit)
    return _run_summary(service, report, where, limit)


def _limit(report: ReportDef, limit: int | None, cap: int) -> int:
    n = min(x for x in (report.limit, limit, cap) if x is not None)
    return max(1, n)


def _run_summary(service, report: ReportDef, where, limit) -> ReportResult:
    n = _limit(report, limit, MAX_GROUPS)
    sort = None
    if report.sort:
        desc = report.sort.startswith("-")
        name = report.sort.lstrip("-+")
        for m in report.measures:
            if m.text == name:
                name = m.name
        sort = ("-" if desc else "") + name
    result = service.aggregate(
        report.table.key,
        group_by=[g.text for g in report.group_by],
        measures=[(m.fn, m.field.key if m.field else None) for m in report.measures],
        where=where,
        limit=n,
        sort=sort,
    )
    names = LinkNames(service)
    for i, g in enumerate(report.group_by):
        if g.field.link_kind == "one" and g.field.target_key:
            key = ("group", "group2")[i]
            names.fetch(g.field.target_key, [r[key] for r in result.rows if r[key] is not None])
    headers = [g.label for g in report.group_by] + [m.label for m in report.measures]
    rows, values = [], []
    for r in result.rows:
        vals: list[Any] = []
        texts: list[str] = []
        for i, g in enumerate(report.group_by):
            v = r[("group", "group2")[i]]
            numeric = g.field.link_kind is None and g.field.type in ("integer", "number")
            vals.append(v if numeric else None)  # a link's id is not a number to add up
            texts.append(group_text(g, v, names))
        for m in report.measures:
            v = r[m.name]
            vals.append(v)
            texts.append(measure_text(m, v))
        rows.append(texts)
        values.append(vals)
    note = f"Only the first {n:,} groups are shown." if result.more else None
    return ReportResult(report, headers, rows, values, len(report.group_by), result.more, note)


def _run_list(service, report: ReportDef, where, limit) -> ReportResult:
    n = _limit(report, limit, LIST_CAP)
    keys = [f.key for f in report.columns]
    hidden = service.access.hidden_fields(report.table)[0]
    for f in report.columns:
        if f.key in hidden:
            raise BadRequest(f"Cannot show `{f.key}`: the field is hidden from you")
    records = list(
        service.iter_records(
            report.table.key, where=where, sort=report.sort or None, fields=keys, limit=n + 1
        )
    )
    more = len(records) > n
    del records[n:]
    names = LinkNames(service)
    for f in report.columns:
        if f.link_kind in ("one", "many") and f.target_key:
            ids: list[int] = []
            for r in records:
                v = r.values.get(f.key)
                ids += v if isinstance(v, list) else [v] if isinstance(v, int) else []
            names.fetch(f.target_key, ids)
    rows, values = [], []
    for r in records:
        vals = [None if f.key in r.withheld else r.values.get(f.key) for f in report.columns]
        rows.append([value_text(f, v, names) for f, v in zip(report.columns, vals, strict=True)])
        values.append(
            [
                v if is_number(v) and f.link_kind is None and f.type != "autonumber" else None
                for f, v in zip(report.columns, vals, strict=True)
            ]
        )
    note = f"Only the first {n:,} records are shown." if more else None
    return ReportResult(report, [f.label for f in report.columns], rows, values, 0, more, note)
