"""The workflow inbox: ``GET /api/v1/tasks`` and ``POST /api/v1/tasks/{id}/complete``.

The caller's open tasks (their own and those delegated to them today), filtered by
``?filter=due_soon|overdue``; completing one is a single transaction through the
workflow engine (409 when it was completed already or its step moved on, 403 for
someone else's task, 422 for a missing comment or required field).
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request

from ...platform.errors import BadRequest
from ...workflows.engine import install
from ...workflows.inbox import FILTERS, inbox
from . import bp, json_body, writes
from .auth import db_session

COMPLETE_KEYS = frozenset({"action", "comment", "fields"})


@bp.record_once
def _install_workflows(state) -> None:
    """The workflow engine's record hooks, registered when the API is (no import-time
    side effects)."""
    install(state.app.extensions["cubebase"])


@bp.get("/tasks")
def list_tasks():
    platform = current_app.extensions["cubebase"]
    which = request.args.get("filter", "all")
    if which not in FILTERS:
        raise BadRequest(f"`filter` is one of: {', '.join(FILTERS)}")
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise BadRequest("`limit` must be a whole number from 1 to 500")
    after = request.args.get("cursor")
    if after is not None and (not after.isdigit() or len(after) > 18):
        raise BadRequest("`cursor` is not valid")
    tasks = inbox(
        platform,
        db_session(),
        g.actor,
        filter=which,
        limit=int(raw),
        after_id=int(after) if after else None,
    )
    return jsonify({"tasks": tasks})


@bp.post("/tasks/<int:task_id>/complete")
@writes
def complete_task(task_id: int):
    platform = current_app.extensions["cubebase"]
    body = json_body()
    unknown = sorted(set(body) - COMPLETE_KEYS)
    if unknown:
        raise BadRequest(f"Unknown keys: {', '.join(unknown)} (send action, comment, fields)")
    session = db_session()
    task = install(platform).complete(
        session, g.actor, task_id, body.get("action"), body.get("comment"), body.get("fields")
    )
    result = {
        "id": task.id,
        "status": task.status,
        "action": task.action,
        "instance_id": task.instance_id,
    }
    session.commit()
    return jsonify({"task": result})
