"""The state of a view from the query string: columns, sort, formula filter, quick
search, conditions (``eq.FIELD=value``), grouping and paging. Grids, kanban boards
and exports read it the same way, so an export is exactly the view on screen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import request

from ...platform.errors import BadRequest
from ...platform.listing import TEXT_TYPES, Condition
from ...platform.records import FormulaFilter, RecordsService
from ...platform.schema import Field, Table
from .common import always_visible, column_fields, default_columns

MAX_TRAIL = 50  # previous pages remembered in the URL
MAX_SEARCH = 200


@dataclass
class ViewState:
    table: Table
    columns: list[Field]
    sort: str | None = None
    filter: str = ""
    q: str = ""
    eq: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    cursor: str | None = None
    trail: list[str] = field(default_factory=list)
    chosen: bool = False  # columns picked by the user (kept in links)
    _encoded: dict[tuple[str, Any], str] = field(default_factory=dict, repr=False, compare=False)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for a link to this view with ``changes``."""
        out: dict[str, Any] = {}
        if self.chosen:
            out["fields"] = ",".join(f.key for f in self.columns)
        if self.sort:
            out["sort"] = self.sort
        if self.filter:
            out["filter"] = self.filter
        if self.q:
            out["q"] = self.q
        if self.group:
            out["group"] = self.group
        for k, v in self.eq.items():
            out[f"eq.{k}"] = v
        out.update(changes)
        return {
            k: v
            for k, v in out.items()
            if v is not None and (k.startswith("eq.") or v not in ("", []))
        }

    def query(self, **changes: Any) -> str:
        """``urlencode(self.args(**changes), doseq=True)``, each argument encoded once
        per request: a grid links every column heading to the view sorted by it, and
        the chosen columns are in each of those links."""
        parts = []
        for k, v in self.args(**changes).items():
            if type(v) is str:
                pair = self._encoded.get((k, v))
                if pair is None:
                    pair = self._encoded[(k, v)] = urlencode({k: v})
                parts.append(pair)
            else:
                parts.append(urlencode({k: v}, doseq=True))
        return "&".join(p for p in parts if p)

    def sort_link(self, key: str) -> str:
        new = "-" + key if self.sort == key else key
        return self.query(sort=new)

    def sort_mark(self, key: str) -> str:
        if self.sort == key:
            return "▲"
        if self.sort == "-" + key:
            return "▼"
        return ""

    def where(self, svc: RecordsService) -> list:
        """The records service filters of this view (formula, conditions, search)."""
        out: list = []
        if self.filter.strip():
            out.append(FormulaFilter(self.filter))
        for key, value in self.eq.items():
            out.append(Condition(key, "isblank") if value == "" else Condition(key, "eq", value))
        if self.q.strip():
            out.append(quick_search(svc, self.table, self.q.strip()))
        return out


def parse_view(svc: RecordsService, table: Table, *, paging: bool = True) -> ViewState:
    args = request.args
    allowed = {f.key: f for f in column_fields(svc, table)}
    chosen = False
    raw_fields = args.get("fields", "").strip()
    picked = [k for k in args.getlist("col") if k]
    if raw_fields or picked:
        columns = []
        for key in picked or raw_fields.split(","):
            f = allowed.get(key.strip())
            if f is not None and f not in columns:
                columns.append(f)
        chosen = bool(columns)
        if not columns:
            columns = default_columns(svc, table)
    else:
        columns = default_columns(svc, table)
    sort = args.get("sort", "").strip() or None
    # a shared view of the app format may sort by several columns ("stage,-amount")
    for part in (sort or "").split(","):
        key = part.strip().lstrip("-")
        if sort is not None and key not in allowed and key != "id":
            raise BadRequest(f"Cannot sort by `{key}`: there is no such column")
    eq: dict[str, str] = {}
    for name, value in args.items(multi=True):
        if name.startswith("eq."):
            key = name[3:]
            if key in allowed and allowed[key].column_name is not None:
                eq[key] = value
    group = args.get("group", "").strip() or None
    if group is not None and (group not in allowed or allowed[group].type != "select"):
        group = None
    trail = [c for c in args.getlist("back")][-MAX_TRAIL:] if paging else []
    return ViewState(
        table=table,
        columns=columns,
        sort=sort,
        filter=args.get("filter", "")[:10_000],
        q=args.get("q", "")[:MAX_SEARCH],
        eq=eq,
        group=group,
        cursor=(args.get("cursor") or None) if paging else None,
        trail=trail,
        chosen=chosen,
    )


def quick_search(svc: RecordsService, table: Table, text: str):
    """Any text field the user sees on every record contains ``text`` (any case).
    Fields hidden on some records are not searched: a match could reveal them."""
    keys = [
        f for f in always_visible(svc, table) if f.type in TEXT_TYPES and f.column_name is not None
    ]
    needle = text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")

    def build(t: Table) -> sa.ColumnElement:
        terms = [
            sa.func.lower(t.column(f)).contains(needle, escape="/", autoescape=False) for f in keys
        ]
        if text.isdigit():
            terms.append(t.sql.c.id == int(text[:18]))
        return sa.or_(*terms) if terms else sa.false()

    return build
