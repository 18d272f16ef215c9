"""GET /api/v1/openapi.json: an OpenAPI 3.1 document generated from the live schema.

One component schema per table (field types, enums for select options,
read-only calculated fields), the error shape and the auth schemes. The
document is built once per schema version and process and kept until the
schema changes (every schema change bumps the version, so a process notices
on its next request).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import current_app, request

from ...platform.records import MAX_PAGE, RecordsService
from ...platform.schema import Field, Table
from . import api_state, bp
from .visibility import service, visible_tables

OPENAPI_VERSION = "3.1.0"
NULL = {"type": "null"}
DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    if "enum" in schema:
        return {**schema, "type": [schema["type"], "null"], "enum": [*schema["enum"], None]}
    t = schema.get("type")
    if isinstance(t, str) and set(schema) <= {"type", "format", "pattern", "maxLength", "items"}:
        return {**schema, "type": [t, "null"]}
    return {"anyOf": [schema, NULL]}


def _scalar(kind: str) -> dict:
    return {
        "number": DECIMAL,
        "text": {"type": "string"},
        "boolean": {"type": "boolean"},
        "date": {"type": "string", "format": "date"},
        "datetime": {"type": "string", "format": "date-time"},
    }.get(kind, {})


def value_schema(f: Field, *, output: bool) -> dict:
    """The JSON value of a field: as the API returns it (``output``) or accepts it."""
    t = f.type
    link = {"anyOf": [{"type": "integer"}, _ref("LinkedRecord")]} if output else None
    if t in ("text", "long_text", "email", "phone", "url"):
        s: dict = {"type": "string"}
        if not output:
            s["maxLength"] = int(f.ftype.max_length(f))
    elif t in ("number", "currency"):
        s = DECIMAL if output else {"anyOf": [DECIMAL, {"type": "number"}]}
    elif t in ("integer", "autonumber"):
        s = {"type": "integer"}
    elif t == "boolean":
        s = {"type": "boolean"}
    elif t == "date":
        s = {"type": "string", "format": "date"}
    elif t in ("datetime", "created_at", "updated_at"):
        s = {"type": "string", "format": "date-time"}
    elif t == "select":
        s = {"type": "string", "enum": list(f.config.get("options") or [])}
    elif t == "multi_select":
        return {
            "type": ["array", "null"],
            "items": {"type": "string", "enum": list(f.config.get("options") or [])},
            "uniqueItems": True,
        }
    elif f.link_kind == "many":
        return {"type": "array", "items": link or {"type": "integer", "minimum": 1}}
    elif f.link_kind == "one":
        s = link or {"type": "integer", "minimum": 1}
    elif t == "file":
        s = _ref("File")
    elif t == "formula":
        result = str(f.config.get("result_type") or "text")
        if result.startswith("record:"):
            s = {"type": "integer"}
        elif result.startswith("list:"):
            s = {"type": "array"}
        else:
            s = _scalar(result)
        if not s:
            return {}
    else:
        return {}
    return _nullable(s)


def _field_doc(f: Field, schema: dict) -> dict:
    doc = dict(schema)
    if "$ref" in doc or "anyOf" in doc:
        doc = {"allOf": [schema]} if "$ref" in doc else doc
    doc["title"] = f.label
    if f.help:
        doc["description"] = f.help
    return doc


def _table_components(table: Table, hidden: frozenset[str]) -> dict[str, dict]:
    key = table.key
    values: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for f in table.data_fields():
        if f.key in hidden:
            continue
        out = _field_doc(f, value_schema(f, output=True))
        if not f.writable:
            out["readOnly"] = True
        values[f.key] = out
        if f.writable:
            inputs[f.key] = _field_doc(f, value_schema(f, output=False))
    record = {
        "type": "object",
        "title": table.label,
        "required": ["id", "version", "fields"],
        "properties": {
            "id": {"type": "integer"},
            "version": {"type": "integer"},
            "fields": {"type": "object", "properties": values, "additionalProperties": False},
            "deleted_at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": False,
    }
    write_fields = {"type": "object", "properties": inputs, "additionalProperties": False}
    return {
        f"{key}.record": record,
        f"{key}.page": {
            "type": "object",
            "required": ["records", "next_cursor"],
            "properties": {
                "records": {"type": "array", "items": _ref(f"{key}.record")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        f"{key}.create": {
            "type": "object",
            "required": ["fields"],
            "properties": {"fields": write_fields},
            "additionalProperties": False,
        },
        f"{key}.update": {
            "type": "object",
            "required": ["fields"],
            "properties": {
                "fields": write_fields,
                "version": {"type": "integer", "minimum": 1, "description": "optimistic lock"},
            },
            "additionalProperties": False,
        },
        f"{key}.bulk": {
            "type": "object",
            "required": ["records"],
            "properties": {
                "records": {
                    "type": "array",
                    "maxItems": current_app.extensions["cubebase"].config.max_bulk_rows,
                    "items": {
                        "type": "object",
                        "required": ["fields"],
                        "properties": {
                            "id": {"type": "integer", "minimum": 1},
                            "version": {"type": "integer", "minimum": 1},
                            "fields": write_fields,
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
        f"{key}.bulk_result": {
            "type": "object",
            "required": ["records"],
            "properties": {"records": {"type": "array", "items": _ref(f"{key}.record")}},
        },
    }


def _common_components(tables: list[Table]) -> dict[str, dict]:
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
        },
        "LinkedRecord": {
            "type": "object",
            "description": "A linked record, with ?expand=",
            "required": ["id", "version", "fields"],
            "properties": {
                "id": {"type": "integer"},
                "version": {"type": "integer"},
                "fields": {"type": "object"},
            },
        },
        "File": {
            "type": "object",
            "required": ["key", "name", "size", "content_type"],
            "properties": {
                "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "name": {"type": "string", "maxLength": 255},
                "size": {"type": "integer", "minimum": 0},
                "content_type": {"type": "string"},
            },
        },
        "Table": {
            "type": "object",
            "required": ["key", "label"],
            "properties": {
                "key": {"type": "string", "enum": [t.key for t in tables]},
                "label": {"type": "string"},
                "display_field": {"type": ["string", "null"]},
                "app": {"type": ["string", "null"]},
                "system": {"type": "boolean"},
                "fields": {"type": "array", "items": _ref("Field")},
            },
        },
        "Field": {
            "type": "object",
            "required": ["key", "label", "type", "read_only"],
            "properties": {
                "key": {"type": "string"},
                "label": {"type": "string"},
                "type": {"type": "string"},
                "to": {"type": "string"},
                "options": {"type": "array", "items": {"type": "string"}},
                "required": {"type": "boolean"},
                "unique": {"type": "boolean"},
                "read_only": {"type": "boolean"},
            },
        },
        "HistoryEntry": {
            "type": "object",
            "required": ["version", "action", "at", "by", "changes"],
            "properties": {
                "version": {"type": "integer"},
                "action": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "by": {"type": ["integer", "null"]},
                "note": {"type": ["string", "null"]},
                "changes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": ["string", "null"]},
                            "field_id": {"type": "integer"},
                            "old": {},
                            "new": {},
                        },
                    },
                },
            },
        },
    }


ERROR_TEXT = {
    "400": "Bad request: malformed input, a bad filter, sort, field list or cursor",
    "401": "No valid API token or session",
    "403": "Not allowed (or a session write without its CSRF token)",
    "404": "No such table or record, or not visible to the caller",
    "409": "Conflict: changed by someone else (details carry the current version), "
    "a closed record, a value in use, or a schema change that would lose data (`data_loss`)",
    "413": "The request body is too large",
    "415": "Not multipart/form-data (file uploads)",
    "422": "Validation failed: one entry per field or rule (and per row in bulk); "
    "for the schema endpoints, `invalid_schema` with one entry per key path",
    "429": "Rate limit reached (see Retry-After)",
}


def _responses(ok_status: str, ok: dict | None, *errors: str) -> dict:
    out: dict[str, Any] = {}
    if ok is None:
        out[ok_status] = {"description": "Done"}
    else:
        out[ok_status] = {
            "description": "OK",
            "content": {"application/json": {"schema": ok}},
        }
    for code in ("400", "401", "429", *errors):
        out[code] = {"$ref": f"#/components/responses/E{code}"}
    out["default"] = {"$ref": "#/components/responses/Error"}
    return out


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str, schema: dict, description: str, required: bool = False):
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


ID = _param("id", "path", {"type": "integer", "minimum": 1}, "The record's id")
FIELDS = _param("fields", "query", {"type": "string"}, "Only these fields: `a,b`")
EXPAND = _param(
    "expand", "query", {"type": "string"}, "Link fields to give as the linked records: `customer`"
)


def _table_paths(table: Table) -> dict[str, dict]:
    key = table.key
    base = f"/tables/{key}/records"
    tag = [key]
    record = _ref(f"{key}.record")
    return {
        base: {
            "get": {
                "operationId": f"{key}.list",
                "summary": f"A page of {table.label}",
                "tags": tag,
                "parameters": [
                    _param("filter", "query", {"type": "string"}, "A formula, e.g. `amount > 10`"),
                    _param("sort", "query", {"type": "string"}, "Fields, `-` descending: `-a,b`"),
                    FIELDS,
                    EXPAND,
                    _param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50},
                        "Records per page",
                    ),
                    _param("cursor", "query", {"type": "string"}, "`next_cursor` of a page"),
                    _param("trashed", "query", {"type": "boolean"}, "List the trash instead"),
                ],
                "responses": _responses("200", _ref(f"{key}.page"), "403", "404"),
            },
            "post": {
                "operationId": f"{key}.create",
                "summary": f"Create a record in {table.label}",
                "tags": tag,
                "requestBody": _json_body(_ref(f"{key}.create")),
                "responses": _responses("201", record, "403", "404", "409", "413", "422"),
            },
        },
        f"{base}/bulk": {
            "post": {
                "operationId": f"{key}.bulk",
                "summary": "Create (no id) and update (with id) many records: all or none",
                "tags": tag,
                "requestBody": _json_body(_ref(f"{key}.bulk")),
                "responses": _responses(
                    "200", _ref(f"{key}.bulk_result"), "403", "404", "409", "413", "422"
                ),
            }
        },
        f"{base}/{{id}}": {
            "get": {
                "operationId": f"{key}.get",
                "summary": "One record",
                "tags": tag,
                "parameters": [ID, FIELDS, EXPAND],
                "responses": _responses("200", record, "403", "404"),
            },
            "patch": {
                "operationId": f"{key}.update",
                "summary": "Change some fields; send `version` to be told of a conflict",
                "tags": tag,
                "parameters": [ID],
                "requestBody": _json_body(_ref(f"{key}.update")),
                "responses": _responses("200", record, "403", "404", "409", "413", "422"),
            },
            "delete": {
                "operationId": f"{key}.delete",
                "summary": "Move the record to the trash",
                "tags": tag,
                "parameters": [
                    ID,
                    _param(
                        "version",
                        "query",
                        {"type": "integer", "minimum": 1},
                        "Refuse (409) if the record changed since this version",
                    ),
                ],
                "responses": _responses("204", None, "403", "404", "409"),
            },
        },
        f"{base}/{{id}}/restore": {
            "post": {
                "operationId": f"{key}.restore",
                "summary": "Bring the record back from the trash",
                "tags": tag,
                "parameters": [ID],
                "responses": _responses("200", record, "403", "404", "409"),
            }
        },
        f"{base}/{{id}}/history": {
            "get": {
                "operationId": f"{key}.history",
                "summary": "Every change: who, when, old and new values",
                "tags": tag,
                "parameters": [ID],
                "responses": _responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["history"],
                        "properties": {"history": {"type": "array", "items": _ref("HistoryEntry")}},
                    },
                    "403",
                    "404",
                ),
            }
        },
    }


def build_document(svc: RecordsService) -> dict:
    """The document as the caller sees the schema: the tables they may read, without
    the fields hidden from them on every record."""
    schema = svc.schema
    tables = visible_tables(svc)
    components = _common_components(tables)
    paths: dict[str, Any] = {
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": _responses("200", {"type": "object"}),
            }
        },
        "/tables": {
            "get": {
                "operationId": "tables.list",
                "summary": "Tables the caller may see",
                "responses": _responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["tables"],
                        "properties": {"tables": {"type": "array", "items": _ref("Table")}},
                    },
                ),
            }
        },
        "/tables/{table}": {
            "get": {
                "operationId": "tables.get",
                "summary": "A table's fields, types and options",
                "parameters": [_param("table", "path", {"type": "string"}, "The table's key")],
                "responses": _responses("200", _ref("Table"), "404"),
            }
        },
        "/formula/check": {
            "post": {
                "operationId": "formula.check",
                "summary": "The type of a formula, or its errors with their positions",
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["table", "formula"],
                        "properties": {
                            "table": {"type": "string"},
                            "formula": {"type": "string"},
                        },
                    }
                ),
                "responses": _responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string"}},
                    },
                    "404",
                    "413",
                ),
            }
        },
    }
    from . import files as files_api

    for table in tables:
        hidden = svc.access.hidden_fields(table)[0]
        components.update(_table_components(table, hidden))
        paths.update(_table_paths(table))
        paths.update(files_api.openapi_paths(table, hidden, _responses, _param))
    from . import tasks as tasks_api

    paths.update(tasks_api.openapi_paths(_responses, _json_body, _param))
    from . import reports as reports_api

    paths.update(reports_api.openapi_paths(_responses, _param))
    tags = [{"name": t.key, "description": t.label} for t in tables]
    tags.append({"name": "Workflows", "description": "Tasks and workflows"})
    tags.append({"name": "Reports", "description": "Reports, run as the caller"})
    if svc.access.unlimited:  # the schema endpoints are for admins
        from . import schema as schema_api

        components.update(schema_api.openapi_components())
        paths.update(schema_api.openapi_paths(_responses, _json_body, _param))
        tags.append({"name": "Schema", "description": "The schema in the app format (admins)"})
    error = {"content": {"application/json": {"schema": _ref("Error")}}}
    responses = {"Error": {"description": "An error", **error}}
    for code, text in ERROR_TEXT.items():
        responses[f"E{code}"] = {"description": text, **error}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Cubebase API",
            "version": f"1.{schema.version}",
            "description": "Records of every table, through the same permissions, "
            "validation and history as the web pages. See docs/api.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": responses,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": current_app.config.get("SESSION_COOKIE_NAME", "session"),
                    "description": "The browser session; writes need the X-CSRFToken header",
                },
            },
        },
    }


def document_bytes(svc: RecordsService) -> bytes:
    """Built once per schema version and view of it (admins; else the role set, which
    decides what rules hide), kept until the schema changes."""
    version = svc.schema.version
    view = "admin" if svc.access.unlimited else tuple(sorted(svc.actor.roles))
    cache = api_state().openapi
    if cache.get("version") != version:
        cache.clear()
        cache["version"] = version
    hit = cache.get(view)
    if hit is None:
        if len(cache) > 256:
            cache.clear()
            cache["version"] = version
        hit = cache[view] = json.dumps(build_document(svc), separators=(",", ":")).encode()
    return hit


@bp.get("/openapi.json")
def openapi_document():
    svc = service()
    body = document_bytes(svc)
    resp = current_app.response_class(body, mimetype="application/json")
    resp.set_etag(hashlib.sha256(body).hexdigest()[:32])
    return resp.make_conditional(request)
