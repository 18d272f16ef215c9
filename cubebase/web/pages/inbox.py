"""The task inbox: the signed-in user's open workflow tasks (their own and those
delegated to them today), all, due soon or overdue; a task opens its record with
the step's editable fields and the step's actions (approve, reject, return with a
comment), completed through the workflow engine in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from ...platform.errors import CubebaseError, NotFound, ValidationError
from ...workflows.engine import OPEN, aware, install
from ...workflows.inbox import FILTERS, inbox
from ...workflows.models import Instance, Task
from . import bp
from .common import LinkLabels, commit, display_value, record_title, service, visible_table
from .forms import build_form, form_values
from .records import _apply_problems, _validation_problems

INBOX_LIMIT = 200
FILTER_LABELS = {"all": "All my tasks", "due_soon": "Due soon", "overdue": "Overdue"}


class CommentForm(FlaskForm):
    class Meta:
        csrf = False  # posted with the task's form, which carries the token

    comment = TextAreaField("Comment", validators=[Length(max=10_000)])


def open_task_count(platform, session, actor, cap: int = 99) -> int:
    """How many open tasks the user has (their own), for the navigation's badge."""
    if actor is None or actor.user_id is None:
        return 0
    inner = (
        sa.select(Task.id)
        .where(Task.assignee_id == actor.user_id, Task.status == OPEN)
        .limit(cap + 1)
        .subquery()
    )
    return int(session.scalar(sa.select(sa.func.count()).select_from(inner)) or 0)


def _engine():
    return install(current_app.extensions["cubebase"])


@bp.get("/tasks")
def tasks():
    which = request.args.get("filter", "all")
    if which not in FILTERS:
        which = "all"
    platform = current_app.extensions["cubebase"]
    items = inbox(platform, g.db, g.actor, filter=which, limit=INBOX_LIMIT)
    svc = service()
    labels = LinkLabels(svc)
    by_table: dict[str, set[int]] = {}
    for t in items:
        by_table.setdefault(t["table"], set()).add(t["record_id"])
    titles: dict[tuple[str, int], str] = {}
    for key, ids in by_table.items():
        if not svc.schema.has_table(key):
            continue
        labels.fetch(key, ids)
        table = svc.table(key)
        for i in ids:
            titles[(key, i)] = labels.name(key, i) or f"{table.label} #{i}"
    for t in items:
        t["title"] = titles.get((t["table"], t["record_id"]), f"{t['table']} #{t['record_id']}")
        t["due"] = _due_text(t["due_at"])
    return render_template(
        "pages/tasks.html",
        items=items,
        which=which,
        filters=FILTER_LABELS,
        limit=INBOX_LIMIT,
    )


def _due_text(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def _my_task(task_id: int) -> tuple[Task, Instance]:
    """An open task of the user (or delegated to them today); else 404."""
    engine = _engine()
    task = g.db.get(Task, task_id)
    if task is None or g.actor.user_id is None:
        raise NotFound("There is no such task in your inbox")
    owners = {g.actor.user_id, *engine.delegators(g.db, g.actor.user_id)}
    if task.assignee_id not in owners:
        raise NotFound("There is no such task in your inbox")
    return task, g.db.get(Instance, task.instance_id)


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
def task(task_id: int):
    task, inst = _my_task(task_id)
    engine = _engine()
    d = engine.definition(g.db, inst.version_id)
    step = engine.step_def(d, task.step) or {"label": task.step, "actions": [], "editable": []}
    svc = service()
    t = visible_table(svc, inst.table_key)
    record = svc.get(t.key, inst.record_id)
    form, all_fields = build_form(
        svc, t, record, request.form if request.method == "POST" else None
    )
    editable_keys = [k for k in step.get("editable", []) if k in form]
    edit_fields = [f for f in all_fields if f.key in editable_keys]
    comment_form = CommentForm(request.form if request.method == "POST" else None)
    general: list[str] = []
    comment_error = None
    status = 200
    is_open = task.status == OPEN and task.step == inst.step and task.round == inst.round
    if request.method == "POST":
        action = request.form.get("action", "")
        if not form.validate_on_submit():
            abort(400)
        values, problems = form_values(form, edit_fields)
        changed = {k: v for k, v in values.items() if k in problems or v != record.values.get(k)}
        if not problems:
            try:
                done = engine.complete(
                    g.db,
                    g.actor,
                    task.id,
                    action,
                    comment_form.comment.data or None,
                    changed,
                )
            except ValidationError as exc:
                problems = _validation_problems(exc)
            except CubebaseError as exc:
                if exc.http_status == 404:
                    raise
                general.append(exc.message)
                status = exc.http_status
            else:
                commit()
                label = next((a["label"] for a in step["actions"] if a["key"] == done.action), "")
                flash(
                    f"{step['label']}: {label or done.action} — {record_title(t, record)}.",
                    "success",
                )
                return redirect(url_for("pages.tasks"))
        if problems:
            comment_error = problems.pop("comment", None)
            general += _apply_problems(form, problems)
            status = 422
    shown = [f for f in all_fields if f.key not in editable_keys and not f.system][:12]
    links = LinkLabels(svc)
    links.load(t, shown, [record])
    history = engine.history(g.db, inst.id)
    return render_template(
        "pages/task.html",
        task=task,
        inst=inst,
        definition=d,
        step=step,
        table=t,
        record=record,
        title=record_title(t, record),
        form=form,
        edit_fields=edit_fields,
        shown=shown,
        links=links,
        comment_form=comment_form,
        comment_error=comment_error,
        general=general,
        is_open=is_open,
        due=_due_text(aware(task.due_at).isoformat() if task.due_at else None),
        history=_history_rows(history, d),
        display=display_value,
    ), status


def _history_rows(events: list[dict[str, Any]], d: dict[str, Any]) -> list[dict[str, Any]]:
    labels = {s["key"]: s["label"] for s in d.get("steps", [])}
    out = []
    for e in events:
        step = labels.get(e.get("step") or "", e.get("step") or "")
        to = labels.get(e.get("to_step") or "", e.get("to_step") or "")
        out.append(
            {
                "at": str(e.get("at") or "")[:16].replace("T", " "),
                "step": step,
                "text": e.get("text") or e.get("action") or "",
                "to": to,
                "comment": e.get("comment") or "",
            }
        )
    return out
