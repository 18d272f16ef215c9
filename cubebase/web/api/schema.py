"""Schema endpoints for admins: the live schema as the app format's IR, and changes to
it through the ``schema_defs`` plan, so the API and the app files cannot disagree.

A request body is the IR as JSON: an app (``{"app": ..., "roles": [...], "tables":
[...]}``, exactly an app file with its tables inline) or one table (``{"key": ...}``,
a table file). The body goes through the same loader as the files (it is written out
as YAML and read back, so every mistake of form is found by the same code with the
same message) and then through ``plan_app``/``apply_app``. A table is planned as part
of its app: the live app with that table replaced, so nothing else of the app moves.
Problems come back as ``422 invalid_schema`` with one entry per key path.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
import yaml
from flask import current_app, g, jsonify, request

from ...platform.errors import BadRequest, ConflictError, CubebaseError, Forbidden, NotFound
from ...platform.models import Role
from ...platform.schema import USERS, Schema
from ...platform.schema_changes import DataLossError
from ...schema_defs import AppFileError, Plan, Result, apply_app, ir, live_app, plan_app
from ...schema_defs.export import live_table, to_data
from ...schema_defs.loader import Source, load_sources
from . import bp
from .auth import db_session
from .records import _bool_arg, _text_arg

BODY = "body"  # the name the loader gives the request body (never shown)
APP_FILE = "app"  # the app file made up around a table body
# table keys a PATCH may set; the others (key, fields, renamed_from, seed, demo) go
# through POST /schema/apply
TABLE_SETTINGS = (
    "label",
    "display",
    "validations",
    "lock",
    "permissions",
    "field_permissions",
    "views",
)
KEY_RE = re.compile(ir.KEY_PATTERN)


class InvalidSchema(CubebaseError):
    """The IR has mistakes: one entry per key path, with the app files' messages."""

    code = "invalid_schema"
    http_status = 422


# --- the caller and the live schema ------------------------------------------------------
def _admin() -> None:
    if not g.actor.is_admin:
        raise Forbidden("Only admins may read or change the schema")
    # The schema editor uses its own connection: end the request's transaction first
    # (on PostgreSQL an open read of `users` would block a change to that table).
    db_session().rollback()


def _platform():
    return current_app.extensions["cubebase"]


def _live() -> Schema:
    return _platform().schema(db_session())


def _key_arg(name: str) -> str | None:
    value = _text_arg(name)
    if value is not None and not KEY_RE.match(value):
        raise BadRequest(f"`{name}` must be a key (lower-case letters, digits and _)")
    return value


def _app_of(live: Schema, table_key: str, app_arg: str | None) -> str:
    """The app a table is planned in: ``?app=``, else the table's own app, else an app
    key that owns nothing (an unowned table is then planned on its own)."""
    if app_arg is not None:
        return app_arg
    table = live.tables.get(table_key)
    if table_key == USERS:
        raise BadRequest("Say whose `users` fields these are with `?app=KEY`")
    if table is None:
        raise BadRequest(f"`{table_key}` is a new table: name the app it joins with `?app=KEY`")
    if table.app is not None:
        return table.app
    owners = {t.app for t in live.tables.values()}
    session = db_session()
    owners |= set(session.scalars(sa.select(Role.app).where(Role.app.is_not(None))))
    key, n = "unowned", 1
    while key in owners:
        n += 1
        key = f"unowned_{n}"
    return key


def _live_app(app_key: str) -> ir.AppSpec:
    session = db_session()
    app = live_app(_platform().schema(session), session, app_key)
    session.rollback()
    return app


# --- the body -> IR --------------------------------------------------------------------------
def _problems(exc: AppFileError, strip: str = "") -> InvalidSchema:
    details = []
    for p in exc.problems:
        key = p.path
        if strip and key.startswith(strip):
            key = key[len(strip) :].lstrip(".")
        d: dict[str, Any] = {"key": key, "message": p.message}
        if p.excerpt:
            d["excerpt"] = p.excerpt
        details.append(d)
    n = len(details)
    lines = [f"{n} problem{'s' if n != 1 else ''} in the schema:"]
    lines += [f"{d['key']}: {d['message']}" if d["key"] else d["message"] for d in details]
    return InvalidSchema("\n".join(lines), details)


