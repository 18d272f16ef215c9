"""The calendar view of a table by a date (or date-time) field: a month grid with
each day's records as links, read through the records service with the view's
filter, search and conditions."""

from __future__ import annotations

import calendar as cal
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import render_template, request

from ...platform.errors import CubebaseError
from ...platform.listing import Condition
from ...platform.records import MAX_PAGE
from . import bp
from .common import column_fields, record_title, service, visible_table
from .grid import _problem
from .views import parse_view

MONTH_CAP = 2000  # records read for one month
PER_DAY = 6  # records listed in a day's cell before "n more"


def date_fields(svc, t):
    return [f for f in column_fields(svc, t) if f.type in ("date", "datetime") and f.column_name]


def _month(raw: str | None) -> date:
    try:
        y, m = (raw or "").split("-")
        return date(int(y), int(m), 1)
    except ValueError:
        return date.today().replace(day=1)


@bp.get("/t/<table>/calendar")
def calendar(table: str):
    svc = service()
    t = visible_table(svc, table)
    choices = date_fields(svc, t)
    by = request.args.get("by") or (choices[0].key if choices else None)
    field = next((f for f in choices if f.key == by), None)
    view = parse_view(svc, t, paging=False)
    first = _month(request.args.get("month"))
    last = (first + timedelta(days=32)).replace(day=1)
    days: dict[date, list[dict[str, Any]]] = {}
    problem = None
    more = False
    if field is not None:
        if field.type == "datetime":
            lo: Any = datetime.combine(first, time(0), field.timezone).isoformat()
            hi: Any = datetime.combine(last, time(0), field.timezone).isoformat()
        else:
            lo, hi = first.isoformat(), last.isoformat()
        try:
            where = [
                *view.where(svc),
                Condition(field.key, "ge", lo),
                Condition(field.key, "lt", hi),
            ]
            fields = [field.key] + ([t.display_field] if t.display_field else [])
            cursor = None
            seen = 0
            while True:
                page = svc.list(
                    t.key, where=where, sort=field.key, limit=MAX_PAGE, cursor=cursor, fields=fields
                )
                for r in page.records:
                    v = r.values.get(field.key)
                    if v is None:
                        continue
                    day = v.astimezone(field.timezone).date() if isinstance(v, datetime) else v
                    days.setdefault(day, []).append(
                        {
                            "id": r.id,
                            "title": record_title(t, r),
                            "time": v.astimezone(field.timezone).strftime("%H:%M")
                            if isinstance(v, datetime)
                            else "",
                        }
                    )
                seen += len(page.records)
                cursor = page.next_cursor
                if cursor is None:
                    break
                if seen >= MONTH_CAP:
                    more = True
                    break
        except CubebaseError as exc:
            if exc.http_status == 404:
                raise
            problem = _problem(exc)
    weeks = cal.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    prev_month = (first - timedelta(days=1)).replace(day=1)
    return render_template(
        "pages/calendar.html",
        mode="calendar",
        table=t,
        field=field,
        choices=choices,
        view=view,
        month=first,
        weeks=weeks,
        days=days,
        per_day=PER_DAY,
        problem=problem,
        more=more,
        cap=MONTH_CAP,
        today=date.today(),
        prev_month=prev_month.strftime("%Y-%m"),
        next_month=last.strftime("%Y-%m"),
        weekdays=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    )
