"""Record pages: the form (new and edit) with live formula previews, the record
with its related lists and history, the trash and restore."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict

from ...platform.errors import ConflictError, ValidationError
from ...platform.files import file_store
from ...platform.records import Record
from ...platform.schema import Field, Table
from . import bp
from .common import (
    LinkLabels,
    column_fields,
    commit,
    display_value,
    readable,
    record_title,
    service,
    visible_fields,
    visible_table,
)
from .forms import build_form, editable, form_values, link_choices, raw_values

TRASH_PAGE = 100


class ActionForm(FlaskForm):
    """A button that posts (delete, restore): only its CSRF token."""


def _apply_problems(form, problems: dict[str, str]) -> list[str]:
    """Put each problem beside its field; the ones for no field of the form are returned."""
    general = []
    for key, message in problems.items():
        if key and key in form:
            form[key].errors = [*list(form[key].errors or []), message]
        else:
            general.append(message if not key else f"{key}: {message}")
    return general


def _validation_problems(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in exc.problems:
        key = p.field or ""
        out[key] = f"{out[key]}; {p.message}" if key in out else p.message
    return out


def _render_form(t: Table, form, fields, record: Record | None, **extra: Any):
    svc = service()
    links = LinkLabels(svc)
    if record is not None:
        links.load(t, fields, [record])
    return render_template(
        "pages/record_form.html",
        table=t,
        form=form,
        fields=fields,
        record=record,
        links=links,
        editable=editable,
        display=display_value,
        **extra,
    )


@bp.route("/t/<table>/new", methods=["GET", "POST"])
def new_record(table: str):
    svc = service()
    t = visible_table(svc, table)
    form, fields = build_form(svc, t, None, _formdata())
    general: list[str] = []
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        values, problems = form_values(form, fields)
        try:
            record = svc.create(t.key, values)
        except ValidationError as exc:
            problems = {**problems, **_validation_problems(exc)}
        else:
            if not problems:
                commit()
                flash(f"{record_title(t, record)} was created.", "success")
                return redirect(url_for("pages.record", table=t.key, record_id=record.id))
        general = _apply_problems(form, problems)
        status = 422
    elif request.method == "POST":
        status = 400
    preview = svc.preview(t.key, {})
    return _render_form(t, form, fields, None, general=general, preview=preview), status


@bp.route("/t/<table>/<int:record_id>/edit", methods=["GET", "POST"])
def edit_record(table: str, record_id: int):
    svc = service()
    t = visible_table(svc, table)
    record = svc.get(t.key, record_id)
    form, fields = build_form(svc, t, record, _formdata())
    general: list[str] = []
    conflict = None
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        values, problems = form_values(form, fields)
        version = form.version.data or ""
        try:
            updated = svc.update(
                t.key, record.id, values, version=int(version) if version.isdigit() else None
            )
        except ValidationError as exc:
            problems = {**problems, **_validation_problems(exc)}
        except ConflictError as exc:
            if exc.code != "conflict":
                raise
            conflict = _conflict(t, record, int(version) if version.isdigit() else 0)
            form.version.data = str(record.version)
            general.append(exc.message)
        else:
            if not problems:
                commit()
                flash(f"{record_title(t, updated)} was saved.", "success")
                return redirect(url_for("pages.record", table=t.key, record_id=record.id))
        general += _apply_problems(form, problems)
        status = 409 if conflict else 422
    elif request.method == "POST":
        status = 400
    preview = svc.preview(t.key, {}, record.id)
    return (
        _render_form(t, form, fields, record, general=general, preview=preview, conflict=conflict),
        status,
    )


def _conflict(t: Table, current: Record, seen_version: int) -> list[dict[str, Any]]:
    """What others changed since the version the user started from, field by field."""
    svc = service()
    changes = []
    for entry in svc.history(t.key, current.id):
        if entry["version"] <= seen_version:
            continue
        for c in entry["changes"]:
            f = t.fields.get(c["field"]) if c["field"] else None
            changes.append(
                {
                    "version": entry["version"],
                    "at": entry["at"],
                    "by": entry["by"],
                    "field": f.label if f else "(a deleted field)",
                    "old": _history_text(f, c["old"]),
                    "new": _history_text(f, c["new"]),
                }
            )
    return changes


def _history_text(f: Field | None, value: Any) -> str:
    if value is None or value == [] or value == "":
        return ""
    if f is not None and f.type == "boolean":
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@bp.post("/t/<table>/preview")
def preview(table: str):
    """The formula fields of the form as typed (the interpreter; nothing is written)."""
    svc = service()
    t = visible_table(svc, table)
    rid = request.args.get("id")
    record = svc.get(t.key, rid) if rid else None
    fields = [f for f in visible_fields(svc, t) if f.link_kind not in ("reverse", "reverse_many")]
    values = raw_values(t, fields, request.form)
    result = svc.preview(t.key, values, record.id if record else None)
    return render_template("pages/_preview.html", table=t, preview=result, fields=fields, oob=True)


@bp.get("/t/<table>/link-options/<field>")
def link_options(table: str, field: str):
    """The options of a link picker matching what the user typed (htmx)."""
    svc = service()
    t = visible_table(svc, table)
    f = t.fields.get(field)
    if f is None or f.link_kind not in ("one", "many") or f not in visible_fields(svc, t):
        abort(404)
    given = request.args.getlist(f.key) + request.args.getlist("selected")
    selected = [int(v) for v in given if v.isdigit() and len(v) < 19][:50]
    search = request.args.get("__search", "")[:200].strip()
    choices = link_choices(svc, f, selected, search) or []
    return render_template(
        "pages/_options.html",
        choices=choices,
        selected={str(i) for i in selected},
        blank=f.link_kind == "one",
    )


@bp.get("/t/<table>/<int:record_id>")
def record(table: str, record_id: int):
    svc = service()
    t = visible_table(svc, table)
    rec = svc.get(t.key, record_id)
    tab = request.args.get("tab", "details")
    fields = [
        f
        for f in visible_fields(svc, t)
        if f.key not in rec.withheld and f.link_kind not in ("reverse", "reverse_many")
    ]
    links = LinkLabels(svc)
    links.load(t, fields, [rec])
    related = []
    history = []
    if tab == "history":
        history = _history(t, rec)
    else:
        for f in visible_fields(svc, t):
            if f.link_kind not in ("reverse", "many", "reverse_many") or f.key in rec.withheld:
                continue
            target = svc.table(f.target_key)
            if not readable(svc, target):
                continue
            rows = svc.related(t.key, rec.id, f.key)
            cols = [c for c in column_fields(svc, target) if not c.system][:5]
            rlinks = LinkLabels(svc)
            rlinks.load(target, cols, rows)
            related.append(
                {"field": f, "table": target, "records": rows, "columns": cols, "links": rlinks}
            )
    can_edit = not svc.access.locked(t, {"id": rec.id, **rec.values}) and (
        svc.access.unlimited or svc.access.allows(t, "update", {"id": rec.id, **rec.values})
    )
    return render_template(
        "pages/record.html",
        table=t,
        record=rec,
        title=record_title(t, rec),
        fields=fields,
        links=links,
        related=related,
        history=history,
        tab=tab,
        can_edit=can_edit,
        action_form=ActionForm(),
        display=display_value,
    )


def _history(t: Table, rec: Record) -> list[dict[str, Any]]:
    svc = service()
    users: dict[int, str] = {}
    entries = svc.history(t.key, rec.id)
    ids = {e["by"] for e in entries if e["by"]}
    if ids and svc.schema.has_table("users"):
        labels = LinkLabels(svc)
        labels.fetch("users", ids)
        users = {i: labels.name("users", i) or f"user #{i}" for i in ids}
    out = []
    for e in reversed(entries):
        out.append(
            {
                "version": e["version"],
                "action": e["action"],
                "at": e["at"].replace("T", " ")[:16],
                "by": users.get(e["by"], f"user #{e['by']}") if e["by"] else "system",
                "note": e["note"],
                "changes": [
                    {
                        "field": (t.fields[c["field"]].label if c["field"] in t.fields else "?"),
                        "old": _history_text(t.fields.get(c["field"] or ""), c["old"]),
                        "new": _history_text(t.fields.get(c["field"] or ""), c["new"]),
                    }
                    for c in e["changes"]
                ],
            }
        )
    return out


@bp.post("/t/<table>/<int:record_id>/delete")
def delete_record(table: str, record_id: int):
    svc = service()
    t = visible_table(svc, table)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    rec = svc.get(t.key, record_id)
    svc.delete(t.key, rec.id)
    commit()
    flash(f"{record_title(t, rec)} was moved to the trash.", "success")
    return redirect(url_for("pages.grid", table=t.key))


@bp.get("/t/<table>/trash")
def trash(table: str):
    svc = service()
    t = visible_table(svc, table)
    cols = [c for c in column_fields(svc, t) if not c.system][:5]
    page = svc.list(
        t.key,
        trashed=True,
        limit=TRASH_PAGE,
        fields=[c.key for c in cols],
        cursor=request.args.get("cursor") or None,
    )
    links = LinkLabels(svc)
    links.load(t, cols, page.records)
    return render_template(
        "pages/trash.html",
        mode="trash",
        table=t,
        page=page,
        columns=cols,
        links=links,
        action_form=ActionForm(),
        display=display_value,
    )


@bp.post("/t/<table>/<int:record_id>/restore")
def restore_record(table: str, record_id: int):
    svc = service()
    t = visible_table(svc, table)
    if not ActionForm().validate_on_submit():
        abort(400)
    svc.restore(t.key, record_id)
    commit()
    rec = svc.get(t.key, record_id)
    flash(f"{record_title(t, rec)} was restored.", "success")
    return redirect(url_for("pages.record", table=t.key, record_id=record_id))


def _formdata():
    """A posted form with its uploaded files (file fields), or None for a GET."""
    if request.method != "POST":
        return None
    return CombinedMultiDict((request.files, request.form))


@bp.get("/t/<table>/<int:record_id>/files/<field>")
def download_file(table: str, record_id: int, field: str):
    """A file field's file, for whoever may read the record and the field (404
    otherwise); always as an attachment, so an uploaded page never runs here."""
    svc = service()
    t = visible_table(svc, table)
    rec = svc.get(t.key, record_id)
    f = t.fields.get(field)
    value = rec.values.get(field) if f is not None and f.type == "file" else None
    if not value:
        abort(404)
    path = file_store(current_app.extensions["cubebase"]).path(value["key"])
    return send_file(
        path,
        mimetype=value.get("content_type") or "application/octet-stream",
        as_attachment=True,
        download_name=value.get("name") or "file",
    )
