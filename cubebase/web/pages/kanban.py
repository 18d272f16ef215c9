"""The kanban board of a table by a select field: a column per option, a card per
record. Moving a card (dragging it, or its Move button without JavaScript) is an
update through the records service; a refused move shows the service's message."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from ...platform.errors import CubebaseError, ValidationError
from ...platform.listing import Condition
from ...platform.records import Page
from . import bp
from .common import (
    LinkLabels,
    column_fields,
    commit,
    display_value,
    record_title,
    select_fields,
    service,
    visible_table,
)
from .views import parse_view

CARDS = 50  # cards listed per column
CAP = 10_000


class MoveForm(FlaskForm):
    pass


@bp.get("/t/<table>/kanban")
def kanban(table: str):
    svc = service()
    t = visible_table(svc, table)
    choices = select_fields(svc, t)
    by = request.args.get("by") or (choices[0].key if choices else None)
    field = next((f for f in choices if f.key == by), None)
    view = parse_view(svc, t, paging=False)
    columns = []
    problem = None
    shown = [
        f for f in column_fields(svc, t) if not f.system and f.key not in (by, t.display_field)
    ][:3]
    links = LinkLabels(svc)
    if field is not None:
        try:
            where = view.where(svc)
            for option in [*field.ftype.options(field), None]:
                cond = (
                    Condition(field.key, "isblank")
                    if option is None
                    else Condition(field.key, "eq", option)
                )
                count = svc.count(t.key, where=[*where, cond], cap=CAP)
                page = (
                    svc.list(t.key, where=[*where, cond], sort=view.sort, limit=CARDS)
                    if count
                    else Page([], None)
                )
                if option is None and not count:
                    continue
                columns.append({"value": option, "count": count, "records": page.records})
        except CubebaseError as exc:
            if exc.http_status == 404:
                raise
            problem = {
                "message": exc.message,
                "details": [d for d in exc.details if isinstance(d, dict) and "excerpt" in d],
            }
        links.load(t, shown, [r for c in columns for r in c["records"]])
    return render_template(
        "pages/kanban.html",
        mode="kanban",
        table=t,
        field=field,
        choices=choices,
        columns=columns,
        shown=shown,
        links=links,
        view=view,
        problem=problem,
        cap=CAP,
        form=MoveForm(),
        title_of=lambda r: record_title(t, r),
        display=display_value,
    )


@bp.post("/t/<table>/<int:record_id>/move")
def move_card(table: str, record_id: int):
    """Set the board's field of one record. JSON for the board's script (``Accept:
    application/json``), a redirect back to the board otherwise."""
    svc = service()
    t = visible_table(svc, table)
    wants_json = request.accept_mimetypes.best == "application/json"
    form = MoveForm()
    by = request.form.get("field", "")
    value = request.form.get("value", "")
    version = request.form.get("version", "")
    field = next((f for f in select_fields(svc, t) if f.key == by), None)
    error = None
    status = 200
    rec = None
    if not form.validate_on_submit():
        error, status = "The page expired; reload it and try again.", 400
    elif field is None or not field.writable:
        error, status = f"`{by}` is not a field the board can change.", 400
    else:
        try:
            rec = svc.update(
                t.key,
                record_id,
                {field.key: value or None},
                version=int(version) if version.isdigit() else None,
            )
        except ValidationError as exc:
            error, status = "; ".join(p.message for p in exc.problems), 422
        except CubebaseError as exc:
            if exc.http_status == 404:
                raise
            error, status = exc.message, exc.http_status
        else:
            commit()
    if wants_json:
        if error:
            return jsonify({"ok": False, "message": error}), status
        return jsonify({"ok": True, "version": rec.version, "title": record_title(t, rec)})
    if error:
        flash(error, "error")
    else:
        flash(f"{record_title(t, rec)} moved to {value or '(blank)'}.", "success")
    return redirect(url_for("pages.kanban", table=t.key, by=by))
