"""The records service: the only road to user data.

Pages, the API, imports, exports, reports, workflows and automations all read
and write records through this class, which validates every value (one message
per field), keeps ``version`` for optimistic locking, writes the history in the
same transaction, keeps created/updated at/by, and moves deleted records to the
trash. Each write runs in a SAVEPOINT: when it fails, nothing of it is written
and the caller's transaction stays usable.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..formula.to_sql import USER_PARAM
from .access import Access, singular
from .actor import Actor
from .errors import (
    BadRequest,
    ConflictError,
    FieldProblem,
    Forbidden,
    NotFound,
    ValidationError,
)
from .fieldtypes import ConversionError, FieldType
from .formulas import FormulaRuntime, context_uses
from .listing import (
    Condition,
    SortKey,
    condition_expr,
    condition_template,
    decode_cursor,
    encode_cursor,
    keyset_after,
    order_by,
    parse_sort,
    segment_templates,
    segments,
)
from .models import Counter, HistoryEntry
from .schema import USERS, Field, Table

MAX_PAGE = 1000
BULK_CHUNK = 2000
COPY_MIN_ROWS = 100  # PostgreSQL: from this many rows, COPY beats a pipelined executemany
HISTORY_COLUMNS = (
    "table_id",
    "record_id",
    "version",
    "action",
    "changed_at",
    "changed_by",
    "changes",
)


@dataclass(frozen=True)
class FormulaFilter:
    """A filter written as a formula, e.g. ``FormulaFilter('amount > 100 AND stage = "won"')``."""

    formula: str


Where = Condition | FormulaFilter | sa.ColumnElement | Callable[[Table], sa.ColumnElement]


@dataclass
class Record:
    table: str
    id: int
    version: int
    values: dict[str, Any]  # field key -> Python value
    deleted_at: datetime | None = None
    withheld: frozenset[str] = frozenset()  # fields the reader may not see on this record

    def to_json(self, table: Table, fields: Iterable[str] | None = None) -> dict[str, Any]:
        keys = list(fields) if fields is not None else list(self.values)
        out = {}
        for k in keys:
            if k in self.values:
                f = table.fields[k]
                out[k] = f.ftype.to_json(f, self.values[k])
        doc = {"id": self.id, "version": self.version, "fields": out}
        if self.deleted_at is not None:
            doc["deleted_at"] = self.deleted_at.isoformat().replace("+00:00", "Z")
        return doc


@dataclass
class Page:
    records: list[Record]
    next_cursor: str | None


class RecordsService:
    def __init__(self, session: Session, actor: Actor, platform):
        self.session = session
        self.actor = actor
        self.platform = platform
        self.schema = platform.schema(session)
        self._plans: dict[int, _TablePlan] = {}
        self.formulas = FormulaRuntime(self)
        self.access = Access(self)
        self._system: RecordsService | None = None

    def system(self) -> RecordsService:
        """The same session as the platform itself, for admin-defined formulas
        (defaults, validation rules, formula fields) that run in system context."""
        if self.actor.system:
            return self
        if self._system is None:
            self._system = RecordsService(self.session, Actor.system_actor(), self.platform)
        return self._system

    def _plan(self, table: Table) -> _TablePlan:
        plan = self._plans.get(id(table))
        if plan is None or plan.table is not table:
            hidden, _ = self.access.hidden_fields(table)
            plan = self._plans[id(table)] = _TablePlan(table, hidden)
        return plan

    def table(self, key: str) -> Table:
        return self.schema.table(key)

    # --- reading ---------------------------------------------------------------------
    def get(self, table_key: str, record_id: Any, *, trashed: bool = False) -> Record:
        """One record as the actor may see it; outside their read rule it does not exist."""
        table = self.table(table_key)
        return self._fetch(table, _id(record_id, table), trashed=trashed)

    def _fetch(
        self, table: Table, rid: int, *, trashed: bool | None = False, whole: bool = False
    ) -> Record:
        """A record the actor may read (``trashed``: in the trash; None: either way).
        ``whole``: with every field, hidden ones included, for the service's own rule
        checks and history; never handed to a caller as it is."""
        t = table.sql
        base = [t.c.id == rid]
        if trashed is not None:
            base.append(t.c.deleted_at.is_not(None) if trashed else t.c.deleted_at.is_(None))
        read = self.access.condition(table, "read")
        if read is not None:
            base.append(read)
        select = self.system()._select(table) if whole else self._select(table)
        row = self.session.execute(select.where(*base)).mappings().first()
        if row is None:
            raise NotFound(
                f"No {singular(table)} with id {rid}" + (" in the trash" if trashed else "")
            )
        reader = self.system() if whole else self
        return reader._load_many_links(table, [reader._record(table, row)])[0]

    def _live(self, table: Table, trashed: bool = False, alias=None) -> list[sa.ColumnElement]:
        """The rows a list or count starts from: live (or trashed) ones the actor may read."""
        t = table.sql if alias is None else alias
        base = [t.c.deleted_at.is_not(None) if trashed else t.c.deleted_at.is_(None)]
        read = self.access.condition(table, "read", alias)
        if read is not None:
            base.append(read)
        return base

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
            select = select.select_from(_joined(t, joins))
        if len(keys) == 1 and not _computed(keys[0]):
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
        cache = self.schema.formula_cache.get(_PAGES)
        if cache is None:
            cache = self.schema.formula_cache.setdefault(_PAGES, {})
        if sort is not None and not isinstance(sort, str):
            if not isinstance(sort, list | tuple) or not all(isinstance(x, str) for x in sort):
                return None
            sort = tuple(sort)
        skey = ("sort", table.id, sort)
        sorting = cache.get(skey)
        if sorting is None:
            try:
                keys = parse_sort(
                    table, sort if not isinstance(sort, tuple) else list(sort), _untemplated
                )
            except _NoTemplate:
                return None
            signature = ",".join(
                ("-" if k.desc else "") + (k.field.key if k.field else "id") for k in keys
            )
            sorting = _remember(cache, skey, (keys, signature))
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
        fkey = ("fields", table.id, fields)
        uses = cache.get(fkey)
        if uses is None:
            uses = frozenset()
            for f in self._fields(table, fields):
                if f.type == "formula":
                    checked = self.formulas.checked(
                        table.key, f.config["formula"], where=f"Formula field `{f.key}`"
                    )
                    uses |= context_uses(checked)
            uses = _remember(cache, fkey, uses)
        if "now" in uses:
            return None
        if "today" in uses and day is None:
            day = self.formulas.now().date()
        tkey = ("page", table.id, sort, tuple(shapes), fields, trashed, day, rights)
        template = cache.get(tkey)
        if template is None:
            template = _remember(
                cache, tkey, self._page_template(table, keys, builds, fields, trashed)
            )
        return template.read(self, params, after, limit, signature)

    def _page_template(
        self, table: Table, keys: list[SortKey], builds: list, fields, trashed: bool
    ) -> _PageTemplate:
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
            select = select.select_from(_joined(t, joins))
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
        return _PageTemplate(table, keys, select, base, reader, many, flags)

    def count(
        self,
        table_key: str,
        *,
        where: Where | Sequence[Where] | None = None,
        cap: int | None = None,
    ) -> int:
        """How many records the actor may read match ``where``; with ``cap``, counting
        stops past it (the result is then cap + 1: "more than cap")."""
        table = self.table(table_key)
        t = table.sql
        joins: dict = {}
        conds = self._live(table) + self._where(table, where, joins)
        stmt = sa.select(sa.func.count()).select_from(_joined(t, joins)).where(*conds)
        if cap is not None:
            # stop counting at cap + 1 rows: a big table never waits on an exact count
            inner = sa.select(t.c.id).select_from(_joined(t, joins)).where(*conds).limit(cap + 1)
            stmt = sa.select(sa.func.count()).select_from(inner.subquery())
        return int(self.session.scalar(stmt) or 0)

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
            if f.type == "formula"
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
            plan = self._plan(table)
            for f, ftype, column in plan.read:
                values[f.key] = ftype.from_db(f, row[column])
            for f, ftype, column in plan.computed:
                values[f.key] = ftype.from_db(f, row[column])
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
            current = self._fetch(table, _id(record_id, table), whole=True)
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
        rid = _id(record_id, table)
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

    # --- writing ---------------------------------------------------------------------
    def create(self, table_key: str, values: Mapping[str, Any]) -> Record:
        return self.get(
            table_key, self._create_many(self.table(table_key), [values], single=True)[0]
        )

    def bulk_create(self, table_key: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Create many records through the same validation, all or nothing.

        Problems are reported per row: ValidationError details carry ``row`` (0-based).
        """
        table = self.table(table_key)
        if isinstance(rows, str | bytes | Mapping):
            raise BadRequest("Records must be given as a list of objects of field: value")
        rows = rows if isinstance(rows, Sequence) else list(rows)
        ids: list[int] = []
        with self.session.begin_nested():
            for start in range(0, len(rows), BULK_CHUNK):
                ids.extend(
                    self._create_many(
                        table, rows[start : start + BULK_CHUNK], offset=start, savepoint=False
                    )
                )
        return ids

    def _create_many(
        self,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        single: bool = False,
        offset: int = 0,
        savepoint: bool = True,
    ) -> list[int]:
        prepared: list[dict[str, Any]] = []
        problems: list[FieldProblem] = []
        for i, values in enumerate(rows):
            if not single and not isinstance(values, Mapping):
                problems.append(
                    FieldProblem(None, "must be an object of field: value", {"row": offset + i})
                )
                prepared.append({})
                continue
            out, row_problems = self._prepare(table, values, None)
            for p in row_problems:
                if not single:
                    p.extra["row"] = offset + i
            problems.extend(row_problems)
            prepared.append(out)
        # links and unique values of the fields that converted: every problem at once
        problems += self._check_links_and_unique(table, prepared, None, single, offset)
        if problems:
            raise ValidationError(problems)
        if not self.access.unlimited:
            given = [set(values) if isinstance(values, Mapping) else set() for values in rows]
            self.access.check_create(table, prepared, given)
        now = datetime.now(UTC)
        user = self.actor.user_id
        columns = self._plan(table).to_db
        system = {
            "version": 1,
            "created_at": now,
            "created_by": user,
            "updated_at": now,
            "updated_by": user,
        }
        db_rows = []
        for values in prepared:
            row: dict[str, Any] = system.copy()
            get = values.get
            for f, key, column, to_db in columns:
                row[column] = get(key) if to_db is None else to_db(f, get(key))
            db_rows.append(row)
        ctx = self.session.begin_nested() if savepoint else _null_context()
        with ctx, self._integrity(table, single):
            self._assign_numbers(table, prepared, db_rows)
            for values in prepared:
                self.platform.hooks.run_before(self, table, None, None, values)
            ids = self._insert_rows(table, db_rows)
            self._write_many_links(table, ids, prepared, replace=False)
            changes = self._created_changes
            self._insert_history(
                [
                    (table.id, rid, 1, "create", now, user, changes(table, values))
                    for rid, values in zip(ids, prepared, strict=True)
                ]
            )
            self.session.flush()
            for rid, values in zip(ids, prepared, strict=True):
                self.platform.hooks.run_after(self, table, rid, None, values)
        return ids

    def _insert_rows(self, table: Table, db_rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows, returning their new ids in the order of ``db_rows``."""
        t = table.sql
        if self.platform.dialect == "postgresql" and db_rows:
            # Take the ids from the table's sequence first, then insert without
            # RETURNING: COPY for a batch, a pipelined executemany for a few rows
            # (RETURNING made psycopg parse huge multi-row VALUES statements anew).
            seq = sa.func.pg_get_serial_sequence(t.name, "id")
            ids = sorted(
                self.session.scalars(
                    sa.select(sa.func.nextval(seq)).select_from(
                        sa.func.generate_series(1, len(db_rows))
                    )
                )
            )
            for row, rid in zip(db_rows, ids, strict=True):
                row["id"] = rid
            if len(db_rows) >= COPY_MIN_ROWS:
                columns = list(db_rows[0])  # every row has the same keys, in one order
                json_columns = self._plan(table).json_columns
                self._copy(t.name, columns, _copy_tuples(db_rows, columns, json_columns))
            else:
                self.session.execute(sa.insert(t), db_rows)
            return ids
        if len(db_rows) > 1:
            # SQLite gives a new row max(id) + 1 (the tables have no AUTOINCREMENT):
            # take the same ids ourselves and insert without RETURNING, which SQLite
            # would run one row at a time. Correct under concurrency: the read below
            # either runs under this transaction's write lock (a write session, or
            # after an earlier write) or starts its snapshot, and SQLite refuses a
            # write from a snapshot that another writer has moved past.
            start = (self.session.scalar(sa.select(sa.func.max(t.c.id))) or 0) + 1
            ids = list(range(start, start + len(db_rows)))
            for row, rid in zip(db_rows, ids, strict=True):
                row["id"] = rid
            self.session.execute(sa.insert(t), db_rows)
            return ids
        result = self.session.execute(
            sa.insert(t).returning(t.c.id, sort_by_parameter_order=True), db_rows
        )
        return [r[0] for r in result]

    def _insert_history(self, rows: list[tuple]) -> None:
        """History rows given as tuples in the order of ``HISTORY_COLUMNS``."""
        if self.platform.dialect == "postgresql" and len(rows) >= COPY_MIN_ROWS:
            self._copy(
                HistoryEntry.__tablename__,
                HISTORY_COLUMNS,
                ((*r[:-1], json.dumps(r[-1])) for r in rows),
            )
            return
        self.session.execute(
            sa.insert(HistoryEntry.__table__),
            [dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in rows],
        )

    def _copy(self, table_name: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        """``COPY table (columns) FROM STDIN`` on the session's own connection, inside
        its transaction and savepoint; psycopg's adapters write each value as text
        (JSON columns come as JSON text already). Errors come back as SQLAlchemy's,
        so ``_IntegrityGuard`` reports a unique value lost in a race per field."""
        import psycopg
        from psycopg import sql

        dbapi = self.session.connection().connection.driver_connection
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        try:
            with dbapi.cursor() as cursor, cursor.copy(stmt) as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        except psycopg.Error as exc:
            raise sa.exc.DBAPIError.instance(
                stmt.as_string(dbapi), None, exc, psycopg.Error
            ) from exc

    def update(
        self,
        table_key: str,
        record_id: Any,
        values: Mapping[str, Any],
        *,
        version: int | None = None,
    ) -> Record:
        """Change some fields. With ``version``, a record changed since is a conflict.

        Refused when the record is locked, when no role of the actor may change it or
        the fields changed, and when after the change the actor could no longer read
        or change it (see ``access.py``)."""
        table = self.table(table_key)
        current = self._fetch(table, _id(record_id, table), whole=True)
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise BadRequest("version must be a whole number")
        if version is not None and version != current.version:
            raise self._conflict(table, current)
        before = {"id": current.id, **current.values}
        self.access.check_not_locked(table, before)
        if not self.access.unlimited and not self.access.allows(table, "update", before):
            raise Forbidden(f"You may not change this {singular(table)}")
        new, problems = self._prepare(table, values, current)
        problems += self._check_links_and_unique(table, [new], current.id, True, 0)
        if problems:
            raise ValidationError(problems)
        changed = {k: v for k, v in new.items() if current.values.get(k) != v}
        if not changed:
            return self.get(table_key, current.id)
        self.access.check_update(table, before, changed)
        now = datetime.now(UTC)
        t = table.sql
        row: dict[str, Any] = {
            "version": current.version + 1,
            "updated_at": now,
            "updated_by": self.actor.user_id,
        }
        for k, v in changed.items():
            f = table.fields[k]
            if f.column_name is not None:
                row[f.column_name] = f.ftype.to_db(f, v)
        with self.session.begin_nested(), self._integrity(table, True):
            self.platform.hooks.run_before(self, table, current.id, current.values, changed)
            result = self.session.execute(
                sa.update(t)
                .where(
                    t.c.id == current.id, t.c.version == current.version, t.c.deleted_at.is_(None)
                )
                .values(row)
            )
            if result.rowcount != 1:
                raise self._conflict(table, self._fetch(table, current.id, whole=True))
            self._write_many_links(table, [current.id], [changed], replace=True)
            self.session.add(
                HistoryEntry(
                    table_id=table.id,
                    record_id=current.id,
                    version=current.version + 1,
                    action="update",
                    changed_at=now,
                    changed_by=self.actor.user_id,
                    changes=self._changes(table, current.values, changed),
                )
            )
            self.session.flush()
            self.platform.hooks.run_after(self, table, current.id, current.values, changed)
        return self.get(table_key, current.id)

    def delete(self, table_key: str, record_id: Any, *, version: int | None = None) -> None:
        """Move a record to the trash (restore brings it back)."""
        table = self.table(table_key)
        current = self._fetch(table, _id(record_id, table), whole=True)
        if version is not None and version != current.version:
            raise self._conflict(table, current)
        self._check_delete(table, current)
        self._set_deleted(table, current, deleted=True)

    def _check_delete(self, table: Table, current: Record) -> None:
        record = {"id": current.id, **current.values}
        self.access.check_not_locked(table, record)
        if not self.access.unlimited:
            self.access.check_delete(table, record)

    def restore(self, table_key: str, record_id: Any) -> Record:
        table = self.table(table_key)
        current = self._fetch(table, _id(record_id, table), trashed=True, whole=True)
        self._check_delete(table, current)
        problems = self._check_links_and_unique(
            table, [current.values], current.id, True, 0, links=False
        )
        if problems:
            raise ConflictError(
                "The record cannot be restored: "
                + "; ".join(f"{p.field}: {p.message}" for p in problems),
                [p.to_dict() for p in problems],
            )
        self._set_deleted(table, current, deleted=False)
        return self.get(table_key, current.id)

    def purge(self, table_key: str, record_id: Any) -> None:
        """Delete a trashed record for good (admins only). Refused while other records
        link to it."""
        table = self.table(table_key)
        if not self.access.unlimited:
            raise Forbidden("Only administrators may delete records for good")
        current = self._fetch(table, _id(record_id, table), trashed=True, whole=True)
        self.access.check_not_locked(table, {"id": current.id, **current.values})
        for other in self.schema.tables.values():
            for f in other.fields.values():
                if f.target_key == table.key and f.link_kind == "one" and f.column_name:
                    n = self.session.scalar(
                        sa.select(sa.func.count())
                        .select_from(other.sql)
                        .where(other.column(f) == current.id)
                    )
                elif f.target_key == table.key and f.link_kind == "many":
                    j = other.junctions[f.id]
                    n = self.session.scalar(
                        sa.select(sa.func.count()).select_from(j).where(j.c.target_id == current.id)
                    )
                else:
                    continue
                if n:
                    raise ConflictError(
                        f"This {singular(table)} cannot be deleted for good: {n} "
                        f"{other.label.lower()} link to it through `{f.key}`"
                    )
        with self.session.begin_nested():
            self.session.execute(sa.delete(table.sql).where(table.sql.c.id == current.id))
            self.session.add(
                HistoryEntry(
                    table_id=table.id,
                    record_id=current.id,
                    version=current.version,
                    action="purge",
                    changed_at=datetime.now(UTC),
                    changed_by=self.actor.user_id,
                    changes={},
                )
            )
            self.session.flush()

    def history(self, table_key: str, record_id: Any) -> list[dict[str, Any]]:
        """Every change of a record, oldest first: who, when, and each field's old and new value."""
        table = self.table(table_key)
        rid = _id(record_id, table)
        exists = self.session.scalar(sa.select(table.sql.c.id).where(table.sql.c.id == rid))
        if exists is None:
            raise NotFound(f"No {singular(table)} with id {rid}")
        readable = set(table.fields)
        if not self.access.unlimited:
            # a record in the trash keeps its history; only its readers see it
            current = self._fetch(table, rid, trashed=None, whole=True)
            readable = self.access.readable_keys(table, {"id": current.id, **current.values})
        by_id = {str(f.id): f for f in table.fields.values()}
        out = []
        for h in self.session.scalars(
            sa.select(HistoryEntry)
            .where(HistoryEntry.table_id == table.id, HistoryEntry.record_id == rid)
            .order_by(HistoryEntry.id)
        ):
            changes = []
            for fid, (old, new) in (h.changes or {}).items():
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
                    "version": h.version,
                    "action": h.action,
                    "at": h.changed_at.replace(tzinfo=h.changed_at.tzinfo or UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "by": h.changed_by,
                    "note": h.note,
                    "changes": changes,
                }
            )
        return out

    # --- internals ------------------------------------------------------------------
    def _prepare(
        self, table: Table, values: Mapping[str, Any], current: Record | None
    ) -> tuple[dict[str, Any], list[FieldProblem]]:
        """Convert input to Python values: (the values that converted, one problem per
        field that did not), so that callers can check links and unique values too."""
        if not isinstance(values, Mapping):
            raise BadRequest("Record values must be an object of field: value")
        problems: list[FieldProblem] = []
        out: dict[str, Any] = {}
        plan = self._plan(table)
        convert = plan.convert
        dialect = self.platform.dialect
        for key, raw in values.items():
            c = convert.get(key) if isinstance(key, str) else None
            if c is None:
                if isinstance(key, str) and key in table.fields:
                    problems.append(
                        FieldProblem(key, "is calculated automatically and cannot be set")
                    )
                else:
                    problems.append(
                        FieldProblem(str(key), f"table `{table.key}` has no field `{key}`")
                    )
                continue
            f, to_python, check_storable = c
            try:
                value = out[key] = to_python(f, raw)
                if check_storable is not None:
                    check_storable(f, value, dialect)
            except ConversionError as exc:
                problems.append(FieldProblem(key, str(exc)))
        # defaults run only on valid input; until then a field with one is not missing
        defaults_pending = current is None and bool(plan.defaults) and bool(problems)
        if current is None and plan.defaults and not problems:
            self._apply_defaults(table, plan, out, problems)
        if plan.required:
            failed = {p.field for p in problems}
            for f, ftype in plan.required:
                if f.key in failed or (defaults_pending and f.default and f.key not in out):
                    continue
                if current is None:
                    if ftype.is_blank(out.get(f.key)):
                        problems.append(FieldProblem(f.key, "is required"))
                elif f.key in out and ftype.is_blank(out[f.key]):
                    problems.append(FieldProblem(f.key, "is required"))
        if not problems and plan.rules:
            record = {**(current.values if current else {}), **out}
            if current is not None:
                record["id"] = current.id
            problems = self._check_rules(table, plan, record)
        for p in problems:
            out.pop(p.field, None)
        return out, problems

    def _apply_defaults(
        self, table: Table, plan: _TablePlan, out: dict[str, Any], problems: list[FieldProblem]
    ) -> None:
        """Fill fields the caller left out from their default formulas (interpreter)."""
        runtime = self.system().formulas
        for f in plan.defaults:
            if f.key in out:
                continue
            value = runtime.evaluate(
                table, f.default, out, f.ftype.formula_type(f), where=f"Default of `{f.key}`"
            )
            try:
                out[f.key] = f.ftype.to_python(f, value)
            except ConversionError as exc:
                problems.append(FieldProblem(f.key, f"its default value does not fit: {exc}"))

    def _check_rules(
        self, table: Table, plan: _TablePlan, record: dict[str, Any]
    ) -> list[FieldProblem]:
        """The table's validation rules on the record as it would be saved."""
        runtime = self.system().formulas
        problems = []
        for i, rule in enumerate(plan.rules):
            ok = runtime.evaluate(table, rule["rule"], record, where=f"Validation rule {i + 1}")
            if ok is not True:
                problems.append(FieldProblem(None, rule["message"], {"rule": i + 1}))
        return problems

    def _check_links_and_unique(
        self,
        table: Table,
        rows: list[dict[str, Any]],
        own_id: int | None,
        single: bool,
        offset: int,
        links: bool = True,
    ) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        reported: set[tuple[int, str]] = set()

        def problem(i: int, key: str, message: str) -> None:
            if (i, key) in reported:
                return  # one problem per field
            reported.add((i, key))
            p = FieldProblem(key, message)
            if not single:
                p.extra["row"] = offset + i
            problems.append(p)

        for f in table.fields.values():
            if links and f.link_kind in ("one", "many"):
                wanted = {v for row in rows for v in _as_list(row.get(f.key))}
                if wanted:
                    target_table = self.schema.table(f.target_key)
                    target = target_table.sql
                    live = [target.c.deleted_at.is_(None)]
                    if f.target_key != USERS:
                        # a record the actor cannot read cannot be linked (nor probed)
                        live = self._live(target_table)
                    found = set(
                        self.session.scalars(
                            sa.select(target.c.id).where(target.c.id.in_(wanted), *live)
                        )
                    )
                    for i, row in enumerate(rows):
                        missing = [v for v in _as_list(row.get(f.key)) if v not in found]
                        if missing:
                            problem(
                                i,
                                f.key,
                                f"links to a record that does not exist: "
                                f"{', '.join(map(str, missing[:5]))}",
                            )
            if f.unique and f.column_name is not None:
                col = table.column(f)
                seen: dict[Any, int] = {}
                for i, row in enumerate(rows):
                    v = row.get(f.key)
                    if v is None:
                        continue
                    dbv = f.ftype.to_db(f, v)
                    if dbv in seen:
                        problem(i, f.key, f"`{f.ftype.display(f, v)}` appears twice in this batch")
                    seen[dbv] = i
                if seen:
                    taken = set()
                    keys = list(seen)
                    if self.platform.dialect == "postgresql":
                        # one array parameter: far cheaper than hundreds of IN lists
                        values = sa.bindparam("values", keys, type_=postgresql.ARRAY(col.type))
                        batches = [col == sa.any_(values)]
                    else:
                        batches = [col.in_(keys[s : s + 500]) for s in range(0, len(keys), 500)]
                    for cond in batches:
                        stmt = sa.select(col).where(cond, table.sql.c.deleted_at.is_(None))
                        if own_id is not None:
                            stmt = stmt.where(table.sql.c.id != own_id)
                        taken.update(self.session.scalars(stmt))
                    for dbv in taken:
                        i = seen[dbv]
                        problem(
                            i,
                            f.key,
                            f"`{f.ftype.display(f, rows[i][f.key])}` is already used "
                            "by another record",
                        )
        return problems

    def _assign_numbers(
        self, table: Table, prepared: list[dict[str, Any]], db_rows: list[dict[str, Any]]
    ) -> None:
        """Autonumbers, taken inside the write's savepoint: a refused write uses none."""
        for key, start in self._autonumbers(table, len(prepared)).items():
            column = table.fields[key].column_name
            for i, (values, row) in enumerate(zip(prepared, db_rows, strict=True)):
                values[key] = row[column] = start + i

    def _autonumbers(self, table: Table, n: int) -> dict[str, int]:
        starts: dict[str, int] = {}
        for f in table.fields.values():
            if f.type == "autonumber" and n:
                end = self.session.scalar(
                    sa.update(Counter)
                    .where(Counter.field_id == f.id)
                    .values(value=Counter.value + n)
                    .returning(Counter.value)
                )
                starts[f.key] = end - n + 1
        return starts

    def _write_many_links(
        self, table: Table, ids: list[int], rows: list[dict[str, Any]], replace: bool
    ) -> None:
        for f in table.fields.values():
            if f.link_kind != "many":
                continue
            j = table.junctions[f.id]
            for rid, row in zip(ids, rows, strict=True):
                if f.key not in row:
                    continue
                if replace:
                    self.session.execute(sa.delete(j).where(j.c.source_id == rid))
                pairs = [{"source_id": rid, "target_id": t} for t in row[f.key] or []]
                if pairs:
                    self.session.execute(sa.insert(j), pairs)

    def _created_changes(self, table: Table, values: Mapping[str, Any]) -> dict:
        """``_changes(table, {}, values)``: every value of a new record that is not blank."""
        out = {}
        created = self._plan(table).created
        for k, v in values.items():
            if v is None:
                continue
            f, field_id, to_json, is_blank = created[k]
            if v == "" or v == [] if is_blank is None else is_blank(v):
                continue
            out[field_id] = [None, v if to_json is None else to_json(f, v)]
        return out

    def _changes(self, table: Table, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict:
        out = {}
        history = self._plan(table).history
        if not old:  # a new record: every value that is not blank
            for k, v in new.items():
                f, ftype, field_id = history[k]
                if v is not None and not ftype.is_blank(v):
                    out[field_id] = [None, ftype.to_json(f, v)]
            return out
        for k, v in new.items():
            f, ftype, field_id = history[k]
            before = old.get(k)
            if before != v and not (ftype.is_blank(before) and ftype.is_blank(v)):
                out[field_id] = [
                    ftype.to_json(f, before) if before is not None else None,
                    ftype.to_json(f, v),
                ]
        return out

    def _set_deleted(self, table: Table, current: Record, *, deleted: bool) -> None:
        now = datetime.now(UTC)
        t = table.sql
        with self.session.begin_nested(), self._integrity(table, True):
            result = self.session.execute(
                sa.update(t)
                .where(t.c.id == current.id, t.c.version == current.version)
                .values(
                    version=current.version + 1,
                    updated_at=now,
                    updated_by=self.actor.user_id,
                    deleted_at=now if deleted else None,
                    deleted_by=self.actor.user_id if deleted else None,
                )
            )
            if result.rowcount != 1:
                raise ConflictError("Someone else changed this record at the same time; try again")
            self.session.add(
                HistoryEntry(
                    table_id=table.id,
                    record_id=current.id,
                    version=current.version + 1,
                    action="delete" if deleted else "restore",
                    changed_at=now,
                    changed_by=self.actor.user_id,
                    changes={},
                )
            )
            self.session.flush()

    def _conflict(self, table: Table, current: Record) -> ConflictError:
        detail: dict[str, Any] = {"current_version": current.version}
        try:  # the record as the actor may see it, hidden fields left out
            detail["record"] = self._fetch(table, current.id).to_json(table)
        except NotFound:
            pass
        return ConflictError(
            f"This {singular(table)} was changed by someone else (now at version "
            f"{current.version}); reload it and apply your change again",
            [detail],
        )

    def _integrity(self, table: Table, single: bool):
        return _IntegrityGuard(table, single)


class _TablePlan:
    """What the per-row loops need to know about a table's fields, worked out once
    per table and service: tuples and bound methods instead of attribute lookups."""

    def __init__(self, table: Table, hidden: frozenset[str] = frozenset()):
        self.table = table
        fields = list(table.fields.values())
        self.writable = frozenset(f.key for f in fields if f.writable)
        self.required = [(f, f.ftype) for f in fields if f.required]
        self.columns = [
            (f, f.ftype, f.column_name, f.type == "autonumber")
            for f in fields
            if f.column_name is not None and not f.ftype.system_column
        ]
        self.history = {f.key: (f, f.ftype, str(f.id)) for f in fields}
        # the write loops' hot paths: bound methods, and None where a type keeps
        # the base class's no-op (check_storable) or identity (to_db, to_json)
        self.convert = {
            f.key: (f, f.ftype.to_python, _overridden(f.ftype, "check_storable"))
            for f in fields
            if f.writable
        }
        self.to_db = [
            (f, f.key, column, _overridden(ftype, "to_db")) for f, ftype, column, _ in self.columns
        ]
        self.created = {
            f.key: (
                f,
                str(f.id),
                _overridden(f.ftype, "to_json"),
                _overridden(f.ftype, "is_blank"),
            )
            for f in fields
        }
        # columns written as JSON text by COPY (multi-select, file)
        self.json_columns = frozenset(
            column
            for _, _, column, _ in self.columns
            if isinstance(table.sql.c[column].type, sa.JSON)
        )
        # what a read returns: fields the actor may never read are not even selected
        self.read = [
            (f, f.ftype, f.column_name)
            for f in table.data_fields()
            if f.column_name is not None and f.key not in hidden
        ]
        self.computed = [
            (f, f.ftype, f"c_{f.id}") for f in fields if f.type == "formula" and f.key not in hidden
        ]
        self.defaults = [f for f in fields if f.default and f.writable]
        self.rules = list(table.config.get("validations") or [])
        t = table.sql
        self.select = sa.select(
            t.c.id,
            t.c.version,
            t.c.deleted_at,
            *(table.column(f).label(column) for f, _, column in self.read),
        )


_PAGES = ("pages",)  # statement templates of lists, in Schema.formula_cache
_PAGES_MAX = 2000  # templates kept per schema snapshot (then the cache starts again)


class _NoTemplate(Exception):
    pass


def _untemplated(f: Field):
    raise _NoTemplate  # a formula sort key: ``list`` builds it per request


def _remember(cache: dict, key: tuple, value: Any) -> Any:
    if len(cache) >= _PAGES_MAX:
        cache.clear()
    cache[key] = value
    return value


class _PageTemplate:
    """The statements of one shape of list (see ``RecordsService._list_by_template``),
    built on first use for each cursor state, and how to turn their rows into
    records: positions and converters worked out once, no conversion for types whose
    database value is already the Python value."""

    def __init__(self, table: Table, keys, select: sa.Select, base: list, reader, many, flags):
        self.table = table
        self.keys = keys
        self.select = select
        self.base = base
        self.many = many
        self.segmented = len(keys) == 1 and not _computed(keys[0])
        self.statements: dict[Any, list[sa.Select]] = {}
        names = list(select.selected_columns.keys())
        pos = {n: i for i, n in enumerate(names)}
        self.keys_ = [k for k, _, _ in reader]
        self.positions = [pos[c] for _, c, _ in reader]
        self.converters = [
            (k, read) for k, _, ftype in reader if (read := ftype.reader(table.fields[k]))
        ]
        self.id_pos, self.version_pos, self.deleted_pos = (
            pos["id"],
            pos["version"],
            pos["deleted_at"],
        )
        self.sort_pos = [pos[f"_sort{i}"] for i in range(len(keys))]
        self.flags = [(k, pos[label]) for k, label in flags]  # fields hidden on some rows

    def _statements(self, state: Any) -> list[sa.Select]:
        stmts = self.statements.get(state)
        if stmts is not None:
            return stmts
        t = self.table.sql
        limit = sa.bindparam("_limit", type_=sa.Integer())
        if self.segmented:
            key = self.keys[0]
            v = sa.bindparam("_c0", type_=key.expr.type)
            last = sa.bindparam("_cid", type_=t.c.id.type)
            stmts = [
                self.select.where(*self.base, cond).order_by(*order).limit(limit)
                for cond, order in segment_templates(key, t.c.id, state, v, last)
            ]
        else:
            stmt = self.select.where(*self.base)
            if state != "first":
                values = [
                    None if blank else sa.bindparam(f"_c{i}", type_=k.expr.type)
                    for i, (k, blank) in enumerate(zip(self.keys, state, strict=True))
                ]
                last = sa.bindparam("_cid", type_=t.c.id.type)
                stmt = stmt.where(keyset_after(self.keys, t.c.id, [*values, last]))
            stmts = [stmt.order_by(*order_by(self.keys, t.c.id)).limit(limit)]
        self.statements[state] = stmts
        return stmts

    def read(self, service: RecordsService, params: dict, after, limit: int, signature: str):
        if after is None:
            state: Any = "first"
        else:
            *values, params["_cid"] = after
            for i, v in enumerate(values):
                params[f"_c{i}"] = v
            if self.segmented:
                state = "blank" if values[0] is None else "value"
            else:
                state = tuple(v is None for v in values)
        execute = service.session.execute
        rows: list = []
        n = limit + 1
        for stmt in self._statements(state):
            need = n - len(rows)
            if need <= 0:
                break
            params["_limit"] = need
            rows.extend(execute(stmt, params).all())
        more = len(rows) > limit
        rows = rows[:limit]
        table_key = self.table.key
        keys, positions, converters = self.keys_, self.positions, self.converters
        id_pos, version_pos, deleted_pos = self.id_pos, self.version_pos, self.deleted_pos
        records = []
        flags = self.flags
        for row in rows:
            values = dict(zip(keys, [row[i] for i in positions], strict=True))
            for k, read in converters:
                values[k] = read(values[k])
            withheld = frozenset(k for k, i in flags if not row[i])
            for k in withheld:
                values.pop(k, None)
            records.append(
                Record(table_key, row[id_pos], row[version_pos], values, row[deleted_pos], withheld)
            )
        if self.many and records:
            service._load_links(self.table, records, self.many)
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(
                signature, [*(last[i] for i in self.sort_pos), last[id_pos]]
            )
        return Page(records, next_cursor)


BUSY = ("database is locked", "deadlock detected")  # SQLite's stale snapshot, PG deadlocks


class _IntegrityGuard:
    """Turns a unique-index violation lost in a race into a per-field error, and a
    write that lost a race for a lock into a conflict (try again), not a crash."""

    def __init__(self, table: Table, single: bool):
        self.table = table
        self.single = single

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, OperationalError):
            if any(b in str(exc.orig) for b in BUSY):
                raise ConflictError(
                    "Another change was being saved at the same time; try again"
                ) from None
            return False
        if exc_type is None or not issubclass(exc_type, IntegrityError):
            return False
        text = str(exc.orig)
        for f in self.table.fields.values():
            if f.unique and (
                f"uq_t{self.table.id}_f{f.id}" in text
                or f"{self.table.sql.name}.{f.column_name}" in text
            ):
                raise ValidationError(
                    [
                        FieldProblem(
                            f.key, "this value was just used by another record; choose another"
                        )
                    ]
                ) from None
        raise ConflictError(
            "The change conflicts with another change made at the same time; reload and try again"
        ) from None


