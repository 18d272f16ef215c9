"""An import's rows as field values, and the preview: the mapping of columns to
fields, the conversion of every cell by the field types' own ``parse_text`` (the
conversion a form uses; links also by the target's name), and the dry run, the
records service's ``bulk_create`` in a transaction that is always rolled back
(every row, link, unique value, validation rule and permission checked, nothing
kept)."""

from __future__ import annotations

from typing import Any

from ...platform.errors import CubebaseError, ValidationError
from ...platform.fieldtypes import ConversionError
from ...platform.records import RecordsService
from ...platform.schema import Field, Table
from .common import visible_fields
from .importmatch import LinkNames, find_duplicates, link_names

SHOWN_PROBLEM_ROWS = 100  # rows with problems listed (and editable) at once
DUPLICATE_HINTS = ("appears twice in this batch", "is already used by another record")


def importable_fields(svc: RecordsService, table: Table) -> list[Field]:
    return [f for f in visible_fields(svc, table) if f.writable and f.type != "file"]


def _norm(s: str) -> str:
    return "".join(c for c in s.lower() if c.isalnum())


def guess_mapping(header: list[str], fields: list[Field]) -> list[str]:
    """A field key (or "") per column: the field whose key or label the column names."""
    by_name: dict[str, str] = {}
    for f in fields:
        by_name.setdefault(_norm(f.label), f.key)
        by_name.setdefault(_norm(f.key), f.key)
    used: set[str] = set()
    out = []
    for h in header:
        key = by_name.get(_norm(h), "")
        if key in used:
            key = ""
        used.add(key)
        out.append(key)
    return out


def convert_rows(
    svc: RecordsService, table: Table, state: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[int, dict[str, str]]]:
    """Field values for every row (by the field types' ``parse_text``; links also by
    the target's display name, looked up through the records service), and the cells
    that did not convert: {row index: {field key: message}}."""
    mapping = [(i, table.fields[k]) for i, k in enumerate(state["mapping"]) if k in table.fields]
    rows = state["rows"]
    names = _link_names(svc, mapping, rows)
    values: list[dict[str, Any]] = []
    problems: dict[int, dict[str, str]] = {}
    for r, row in enumerate(rows):
        out: dict[str, Any] = {}
        for i, f in mapping:
            text = row[i + 1]
            try:
                if f.link_kind in ("one", "many") and text.strip():
                    out[f.key] = _link_value(f, text, names)
                else:
                    out[f.key] = f.ftype.parse_text(f, text)
            except ConversionError as exc:
                problems.setdefault(r, {})[f.key] = str(exc)
        values.append(out)
    return values, problems


def _link_names(svc: RecordsService, mapping, rows) -> dict[str, LinkNames]:
    """For link columns given by name (or another unique value of the target, such
    as a user's e-mail): the target's records by those values, per target."""
    out: dict[str, LinkNames] = {}
    for i, f in mapping:
        if f.link_kind not in ("one", "many") or f.target_key is None:
            continue
        wanted: set[str] = set()
        for row in rows:
            parts = row[i + 1].split(",") if f.link_kind == "many" else [row[i + 1]]
            wanted.update(p.strip() for p in parts if p.strip() and not p.strip().isdigit())
        found = link_names(svc, svc.table(f.target_key), wanted)
        if f.target_key in out:
            for name, ids in found.ids.items():
                for rec_id in ids:
                    out[f.target_key].add(name, rec_id)
        else:
            out[f.target_key] = found
    return out


def _link_value(f: Field, text: str, names: dict[str, LinkNames]) -> Any:
    known = names.get(f.target_key or "") or LinkNames()
    found = known.ids
    parts = [p.strip() for p in text.split(",")] if f.link_kind == "many" else [text.strip()]
    ids: list[Any] = []
    for p in parts:
        if not p:
            continue
        if p.isdigit():
            ids.append(p)
            continue
        hits = found.get(p.lower(), [])
        if not hits:
            raise ConversionError(f"no record {known.how} `{p[:60]}`")
        if len(hits) > 1:
            raise ConversionError(f"{len(hits)} records are named `{p[:60]}`; give its id")
        ids.append(hits[0])
    return f.ftype.to_python(f, ids if f.link_kind == "many" else (ids[0] if ids else None))


def check_rows(
    platform, actor, table_key: str, state: dict[str, Any]
) -> tuple[dict[int, dict[str, str]], list[str]]:
    """The dry run: every row through the records service's ``bulk_create`` as
    ``actor``, in a transaction that is rolled back whatever happens. Returns the
    problems per row ({row index: {field key or "": message}}) and general ones."""
    with platform.session(write=True) as session:
        try:
            svc = platform.records(session, actor)
            table = svc.table(table_key)
            values, problems = convert_rows(svc, table, state)
            find_duplicates(svc, table, state.get("match", []), state["rows"], values, problems)
            general: list[str] = []
            try:
                svc.bulk_create(table.key, values)
            except ValidationError as exc:
                _merge(problems, exc, 0)
            except CubebaseError as exc:
                general.append(exc.message)
            return problems, general
        finally:
            session.rollback()


def _merge(problems: dict[int, dict[str, str]], exc: ValidationError, offset: int) -> None:
    for p in exc.problems:
        row = p.extra.get("row")
        if not isinstance(row, int):
            continue
        mine = problems.setdefault(row + offset, {})
        key = p.field or ""
        if key in mine:
            continue  # the cell's own conversion problem says it already
        message = p.message
        for hint in DUPLICATE_HINTS[:1]:
            message = message.replace(hint, "appears twice in this file")
        mine[key] = message