def _yaml(data: Any) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError, RecursionError):
        raise BadRequest("The body cannot be read as the app format") from None


def _load(sources: list[Source], strip: str = "") -> ir.AppSpec:
    try:
        return load_sources(sources)
    except AppFileError as exc:
        raise _problems(exc, strip) from None


def _body() -> dict:
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("Send the schema as a JSON object with Content-Type: application/json")
    return data


def _table_into_app(table: ir.TableSpec, app_arg: str | None) -> ir.AppSpec:
    """The live app of the table, with the table replaced by (or joined by) ``table``."""
    live = _live()
    app_key = _app_of(live, table.key, app_arg)
    app = _live_app(app_key)
    replaced = False
    old_keys = {table.key, table.renamed_from}
    for i, t in enumerate(app.tables):
        if t.key in old_keys:
            app.tables[i] = table
            replaced = True
            break
    if not replaced:
        app.tables.append(table)
    return app


def _one_table(data: dict, strip: str = "") -> ir.TableSpec:
    """A table body read as a table file (its problems keep the body's key paths)."""
    sources = [Source(APP_FILE, "app: placeholder\n"), Source(BODY, _yaml(data))]
    (table,) = _load(sources, strip).tables
    return table


def app_from_body(data: dict, app_arg: str | None = None) -> ir.AppSpec:
    """The app a request body asks for: an app as it is, or a table inside its app."""
    if "app" in data:
        if app_arg is not None and data.get("app") != app_arg:
            raise BadRequest("`?app=` names another app than the body")
        return _load([Source(BODY, _yaml(data))])
    if "key" not in data:
        raise InvalidSchema(
            "Send an app (with `app`) or a table (with `key`)",
            [{"key": "", "message": "expected an app (with `app`) or a table (with `key`)"}],
        )
    return _table_into_app(_one_table(data), app_arg)


# --- plan and result -> JSON ---------------------------------------------------------------
def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "app": plan.app.app,
        "summary": plan.describe(),
        "empty": plan.empty,
        "steps": [
            {
                "kind": s.kind,
                "text": s.text,
                "table": s.table,
                "field": s.field_key,
                "loses": s.loses,
                "loss": s.loss,
            }
            for s in plan.steps
        ],
        "data_loss": sum(s.loses for s in plan.steps),
        "notes": list(plan.notes),
    }


def dry_run_json(result: Result) -> dict[str, Any]:
    failing, blank, access = [], [], []
    for key, value in result.counts.items():
        kind = key[0]
        if kind == "fail":
            failing.append({"table": key[1], "rule": key[2], "records": value})
        elif kind == "blank":
            blank.append({"table": key[1], "field": key[2], "records": value})
        elif kind == "read":
            access.append({"user": key[1], "table": key[2], "lost": value[0], "gained": value[1]})
    return {
        "report": list(result.report),
        "failing_rules": failing,
        "now_blank": blank,
        "read_access": access,
    }


def result_json(result: Result, dry_run: bool) -> dict[str, Any]:
    out = plan_json(result.plan)
    out["summary"] = result.describe()
    out["applied"] = result.applied
    if dry_run:
        out["dry_run"] = dry_run_json(result)
    return out


def _apply(app: ir.AppSpec, *, strip: str = "", plan_only: bool = False):
    dry_run = _bool_arg("dry_run")
    confirm = False if plan_only else _bool_arg("confirm_data_loss")
    platform = _platform()
    try:
        if plan_only and not dry_run:
            out = plan_json(plan_app(platform, app))
            out["applied"] = False
            return jsonify(out)
        result = apply_app(platform, app, confirm_data_loss=confirm, dry_run=dry_run)
    except AppFileError as exc:
        raise _problems(exc, strip) from None
    except DataLossError as exc:
        raise DataLossError(
            exc.message.replace("--confirm-data-loss", "?confirm_data_loss=true"), exc.details
        ) from None
    return jsonify(result_json(result, dry_run))


