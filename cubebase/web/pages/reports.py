"""Reports and dashboards pages: ``/reports`` (the reports the viewer finds: their
roles, admins every one), ``/reports/KEY`` (the table, a chart when the report has a
group, CSV and XLSX downloads), ``/dashboards`` and ``/dashboards/KEY`` (the tiles,
each report computed as the viewer). A report that cannot run for the viewer (a field
hidden from them, a field deleted since) shows why instead of its numbers; nothing
here answers with a 500 (docs/reports.md)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for

from ...platform import reports as R
from ...platform.errors import CubebaseError, NotFound
from ...platform.models import Dashboard
from . import bp
from .charts import (
    CHART_TYPES,
    PALETTE,
    ChartForm,
    legacy_charts,
    legacy_roles,
    number,
    svg_of,
)
from .common import commit, service
from .grid import _problem

TABLE_ROWS = 20  # rows of a table tile (the report's page shows them all)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SERIES = 10  # lines of a two-group report's line chart


def _chart_kind(report: R.ReportDef) -> str:
    if report.group_by and report.group_by[0].grain is not None:
        return "line"
    return "bar"


def report_chart(result: Any, kind: str, title: str) -> dict[str, Any]:
    """A report's result (``platform.reports.ReportResult``) for ``_chart.html``: one
    bar, point, slice or step per row, labelled by its groups ("2026-03 · won" with
    two), sized by the first measure; without a group, one per measure."""
    n = result.groups
    data: list[tuple[str, float]] = []
    if n == 2 and kind == "line" and result.rows:
        return _series_chart(result, title)
    if n:
        for texts, values in zip(result.rows, result.values, strict=True):
            v = values[n] if len(values) > n else None
            data.append((" · ".join(texts[:n]), float(v) if v is not None else 0.0))
        group_label = " · ".join(result.headers[:n])
        measure_label = result.headers[n] if len(result.headers) > n else ""
    else:
        values = result.values[0] if result.values else []
        data = [(h, float(v or 0)) for h, v in zip(result.headers, values, strict=False)]
        group_label, measure_label = "Measure", "Value"
    return {
        "kind": kind,
        "title": title,
        "data": [(label, number(v)) for label, v in data],
        "svg": svg_of(kind, data),
        "note": result.note,
        "problem": None,
        "empty": not any(v for _, v in data),
        "group_label": group_label,
        "measure_label": measure_label,
    }


def _series_chart(result: Any, title: str) -> dict[str, Any]:
    """Two groups as a line chart: the date group (or the first) along the axis, one
    line per value of the other (the ``MAX_SERIES`` largest; the rest are left out and
    the chart says so)."""
    grains = [g.grain for g in result.report.group_by]
    x, other = (1, 0) if grains[1] is not None and grains[0] is None else (0, 1)
    categories: list[str] = []
    totals: dict[str, float] = defaultdict(float)
    cells: dict[tuple[str, str], float] = {}
    for texts, values in zip(result.rows, result.values, strict=True):
        v = values[2] if len(values) > 2 and values[2] is not None else 0
        if texts[x] not in categories:
            categories.append(texts[x])
        cells[(texts[x], texts[other])] = cells.get((texts[x], texts[other]), 0.0) + float(v)
        totals[texts[other]] += float(v)
    if grains[x] is not None:
        categories.sort(key=lambda c: (c == "(blank)", c))  # ISO labels: time order
    names = sorted(totals, key=lambda k: -totals[k])[:MAX_SERIES]
    note = result.note
    if len(totals) > MAX_SERIES:
        note = f"The {MAX_SERIES} largest of {len(totals)} lines are drawn; the table has all."
    top = max((abs(v) for v in cells.values()), default=0.0) or 1.0
    w, h, left, bottom, top_m = 640, 300, 60, 70, 20
    span = (w - left - 20) / max(1, len(categories) - 1)
    xs = [
        round(left + (i * span if len(categories) > 1 else (w - left) / 2), 1)
        for i in range(len(categories))
    ]
    series = []
    for i, name in enumerate(names):
        pts = []
        for c, px in zip(categories, xs, strict=True):
            v = cells.get((c, name), 0.0)
            py = round(top_m + (h - top_m - bottom) * (1 - v / top), 1)
            pts.append({"label": f"{c} · {name}", "value": number(v), "x": px, "y": py})
        series.append(
            {
                "label": name,
                "color": PALETTE[i % len(PALETTE)],
                "points": pts,
                "path": " ".join(f"{p['x']},{p['y']}" for p in pts),
                "ly": h + 8 + 18 * i,
            }
        )
    svg = {
        "width": w,
        "height": h + 14 + 18 * len(series),
        "left": left,
        "base": h - bottom,
        "xlabels": [{"label": c, "x": px} for c, px in zip(categories, xs, strict=True)],
        "series": series,
        "ticks": [
            {
                "y": round(top_m + (h - top_m - bottom) * (1 - k / 4), 1),
                "label": number(top * k / 4),
            }
            for k in range(5)
        ],
    }
    heads = result.headers
    return {
        "kind": "line",
        "title": title,
        "data": [
            (" · ".join(t[:2]), number(float(v[2]) if len(v) > 2 and v[2] is not None else 0.0))
            for t, v in zip(result.rows, result.values, strict=True)
        ],
        "svg": svg,
        "note": note,
        "problem": None,
        "empty": not cells,
        "group_label": f"{heads[0]} · {heads[1]}",
        "measure_label": heads[2] if len(heads) > 2 else "",
    }


@bp.get("/reports")
def reports_list():
    svc = service()
    shown = []
    for row in R.visible_reports(svc):
        table = svc.schema.by_id.get(row.table_id)
        shown.append({"key": row.key, "label": row.label, "table": table.label if table else ""})
    return render_template("pages/reports.html", reports=shown)


@bp.get("/reports/<key>")
def report(key: str):
    svc = service()
    rep = R.get_report(svc, key)
    kind = request.args.get("chart", "")
    if kind not in CHART_TYPES:
        kind = _chart_kind(rep)
    narrow = request.args.get("filter", "").strip()
    result = chart = problem = None
    try:
        result = R.run_report(svc, rep, narrow=narrow)
    except CubebaseError as exc:
        if exc.http_status == 404:
            raise
        problem = _problem(exc)
    if result is not None and rep.group_by:
        chart = report_chart(result, kind, rep.label)
    return render_template(
        "pages/report.html",
        report=rep,
        result=result,
        chart=chart,
        problem=problem,
        kinds=CHART_TYPES,
        kind=kind,
        narrow=narrow,
    )


@bp.get("/reports/<key>/export.<fmt>")
def report_export(key: str, fmt: str):
    svc = service()
    if fmt not in ("csv", "xlsx"):
        raise NotFound("Download a report as csv or xlsx")
    rep = R.get_report(svc, key)
    result = R.run_report(svc, rep, narrow=request.args.get("filter"))
    if fmt == "csv":
        body: Any = ("\ufeff" + result.to_csv()).encode("utf-8")  # a BOM: Excel reads UTF-8
        mimetype = "text/csv; charset=utf-8"
    else:
        body, mimetype = result.to_xlsx(), XLSX
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{rep.key}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/dashboards")
def dashboards():
    svc = service()
    shown = [
        {"key": d.key, "label": d.label, "n": len((d.definition or {}).get("items") or [])}
        for d in R.visible_dashboards(svc)
    ]
    keys = {d["key"] for d in shown}
    mine = set(g.actor.roles)
    for role, n in sorted(legacy_roles(svc).items()):  # charts saved before reports
        if role not in keys and (g.actor.is_admin or role in mine):
            shown.append({"key": role, "label": role.replace("_", " ").title(), "n": n})
    if len(shown) == 1 and not g.actor.is_admin:
        return redirect(url_for("pages.dashboard", key=shown[0]["key"]))
    return render_template("pages/dashboards.html", dashboards=shown)


@bp.get("/dashboards/<key>")
def dashboard(key: str):
    svc = service()
    board = None
    try:
        board = R.get_dashboard(svc, key)
    except NotFound:
        if not (g.actor.is_admin or key in g.actor.roles) or key not in legacy_roles(svc):
            raise
    tiles = [_tile(svc, i, item) for i, item in enumerate(_items(board))]
    return render_template(
        "pages/dashboard.html",
        key=key,
        label=board.label if board else key.replace("_", " ").title(),
        tiles=tiles,
        charts=legacy_charts(svc, key),
        form=ChartForm(),
        is_admin=g.actor.is_admin,
    )


def _items(board: Dashboard | None) -> list[dict[str, Any]]:
    if board is None:
        return []
    return [i for i in (board.definition or {}).get("items") or [] if isinstance(i, dict)]


def _tile(svc, index: int, item: dict[str, Any]) -> dict[str, Any]:
    """One tile, computed as the viewer: the report is shown whatever its `roles` (they
    only list it in the Reports menu); its data is the viewer's."""
    key = str(item.get("report") or "")
    kind = item.get("chart") if item.get("chart") in R.CHARTS else "table"
    tile: dict[str, Any] = {"index": index, "key": key, "kind": kind, "title": key}
    try:
        rep = R.find_report(svc, key)
        tile["title"] = str(item.get("label") or rep.label)
        tile["report"] = rep
        limit = TABLE_ROWS if kind == "table" else None
        result = R.run_report(svc, rep, limit=limit)
    except CubebaseError as exc:
        tile["problem"] = _problem(exc)
        return tile
    tile["result"] = result
    if kind in ("bar", "line", "pie", "funnel"):
        tile["chart"] = report_chart(result, kind, tile["title"])
    elif kind == "number":
        n = result.groups
        first = result.rows[0] if result.rows else []
        tile["number"] = first[n] if len(first) > n else "0"
        tile["measure"] = result.headers[n] if len(result.headers) > n else ""
        tile["group"] = " · ".join(first[:n]) if n and first else ""
    return tile


@bp.post("/dashboards/<key>/items/<int:index>/delete")
def delete_dashboard_item(key: str, index: int):
    """Admins: take a tile off a dashboard (its report stays)."""
    svc = service()
    if not g.actor.is_admin:
        abort(403)
    if not ChartForm().validate_on_submit():
        abort(400)
    board = R.get_dashboard(svc, key)
    items = _items(board)
    if not 0 <= index < len(items):
        raise NotFound("There is no such item")
    del items[index]
    roles = list((board.definition or {}).get("roles") or [])
    R.save_dashboard(g.db, board.key, board.label, roles, items, app=board.app)
    commit()
    flash("The item was removed from the dashboard.", "success")
    return redirect(url_for("pages.dashboard", key=key))
