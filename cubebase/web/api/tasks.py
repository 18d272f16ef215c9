"""The workflow inbox: ``GET /api/v1/tasks`` and ``POST /api/v1/tasks/{id}/complete``;
starting a workflow by hand: ``POST /api/v1/workflows/{key}/start`` ``{record_id}``.

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
START_KEYS = frozenset({"record_id"})


@bp.record_once
def _install_workflows(state) -> None:
    """The workflow and automation engines' record hooks, registered when the API is
    (no import-time side effects)."""
    install(state.app.extensions["cubebase"])
    from ...workflows.automations import install as install_automations

    install_automations(state.app.extensions["cubebase"])


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


@bp.post("/workflows/<key>/start")
@writes
def start_workflow(key: str):
    """Start a workflow on a record the caller can read (404 otherwise; 409 when it
    is running on that record already)."""
    platform = current_app.extensions["cubebase"]
    body = json_body()
    unknown = sorted(set(body) - START_KEYS)
    if unknown:
        raise BadRequest(f"Unknown keys: {', '.join(unknown)} (send record_id)")
    record_id = body.get("record_id")
    if not isinstance(record_id, int) or isinstance(record_id, bool) or not 0 < record_id < 2**63:
        raise BadRequest("`record_id` must be a record's id (a whole number)")
    session = db_session()
    inst = install(platform).start(session, g.actor, key, record_id)
    result = {
        "id": inst.id,
        "workflow": key,
        "table": inst.table_key,
        "record_id": inst.record_id,
        "step": inst.step,
        "status": inst.status,
    }
    session.commit()
    return jsonify({"instance": result}), 201


def openapi_paths(responses, json_body, param) -> dict[str, dict]:
    """The task and workflow endpoints in the OpenAPI document (openapi.py's helpers)."""
    tag = ["Workflows"]
    task = {
        "type": "object",
        "required": ["id", "workflow", "step", "table", "record_id", "actions", "version"],
        "properties": {
            "id": {"type": "integer"},
            "workflow": {"type": "string"},
            "workflow_label": {"type": "string"},
            "step": {"type": "string"},
            "step_label": {"type": "string"},
            "table": {"type": "string"},
            "record_id": {"type": "integer"},
            "assignee_id": {"type": ["integer", "null"]},
            "on_behalf_of": {"type": ["integer", "null"]},
            "due_at": {"type": ["string", "null"], "format": "date-time"},
            "overdue": {"type": "boolean"},
            "actions": {"type": "array", "items": {"type": "object"}},
            "editable": {"type": "array", "items": {"type": "string"}},
            "required": {"type": "array", "items": {"type": "string"}},
            "version": {"type": "integer"},
        },
    }
    return {
        "/tasks": {
            "get": {
                "operationId": "tasks.list",
                "summary": "The caller's open workflow tasks (their own and delegated ones)",
                "tags": tag,
                "parameters": [
                    param("filter", "query", {"enum": list(FILTERS)}, "all, due_soon or overdue"),
                    param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                        "At most this many tasks (50)",
                    ),
                    param("cursor", "query", {"type": "string"}, "Tasks after this task id"),
                ],
                "responses": responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["tasks"],
                        "properties": {"tasks": {"type": "array", "items": task}},
                    },
                ),
            }
        },
        "/tasks/{task_id}/complete": {
            "post": {
                "operationId": "tasks.complete",
                "summary": "Complete a task with an action (approve, reject, return ...)",
                "tags": tag,
                "parameters": [
                    param("task_id", "path", {"type": "integer", "minimum": 1}, "The task")
                ],
                "requestBody": json_body(
                    {
                        "type": "object",
                        "required": ["action"],
                        "properties": {
                            "action": {"type": "string"},
                            "comment": {"type": ["string", "null"]},
                            "fields": {"type": "object"},
                        },
                    }
                ),
                "responses": responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["task"],
                        "properties": {"task": {"type": "object"}},
                    },
                    "403",
                    "404",
                    "409",
                    "413",
                    "422",
                ),
            }
        },
        "/workflows/{key}/start": {
            "post": {
                "operationId": "workflows.start",
                "summary": "Start a workflow on a record by hand",
                "tags": tag,
                "parameters": [param("key", "path", {"type": "string"}, "The workflow's key")],
                "requestBody": json_body(
                    {
                        "type": "object",
                        "required": ["record_id"],
                        "properties": {"record_id": {"type": "integer", "minimum": 1}},
                    }
                ),
                "responses": responses(
                    "201",
                    {
                        "type": "object",
                        "required": ["instance"],
                        "properties": {"instance": {"type": "object"}},
                    },
                    "403",
                    "404",
                    "409",
                    "413",
                    "422",
                ),
            }
        },
    }
