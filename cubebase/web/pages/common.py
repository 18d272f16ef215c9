"""What every page needs: the request's records service, the tables and fields
the user may see, and values shown as text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import sqlalchemy as sa
from flask import current_app, g
from markupsafe import Markup, escape

from ...platform.errors import Forbidden, NotFound
from ...platform.fieldtypes import FieldType
from ...platform.listing import Condition
from ...platform.records import MAX_PAGE, Record, RecordsService
from ...platform.schema import Field, Table
from ...platform.schema_changes import RULE_KEYS

SYSTEM_TYPES = frozenset({"created_at", "created_by", "updated_at", "updated_by"})
LINKISH = frozenset({"one", "many"})
_HTML_SPECIAL = re.compile(r"[&<>\"']")
NUMERIC_TYPES = frozenset({"number", "currency", "integer", "autonumber"})


def service() -> RecordsService:
    """The records service for the signed-in user, in the request's session."""
    svc = g.get("records")
    if svc is None:
        svc = g.records = current_app.extensions["cubebase"].records(g.db, g.actor)
    return svc


def commit() -> None:
    g.db.commit()


def readable(svc: RecordsService, table: Table) -> bool:
    """Whether one of the user's roles has a read rule on the table that is not FALSE."""
    return not isinstance(svc.access.condition(table, "read"), sa.sql.elements.False_)


def visible_tables(svc: RecordsService) -> list[Table]:
    """Tables the user may read some record of (admins: every table)."""
    return sorted(
        (t for t in svc.schema.tables.values() if readable(svc, t)),
        key=lambda t: (t.system, (t.app or ""), t.label.lower()),
    )


def visible_table(svc: RecordsService, key: str) -> Table:
    table = svc.table(key)
    if not readable(svc, table):
        raise NotFound(f"There is no table `{key}`")
    return table


def may_create(svc: RecordsService, table: Table) -> bool:
    """Whether a role of the user may add records to the table (the records
    service's ``rights``): pages offer *New record* and *Import* only then."""
    return svc.rights(table.key).create


def require_create(svc: RecordsService, table: Table) -> None:
    """The new-record form and the import refuse up front (403 page) a user who may
    not add records, instead of a form whose save would be refused."""
    if not may_create(svc, table):
        raise Forbidden(f"You may not add records to {table.label}.")


def visible_fields(svc: RecordsService, table: Table) -> list[Field]:
    """The table's fields without the ones hidden from the user on every record."""
    hidden = svc.access.hidden_fields(table)[0]
    return [f for f in table.fields.values() if f.key not in hidden]


def always_visible(svc: RecordsService, table: Table) -> list[Field]:
    """Fields the user sees on every record (not hidden on some by a field rule)."""
    hidden, sometimes = svc.access.hidden_fields(table)
    return [f for f in table.fields.values() if f.key not in hidden and f.key not in sometimes]


def column_fields(svc: RecordsService, table: Table) -> list[Field]:
    """Fields that can be a grid column (reverse links are lists, shown on record pages)."""
    return [f for f in visible_fields(svc, table) if f.link_kind not in ("reverse", "reverse_many")]


def default_columns(svc: RecordsService, table: Table) -> list[Field]:
    cols = [f for f in column_fields(svc, table) if not f.system]
    return cols[:7] or column_fields(svc, table)[:7]


def select_fields(svc: RecordsService, table: Table) -> list[Field]:
    return [f for f in column_fields(svc, table) if f.type == "select"]


def record_title(table: Table, record: Record) -> str:
    if table.display_field and record.values.get(table.display_field) not in (None, ""):
        f = table.fields[table.display_field]
        return f.ftype.display(f, record.values[table.display_field])
    return f"{table.label} #{record.id}"


class LinkLabels:
    """Display names of linked records, read through the records service in one list
    per target table; a record the user may not read shows as its id."""

    def __init__(self, svc: RecordsService):
        self.svc = svc
        self.names: dict[tuple[str, int], str] = {}

    def load(self, table: Table, fields: Iterable[Field], records: Iterable[Record]) -> None:
        records = list(records)
        for f in fields:
            if f.link_kind not in LINKISH or f.target_key is None:
                continue
            ids: set[int] = set()
            for r in records:
                v = r.values.get(f.key)
                if isinstance(v, list):
                    ids.update(v)
                elif isinstance(v, int):
                    ids.add(v)
            self.fetch(f.target_key, ids)

    def fetch(self, target_key: str, ids: Iterable[int]) -> None:
        wanted = sorted(i for i in set(ids) if (target_key, i) not in self.names)
        if not wanted:
            return
        target = self.svc.table(target_key)
        if not readable(self.svc, target):
            return
        shown = [target.display_field] if target.display_field else []
        if shown and shown[0] not in {f.key for f in always_visible(self.svc, target)}:
            shown = []
        for start in range(0, len(wanted), MAX_PAGE):
            chunk = wanted[start : start + MAX_PAGE]
            page = self.svc.list(
                target.key, where=Condition("id", "in", chunk), limit=len(chunk), fields=shown
            )
            for r in page.records:
                self.names[(target_key, r.id)] = record_title(target, r)

    def name(self, target_key: str, rid: int) -> str | None:
        return self.names.get((target_key, rid))