# --- endpoints ---------------------------------------------------------------------------
@bp.get("/schema")
def get_schema():
    """The live schema in the app format (what ``cubebase schema export`` writes):
    ``?app=KEY`` for one app, ``?table=KEY`` for one table."""
    _admin()
    app_key = _key_arg("app")
    table_key = _key_arg("table")
    session = db_session()
    schema = _platform().schema(session)
    if table_key is not None:
        table = schema.tables.get(table_key)
        if table is None:
            raise NotFound(f"There is no table `{table_key}`")
        return jsonify(to_data(live_table(schema, table)))
    return jsonify(to_data(live_app(schema, session, app_key)))


@bp.post("/schema/plan")
def plan_schema():
    """What applying the body would change, in words and steps (``?dry_run=true``:
    applied, measured on the live data and rolled back)."""
    _admin()
    return _apply(app_from_body(_body(), _key_arg("app")), plan_only=True)


@bp.post("/schema/apply")
def apply_schema():
    """Apply the body in one transaction (refused with 409 data_loss unless
    ``?confirm_data_loss=true`` when a step loses values)."""
    _admin()
    return _apply(app_from_body(_body(), _key_arg("app")))


def _live_table_data(table_key: str) -> tuple[dict, str]:
    live = _live()
    table = live.tables.get(table_key)
    if table is None or table.system:
        raise NotFound(f"There is no table `{table_key}` whose schema can change here")
    return to_data(live_table(live, table)), _app_of(live, table_key, None)


def _changed_table(data: dict, app_key: str, strip: str = "") -> ir.AppSpec:
    table = _one_table(data, strip)
    app = _live_app(app_key)
    app.tables = [table if t.key == table.key else t for t in app.tables]
    if all(t is not table for t in app.tables):
        app.tables.append(table)
    return app


@bp.post("/schema/tables/<table>/fields")
def add_schema_field(table: str):
    """Add a field (the body: a field of the app format) to a table, through the plan."""
    _admin()
    field = _body()
    data, app_key = _live_table_data(table)
    key = field.get("key")
    fields = data.setdefault("fields", [])
    if isinstance(key, str) and any(f.get("key") == key for f in fields):
        raise ConflictError(f"Table `{table}` already has a field `{key}`")
    fields.append(field)
    strip = f"fields[{len(fields) - 1}]"
    return _apply(_changed_table(data, app_key, strip), strip=strip)


@bp.patch("/schema/tables/<table>")
def set_schema_table(table: str):
    """Set some of a table's settings (label, display, validations, lock, permissions,
    field_permissions, views); the keys not sent stay as they are."""
    _admin()
    body = _body()
    data, app_key = _live_table_data(table)
    wrong = [k for k in body if k not in TABLE_SETTINGS]
    if wrong:
        raise InvalidSchema(
            f"These keys cannot be set here: {', '.join(map(str, wrong))}",
            [
                {
                    "key": str(k),
                    "message": f"`{k}` cannot be set here (settable: {', '.join(TABLE_SETTINGS)}); "
                    "send the whole table to POST /schema/apply",
                }
                for k in wrong
            ],
        )
    for k, v in body.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    return _apply(_changed_table(data, app_key))


