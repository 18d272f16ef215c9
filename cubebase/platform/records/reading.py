"""The read paths of the records service: get, list (statement templates and keyset
pages), count, related records, history and preview; each limited to what the
actor may read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from typing import Any

import sqlalchemy as sa

from ...formula.to_sql import USER_PARAM
from ..access import singular
from ..errors import (
    BadRequest,
    NotFound,
)
from ..fieldtypes import ConversionError
from ..formulas import context_uses
from ..listing import (
    Condition,
    SortKey,
    condition_expr,
    condition_template,
    decode_cursor,
    encode_cursor,
    keyset_after,
    order_by,
    parse_sort,
    segments,
)
from ..models import HistoryEntry
from ..schema import Field, Table
from .plans import PAGES, NoTemplate, PageTemplate, computed_key, joined, remember, untemplated
from .values import FormulaFilter, Page, Record, Where, record_id_of

MAX_PAGE = 1000


class Reading:
    """Read paths; mixed into ``RecordsService``."""

    # --- reading ---------------------------------------------------------------------
    def get(self, table_key: str, record_id: Any, *, trashed: bool = False) -> Record:
        """One record as the actor may see it; outside their read rule it does not exist."""
        table = self.table(table_key)
        return self._fetch(table, record_id_of(record_id, table), trashed=trashed)

    def _fetch(
        self, table: Table, rid: int, *, trashed: bool | None = False, whole: bool = False
    ) -> Record:
        """A record the actor may read (``trashed``: in the trash; None: either way).
        ``whole``: with every field, hidden ones included, for the service's own rule
        checks and history; never handed to a caller as it is.

        The statement is built once per schema snapshot, rights and shape, with the
        id and the user as parameters (as list templates are), unless a formula of
        the table or a rule reads NOW()."""
        params = {"cb_rid": rid, USER_PARAM: self.actor.user_id}
        rights = self.access.template_key(table)
        uses = self._formula_uses(table, None)
        if rights is None or "now" in uses:
            stmt = self._fetch_statement(table, trashed, whole)
        else:
            day = self.formulas.now().date() if "today" in uses else None
            key = ("fetch", table.id, trashed, whole, rights, day)
            cache = self.schema.formula_cache
            stmt = cache.get(key)
            if stmt is None:
                stmt = cache[key] = self._fetch_statement(table, trashed, whole)
        row = self.session.execute(stmt, params).mappings().first()
        if row is None:
            raise NotFound(
                f"No {singular(table)} with id {rid}" + (" in the trash" if trashed else "")
            )
        reader = self.system() if whole else self
        return reader._load_many_links(table, [reader._record(table, row)])[0]

    def _fetch_statement(self, table: Table, trashed: bool | None, whole: bool) -> sa.Select:
        t = table.sql
        base = [t.c.id == sa.bindparam("cb_rid", type_=t.c.id.type)]
        if trashed is not None:
            base.append(t.c.deleted_at.is_not(None) if trashed else t.c.deleted_at.is_(None))
        read = self.access.condition(table, "read")
        if read is not None:
            base.append(read)
        select = self.system()._select(table) if whole else self._select(table)
        return select.where(*base)

    def _formula_uses(self, table: Table, fields) -> frozenset[str]:
        """What of the request the computed formula fields among ``fields`` (None: all)
        read: "today", "now", "user", "roles" (see ``formulas.context_uses``)."""
        cache = self.schema.formula_cache
        key = ("uses", table.id, fields)
        uses = cache.get(key)
        if uses is None:
            uses = frozenset()
            chosen = (
                table.data_fields()
                if fields is None
                else [table.fields[k] for k in fields if k in table.fields]
            )
            for f in chosen:
                if f.type == "formula" and f.column_name is None:
                    checked = self.formulas.checked(
                        table.key, f.config["formula"], where=f"Formula field `{f.key}`"
                    )
                    uses |= context_uses(checked)
            uses = cache[key] = uses
        return uses

    def _live(self, table: Table, trashed: bool = False, alias=None) -> list[sa.ColumnElement]:
        """The rows a list or count starts from: live (or trashed) ones the actor may read."""
        t = table.sql if alias is None else alias
        base = [t.c.deleted_at.is_not(None) if trashed else t.c.deleted_at.is_(None)]
        read = self.access.condition(table, "read", alias)
        if read is not None:
            base.append(read)
        return base

    def iter_records(
        self,
        table_key: str,
        *,
        where: Where | Sequence[Where] | None = None,
        sort: str | list[str] | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
        page_size: int = MAX_PAGE,
    ) -> Iterator[Record]:
        """The records ``list`` gives, in ``sort`` order, read a page at a time: for
        callers that need every match (sweeps, list reports, bulk changes), at most
        ``limit`` of them."""
        cursor = None
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page = self.list(
                table_key, where=where, sort=sort, limit=size, cursor=cursor, fields=fields
            )
            yield from page.records
            if left is not None:
                left -= len(page.records)
            cursor = page.next_cursor
            if cursor is None:
                return

    def list(
        self,
        table_key: str,
        *,
        where: Where | Sequence[Where] | None = None,
        sort: str | list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
        trashed: bool = False,
    ) -> Page:
        """A page of records in ``sort`` order, continuing after ``cursor``."""
        table = self.table(table_key)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
        page = self._list_by_template(table, where, sort, limit, cursor, fields, trashed)
        if page is not None:
            return page
        # aggregates in filters and sorts read every row: grouped joins, one pass each
        joins: dict = {}
        keys = parse_sort(table, sort, lambda f: self.formulas.field_expr(table, f, joins=joins))
        self._check_sort(table, keys)
        signature = ",".join(
            ("-" if k.desc else "") + (k.field.key if k.field else "id") for k in keys
        )
        after = decode_cursor(signature, cursor, keys) if cursor else None
        if after is not None and len(after) != len(keys) + 1:
            raise BadRequest("The cursor is not valid; start again from the first page")
        t = table.sql
        base = self._live(table, trashed) + self._where(table, where, joins)
        select = self._select(table, fields).add_columns(
            *(k.expr.label(f"_sort{i}") for i, k in enumerate(keys))
        )
        if joins:
            select = select.select_from(joined(t, joins))
        if len(keys) == 1 and not computed_key(keys[0]):
            rows = self._read_segments(select, base, keys[0], t.c.id, after, limit + 1)
        else:
            stmt = select.where(*base)
            if after is not None:
                stmt = stmt.where(keyset_after(keys, t.c.id, after))
            rows = (
                self.session.execute(stmt.order_by(*order_by(keys, t.c.id)).limit(limit + 1))
                .mappings()
                .all()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        records = self._load_many_links(
            table, [self._record(table, r, fields) for r in rows], fields
        )
        next_cursor = None
        if more and rows:
            last = rows[-1]
            values = [last[f"_sort{i}"] for i in range(len(keys))]
            next_cursor = encode_cursor(signature, [*values, last["id"]])
        return Page(records, next_cursor)

    def _list_by_template(
        self, table: Table, where, sort, limit: int, cursor: str | None, fields, trashed: bool
    ) -> Page | None:
        """``list`` through a statement template: the page's statements are built once
        per schema snapshot and shape (table, sort, filter shape, fields, cursor state)
        with bound parameters for the cursor and filter values, and reused by every
        request, as a hand-written prepared statement is (building a statement and
        SQLAlchemy's cache key for it cost more than PostgreSQL's work for a page).
        None: this list has no template (a formula sort, a filter given as SQL, formulas
        that read NOW(), USER() or roles); ``list`` builds its statements itself."""
        cache = self.schema.formula_cache.get(PAGES)
        if cache is None:
            cache = self.schema.formula_cache.setdefault(PAGES, {})
        if sort is not None and not isinstance(sort, str):
            if not isinstance(sort, list | tuple) or not all(isinstance(x, str) for x in sort):
                return None
            sort = tuple(sort)
        skey = ("sort", table.id, sort)
        sorting = cache.get(skey)
        if sorting is None:
            try:
                keys = parse_sort(
                    table, sort if not isinstance(sort, tuple) else list(sort), untemplated
                )
            except NoTemplate:
                return None
            signature = ",".join(
                ("-" if k.desc else "") + (k.field.key if k.field else "id") for k in keys
            )
            sorting = remember(cache, skey, (keys, signature))
        keys, signature = sorting
        self._check_sort(table, keys)
        rights = self.access.template_key(table)
        if rights is None:
            return None
        after = decode_cursor(signature, cursor, keys) if cursor else None
        if after is not None and len(after) != len(keys) + 1:
            raise BadRequest("The cursor is not valid; start again from the first page")
        params: dict[str, Any] = {"_limit": limit + 1, USER_PARAM: self.actor.user_id}
        shapes: list = []
        builds: list = []
        items = () if where is None else where if isinstance(where, list | tuple) else (where,)
        day = None
        for i, w in enumerate(items):
            if isinstance(w, Condition):
                self.access.check_field_readable(table, w.field, "Filter")
                shape, build, values = condition_template(table, w, f"_w{i}")
                params.update(values)
                shapes.append(shape)
                builds.append(build)
            elif isinstance(w, FormulaFilter):
                checked = self.formulas.checked(table.key, w.formula, where="Filter")
                self.access.check_user_formula(table, checked, "Filter")
                uses = context_uses(checked)
                if "now" in uses:
                    return None
                if uses and day is None:
                    day = self.formulas.now().date()
                shapes.append(("formula", w.formula))
                builds.append(w)
            else:
                return None
        if fields is not None:
            fields = tuple(fields)
            if not all(isinstance(k, str) for k in fields):
                return None
        uses = self._formula_uses(table, fields)
        if "now" in uses:
            return None
        if "today" in uses and day is None:
            day = self.formulas.now().date()
        tkey = ("page", table.id, sort, tuple(shapes), fields, trashed, day, rights)
        template = cache.get(tkey)
        if template is None:
            template = remember(
                cache, tkey, self._page_template(table, keys, builds, fields, trashed)
            )
        return template.read(self, params, after, limit, signature)

    def _page_template(
        self, table: Table, keys: list[SortKey], builds: list, fields, trashed: bool
    ) -> PageTemplate:
        t = table.sql
        joins: dict = {}
        base = self._live(table, trashed)
        for b in builds:
            if isinstance(b, FormulaFilter):
                base.append(self._user_condition(table, b.formula, joins))
            else:
                base.append(b())
        select = self._select(table, fields).add_columns(
            *(k.expr.label(f"_sort{i}") for i, k in enumerate(keys))
        )
        if joins:
            select = select.select_from(joined(t, joins))
        reader = []
        if fields is None:
            plan = self._plan(table)
            reader = [(f.key, column, ftype) for f, ftype, column in plan.read + plan.computed]
        else:
            for f in self._fields(table, fields):
                if f.column_name is not None:
                    reader.append((f.key, f.column_name, f.ftype))
                elif f.type == "formula":
                    reader.append((f.key, f"c_{f.id}", f.ftype))
        many = [f for f in self._fields(table, fields) if f.link_kind == "many"]
        _, sometimes = self.access.hidden_fields(table)
        flags = [(f.key, f"_v{f.id}") for f in self._fields(table, fields) if f.key in sometimes]
        return PageTemplate(table, keys, select, base, reader, many, flags)

    def count(
        self,
        table_key: str,
        *,
        where: Where | Sequence[Where] | None = None,
        cap: int | None = None,
    ) -> int:
        """How many records the actor may read match ``where``; with ``cap``, counting
        stops past it (the result is then cap + 1: "more than cap")."""
        ids = self._matching_ids(table_key, where)
        if cap is None:
            stmt = ids.with_only_columns(sa.func.count())
        else:  # stop counting at cap + 1 rows: a big table never waits on an exact count
            stmt = sa.select(sa.func.count()).select_from(ids.limit(cap + 1).subquery())
        return int(self.session.scalar(stmt) or 0)

    def ids(self, table_key: str, *, where: Where | Sequence[Where] | None = None) -> list[int]:
        """The ids of every record the actor may read that matches ``where``, in id order,
        in one statement: for sweeps that then act on each record in its own
        transaction (paging a list instead walks the primary key again for each page,
        testing the filter)."""
        ids = self._matching_ids(table_key, where)
        return list(self.session.scalars(ids.order_by(ids.selected_columns.id)))

    def _matching_ids(self, table_key: str, where) -> sa.Select:
        """SELECT the ids of the live records the actor may read that match ``where``."""
        table = self.table(table_key)
        t = table.sql
        joins: dict = {}
        conds = self._live(table) + self._where(table, where, joins)
        return sa.select(t.c.id).select_from(joined(t, joins)).where(*conds)

    def _read_segments(self, select: sa.Select, base: list, key: SortKey, id_col, after, n: int):
        rows: list = []
        cur = [after[0], after[1]] if after is not None else None
        for cond, order in segments(key, id_col, cur):
            need = n - len(rows)
            if need <= 0:
                break
            stmt = select.where(*base, cond).order_by(*order).limit(need)
            rows.extend(self.session.execute(stmt).mappings().all())
        return rows

    def _where(self, table: Table, where, joins: dict | None = None) -> list[sa.ColumnElement]:
        if where is None:
            return []
        items = where if isinstance(where, list | tuple) else [where]
        out = []
        for w in items:
            if isinstance(w, Condition):
                self.access.check_field_readable(table, w.field, "Filter")
                out.append(condition_expr(table, w))
            elif isinstance(w, FormulaFilter):
                out.append(self._user_condition(table, w.formula, joins))
            elif callable(w) and not isinstance(w, sa.ColumnElement):
                out.append(w(table))
            else:
                out.append(w)
        return out

    def _user_condition(self, table: Table, source: str, joins: dict | None):
        """A filter the actor wrote: it may read only fields the actor can read, and
        every other table it reads is limited to the rows the actor may read."""
        checked = self.formulas.checked(table.key, source, where="Filter")
        self.access.check_user_formula(table, checked, "Filter")
        scope = None if self.access.unlimited else self.access.row_scope
        return self.formulas.condition(table, source, user_scope=scope, joins=joins)

    def _check_sort(self, table: Table, keys: list[SortKey]) -> None:
        for k in keys:
            if k.field is not None:
                self.access.check_field_readable(table, k.field.key, "Sort")

    def _select(self, table: Table, fields: Sequence[str] | None = None) -> sa.Select:
        chosen = self._fields(table, fields)
        computed = [
            self.formulas.field_expr(table, f).label(f"c_{f.id}")
            for f in chosen
            if f.type == "formula" and f.column_name is None  # stored ones are columns
        ]
        _, sometimes = self.access.hidden_fields(table)
        flags = [
            sa.case((sometimes[f.key], sa.true()), else_=sa.false()).label(f"_v{f.id}")
            for f in chosen
            if f.key in sometimes
        ]
        if fields is None:
            return self._plan(table).select.add_columns(*computed, *flags)
        t = table.sql
        cols = [t.c.id, t.c.version, t.c.deleted_at]
        for f in chosen:
            if f.column_name is not None:
                cols.append(table.column(f).label(f.column_name))
        return sa.select(*cols, *computed, *flags)

    def _fields(self, table: Table, fields: Sequence[str] | None) -> list[Field]:
        """The fields a read returns: those asked for (all by default), less the ones
        the actor may never read (absent, as if they did not exist for them)."""
        hidden, _ = self.access.hidden_fields(table)
        if fields is None:
            return [f for f in table.data_fields() if f.key not in hidden]
        out = []
        for k in fields:
            f = table.fields.get(k) if isinstance(k, str) else None
            if f is None:
                raise BadRequest(f"Table `{table.key}` has no field `{k}`")
            if k not in hidden:
                out.append(f)
        return out

    def _record(self, table: Table, row: Mapping, fields: Sequence[str] | None = None) -> Record:
        values: dict[str, Any] = {}
        if fields is None:
            for key, column, read in self._plan(table).readers:
                value = row[column]
                values[key] = value if read is None else read(value)
        else:
            for f in self._fields(table, fields):
                if f.column_name is not None:
                    values[f.key] = f.ftype.from_db(f, row[f.column_name])
                elif f.type == "formula":
                    values[f.key] = f.ftype.from_db(f, row[f"c_{f.id}"])
        _, sometimes = self.access.hidden_fields(table)
        withheld = frozenset(
            k
            for k in sometimes
            if f"_v{table.fields[k].id}" in row and not row[f"_v{table.fields[k].id}"]
        )
        for key in withheld:
            values.pop(key, None)
        return Record(table.key, row["id"], row["version"], values, row["deleted_at"], withheld)

    def preview(
        self, table_key: str, values: Mapping[str, Any], record_id: Any = None
    ) -> dict[str, Any]:
        """Formula fields of a record as a form would save it, by the interpreter:
        what the user sees update live while typing. Nothing is written; input
        that does not convert yet is left out, not an error."""
        table = self.table(table_key)
        record: dict[str, Any] = {}
        if record_id is not None:
            current = self._fetch(table, record_id_of(record_id, table), whole=True)
            record.update(current.values)
            record["id"] = current.id
        for key, raw in (values or {}).items():
            f = table.fields.get(key) if isinstance(key, str) else None
            if f is None or not f.writable:
                continue
            try:
                record[key] = f.ftype.to_python(f, raw)
            except ConversionError:
                record.pop(key, None)
        runtime = self.system().formulas
        out: dict[str, Any] = {}
        readable = self.access.readable_keys(table, record)
        for f in table.fields.values():
            if f.type == "formula" and f.key in readable:
                value = runtime.evaluate(
                    table, f.config["formula"], record, where=f"Formula field `{f.key}`"
                )
                out[f.key] = f.ftype.to_json(f, value)
        return out

    def related(self, table_key: str, record_id: Any, field_key: str) -> list[Record]:
        """The records behind a reverse or many-to-many link of one record."""
        table = self.table(table_key)
        f = table.field(field_key)
        rid = record_id_of(record_id, table)
        kind = f.link_kind
        if kind not in ("reverse", "many", "reverse_many"):
            raise BadRequest(f"`{table_key}.{field_key}` is not a list of related records")
        if not self.access.unlimited:
            self._fetch(table, rid)  # the record itself must be readable (404 otherwise)
            if field_key in self.access.hidden_fields(table)[0]:
                raise BadRequest(f"Table `{table.key}` has no field `{field_key}`")
        target = self.table(f.target_key)
        t = target.sql
        if kind == "reverse":
            fwd = target.field_by_id(f.config["reverse_of"])
            cond = target.column(fwd) == rid
        else:
            j = table.junctions[f.id]
            mine, theirs = (
                ("source_id", "target_id") if kind == "many" else ("target_id", "source_id")
            )
            cond = t.c.id.in_(sa.select(j.c[theirs]).where(j.c[mine] == rid))
        rows = (
            self.session.execute(
                self._select(target).where(cond, *self._live(target)).order_by(t.c.id)
            )
            .mappings()
            .all()
        )
        return self._load_many_links(target, [self._record(target, r) for r in rows])

    def _load_many_links(
        self, table: Table, records: list[Record], fields: Sequence[str] | None = None
    ) -> list[Record]:
        if not records:
            return records
        many = [f for f in self._fields(table, fields) if f.link_kind == "many"]
        return self._load_links(table, records, many) if many else records

    def _load_links(self, table: Table, records: list[Record], many: list[Field]) -> list[Record]:
        """Many-to-many links of ``records`` for the fields ``many``, in id order."""
        ids = [r.id for r in records]
        for f in many:
            j = table.junctions[f.id]
            links: dict[int, list[int]] = {i: [] for i in ids}
            for src, dst in self.session.execute(
                sa.select(j.c.source_id, j.c.target_id)
                .where(j.c.source_id.in_(ids))
                .order_by(j.c.source_id, j.c.target_id)
            ):
                links[src].append(dst)
            for r in records:
                if f.key not in r.withheld:
                    r.values[f.key] = links[r.id]
        return records

    def history(self, table_key: str, record_id: Any) -> list[dict[str, Any]]:
        """Every change of a record, oldest first: who, when, and each field's old and
        new value (fields the actor may not read left out).

        A record's creation has no history row of its own: who and when are its
        ``created_by``/``created_at``, and the values it started with are each
        field's first recorded old value, or its value today if it never changed
        (so a bulk import writes each record once, not twice)."""
        table = self.table(table_key)
        rid = record_id_of(record_id, table)
        # a record in the trash keeps its history; only its readers see it
        current = self._fetch(table, rid, trashed=None, whole=True)
        readable = set(table.fields)
        if not self.access.unlimited:
            readable = self.access.readable_keys(table, {"id": current.id, **current.values})
        by_id = {str(f.id): f for f in table.fields.values()}
        entries = [
            (h.version, h.action, h.changed_at, h.changed_by, h.note, h.changes or {})
            for h in self.session.scalars(
                sa.select(HistoryEntry)
                .where(HistoryEntry.table_id == table.id, HistoryEntry.record_id == rid)
                .order_by(HistoryEntry.id)
            )
        ]
        if not entries or entries[0][1] != "create":
            entries.insert(0, self._created_entry(table, current, entries))
        out = []
        for version, action, at, by, note, recorded in entries:
            changes = []
            for fid, (old, new) in recorded.items():
                f = by_id.get(fid)
                if f is None and not self.access.unlimited:
                    continue  # a deleted field: nobody can say who may read it any more
                if f is not None and f.key not in readable:
                    continue
                changes.append(
                    {"field": f.key if f else None, "field_id": int(fid), "old": old, "new": new}
                )
            out.append(
                {
                    "version": version,
                    "action": action,
                    "at": at.replace(tzinfo=at.tzinfo or UTC).isoformat().replace("+00:00", "Z"),
                    "by": by,
                    "note": note,
                    "changes": changes,
                }
            )
        return out

    def _created_entry(self, table: Table, current: Record, entries: list[tuple]) -> tuple:
        """The creation of a record, derived from the record and its later changes."""
        first_old: dict[str, Any] = {}
        for *_, recorded in entries:
            for fid, (old, _new) in recorded.items():
                first_old.setdefault(fid, old)
        changes = {}
        for f in table.fields.values():
            if f.system or f.type == "formula" or f.link_kind in ("reverse", "reverse_many"):
                continue
            fid = str(f.id)
            if fid in first_old:
                value = first_old[fid]
            else:
                value = f.ftype.to_json(f, current.values.get(f.key))
            if value is None or value == "" or value == []:
                continue
            changes[fid] = [None, value]
        values = current.values
        return (1, "create", values["created_at"], values.get("created_by"), None, changes)
