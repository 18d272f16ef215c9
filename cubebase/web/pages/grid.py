"""The grid view of a table, and the export of the view to CSV and XLSX."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Response, render_template, request

from ...platform.errors import BadRequest, CubebaseError
from ...platform.formulas import InvalidFormula
from ...platform.listing import Condition
from ...platform.records import MAX_PAGE, Page
from . import bp
from .bulk_change import changeable_fields
from .common import (
    LinkLabels,
    column_fields,
    display_value,
    select_fields,
    service,
    table_rows,
    visible_table,
)
from .saved_views import SaveViewForm, saved_views
from .views import ViewState, parse_view

PAGE_SIZE = 50
GROUP_ROWS = 20  # rows shown under each group heading
GROUP_CAP = 10_000  # counts stop here ("more than 10,000")
EXPORT_MAX_ROWS = 100_000
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


def _problem(exc: CubebaseError) -> dict[str, Any]:
    """An error of the view's filter or sort, with the formula's caret excerpts."""
    return {
        "message": exc.message,
        "details": [d for d in exc.details if isinstance(d, dict) and "excerpt" in d]
        if isinstance(exc, InvalidFormula) or exc.code == "formula_error"
        else [],
    }


@bp.get("/t/<table>")
def grid(table: str):
    svc = service()
    t = visible_table(svc, table)
    view = parse_view(svc, t)
    problem = None
    page = Page([], None)
    groups: list[dict[str, Any]] = []
    total = None
    fields = [f.key for f in view.columns]
    try:
        where = view.where(svc)
        if view.group:
            gf = t.fields[view.group]
            for option in [*gf.ftype.options(gf), None]:
                cond = (
                    Condition(gf.key, "isblank")
                    if option is None
                    else Condition(gf.key, "eq", option)
                )
                n = svc.count(t.key, where=[*where, cond], cap=GROUP_CAP)
                if n == 0:
                    continue
                rows = svc.list(
                    t.key, where=[*where, cond], sort=view.sort, limit=GROUP_ROWS, fields=fields
                )
                groups.append({"value": option, "count": n, "records": rows.records})
        else:
            page = svc.list(
                t.key,
                where=where,
                sort=view.sort,
                limit=PAGE_SIZE,
                cursor=view.cursor,
                fields=fields,
            )
            total = svc.count(t.key, where=where, cap=GROUP_CAP)
    except CubebaseError as exc:
        if exc.http_status == 404:
            raise
        problem = _problem(exc)
    links = LinkLabels(svc)
    shown = page.records + [r for gr in groups for r in gr["records"]]
    links.load(t, view.columns, shown)
    prev_args = None
    if view.cursor:
        back = view.trail[-1] if view.trail else ""
        prev_args = view.query(cursor=back or None, back=view.trail[:-1])
    next_args = (
        view.query(cursor=page.next_cursor, back=[*view.trail, view.cursor or ""])
        if page.next_cursor
        else None
    )
    return render_template(
        "pages/grid.html",
        mode="grid",
        table=t,
        view=view,
        page=page,
        groups=groups,
        total=total,
        cap=GROUP_CAP,
        links=links,
        problem=problem,
        prev_args=prev_args,
        next_args=next_args,
        all_columns=column_fields(svc, t),
        group_fields=select_fields(svc, t),
        rows=lambda records: table_rows(view.columns, records, links),
        saved=saved_views(t),
        save_form=SaveViewForm(formdata=None, state=view.query()),
        change_fields=changeable_fields(svc, t),
    )


# --- export -------------------------------------------------------------------------
def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text beginning with = + - @ (or a tab or a
    carriage return) gets a leading apostrophe, so it stays text."""
    if isinstance(value, str) and value.startswith(DANGEROUS_START):
        return "'" + value
    return value


def _export_rows(view: ViewState, svc) -> tuple[list[str], list[list[Any]]]:
    t = view.table
    fields = [f.key for f in view.columns]
    where = view.where(svc)
    header = [f.label for f in view.columns]
    rows: list[list[Any]] = []
    cursor = None
    while len(rows) < EXPORT_MAX_ROWS:
        page = svc.list(
            t.key,
            where=where,
            sort=view.sort,
            limit=min(MAX_PAGE, EXPORT_MAX_ROWS - len(rows)),
            cursor=cursor,
            fields=fields,
        )
        links = LinkLabels(svc)
        links.load(t, view.columns, page.records)
        for r in page.records:
            rows.append([_export_value(f, r.values.get(f.key), links) for f in view.columns])
        cursor = page.next_cursor
        if cursor is None:
            break
    return header, rows


def _export_value(f, value: Any, links: LinkLabels) -> Any:
    """Numbers stay numbers (a spreadsheet can sum them); everything else is text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return display_value(f, value)
    if isinstance(value, int | Decimal) and f.link_kind is None and f.type != "autonumber":
        return value
    return display_value(f, value, links)


def _filename(view: ViewState, ext: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return f"{view.table.key}-{stamp}.{ext}"


@bp.get("/t/<table>/export.<fmt>")
def export(table: str, fmt: str):
    svc = service()
    t = visible_table(svc, table)
    if fmt not in ("csv", "xlsx"):
        raise BadRequest("Export as csv or xlsx")
    view = parse_view(svc, t, paging=False)
    if request.args.get("group"):
        view.group = None
    header, rows = _export_rows(view, svc)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([safe_cell(h) for h in header])
        for row in rows:
            writer.writerow(["" if v is None else safe_cell(str(v)) for v in row])
        data = "\ufeff" + out.getvalue()  # a BOM: Excel then reads UTF-8
        mimetype = "text/csv; charset=utf-8"
        body: Any = data.encode("utf-8")
    else:
        body = _xlsx(t.label, header, rows)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(view, fmt)}"',
            "Cache-Control": "no-store",
        },
    )


def _xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    wb = Workbook(write_only=False)
    ws = wb.active
    ws.title = "".join(c for c in title if c not in "[]:*?/\\")[:31] or "Export"
    ws.append([safe_cell(h) for h in header])
    for row in rows:
        ws.append([safe_cell(v) if isinstance(v, str) else v for v in row])
    for cells in ws.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = TYPE_STRING  # never a formula, whatever it begins with
    for cell in ws[1]:
        cell.font = Font(bold=True)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