def _computed(key: SortKey) -> bool:
    """A formula sort key: no index serves it, so one query sorts it with its blanks
    (reading the page in segments would compute it over the table once per segment)."""
    return key.field is not None and key.field.type == "formula"


def _joined(t: sa.Table, joins: dict) -> sa.FromClause:
    """The table LEFT JOINed to the grouped aggregates of ``SqlContext.joins``."""
    frm: sa.FromClause = t
    for sub, on in joins.values():
        frm = frm.outerjoin(sub, on)
    return frm


class _null_context:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _overridden(ftype: FieldType, method: str) -> Callable | None:
    """``ftype``'s bound ``method``, or None where it is the base class's."""
    if getattr(type(ftype), method) is getattr(FieldType, method):
        return None
    return getattr(ftype, method)


def _copy_tuples(
    rows: list[dict[str, Any]], columns: list[str], json_columns: frozenset[str]
) -> Iterable[Sequence]:
    """Rows (dicts) as sequences in ``columns`` order, JSON columns as JSON text."""
    get = operator.itemgetter(*columns)
    at = [i for i, c in enumerate(columns) if c in json_columns]
    if not at:
        return map(get, rows)
    return (_json_at(list(get(r)), at) for r in rows)


def _json_at(values: list, at: list[int]) -> list:
    for i in at:
        if values[i] is not None:
            values[i] = json.dumps(values[i])
    return values


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _id(value: Any, table: Table) -> int:
    if isinstance(value, bool):
        raise NotFound(f"No {singular(table)} with id {value}")
    try:
        rid = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"No {singular(table)} with id {value}") from None
    if not 0 < rid < 2**63:
        raise NotFound(f"No {singular(table)} with id {value}")
    return rid
