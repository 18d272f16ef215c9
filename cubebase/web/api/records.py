"""Records: list, create, get, update, delete, restore, history and bulk writes.

Every read and write goes through the records service (permissions, lock rules,
validation, history, optimistic locking, trash); nothing here builds a query on
a user table.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, url_for

from ...platform.errors import BadRequest, CubebaseError, ValidationError
from ...platform.listing import Condition
from ...platform.records import MAX_PAGE, FormulaFilter, Record, RecordsService
from ...platform.schema import Table
from . import bp, error_response, json_body, writes
from .auth import db_session
from .visibility import service, visible_table

DEFAULT_LIMIT = 50
EXPANDABLE = ("one", "many")
RECORD_KEYS = frozenset({"fields"})
UPDATE_KEYS = frozenset({"fields", "version"})
BULK_ITEM_KEYS = frozenset({"id", "version", "fields"})


# --- query string -----------------------------------------------------------------
def _text_arg(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"Give `{name}` once")
    value = values[0] if values else None
    return value if value else None


def _list_arg(name: str) -> list[str] | None:
    raw = _text_arg(name)
    if raw is None:
        return None
    out: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out or None


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = _text_arg(name)
    if raw is None:
        return default
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise BadRequest(f"`{name}` must be a whole number from {low} to {high}")
    return int(raw)


def _bool_arg(name: str) -> bool:
    raw = _text_arg(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise BadRequest(f"`{name}` must be true or false")


def _expand_arg(table: Table) -> list[str]:
    keys = _list_arg("expand") or []
    for key in keys:
        f = table.fields.get(key)
        if f is None:
            raise BadRequest(f"Cannot expand `{key}`: table `{table.key}` has no such field")
        if f.link_kind not in EXPANDABLE:
            raise BadRequest(f"Cannot expand `{key}`: it is not a link to other records")
    if len(keys) > 10:
        raise BadRequest("Expand at most 10 fields")
    return keys


# --- output -----------------------------------------------------------------------
def _expand(
    svc: RecordsService, table: Table, records: list[Record], docs: list[dict], keys: list[str]
) -> None:
    """Replace link ids by the linked records' JSON, read through the records service
    as the caller: a linked record the caller cannot read stays a bare id."""
    for key in keys:
        f = table.fields[key]
        ids: set[int] = set()
        for r in records:
            v = r.values.get(key)
            if isinstance(v, list):
                ids.update(v)
            elif v is not None:
                ids.add(v)
        if not ids:
            continue
        target = svc.table(f.target_key)
        found: dict[int, dict] = {}
        wanted = sorted(ids)
        for start in range(0, len(wanted), MAX_PAGE):
            chunk = wanted[start : start + MAX_PAGE]
            page = svc.list(target.key, where=Condition("id", "in", chunk), limit=len(chunk))
            for linked in page.records:
                found[linked.id] = linked.to_json(target)
        for doc in docs:
            value = doc["fields"].get(key)
            if isinstance(value, list):
                doc["fields"][key] = [found.get(i, i) for i in value]
            elif value is not None:
                doc["fields"][key] = found.get(value, value)


def _fields_with(fields: list[str] | None, expand: list[str]) -> list[str] | None:
    if fields is None:
        return None
    return fields + [k for k in expand if k not in fields]


def _record_url(table: str, record_id: int) -> str:
    return url_for("api.get_record", table=table, record_id=record_id)


# --- endpoints ----------------------------------------------------------------------
@bp.get("/tables/<table>/records")
def list_records(table: str):
    svc = service()
    t = visible_table(svc, table)
    formula = _text_arg("filter")
    fields = _list_arg("fields")
    expand = _expand_arg(t)
    fields = _fields_with(fields, expand)
    page = svc.list(
        t.key,
        where=FormulaFilter(formula) if formula is not None else None,
        sort=_text_arg("sort"),
        limit=_int_arg("limit", DEFAULT_LIMIT, 1, MAX_PAGE),
        cursor=_text_arg("cursor"),
        fields=fields,
        trashed=_bool_arg("trashed"),
    )
    docs = [r.to_json(t, fields) for r in page.records]
    if expand:
        _expand(svc, t, page.records, docs, expand)
    return jsonify({"records": docs, "next_cursor": page.next_cursor})


@bp.post("/tables/<table>/records")
@writes
def create_record(table: str):
    svc = service()
    t = visible_table(svc, table)
    values = _values(json_body(), RECORD_KEYS)
    record = svc.create(t.key, values)
    db_session().commit()
    resp = jsonify(record.to_json(t))
    resp.status_code = 201
    resp.headers["Location"] = _record_url(t.key, record.id)
    return resp


@bp.get("/tables/<table>/records/<record_id>")
def get_record(table: str, record_id: str):
    svc = service()
    t = visible_table(svc, table)
    expand = _expand_arg(t)
    fields = _list_arg("fields")
    record = svc.get(t.key, record_id)
    doc = record.to_json(t, _fields_with(fields, expand))
    if expand:
        _expand(svc, t, [record], [doc], expand)
    return jsonify(doc)


@bp.patch("/tables/<table>/records/<record_id>")
@writes
def update_record(table: str, record_id: str):
    svc = service()
    t = visible_table(svc, table)
    body = json_body()
    values = _values(body, UPDATE_KEYS)
    version = _version(body.get("version"))
    record = svc.update(t.key, record_id, values, version=version)
    db_session().commit()
    return jsonify(record.to_json(t))


@bp.delete("/tables/<table>/records/<record_id>")
@writes
def delete_record(table: str, record_id: str):
    svc = service()
    t = visible_table(svc, table)
    version = _int_arg("version", None, 1, 2**31 - 1)
    svc.delete(t.key, record_id, version=version)
    db_session().commit()
    return "", 204


@bp.post("/tables/<table>/records/<record_id>/restore")
@writes
def restore_record(table: str, record_id: str):
    svc = service()
    t = visible_table(svc, table)
    record = svc.restore(t.key, record_id)
    db_session().commit()
    return jsonify(record.to_json(t))


@bp.get("/tables/<table>/records/<record_id>/history")
def record_history(table: str, record_id: str):
    svc = service()
    t = visible_table(svc, table)
    return jsonify({"history": svc.history(t.key, record_id)})


@bp.post("/tables/<table>/records/bulk")
@writes
def bulk_write(table: str):
    """Create (items without ``id``) and update (items with ``id``) up to
    ``max_bulk_rows`` records in one transaction: all of them, or none."""
    svc = service()
    t = visible_table(svc, table)
    body = json_body()
    unknown = sorted(set(body) - {"records"})
    items = body.get("records")
    if unknown or not isinstance(items, list):
        raise BadRequest('Send {"records": [{"fields": {...}}, {"id": 7, "fields": {...}}, ...]}')
    limit = current_app.extensions["cubebase"].config.max_bulk_rows
    if len(items) > limit:
        raise BadRequest(f"Send at most {limit:,} records in one call (got {len(items):,})")
    creates: list[tuple[int, dict]] = []
    updates: list[tuple[int, Any, int | None, dict]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - BULK_ITEM_KEYS:
            raise BadRequest(
                f"Record {i}: give an object with `fields` (and `id`, `version` to update)",
                [{"row": i}],
            )
        try:
            values = _values(item, BULK_ITEM_KEYS)
            version = _version(item.get("version"))
        except BadRequest as exc:
            raise BadRequest(f"Record {i}: {exc.message}", [{"row": i}]) from None
        if "id" in item:
            updates.append((i, item["id"], version, values))
        elif version is not None:
            raise BadRequest(f"Record {i}: `version` goes with `id`", [{"row": i}])
        else:
            creates.append((i, values))

    problems: list[tuple[int, dict]] = []
    worst: CubebaseError | None = None
    results: dict[int, dict] = {}
    created_ids: list[int] = []
    if creates:
        try:
            created_ids = svc.bulk_create(t.key, [values for _, values in creates])
        except ValidationError as exc:
            worst = exc
            for d in exc.details:
                row = creates[d.get("row", 0)][0]
                problems.append((row, {**d, "row": row, "code": exc.code}))
    for i, record_id, version, values in updates:
        try:
            results[i] = svc.update(t.key, record_id, values, version=version).to_json(t)
        except CubebaseError as exc:
            if worst is None or (
                not isinstance(worst, ValidationError) and isinstance(exc, ValidationError)
            ):
                worst = exc
            for d in exc.details or [{}]:
                problems.append((i, {"row": i, "code": exc.code, "message": exc.message, **d}))
    if worst is not None:
        details = [d for _, d in sorted(problems, key=lambda p: p[0])]
        rows = sorted({i for i, _ in problems})
        return error_response(
            worst.code,
            f"Nothing was saved: {len(rows)} of {len(items)} records have problems "
            f"(rows {', '.join(map(str, rows[:20]))}{', ...' if len(rows) > 20 else ''})",
            worst.http_status,
            details,
        )
    if created_ids:
        found: dict[int, dict] = {}
        for start in range(0, len(created_ids), MAX_PAGE):
            chunk = created_ids[start : start + MAX_PAGE]
            page = svc.list(t.key, where=Condition("id", "in", chunk), limit=len(chunk))
            found.update((r.id, r.to_json(t)) for r in page.records)
        for (i, _), rid in zip(creates, created_ids, strict=True):
            results[i] = found.get(rid) or {"id": rid}
    db_session().commit()
    return jsonify({"records": [results[i] for i in range(len(items))]})


# --- request bodies -------------------------------------------------------------------
def _values(body: dict, allowed: frozenset[str]) -> dict:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"Unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown[:5]))}: "
            'send {"fields": {field: value, ...}}'
        )
    values = body.get("fields")
    if not isinstance(values, dict):
        raise BadRequest('Send the values as {"fields": {field: value, ...}}')
    return values


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise BadRequest("`version` must be the record's version, a whole number")
    return value
