"""Charts: bar, line, pie and funnel charts of a view grouped by a field with an
aggregate (count, sum, average), drawn as server-side SVG (readable without
JavaScript, every label escaped by the template), with the numbers as a table
beside them; the same drawing shows reports on their pages and dashboards
(``reports.report_chart``).

Every number comes from the records service as the viewer, so row and field rules
apply: counts per option of a select field are ``count(where=[..., field = option])``
(one indexed count per option); other groupings go through ``aggregate`` (one GROUP
BY; dates by month) and, for what it cannot group, read the view's records through
``list`` (two fields, pages of 500, at most ``SCAN_CAP`` records; the chart says so
when it stops there).

"Save to dashboard" (admins) saves the chart as a report (cb_reports: the table, the
view's filter, the group and the measure, by field id) and adds it to the dashboard
of each chosen role (cb_dashboards, keyed by the role), so it exports with the app's
files. Charts saved before reports existed (the table setting ``config["charts"]``)
stay readable: ``/dashboards/ROLE`` shows them after the dashboard's own items, and
an admin can still remove them (docs/reports.md).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from ...platform import formulas, reports
from ...platform.errors import BadRequest, CubebaseError, NotFound
from ...platform.listing import Condition
from ...platform.models import Dashboard, Report, Role
from ...platform.records import MAX_PAGE, FormulaFilter, RecordsService
from ...platform.schema import Field, Table
from . import bp
from .common import (
    LinkLabels,
    column_fields,
    save_table_setting,
    service,
    visible_table,
    visible_tables,
)
from .grid import _problem
from .views import parse_view

CHART_TYPES = {"bar": "Bar", "line": "Line", "pie": "Pie", "funnel": "Funnel"}
AGGREGATES = {"count": "Count", "sum": "Sum", "avg": "Average"}
SCAN_CAP = 100_000  # records read for a grouping the service cannot count
MAX_GROUPS = 24  # more groups: the largest, then "Other"
GROUP_TYPES = frozenset(
    {"select", "boolean", "date", "datetime", "text", "email", "phone", "url", "integer"}
)
MEASURE_TYPES = frozenset({"number", "currency", "integer"})
PALETTE = [
    "#2456c7",
    "#e07b00",
    "#0f8a5f",
    "#b42318",
    "#7a4cc2",
    "#0e7c99",
    "#c2417a",
    "#6b7a00",
    "#8a5a2b",
    "#4a5568",
]
KEY_RE = re.compile(r"[^a-z0-9]+")


class ChartForm(FlaskForm):
    """Save and remove buttons: only the CSRF token; the inputs are read by name."""


@dataclass
class ChartSpec:
    type: str
    by: Field
    agg: str
    of: Field | None
    label: str = ""
    filter: str = ""

    def title(self) -> str:
        if self.label:
            return self.label
        what = "Records" if self.agg == "count" else f"{AGGREGATES[self.agg]} of {self.of.label}"
        return f"{what} by {self.by.label}"


def group_fields(svc: RecordsService, t: Table) -> list[Field]:
    return [
        f
        for f in column_fields(svc, t)
        if f.column_name is not None and (f.type in GROUP_TYPES or f.link_kind == "one")
    ]


def measure_fields(svc: RecordsService, t: Table) -> list[Field]:
    return [f for f in column_fields(svc, t) if f.type in MEASURE_TYPES]


def parse_spec(svc: RecordsService, t: Table, args) -> ChartSpec | None:
    groups = {f.key: f for f in group_fields(svc, t)}
    if not groups:
        return None
    by = groups.get(args.get("by", "")) or next(
        (f for f in groups.values() if f.type == "select"), next(iter(groups.values()))
    )
    kind = args.get("type", "bar")
    if kind not in CHART_TYPES:
        kind = "bar"
    agg = args.get("agg", "count")
    measures = {f.key: f for f in measure_fields(svc, t)}
    of = measures.get(args.get("of", ""))
    if agg not in AGGREGATES or (agg != "count" and of is None):
        agg, of = "count", None
    if agg == "count":
        of = None
    return ChartSpec(kind, by, agg, of, label=args.get("label", "")[:200])


# --- the numbers ---------------------------------------------------------------------------
def chart_data(
    svc: RecordsService, t: Table, spec: ChartSpec, where: list
) -> tuple[list[tuple[str, float]], str | None]:
    """(label, value) per group, in the field's order, and a note when the numbers
    stop at the scan cap."""
    by = spec.by
    if by.type == "select" and spec.agg == "count":
        out = []
        for option in [*by.ftype.options(by), None]:
            cond = (
                Condition(by.key, "isblank") if option is None else Condition(by.key, "eq", option)
            )
            n = svc.count(t.key, where=[*where, cond])
            if option is not None or n:
                out.append((option if option is not None else "(blank)", float(n)))
        return out, None
    if by.type not in ("date", "datetime"):  # dates group by month: read below
        grouped = _grouped(svc, t, spec, where)
        if grouped is not None:
            return grouped
    sums: dict[Any, float] = defaultdict(float)
    counts: dict[Any, int] = defaultdict(int)
    fields = [by.key] + ([spec.of.key] if spec.of is not None else [])
    cursor = None
    seen = 0
    note = None
    links = LinkLabels(svc)
    while True:
        page = svc.list(t.key, where=where, limit=MAX_PAGE, cursor=cursor, fields=fields)
        if by.link_kind == "one":
            links.load(t, [by], page.records)
        for r in page.records:
            if by.key in r.withheld or (spec.of is not None and spec.of.key in r.withheld):
                continue
            key = _group_key(by, r.values.get(by.key), links)
            counts[key] += 1
            if spec.of is not None:
                v = r.values.get(spec.of.key)
                if v is not None:
                    sums[key] += float(v)
        seen += len(page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
        if seen >= SCAN_CAP:
            note = f"Computed from the first {SCAN_CAP:,} records of the view."
            break
    if spec.agg == "count":
        values = {k: float(n) for k, n in counts.items()}
    elif spec.agg == "sum":
        values = {k: sums.get(k, 0.0) for k in counts}
    else:
        values = {k: sums.get(k, 0.0) / counts[k] for k in counts if counts[k]}
    return _ordered(by, values), note


def _grouped(
    svc: RecordsService, t: Table, spec: ChartSpec, where: list
) -> tuple[list[tuple[str, float]], str | None] | None:
    """The chart's numbers in one GROUP BY through the records service (None: the
    field cannot be grouped in SQL, the caller reads the records instead)."""
    by = spec.by
    measure = ("count", None) if spec.of is None else (spec.agg, spec.of.key)
    name = "count" if spec.of is None else f"{spec.agg}:{spec.of.key}"
    try:
        result = svc.aggregate(t.key, group_by=by.key, measures=[measure], where=where)
    except BadRequest:
        return None
    links = LinkLabels(svc)
    if by.link_kind == "one":
        links.fetch(by.target_key, [r["group"] for r in result.rows if r["group"] is not None])
    values: dict[Any, float] = {}
    for r in result.rows:
        if r[name] is None:
            continue
        key = _group_key(by, r["group"], links)
        values[key] = values.get(key, 0.0) + float(r[name])
    note = None
    if result.more:
        note = "Only the first 1,000 groups are shown."
    return _ordered(by, values), note


def _group_key(f: Field, value: Any, links: LinkLabels) -> Any:
    if value is None or value == "":
        return None
    if f.type == "datetime" and isinstance(value, datetime):
        return value.astimezone(f.timezone).strftime("%Y-%m")
    if isinstance(value, date):
        return value.strftime("%Y-%m")
    if f.type == "boolean":
        return "Yes" if value else "No"
    if f.link_kind == "one":
        return links.name(f.target_key, value) or f"#{value}"
    if isinstance(value, Decimal):
        return str(value.normalize())
    return str(value) if not isinstance(value, int) else value


def _ordered(f: Field, values: dict[Any, float]) -> list[tuple[str, float]]:
    blank = values.pop(None, None)
    if f.type == "select":
        options = list(f.ftype.options(f))
        keys = sorted(
            values, key=lambda k: (options.index(k) if k in options else len(options), str(k))
        )
    elif f.type in ("date", "datetime", "integer"):
        keys = sorted(values)
    else:
        keys = sorted(values, key=lambda k: (-values[k], str(k)))
    out = [(str(k), values[k]) for k in keys]
    if len(out) > MAX_GROUPS:
        head = sorted(out, key=lambda kv: -kv[1])[: MAX_GROUPS - 1]
        kept = {k for k, _ in head}
        other = sum(v for k, v in out if k not in kept)
        out = [kv for kv in out if kv[0] in kept] + [("Other", other)]
    if blank is not None:
        out.append(("(blank)", blank))
    return out


# --- drawing -------------------------------------------------------------------------------
def number(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.2f}"


def svg_of(kind: str, data: list[tuple[str, float]]) -> dict[str, Any]:
    """Geometry for the template (numbers only; labels stay text for escaping)."""
    top = max((v for _, v in data), default=0.0) or 1.0
    if kind == "bar":
        row, left, width = 30, 180, 380
        bars = [
            {
                "label": label,
                "value": number(v),
                "y": 10 + i * row,
                "w": max(0.0, round(width * v / top, 1)),
                "color": PALETTE[0],
            }
            for i, (label, v) in enumerate(data)
        ]
        return {
            "width": left + width + 110,
            "height": 20 + row * len(data),
            "left": left,
            "bars": bars,
        }
    if kind == "funnel":
        # a funnel step is the records now at that stage (not those that passed it),
        # so its percentage is its share of all the records in the funnel: at most
        # 100%, together 100% (a share of the first stage read "won · 2 (200%)")
        row, center, width = 40, 320, 440
        steps = []
        total = sum(v for _, v in data if v > 0)
        for i, (label, v) in enumerate(data):
            w = max(2.0, round(width * v / top, 1))
            steps.append(
                {
                    "label": label,
                    "value": number(v),
                    "pct": f"{100 * v / total:.0f}%" if total and v >= 0 else "",
                    "x": round(center - w / 2, 1),
                    "y": 10 + i * row,
                    "w": w,
                    "color": PALETTE[i % len(PALETTE)],
                }
            )
        return {
            "width": 2 * center,
            "height": 20 + row * len(data),
            "steps": steps,
            "center": center,
        }
    if kind == "line":
        w, h, left, bottom, top_m = 640, 300, 60, 70, 20
        n = len(data)
        span = (w - left - 20) / max(1, n - 1)
        pts = []
        for i, (label, v) in enumerate(data):
            x = round(left + (i * span if n > 1 else (w - left) / 2), 1)
            y = round(top_m + (h - top_m - bottom) * (1 - v / top), 1)
            pts.append({"label": label, "value": number(v), "x": x, "y": y})
        ticks = [
            {
                "y": round(top_m + (h - top_m - bottom) * (1 - k / 4), 1),
                "label": number(top * k / 4),
            }
            for k in range(5)
        ]
        return {
            "width": w,
            "height": h,
            "left": left,
            "base": h - bottom,
            "points": pts,
            "path": " ".join(f"{p['x']},{p['y']}" for p in pts),
            "ticks": ticks,
        }
    # pie
    total = sum(v for _, v in data if v > 0)
    cx, cy, r = 140, 140, 130
    slices = []
    angle = -math.pi / 2
    for i, (label, v) in enumerate(data):
        if v <= 0 or total <= 0:
            continue
        frac = v / total
        end = angle + 2 * math.pi * frac
        x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
        x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
        slices.append(
            {
                "label": label,
                "value": number(v),
                "pct": f"{100 * frac:.0f}%",
                "full": frac >= 0.9999,
                "d": f"M{cx},{cy} L{x1:.2f},{y1:.2f} A{r},{r} 0 {1 if frac > 0.5 else 0} 1 "
                f"{x2:.2f},{y2:.2f} Z",
                "color": PALETTE[i % len(PALETTE)],
            }
        )
        angle = end
    return {
        "width": 600,
        "height": max(280, 30 + 22 * len(slices)),
        "cx": cx,
        "cy": cy,
        "r": r,
        "slices": slices,
    }


def render_chart(svc: RecordsService, t: Table, spec: ChartSpec, where: list) -> dict[str, Any]:
    """A chart ready for ``_chart.html``: its data, drawing and any problem."""
    try:
        data, note = chart_data(svc, t, spec, where)
    except CubebaseError as exc:
        if exc.http_status == 404:
            raise
        return {
            "spec": spec,
            "kind": spec.type,
            "title": spec.title(),
            "problem": _problem(exc),
            "data": [],
        }
    return {
        "spec": spec,
        "kind": spec.type,
        "title": spec.title(),
        "data": [(label, number(v)) for label, v in data],
        "svg": svg_of(spec.type, data),
        "note": note,
        "problem": None,
        "empty": not any(v for _, v in data),
        "group_label": spec.by.label,
        "measure_label": "Records"
        if spec.agg == "count"
        else f"{AGGREGATES[spec.agg]} of {spec.of.label}",
    }


# --- pages ---------------------------------------------------------------------------------
def _roles(session) -> list[tuple[str, str]]:
    return [(r.key, r.label) for r in session.scalars(sa.select(Role).order_by(Role.label))]


@bp.get("/t/<table>/chart")
def chart(table: str):
    svc = service()
    t = visible_table(svc, table)
    view = parse_view(svc, t, paging=False)
    spec = parse_spec(svc, t, request.args)
    result = None
    if spec is not None:
        try:
            where = view.where(svc)
        except CubebaseError as exc:
            result = {
                "spec": spec,
                "kind": spec.type,
                "title": spec.title(),
                "problem": _problem(exc),
                "data": [],
            }
        else:
            result = render_chart(svc, t, spec, where)
    return render_template(
        "pages/chart.html",
        mode="chart",
        table=t,
        view=view,
        spec=spec,
        chart=result,
        groups=group_fields(svc, t),
        measures=measure_fields(svc, t),
        types=CHART_TYPES,
        aggregates=AGGREGATES,
        roles=_roles(g.db) if g.actor.is_admin else [],
        form=ChartForm(),
    )


def _save_charts(t: Table, charts: list[dict[str, Any]]) -> None:
    save_table_setting(t, "charts", charts)


@bp.post("/t/<table>/charts")
def save_chart(table: str):
    """Admins: save the chart on screen (with the view's filter) as a report on the
    dashboards of the chosen roles."""
    svc = service()
    t = visible_table(svc, table)
    if not g.actor.is_admin:
        abort(403)
    if not ChartForm().validate_on_submit():
        abort(400)
    spec = parse_spec(svc, t, request.form)
    if spec is None:
        raise BadRequest("This table has no field to group by")
    labels = dict(_roles(g.db))
    roles = [r for r in request.form.getlist("dashboards") if r in labels]
    if not roles:
        flash("Choose at least one role's dashboard.", "error")
        return redirect(url_for("pages.chart", table=t.key, **request.form.to_dict(flat=True)))
    label = (request.form.get("label") or spec.title()).strip()[:200] or spec.title()
    source = request.form.get("filter", "").strip()
    taken = set(g.db.scalars(sa.select(Report.key)))
    base = KEY_RE.sub("_", label.lower()).strip("_")[:40] or "chart"
    if not base[0].isalpha():
        base = f"chart_{base}"[:40]
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    by = spec.by.key + (":month" if spec.by.type in ("date", "datetime") else "")
    measure = "count" if spec.of is None else f"{spec.agg}({spec.of.key})"
    rep = reports.build(
        svc.schema,
        key,
        {
            "label": label,
            "table": t.key,
            "filter": source or None,
            "group_by": [by],
            "measures": [measure],
            "roles": roles,
        },
    )
    reports.save_report(g.db, svc.schema, rep)
    for role in roles:
        board = g.db.scalar(sa.select(Dashboard).where(Dashboard.key == role))
        items = list((board.definition or {}).get("items") or []) if board else []
        items.append({"report": key, "chart": spec.type})
        reports.save_dashboard(
            g.db,
            role,
            board.label if board else labels[role],
            list((board.definition or {}).get("roles") or [role]) if board else [role],
            items,
            app=board.app if board else None,
        )
    g.db.commit()
    flash(f"“{label}” was added to the dashboard of {', '.join(roles)}.", "success")
    return redirect(url_for("pages.dashboard", key=roles[0]))


@bp.post("/t/<table>/charts/<key>/delete")
def delete_chart(table: str, key: str):
    svc = service()
    t = visible_table(svc, table)
    if not g.actor.is_admin:
        abort(403)
    if not ChartForm().validate_on_submit():
        abort(400)
    charts = list(t.config.get("charts") or [])
    kept = [c for c in charts if c.get("key") != key]
    if len(kept) == len(charts):
        raise NotFound("There is no such chart")
    _save_charts(t, kept)
    flash("The chart was removed.", "success")
    from .auth import _safe_next

    return redirect(_safe_next(request.form.get("back")))


def _stored_charts(svc: RecordsService) -> list[tuple[Table, dict[str, Any]]]:
    out = []
    for t in visible_tables(svc):
        for c in (t.config or {}).get("charts") or []:
            if isinstance(c, dict):
                out.append((t, c))
    return out


def legacy_roles(svc: RecordsService) -> dict[str, int]:
    """Role -> how many charts saved before reports existed name it."""
    counts: dict[str, int] = defaultdict(int)
    for _, c in _stored_charts(svc):
        for r in c.get("dashboards") or []:
            if isinstance(r, str):
                counts[r] += 1
    return counts


def legacy_charts(svc: RecordsService, role: str) -> list[dict[str, Any]]:
    """The charts saved before reports existed (``config["charts"]``) on the dashboard
    of ``role``, computed as the viewer."""
    charts = []
    for t, c in _stored_charts(svc):
        if role not in (c.get("dashboards") or []):
            continue
        spec = _spec_of(svc, t, c)
        if spec is None:
            continue
        where = [FormulaFilter(spec.filter)] if spec.filter else []
        item = render_chart(svc, t, spec, where)
        item["table"] = t
        item["key"] = c.get("key")
        item["args"] = {
            "type": spec.type,
            "by": spec.by.key,
            "agg": spec.agg,
            **({"of": spec.of.key} if spec.of is not None else {}),
            **({"filter": spec.filter} if spec.filter else {}),
        }
        charts.append(item)
    return charts


def _spec_of(svc: RecordsService, t: Table, c: dict[str, Any]) -> ChartSpec | None:
    """A saved chart as the viewer may see it: None when its fields are gone or hidden."""
    groups = {f.id: f for f in group_fields(svc, t)}
    measures = {f.id: f for f in measure_fields(svc, t)}
    by = groups.get(c.get("by"))
    if by is None or c.get("type") not in CHART_TYPES or c.get("agg") not in AGGREGATES:
        return None
    of = measures.get(c.get("of")) if c.get("agg") != "count" else None
    if c.get("agg") != "count" and of is None:
        return None
    source = formulas.display(svc.schema, t.key, c.get("filter")) if c.get("filter") else ""
    return ChartSpec(
        c["type"], by, c["agg"], of, label=str(c.get("label") or ""), filter=source or ""
    )
