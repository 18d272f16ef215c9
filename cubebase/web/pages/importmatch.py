"""Matching an import's rows to records: link cells given by a name or another
unique value of the target (a salesperson's e-mail for a user field), and rows
that repeat a record already in the file or in the table on fields the uploader
chose ("the same name and phone"), which a unique rule cannot express because
two companies may share a name.

Every read goes through the records service as the uploader, so a duplicate is
found only among the records they may see, and a link only to records they may
see (see docs/web.md, "Import")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...platform.fieldtypes import ConversionError
from ...platform.listing import Condition
from ...platform.records import MAX_PAGE, RecordsService
from ...platform.schema import Field, Table
from .common import always_visible, readable

DUPLICATE = "_duplicate"  # the problem key of a row that repeats another (never a field key)
LOOKUP_TYPES = frozenset({"text", "email", "phone"})  # unique fields a link cell may give
UNMATCHABLE = frozenset({"multi_select", "file", "long_text"})


@dataclass
class LinkNames:
    """The records of a link's target as the cells of a file name them:
    lowercase name or unique value -> ids, and how to say "not found"."""

    ids: dict[str, list[int]] = field(default_factory=dict)
    how: str = "is named"

    def add(self, text: str, record_id: int) -> None:
        found = self.ids.setdefault(text.strip().lower(), [])
        if record_id not in found:
            found.append(record_id)


def lookup_fields(svc: RecordsService, target: Table) -> list[Field]:
    """The target's fields a link cell may give: its display field, then its unique
    text, e-mail and phone fields, of those the user sees on every record."""
    seen = {f.key: f for f in always_visible(svc, target)}
    out = [seen[target.display_field]] if target.display_field in seen else []
    out += [
        f
        for f in seen.values()
        if f.unique and f.type in LOOKUP_TYPES and f.key != target.display_field
    ]
    return out


def link_names(svc: RecordsService, target: Table, wanted: Iterable[str]) -> LinkNames:
    """The ids of the records named by ``wanted`` (cells that are not ids), by each
    lookup field, read as the user through the records service."""
    out = LinkNames()
    if not readable(svc, target):
        return out
    keys = lookup_fields(svc, target)
    if len(keys) > 1:
        out.how = "is named or has the " + " or ".join(f.label for f in keys[1:])
    texts = sorted(set(wanted))
    for f in keys:
        values = []
        for t in texts:
            try:
                if f.ftype.parse_text(f, t) is not None:
                    values.append(t)
            except ConversionError:
                continue  # not an e-mail address, say: it names no record by this field
        for start in range(0, len(values), MAX_PAGE):
            chunk = values[start : start + MAX_PAGE]
            where = Condition(f.key, "in", chunk)
            for rec in svc.iter_records(target.key, where=where, fields=[f.key]):
                value = rec.values.get(f.key)
                if value is not None:
                    out.add(str(value), rec.id)
    return out


# --- duplicates on chosen fields -----------------------------------------------------------
def matchable(fields: Iterable[Field]) -> list[Field]:
    """Importable fields that can be compared to find a duplicate row."""
    return [f for f in fields if f.type not in UNMATCHABLE and f.link_kind in (None, "one")]


def _norm(f: Field, value: Any) -> Any:
    """The value as it is compared: text ignoring case and runs of spaces, a phone
    number by its digits only, a link by the record's id; None when blank."""
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if value is None or value == "":
        return None
    if f.type == "phone":
        return "".join(c for c in str(value) if c.isdigit()) or None
    if isinstance(value, str):
        return " ".join(value.split()).casefold() or None
    return value


def find_duplicates(
    svc: RecordsService,
    table: Table,
    match: list[str],
    rows: list[list[str]],
    values: list[dict[str, Any]],
    problems: dict[int, dict[str, str]],
) -> None:
    """Mark the rows whose ``match`` fields all equal those of an existing record
    the user sees, or of an earlier row of the file (``problems[row][DUPLICATE]``).
    A row with any of these fields blank (or not readable) is not compared."""
    fields = [table.fields[k] for k in match if k in table.fields]
    if not fields:
        return
    keys: dict[int, tuple] = {}
    for r, vals in enumerate(values):
        key = tuple(_norm(f, vals.get(f.key)) for f in fields)
        if all(k is not None for k in key):
            keys[r] = key
    if not keys:
        return
    existing = _existing(svc, table, fields, [values[r] for r in keys])
    labels = " and ".join(f.label for f in fields)
    first: dict[tuple, int] = {}
    for r, key in keys.items():
        hit = existing.get(key)
        if hit is not None:
            rec_id, name = hit
            problems.setdefault(r, {})[DUPLICATE] = (
                f"duplicate: {name or 'a record'} (#{rec_id}) already has the same {labels}"
            )
        elif key in first:
            problems.setdefault(r, {})[DUPLICATE] = (
                f"duplicate: row {rows[first[key]][0]} has the same {labels}"
            )
        else:
            first[key] = r


def _existing(
    svc: RecordsService, table: Table, fields: list[Field], values: list[dict[str, Any]]
) -> dict[tuple, tuple[int, str]]:
    """Existing records whose first compared field (a name rather than a phone
    number when there is one) equals a row's value as stored, by their compared key."""
    anchor = next((f for f in fields if f.type != "phone"), fields[0])
    wanted_set: set[Any] = set()
    for v in values:
        value = v[anchor.key]
        value = getattr(value, "id", value) if anchor.link_kind == "one" else value
        wanted_set.add(value)
        if isinstance(value, str):  # as stored by a form that trims, or as typed
            wanted_set.add(" ".join(value.split()))
    wanted = sorted(wanted_set, key=str)
    visible = {f.key for f in always_visible(svc, table)}
    shown = table.display_field if table.display_field in visible else None
    read = list(dict.fromkeys([f.key for f in fields] + ([shown] if shown else [])))
    out: dict[tuple, tuple[int, str]] = {}
    for start in range(0, len(wanted), MAX_PAGE):
        where = Condition(anchor.key, "in", wanted[start : start + MAX_PAGE])
        for rec in svc.iter_records(table.key, where=where, fields=read):
            key = tuple(_norm(f, rec.values.get(f.key)) for f in fields)
            if all(k is not None for k in key):
                name = rec.values.get(shown) if shown else None
                out.setdefault(key, (rec.id, str(name) if name is not None else ""))
    return out
