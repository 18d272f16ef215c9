"""Reports and dashboards pages: ``/reports`` (the reports the viewer finds: their
roles, admins every one), ``/reports/KEY`` (the table, a chart when the report has a
group, CSV and XLSX downloads), ``/dashboards`` and ``/dashboards/KEY`` (the tiles,
each report computed as the viewer). A report that cannot run for the viewer (a field
hidden from them, a field deleted since) shows why instead of its numbers; nothing
here answers with a 500 (docs/reports.md)."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for

from ...platform import reports as R
from ...platform.errors import CubebaseError, NotFound
from ...platform.models import Dashboard
from . import bp
from .charts import CHART_TYPES, ChartForm, legacy_charts, legacy_roles, report_chart
from .common import commit, service
from .grid import _problem

TABLE_ROWS = 20  # rows of a table tile (the report's page shows them all)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _chart_kind(report: R.ReportDef) -> str:
    if report.group_by and report.group_by[0].grain is not None:
        return "line"
    return "bar"


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
    result = chart = problem = None
    try:
        result = R.run_report(svc, rep)
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
    )


@bp.get("/reports/<key>/export.<fmt>")
def report_export(key: str, fmt: str):
    svc = service()
    if fmt not in ("csv", "xlsx"):
        raise NotFound("Download a report as csv or xlsx")
    rep = R.get_report(svc, key)
    result = R.run_report(svc, rep)
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
