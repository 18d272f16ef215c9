"""The inbox: a user's open tasks (their own and those delegated to them today),
filterable by due soon and overdue; one indexed query (``ix_cb_wf_tasks_inbox``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..platform.actor import Actor
from .engine import OPEN, aware, install
from .models import Instance, Task, Workflow

DUE_SOON = timedelta(days=2)
FILTERS = ("all", "due_soon", "overdue")


def inbox(
    platform,
    session: Session,
    actor: Actor,
    *,
    filter: str = "all",
    limit: int = 50,
    after_id: int | None = None,
    now: datetime | None = None,
    due_soon: timedelta = DUE_SOON,
) -> list[dict[str, Any]]:
    """The caller's open tasks, soonest due first (no deadline last), then by id."""
    engine = install(platform)
    now = now or engine.clock()
    if actor.user_id is None:
        return []
    owners = [actor.user_id, *engine.delegators(session, actor.user_id, now)]
    q = (
        sa.select(Task, Instance.table_key, Instance.record_id, Instance.version_id, Workflow.key)
        .join(Instance, Instance.id == Task.instance_id)
        .join(Workflow, Workflow.id == Instance.workflow_id)
        .where(Task.assignee_id.in_(owners), Task.status == OPEN)
    )
    if filter == "overdue":
        q = q.where(Task.due_at < now)
    elif filter == "due_soon":
        q = q.where(Task.due_at >= now, Task.due_at <= now + due_soon)
    if after_id is not None:
        q = q.where(Task.id > after_id)
    # due_at NULLS LAST is the index's own order on PostgreSQL (ix_cb_wf_tasks_inbox:
    # assignee, status, due_at): a page is read off the index, not sorted from all the
    # user's tasks (`due_at IS NULL` as a sort key made it scan and sort them all)
    q = q.order_by(Task.due_at.asc().nulls_last(), Task.id).limit(limit)
    out = []
    for task, table_key, record_id, version_id, wf_key in session.execute(q):
        d = engine.definition(session, version_id)
        step = engine.step_def(d, task.step) or {"label": task.step, "actions": [], "editable": []}
        due = aware(task.due_at)
        out.append(
            {
                "id": task.id,
                "workflow": wf_key,
                "workflow_label": d["label"],
                "step": task.step,
                "step_label": step["label"],
                "table": table_key,
                "record_id": record_id,
                "assignee_id": task.assignee_id,
                "on_behalf_of": task.assignee_id if task.assignee_id != actor.user_id else None,
                "due_at": due.isoformat() if due else None,
                "overdue": bool(due and due < now),
                "actions": [
                    {"key": a["key"], "label": a["label"], "comment": a["comment"]}
                    for a in step["actions"]
                ],
                "editable": step["editable"],
                "required": step.get("required", []),
                "version": task.version,
            }
        )
    return out
