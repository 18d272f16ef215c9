"""The write paths of the records service: create, bulk create, update, delete,
restore and purge, each validated, permission-checked and recorded in history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ... import formula as F
from ..access import singular
from ..errors import (
    BadRequest,
    ConflictError,
    FieldProblem,
    Forbidden,
    NotFound,
    ValidationError,
)
from ..fieldtypes import ConversionError
from ..materialized import Refresh
from ..models import Counter, HistoryEntry
from ..schema import USERS, Table
from .plans import TablePlan
from .storage import null_context
from .unique_together import unique_together_problems
from .values import Record, as_list, record_id_of

BULK_CHUNK = 2000


class Writing:
    """Write paths; mixed into ``RecordsService``."""

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
        plan = self._plan(table)
        for i, values in enumerate(rows):
            if not single and not isinstance(values, Mapping):
                problems.append(
                    FieldProblem(None, "must be an object of field: value", {"row": offset + i})
                )
                prepared.append({})
                continue
            out, row_problems = self._prepare(table, values, None, plan)
            for p in row_problems:
                if not single:
                    p.extra["row"] = offset + i
            problems.extend(row_problems)
            prepared.append(out)
        # links and unique values of the fields that converted: every problem at once
        problems += self._check_links_and_unique(table, prepared, None, single, offset)
        problems += unique_together_problems(self, table, prepared, None, single, offset)
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
        ctx = self.session.begin_nested() if savepoint else null_context()
        with ctx, self._integrity(table, single):
            self._assign_numbers(table, prepared, db_rows)
            for values in prepared:
                self.platform.hooks.run_before(self, table, None, None, values)
            ids = self._insert_rows(table, db_rows)
            self._write_many_links(table, ids, prepared, replace=False)
            # no history row: creation is the record's created_at/by and its first
            # values, derived when the history is read (see ``history``)
            Refresh(self.session, self.schema, table, ids, None).after()
            self.session.flush()
            for rid, values in zip(ids, prepared, strict=True):
                self.platform.hooks.run_after(self, table, rid, None, values)
        return ids

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
        current = self._current(table, record_id, version)
        before = {"id": current.id, **current.values}
        self.access.check_not_locked(table, before)
        self.access.check_may_update(table, before)
        new, problems = self._prepare(table, values, current)
        problems += self._check_links_and_unique(table, [new], current.id, True, 0)
        problems += unique_together_problems(
            self, table, [{**current.values, **new}], current.id, True, 0, changed=set(new)
        )
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
            refresh = Refresh(self.session, self.schema, table, [current.id], set(changed))
            refresh.before()
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
            refresh.after()
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
        current = self._current(table, record_id, version)
        self._check_delete(table, current)
        if not self.platform.hooks.after_delete:
            self._set_deleted(table, current, deleted=True)
            return
        with self.session.begin_nested():  # a hook's refusal undoes the delete
            self._set_deleted(table, current, deleted=True)
            for hook in self.platform.hooks.after_delete:
                hook(self, table, current.id, current.values)

    def _current(self, table: Table, record_id: Any, version: int | None) -> Record:
        """The whole record a write starts from; with ``version``, a record changed
        since is a conflict."""
        current = self._fetch(table, record_id_of(record_id, table), whole=True)
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise BadRequest("version must be a whole number")
        if version is not None and version != current.version:
            raise self._conflict(table, current)
        return current

    def _check_delete(self, table: Table, current: Record) -> None:
        record = {"id": current.id, **current.values}
        self.access.check_not_locked(table, record)
        if not self.access.unlimited:
            self.access.check_delete(table, record)

    def restore(self, table_key: str, record_id: Any) -> Record:
        table = self.table(table_key)
        current = self._fetch(table, record_id_of(record_id, table), trashed=True, whole=True)
        self._check_delete(table, current)
        problems = self._check_links_and_unique(
            table, [current.values], current.id, True, 0, links=False
        )
        problems += unique_together_problems(self, table, [current.values], current.id, True, 0)
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
        current = self._fetch(table, record_id_of(record_id, table), trashed=True, whole=True)
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
            refresh = Refresh(self.session, self.schema, table, [current.id], None).before()
            self.session.execute(sa.delete(table.sql).where(table.sql.c.id == current.id))
            refresh.after()
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

    # --- internals ------------------------------------------------------------------
    def _prepare(
        self,
        table: Table,
        values: Mapping[str, Any],
        current: Record | None,
        plan: TablePlan | None = None,
    ) -> tuple[dict[str, Any], list[FieldProblem]]:
        """Convert input to Python values: (the values that converted, one problem per
        field that did not), so that callers can check links and unique values too."""
        if not isinstance(values, Mapping):
            raise BadRequest("Record values must be an object of field: value")
        problems: list[FieldProblem] = []
        out: dict[str, Any] = {}
        plan = plan or self._plan(table)
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
        self, table: Table, plan: TablePlan, out: dict[str, Any], problems: list[FieldProblem]
    ) -> None:
        """Fill fields the caller left out from their default formulas (interpreter):
        other tables in system context, ``USER()`` the user creating the record."""
        for f in plan.defaults:
            if f.key in out:
                continue
            value = self._admin_formula(
                table, f.default, out, f.ftype.formula_type(f), f"Default of `{f.key}`"
            )
            try:
                out[f.key] = f.ftype.to_python(f, value)
            except ConversionError as exc:
                problems.append(FieldProblem(f.key, f"its default value does not fit: {exc}"))

    def _admin_formula(self, table: Table, stored: str, record: dict, expected, where: str) -> Any:
        checked = self.formulas.checked(table.key, stored, expected, where)
        return F.evaluate(checked, record, self.access.eval_context())

    def _check_rules(
        self, table: Table, plan: TablePlan, record: dict[str, Any]
    ) -> list[FieldProblem]:
        """The table's validation rules on the record as it would be saved."""
        problems = []
        for i, rule in enumerate(plan.rules):
            ok = self._admin_formula(table, rule["rule"], record, None, f"Validation rule {i + 1}")
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
                wanted = {v for row in rows for v in as_list(row.get(f.key))}
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
                        missing = [v for v in as_list(row.get(f.key)) if v not in found]
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

    def _changes(self, table: Table, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict:
        out = {}
        history = self._plan(table).history
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
            Refresh(self.session, self.schema, table, [current.id], None).after()
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
