"""File fields through the API: upload, download and remove the file of one field of
one record, at ``/tables/{table}/records/{id}/files/{field}``.

One call stores the bytes and sets the field (instead of an upload endpoint that
returns a descriptor for a later PATCH): the client cannot send a descriptor for a
file it did not upload here, the field's write rules, the lock rule and the
version check decide in the same request as the upload, and there is no window
in which a stored file belongs to no record because the client stopped halfway.
The bytes go to the file store (``platform/files.py``: by SHA-256, written
atomically); the field is set through the records service like any other write.
A download is for whoever may read the record and the field, always as an
attachment with ``nosniff``, so an uploaded page or script never runs in the
browser and the content type a client declared is never trusted to render.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from ...platform.errors import BadRequest, CubebaseError, FieldProblem, NotFound, ValidationError
from ...platform.files import OCTET, clean_content_type, file_store
from ...platform.records import Record, RecordsService
from ...platform.schema import Field, Table
from . import bp, writes
from .auth import db_session
from .records import _int_arg
from .visibility import service, visible_table

PART = "file"  # the multipart part that carries the file


class TooLarge(CubebaseError):
    code = "too_large"
    http_status = 413


class UnsupportedMediaType(CubebaseError):
    code = "unsupported_media_type"
    http_status = 415


def _file_field(
    svc: RecordsService, table: str, record_id: str, field: str
) -> tuple[Table, Record, Field]:
    """The table, the record and the field as the caller may see them: an unknown
    table, record or field, or one hidden from the caller, is the same 404."""
    t = visible_table(svc, table)
    record = svc.get(t.key, record_id)
    f = t.fields.get(field)
    if f is None or field not in record.values:
        raise NotFound(f"Table `{t.key}` has no field `{field}`")
    return t, record, f


def _not_a_file_field(f: Field) -> ValidationError:
    return ValidationError(
        [FieldProblem(f.key, f"is a {f.type} field, not a file field; files go to file fields")]
    )


def _upload():
    """The uploaded file of a multipart/form-data body, or a 4xx saying what to send."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    too_large = TooLarge(
        f"The file is too large (at most {limit / 1024 / 1024:.0f} MB with the request)"
    )
    if limit and (request.content_length or 0) > limit:
        raise too_large
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Send the file as multipart/form-data, in a part named `{PART}`"
        )
    try:
        upload = request.files.get(PART)
    except RequestEntityTooLarge:
        raise too_large from None
    if upload is None or not upload.filename:
        raise BadRequest(f"Send the file in a part named `{PART}` (with its file name)")
    return upload


def _write_service() -> RecordsService:
    """End the request's read transaction and continue in a write session. The
    upload is received and stored before this, so on SQLite (whose write lock a
    write session takes at BEGIN) other writers never wait on a slow client."""
    read = g.pop("db", None)
    if read is not None:
        read.rollback()
        read.close()
    g.pop("records", None)
    g.db = current_app.extensions["cubebase"].session(write=True)
    return service()


@bp.post("/tables/<table>/records/<record_id>/files/<field>")
def upload_file(table: str, record_id: str, field: str):
    """Store the file and set the field to it, as one write of the record. Not a
    ``writes`` endpoint: the checks before the upload only read, and the write
    itself (every rule, the lock, the version) happens in a write session after."""
    t, record, f = _file_field(service(), table, record_id, field)
    if f.type != "file":
        raise _not_a_file_field(f)
    version = _int_arg("version", None, 1, 2**31 - 1)
    upload = _upload()
    store = file_store(current_app.extensions["cubebase"])
    descriptor = store.put(upload.stream, upload.filename, upload.mimetype)
    svc = _write_service()
    updated = svc.update(t.key, record.id, {f.key: descriptor}, version=version)
    db_session().commit()
    return jsonify(updated.to_json(svc.table(t.key)))


@bp.delete("/tables/<table>/records/<record_id>/files/<field>")
@writes
def remove_file(table: str, record_id: str, field: str):
    """Empty the field (the bytes stay in the store: other records may share them)."""
    svc = service()
    t, record, f = _file_field(svc, table, record_id, field)
    if f.type != "file":
        raise _not_a_file_field(f)
    updated = svc.update(
        t.key, record.id, {f.key: None}, version=_int_arg("version", None, 1, 2**31 - 1)
    )
    db_session().commit()
    return jsonify(updated.to_json(t))


@bp.get("/tables/<table>/records/<record_id>/files/<field>")
def download_file(table: str, record_id: str, field: str):
    """The file, for whoever may read the record and the field; always as an
    attachment, never rendered (``nosniff``, a sandbox policy)."""
    svc = service()
    _t, record, f = _file_field(svc, table, record_id, field)
    value = record.values.get(f.key) if f.type == "file" else None
    if not value:
        raise NotFound(f"`{f.key}` holds no file on this record")
    path = file_store(current_app.extensions["cubebase"]).path(value["key"])
    resp = send_file(
        path,
        mimetype=clean_content_type(value.get("content_type")),
        as_attachment=True,
        download_name=value.get("name") or "file",
        etag=value["key"],
        conditional=True,
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# --- the OpenAPI document ---------------------------------------------------------
def file_fields(table: Table, hidden: frozenset[str]) -> list[str]:
    """Keys of the file fields the caller sees on some record of ``table``."""
    return [f.key for f in table.data_fields() if f.type == "file" and f.key not in hidden]


def openapi_paths(table: Table, hidden: frozenset[str], responses, param) -> dict[str, Any]:
    """The file endpoints of a table with file fields (openapi.py's helpers)."""
    keys = file_fields(table, hidden)
    if not keys:
        return {}
    key = table.key
    tag = [key]
    record = {"$ref": f"#/components/schemas/{key}.record"}
    params = [
        param("id", "path", {"type": "integer", "minimum": 1}, "The record's id"),
        param("field", "path", {"type": "string", "enum": keys}, "The file field"),
    ]
    version = param(
        "version",
        "query",
        {"type": "integer", "minimum": 1},
        "Refuse (409) if the record changed since this version",
    )
    download = responses("200", None, "403", "404")
    download["200"] = {
        "description": "The file, as an attachment (Content-Disposition) with its name",
        "content": {"*/*": {"schema": {}}},
    }
    return {
        f"/tables/{key}/records/{{id}}/files/{{field}}": {
            "get": {
                "operationId": f"{key}.file.download",
                "summary": "Download the field's file (always as an attachment)",
                "tags": tag,
                "parameters": params,
                "responses": download,
            },
            "post": {
                "operationId": f"{key}.file.upload",
                "summary": "Upload a file into the field (multipart/form-data, part `file`)",
                "tags": tag,
                "parameters": [*params, version],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": [PART],
                                "properties": {
                                    PART: {
                                        "type": "string",
                                        "format": "binary",
                                        "contentMediaType": OCTET,
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": responses("200", record, "403", "404", "409", "413", "415", "422"),
            },
            "delete": {
                "operationId": f"{key}.file.remove",
                "summary": "Empty the field",
                "tags": tag,
                "parameters": [*params, version],
                "responses": responses("200", record, "403", "404", "409", "422"),
            },
        }
    }
