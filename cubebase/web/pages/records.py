"""Record pages: the form (new and edit) with live formula previews, the record
with its related lists and history, the trash and restore."""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict

from ...platform.errors import ConflictError, Forbidden, LockedError, ValidationError
from ...platform.files import file_store
from ...platform.records import Record, Rights
from ...platform.schema import Field, Table
from . import bp
from .common import (
    LinkLabels,
    column_fields,
    commit,
    display_value,
    may_create,
    readable,
    record_title,
    require_create,
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


@bp.context_processor
def _rights_in_templates() -> dict[str, Any]:
    """``may_create(table)`` for the tabs and the start page (New record, Import)."""
    if g.get("actor") is None:
        return {}
    return {"may_create": lambda table: may_create(service(), table)}


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
        # a field without an input on this form (not writable here) is shown read-only
        editable=lambda f: editable(f) and f.key in form,
        display=display_value,
        **extra,
    )


def _held(svc, t: Table, record_id: int) -> dict[str, str]:
    """Fields a running workflow keeps the user from changing now, with why."""
    from ...workflows.engine import install

    return install(current_app.extensions["cubebase"]).held_fields(svc, t, record_id)


def _edit_refused(t: Table, record: Record, rights: Rights):
    """The edit form of a record the user may not change: back to the record with
    the reason (a lock), or the 403 page (no update rule holds)."""
    if rights.locked:
        flash(f"{record_title(t, record)} is closed and can no longer be changed.", "error")
        return redirect(url_for("pages.record", table=t.key, record_id=record.id))
    raise Forbidden(f"You may not change {record_title(t, record)}.")


@bp.route("/t/<table>/new", methods=["GET", "POST"])
def new_record(table: str):
    svc = service()
    t = visible_table(svc, table)
    require_create(svc, t)
    rights = svc.rights(t.key)
    form, fields = build_form(svc, t, None, _formdata(), writable=rights.writable)
    general: list[str] = []
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        values, problems = form_values(form, fields)
        try:
            record = svc.create(t.key, values)
        except ValidationError as exc:
            problems = {**problems, **_validation_problems(exc)}
        except (ConflictError, Forbidden) as exc:
            # refused as a whole (e.g. a record the user could not see once added):
            # the message above the form, the user's input kept
            general.append(exc.message)
            status = exc.http_status
        else:
            if not problems:
                commit()
                flash(f"{record_title(t, record)} was created.", "success")
                return redirect(url_for("pages.record", table=t.key, record_id=record.id))
        general += _apply_problems(form, problems)
        status = 422 if problems or status == 200 else status
    elif request.method == "POST":
        status = 400
    preview = svc.preview(t.key, {})
    return _render_form(t, form, fields, None, general=general, preview=preview), status


@bp.route("/t/<table>/<int:record_id>/edit", methods=["GET", "POST"])
def edit_record(table: str, record_id: int):
    svc = service()
    t = visible_table(svc, table)
    record = svc.get(t.key, record_id)
    rights = svc.rights(t.key, record.id)
    writable: frozenset[str] | None = rights.writable
    if not rights.update:
        if request.method != "POST":
            return _edit_refused(t, record, rights)
        # closed (or out of reach) since the form was opened: the save below is
        # refused by the records service and the form shows why, with the input kept
        writable = None
    held = _held(svc, t, record.id)
    if writable is not None:
        writable = writable - set(held)
    form, fields = build_form(svc, t, record, _formdata(), writable=writable)
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
        except LockedError as exc:
            # closed meanwhile, or a field a workflow holds: the message above the
            # form, the user's input kept
            general.append(exc.message)
            status = 409
        except ConflictError as exc:
            conflict = _conflict(t, record, int(version) if version.isdigit() else 0)
            form.version.data = str(record.version)
            general.append(exc.message)
            status = 409
        except Forbidden as exc:
            general.append(exc.message)
            status = 403
        else:
            if not problems:
                commit()
                flash(f"{record_title(t, updated)} was saved.", "success")
                return redirect(url_for("pages.record", table=t.key, record_id=record.id))
        general += _apply_problems(form, problems)
        if status == 200:
            status = 422
    elif request.method == "POST":
        status = 400
    preview = svc.preview(t.key, {}, record.id)
    return (
        _render_form(
            t,
            form,
            fields,
            record,
            general=general,
            preview=preview,
            conflict=conflict,
            held=held,
        ),
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
    rights = svc.rights(t.key, rec.id)
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
        can_edit=rights.update,
        can_delete=rights.delete,
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