# --- the OpenAPI description (admins' document only) -------------------------------------
def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = "#/components/schemas/schema." + v.removeprefix("#/$defs/")
            else:
                out[k] = _rewrite_refs(v)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def openapi_components() -> dict[str, dict]:
    """The app format's JSON Schema (generated from the IR) and the plan's shape."""
    fmt = ir.json_schema()
    out = {f"schema.{name}": _rewrite_refs(s) for name, s in fmt["$defs"].items()}
    out["schema.App"] = _rewrite_refs(fmt["oneOf"][0])
    step = {
        "type": "object",
        "required": ["kind", "text", "table", "field", "loses", "loss"],
        "properties": {
            "kind": {"type": "string"},
            "text": {"type": "string"},
            "table": {"type": ["string", "null"]},
            "field": {"type": ["string", "null"]},
            "loses": {"type": "integer", "minimum": 0},
            "loss": {"type": ["string", "null"]},
        },
    }
    counted = {"type": "array", "items": {"type": "object"}}
    out["schema.Plan"] = {
        "type": "object",
        "required": ["app", "summary", "empty", "steps", "data_loss", "notes", "applied"],
        "properties": {
            "app": {"type": "string"},
            "summary": {"type": "string", "description": "the plan in words"},
            "empty": {"type": "boolean"},
            "steps": {"type": "array", "items": step},
            "data_loss": {"type": "integer", "minimum": 0},
            "notes": {"type": "array", "items": {"type": "string"}},
            "applied": {"type": "boolean"},
            "dry_run": {
                "type": "object",
                "required": ["report", "failing_rules", "now_blank", "read_access"],
                "properties": {
                    "report": {"type": "array", "items": {"type": "string"}},
                    "failing_rules": counted,
                    "now_blank": counted,
                    "read_access": counted,
                },
            },
        },
    }
    out["schema.Change"] = {"anyOf": [_ref("schema.App"), _ref("schema.TableSpec")]}
    return out


def openapi_paths(responses, json_body, param) -> dict[str, dict]:
    """``responses(status, schema, *errors)``, ``json_body(schema)`` and ``param(...)``
    are openapi.py's helpers."""
    tag = ["Schema"]
    key = {"type": "string", "pattern": ir.KEY_PATTERN}
    app = param("app", "query", key, "The app: of the document (GET), or a new table joins")
    dry = param("dry_run", "query", {"type": "boolean"}, "Apply, measure, roll back")
    confirm = param(
        "confirm_data_loss", "query", {"type": "boolean"}, "Go ahead with steps that lose values"
    )
    table = param("table", "path", {"type": "string"}, "The table's key")
    plan = _ref("schema.Plan")
    writes = ("403", "404", "409", "413", "422")
    return {
        "/schema": {
            "get": {
                "operationId": "schema.get",
                "summary": "The live schema in the app format (as `cubebase schema export`)",
                "tags": tag,
                "parameters": [
                    app,
                    param("table", "query", key, "Only this table (a table file)"),
                ],
                "responses": responses(
                    "200",
                    {"anyOf": [_ref("schema.App"), _ref("schema.TableSpec")]},
                    "403",
                    "404",
                ),
            }
        },
        "/schema/plan": {
            "post": {
                "operationId": "schema.plan",
                "summary": "What applying an app or a table would change (nothing is changed)",
                "tags": tag,
                "parameters": [app, dry],
                "requestBody": json_body(_ref("schema.Change")),
                "responses": responses("200", plan, *writes),
            }
        },
        "/schema/apply": {
            "post": {
                "operationId": "schema.apply",
                "summary": "Apply an app or a table in one transaction: all of it or nothing",
                "tags": tag,
                "parameters": [app, dry, confirm],
                "requestBody": json_body(_ref("schema.Change")),
                "responses": responses("200", plan, *writes),
            }
        },
        "/schema/tables/{table}/fields": {
            "post": {
                "operationId": "schema.add_field",
                "summary": "Add a field to a table (through the plan)",
                "tags": tag,
                "parameters": [table, dry],
                "requestBody": json_body(_ref("schema.FieldSpec")),
                "responses": responses("200", plan, *writes),
            }
        },
        "/schema/tables/{table}": {
            "patch": {
                "operationId": "schema.set_table",
                "summary": "Set a table's label, display, validations, lock, permissions, "
                "field permissions or views (null: back to none)",
                "tags": tag,
                "parameters": [table, dry, confirm],
                "requestBody": json_body(
                    {
                        "type": "object",
                        "properties": {
                            k: {"anyOf": [v, {"type": "null"}]}
                            for k, v in openapi_components()["schema.TableSpec"][
                                "properties"
                            ].items()
                            if k in TABLE_SETTINGS
                        },
                        "additionalProperties": False,
                    }
                ),
                "responses": responses("200", plan, *writes),
            }
        },
    }
