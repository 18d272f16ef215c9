"""Saved views: a user's own (``cb_saved_views``) and shared ones that admins define
(the table's ``views`` setting, the same as the app files' ``views:``).

A view is the grid's state as query-string arguments, so opening one is a link.
A personal view keeps everything (columns, sort, filter, search, conditions,
grouping); a shared one keeps what the app format has: columns, filter and sort.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from flask import abort, flash, g, redirect, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, Length

from ...formula import types as ft
from ...platform import formulas
from ...platform.errors import BadRequest
from ...platform.models import SavedView
from ...platform.schema import Table
from . import bp
from .common import commit, save_table_setting, service, visible_table

STATE_KEYS = ("fields", "sort", "filter", "q", "group")
MAX_VIEWS = 50  # personal views per user and table


class SaveViewForm(FlaskForm):
    label = StringField("Name", validators=[DataRequired(), Length(max=200)])
    state = HiddenField()
    shared = BooleanField("Shared with everyone (admins)")


def view_state(query: str) -> dict[str, str]:
    """The view arguments of a query string, nothing else (no cursor, no paging)."""
    out: dict[str, str] = {}
    for k, v in parse_qsl(query or "", keep_blank_values=False)[:100]:
        if (k in STATE_KEYS or k.startswith("eq.")) and len(v) <= 10_000:
            out[k] = v
    return out


def saved_views(t: Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(shared views, the user's own views) of a table, each with ``label`` and
    ``query`` (a link's query string)."""
    schema = service().schema
    shared = []
    for v in t.config.get("views") or []:
        args = {}
        if v.get("fields"):
            args["fields"] = ",".join(v["fields"])
        if v.get("filter"):
            args["filter"] = formulas.display(schema, t.key, v["filter"])
        if v.get("sort"):
            args["sort"] = v["sort"]
        label = v.get("label") or v["key"].replace("_", " ").capitalize()
        shared.append({"key": v["key"], "label": label, "query": urlencode(args)})
    own = [
        {"id": sv.id, "label": sv.label, "query": urlencode(sv.state or {})}
        for sv in g.db.scalars(
            sa.select(SavedView)
            .where(SavedView.user_id == g.actor.user_id, SavedView.table_id == t.id)
            .order_by(SavedView.label, SavedView.id)
        )
    ]
    return shared, own


@bp.post("/t/<table>/views")
def save_view(table: str):
    svc = service()
    t = visible_table(svc, table)
    form = SaveViewForm()
    if not form.validate_on_submit():
        flash("Give the view a name (at most 200 characters).", "error")
        return redirect(url_for("pages.grid", table=t.key) + "?" + (form.state.data or ""))
    state = view_state(form.state.data or "")
    label = form.label.data.strip()
    if form.shared.data:
        if not g.actor.is_admin:
            abort(403)
        _save_shared(t, label, state)
        flash(f"The shared view {label} was saved.", "success")
    else:
        n = g.db.scalar(
            sa.select(sa.func.count())
            .select_from(SavedView)
            .where(SavedView.user_id == g.actor.user_id, SavedView.table_id == t.id)
        )
        if n >= MAX_VIEWS:
            raise BadRequest(f"You have {MAX_VIEWS} views of this table already; delete one first")
        g.db.add(
            SavedView(
                user_id=g.actor.user_id,
                table_id=t.id,
                label=label,
                state=state,
                created_at=datetime.now(UTC),
            )
        )
        commit()
        flash(f"Your view {label} was saved.", "success")
    return redirect(url_for("pages.grid", table=t.key) + "?" + urlencode(state))


def _save_shared(t: Table, label: str, state: dict[str, str]) -> None:
    """A schema change: the view joins the table's ``views`` (what app files export)."""
    schema = service().schema
    view: dict[str, Any] = {"key": _key(label, t), "label": label}
    fields = [k for k in state.get("fields", "").split(",") if k in t.fields]
    if fields:
        view["fields"] = fields
    if state.get("filter", "").strip():
        view["filter"], _ = formulas.store(
            schema, t.key, state["filter"], "The view's filter", ft.BOOLEAN
        )
    if state.get("sort"):
        view["sort"] = state["sort"]
    save_table_setting(t, "views", [*(t.config.get("views") or []), view])


def _key(label: str, t: Table) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:50] or "view"
    if not base[0].isalpha():
        base = f"v_{base}"
    taken = {v["key"] for v in t.config.get("views") or []}
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


@bp.post("/t/<table>/views/<int:view_id>/delete")
def delete_view(table: str, view_id: int):
    svc = service()
    t = visible_table(svc, table)
    if not FlaskForm().validate_on_submit():
        abort(400)
    sv = g.db.get(SavedView, view_id)
    if sv is None or sv.user_id != g.actor.user_id or sv.table_id != t.id:
        abort(404)
    g.db.delete(sv)
    commit()
    flash(f"Your view {sv.label} was deleted.", "success")
    return redirect(url_for("pages.grid", table=t.key))


@bp.post("/t/<table>/shared-views/<key>/delete")
def delete_shared_view(table: str, key: str):
    svc = service()
    t = visible_table(svc, table)
    if not g.actor.is_admin:
        abort(403)
    if not FlaskForm().validate_on_submit():
        abort(400)
    views = t.config.get("views") or []
    kept = [v for v in views if v.get("key") != key]
    if len(kept) == len(views):
        abort(404)
    save_table_setting(t, "views", kept)
    flash("The shared view was deleted.", "success")
    return redirect(url_for("pages.grid", table=t.key))