def display_value(f: Field, value: Any, links: LinkLabels | None = None) -> str:
    """A value as text for a page or an export (never HTML: the template escapes it)."""
    return column_display(f, links)(value)


def column_display(f: Field, links: LinkLabels | None = None) -> Callable[[Any], str]:
    """``display_value`` for one column, as a function of the value: what kind of
    field it is gets decided once, not for each of the 50 values of a grid column."""
    if f.link_kind in LINKISH:
        return partial(_link_names, f, links)
    result = f.config.get("result_type") if f.type == "formula" else None
    if f.type == "boolean":
        return _yes_no
    if result == "boolean":
        return partial(_formula_yes_no, f)
    if f.type == "currency":
        return partial(_currency, f)
    if result == "number":
        return partial(_formula_number, f)
    return partial(_scalar, f, type(f.ftype).display is FieldType.display)


def numeric_column(f: Field) -> bool:
    """Whether a column holds numbers (shown right-aligned)."""
    if f.type == "formula":
        return f.config.get("result_type") == "number"
    return f.type in NUMERIC_TYPES and f.link_kind is None


def _blank(value: Any) -> bool:
    return value is None or value == [] or value == ""


def _link_names(f: Field, links: LinkLabels | None, value: Any) -> str:
    if _blank(value):
        return ""
    names = []
    for i in value if isinstance(value, list) else [value]:
        name = links.name(f.target_key, i) if links else None
        names.append(name if name is not None else f"#{i}")
    return ", ".join(names)


def _yes_no(value: Any) -> str:
    return "" if _blank(value) else ("Yes" if value else "No")


def _formula_yes_no(f: Field, value: Any) -> str:
    return ("Yes" if value else "No") if type(value) is bool else _scalar(f, False, value)


def _currency(f: Field, value: Any) -> str:
    if type(value) is Decimal:
        return f"{value:,.2f}"
    return _scalar(f, False, value)


def _formula_number(f: Field, value: Any) -> str:
    """A computed number without the trailing zeros of SQL division (``amount / 1000``
    gives 1.5463100000000000 on PostgreSQL): 1.54631."""
    if type(value) is Decimal:
        text = str(value)
        if "E" in text:
            return format(value.normalize(), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return _scalar(f, False, value)


def _scalar(f: Field, plain: bool, value: Any) -> str:
    if type(value) is str and plain:
        return value
    if _blank(value):
        return ""
    if isinstance(value, datetime):
        return value.astimezone(f.timezone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return f.ftype.display(f, value)


def _escaped(text: str) -> str:
    """``escape``, skipped for the many texts (numbers, dates, most names) that have
    nothing to escape."""
    return escape(text) if _HTML_SPECIAL.search(text) else text


def table_rows(columns: list[Field], records: list[Record], links: LinkLabels | None):
    """Each record with its cells as HTML, for a grid: ``(record, cells)``. Each
    column's display function is chosen once for the page and each text escaped
    here, once: a page of 28 columns has 1,400 cells, and a template call and
    escape per cell cost more than the rest of the page's Python."""
    plan = [
        (f.key, '<td class="num">' if numeric_column(f) else "<td>", column_display(f, links))
        for f in columns
    ]
    return [
        (
            r,
            Markup(  # noqa: S704 - every value is escaped; the tags are constants
                "".join([f"{td}{_escaped(show(r.values.get(key)))}</td>" for key, td, show in plan])
            ),
        )
        for r in records
    ]


def input_text(f: Field, value: Any) -> str:
    """A value as a form input holds it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(f.timezone).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def save_table_setting(t: Table, name: str, value: list | None) -> None:
    """Replace one of a table's settings (charts, shared views; the rest kept) as a
    schema change; an empty value removes it."""
    config = {k: v for k, v in (t.config or {}).items() if k not in RULE_KEYS}
    if value:
        config[name] = value
    else:
        config.pop(name, None)
    g.db.rollback()  # the request's session holds nothing to keep; frees SQLite's lock
    with current_app.extensions["cubebase"].schema_editor() as editor:
        editor.update_table(t.key, config=config)
