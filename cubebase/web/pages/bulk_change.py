"""Change these records: set one field to one value on every record of the grid's
current view (filter, conditions, search; not only the page shown), after a
confirmation, in one transaction through the records service as the user: every
record changes, or none (the first refusal is shown with the record it names)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from ...platform.errors import CubebaseError, Forbidden, ValidationError
from ...platform.records import Record, RecordsService
from ...platform.schema import Field, Table
from . import bp
from .common import (
    LinkLabels,
    column_fields,
    commit,
    display_value,
    record_title,
    service,
    visible_table,
)
from .forms import build_form, editable, form_values
from .views import ViewState, parse_view

BULK_CAP = 5_000  # records one change may touch
HIDDEN_SKIP = frozenset({"csrf_token", "confirm", "version"})


def changeable_fields(svc: RecordsService, t: Table) -> list[Field]:
    """Fields a bulk change offers: visible, written by users (no formulas, system
    fields, files or reverse links), or [] when no role of the user may change the
    table's records. Field write rules are decided per record on save."""
    if not svc.rights(t.key).update_some:
        return []
    return [
        f
        for f in column_fields(svc, t)
        if editable(f)
        and not f.system
        and f.type != "file"
        and f.link_kind not in ("reverse", "reverse_many")
    ]


def matching(svc: RecordsService, view: ViewState, fields: list[str]) -> list[Record]:
    """Every record of the view (up to BULK_CAP + 1: more means too many)."""
    records = svc.iter_records(
        view.table.key, where=view.where(svc), sort="id", fields=fields, limit=BULK_CAP + 1
    )
    return list(records)


def _how_many(t: Table, n: int) -> str:
    return "1 record" if n == 1 else f"{n:,} {t.label.lower()}"


def _shown(svc: RecordsService, f: Field, value: Any) -> str:
    links = LinkLabels(svc)
    if f.link_kind in ("one", "many") and value:
        links.fetch(f.target_key, value if isinstance(value, list) else [value])
    return display_value(f, value, links) or "(blank)"


@bp.route("/t/<table>/change", methods=["GET", "POST"])
def bulk_change(table: str):
    svc = service()
    t = visible_table(svc, table)
    offered = {f.key: f for f in changeable_fields(svc, t)}
    if not offered:
        raise Forbidden(f"You may not change records of {t.label}")
    view = parse_view(svc, t, paging=False)
    key = (request.form.get("field") or request.args.get("field") or "").strip()
    f = offered.get(key)
    if f is None:
        flash("Choose a field to change.", "error")
        return redirect(url_for("pages.grid", table=t.key) + "?" + view.query())
    formdata = request.form if request.method == "POST" else None
    form, fields = build_form(svc, t, None, formdata, writable=frozenset({f.key}))
    ctx: dict[str, Any] = {"table": t, "view": view, "field": f, "form": form, "general": []}
    status = 200
    shown_fields = [f.key] + ([t.display_field] if t.display_field else [])
    try:
        records = matching(svc, view, [k for k in shown_fields if k in t.fields])
    except CubebaseError as exc:
        if exc.http_status == 404:
            raise
        ctx["general"].append(f"The view's filter cannot be used: {exc.message}")
        return render_template("pages/bulk_change.html", **ctx, count=None), 400
    ctx["count"] = len(records)
    ctx["cap"] = BULK_CAP
    if len(records) > BULK_CAP:
        ctx["general"].append(
            f"This view matches more than {BULK_CAP:,} records: narrow its filter to change "
            f"at most {BULK_CAP:,} at once."
        )
        return render_template("pages/bulk_change.html", **ctx), 400
    ctx["how_many"] = _how_many(t, len(records))
    if request.method == "POST":
        if not form.validate_on_submit():
            ctx["general"].append("The form expired; try again.")
            return render_template("pages/bulk_change.html", **ctx), 400
        values, problems = form_values(form, fields)
        if problems:
            ctx["general"] += [f"{f.label}: {m}" for m in problems.values()]
            return render_template("pages/bulk_change.html", **ctx), 422
        value = values.get(f.key)
        shown = _shown(svc, f, value)
        if request.form.get("confirm") != "1":
            ctx["confirm"] = {
                "question": f"Set {f.label} to {shown} on {ctx['how_many']}?",
                "hidden": [
                    (name, v)
                    for name, vs in request.form.lists()
                    if name not in HIDDEN_SKIP
                    for v in vs
                ],
            }
            return render_template("pages/bulk_change.html", **ctx)
        failed = _change_all(svc, t, f, value, records)
        if failed is None:
            commit()
            flash(f"{f.label} set to {shown} on {ctx['how_many']}.", "success")
            return redirect(url_for("pages.grid", table=t.key) + "?" + view.query())
        g.db.rollback()  # all or nothing
        ctx["general"].append(failed[0])
        status = failed[1]
    return render_template("pages/bulk_change.html", **ctx), status


def _change_all(
    svc: RecordsService, t: Table, f: Field, value: Any, records: list[Record]
) -> tuple[str, int] | None:
    """Update every record (at the version read); the first refusal as a message
    naming the record, and its HTTP status, or None when all were changed."""
    for r in records:
        try:
            svc.update(t.key, r.id, {f.key: value}, version=r.version)
        except CubebaseError as exc:
            why = exc.message
            if isinstance(exc, ValidationError) and exc.problems:
                why = "; ".join(p.message for p in exc.problems)
            return (
                f"Nothing was changed: {record_title(t, r)} (#{r.id}) was refused: {why}",
                exc.http_status if 400 <= exc.http_status < 500 else 422,
            )
    return None
