"""Indexes. Of single fields: unique fields get a partial unique index over the
live rows (the trash does not block a value), links and `indexed` fields a plain one.
Of several fields (a table's `indexes`, see ``platform.table_indexes``): plain or
unique over the live rows likewise."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from ..errors import BadRequest, ConflictError
from ..fieldtypes import FIELD_TYPES
from ..models import TableDef
from ..schema import (
    Field,
    Table,
    needs_plain_index,
)
from ..table_indexes import INDEXES, TableIndex, and_list, resolve_index, table_indexes


class IndexChanges:
    """Index changes; mixed into ``SchemaEditor``."""

    def _create_indexes(self, table: Table, f: Field) -> None:
        live = sa.text("deleted_at IS NULL")
        col = f.column_name
        if col is None or f.ftype.system_column:
            return
        if f.unique:
            self._check_no_duplicates(table, f)
            self.ops.create_index(
                f"uq_t{table.id}_f{f.id}",
                table.sql.name,
                [col],
                unique=True,
                sqlite_where=live,
                postgresql_where=live,
            )
        elif needs_plain_index(f):
            self.ops.create_index(f"ix_t{table.id}_f{f.id}", table.sql.name, [col])

    def _drop_indexes(self, table: Table, f: Field) -> None:
        if f.unique:
            self.ops.drop_index(f"uq_t{table.id}_f{f.id}", table_name=table.sql.name)
        elif needs_plain_index(f):
            self.ops.drop_index(f"ix_t{table.id}_f{f.id}", table_name=table.sql.name)

    def _set_unique(self, table: Table, f: Field, unique: bool) -> None:
        if unique:
            self._check_no_duplicates(table, f)
            if needs_plain_index(f):
                self.ops.drop_index(f"ix_t{table.id}_f{f.id}", table_name=table.sql.name)
            live = sa.text("deleted_at IS NULL")
            self.ops.create_index(
                f"uq_t{table.id}_f{f.id}",
                table.sql.name,
                [f.column_name],
                unique=True,
                sqlite_where=live,
                postgresql_where=live,
            )
        else:
            self.ops.drop_index(f"uq_t{table.id}_f{f.id}", table_name=table.sql.name)
            if needs_plain_index(dataclasses.replace(f, unique=False)):
                self.ops.create_index(f"ix_t{table.id}_f{f.id}", table.sql.name, [f.column_name])

    def _check_no_duplicates(self, table: Table, f: Field) -> None:
        if f.column_name not in table.sql.c:
            return
        col = table.column(f)
        dup = self.session.execute(
            sa.select(col, sa.func.count())
            .where(col.is_not(None), table.sql.c.deleted_at.is_(None))
            .group_by(col)
            .having(sa.func.count() > 1)
            .limit(3)
        ).all()
        if dup:
            shown = ", ".join(
                f"`{f.ftype.display(f, f.ftype.from_db(f, v))}` ({n}x)" for v, n in dup
            )
            raise ConflictError(f"Field `{f.key}` cannot be unique: some values repeat: {shown}")


class TableIndexChanges:
    """Indexes over several fields (``table_indexes``); mixed into ``SchemaEditor``."""

    def set_indexes(self, table_key: str, specs: list[dict[str, Any]]) -> Table:
        """Replace a table's indexes: each ``{fields: [keys], unique, message}``.
        Indexes that stay are kept as they are (a changed message is metadata only);
        a new unique index over repeated combinations is refused with their count,
        nothing changed."""
        table = self.schema.table(table_key)
        if not isinstance(specs, list):
            raise BadRequest("Indexes must be given as a list")
        wanted = [resolve_index(table, spec, n) for n, spec in enumerate(specs, start=1)]
        seen: dict[tuple, int] = {}
        for n, ix in enumerate(wanted, start=1):
            same = (frozenset(ix.field_ids), True) if ix.unique else ix.identity
            if same in seen:
                raise BadRequest(f"Index {n} repeats index {seen[same]}")
            seen[same] = n
        have = {ix.identity: ix for ix in table_indexes(table)}
        keep = {ix.identity for ix in wanted}
        for identity, ix in have.items():
            if identity not in keep:
                self.ops.drop_index(ix.name, table_name=table.sql.name)
        for ix in wanted:
            if ix.identity not in have:
                self._create_table_index(table, ix)
        td = self.session.get(TableDef, table.id)
        config = dict(td.config or {})
        if wanted:
            config[INDEXES] = [ix.stored() for ix in wanted]
        else:
            config.pop(INDEXES, None)
        td.config = config
        self._changed(table.id)
        return self.schema.table(table_key)

    def count_index_conflicts(self, table_key: str, field_keys: list[str]) -> int:
        """How many live records share their combination of these fields with another
        (what would block a unique index over them); blanks never conflict."""
        table = self.schema.table(table_key)
        cols = [table.column(table.field(k)) for k in field_keys]
        return sum(n for *_, n in self._repeats(table, cols, limit=None))

    def _repeats(self, table: Table, cols: list, limit: int | None) -> list:
        stmt = (
            sa.select(*cols, sa.func.count())
            .where(table.sql.c.deleted_at.is_(None), *(c.is_not(None) for c in cols))
            .group_by(*cols)
            .having(sa.func.count() > 1)
            .order_by(sa.func.count().desc())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return self.session.execute(stmt).all()

    def _create_table_index(self, table: Table, ix: TableIndex) -> None:
        cols = [f.column_name for f in ix.fields]
        if not ix.unique:
            self.ops.create_index(ix.name, table.sql.name, cols)
            return
        sql_cols = [table.sql.c[c] for c in cols]
        total = self.count_index_conflicts(table.key, list(ix.keys))
        if total:
            shown = "; ".join(
                ", ".join(
                    f"`{f.ftype.display(f, f.ftype.from_db(f, v))}`"
                    for f, v in zip(ix.fields, row[:-1], strict=True)
                )
                + f" ({row[-1]}x)"
                for row in self._repeats(table, sql_cols, limit=3)
            )
            raise ConflictError(
                f"The fields {and_list([f'`{k}`' for k in ix.keys])} of `{table.key}` cannot be "
                f"unique together: {total:,} records repeat a combination (e.g. {shown}); "
                "correct them first",
                [{"index": list(ix.keys), "records": total}],
            )
        live = sa.text("deleted_at IS NULL")
        self.ops.create_index(
            ix.name, table.sql.name, cols, unique=True, sqlite_where=live, postgresql_where=live
        )

    def _drop_table_indexes_with(self, table: Table, f: Field) -> list[TableIndex]:
        """Before a field's column goes (delete, type change): drop the table indexes
        over it; returns them."""
        dropped = [ix for ix in table_indexes(table) if f.id in ix.field_ids]
        for ix in dropped:
            self.ops.drop_index(ix.name, table_name=table.sql.name)
        return dropped

    def _forget_table_indexes_with(self, table: Table, f: Field) -> None:
        """A deleted field leaves the indexes it was part of."""
        td = self.session.get(TableDef, table.id)
        entries = (td.config or {}).get(INDEXES) or []
        kept = [e for e in entries if f.id not in (e.get("fields") or [])]
        if len(kept) != len(entries):
            config = {k: v for k, v in td.config.items() if k != INDEXES}
            if kept:
                config[INDEXES] = kept
            td.config = config

    def _check_still_indexable(self, table: Table, f: Field, new_type: str) -> None:
        """A field in an index cannot become a type an index cannot hold."""
        if FIELD_TYPES[new_type].can_be_indexed:
            return
        for ix in table_indexes(table):
            if f.id in ix.field_ids:
                raise BadRequest(
                    f"`{f.key}` is part of the index over {and_list([f'`{k}`' for k in ix.keys])}"
                    f" and a {new_type} field cannot be indexed: remove the index first"
                )

    def _recreate_table_indexes(self, table: Table, dropped: list[TableIndex]) -> None:
        """After a type change: the dropped indexes again, over the converted values."""
        identities = {ix.identity for ix in dropped}
        for ix in table_indexes(table):
            if ix.identity in identities:
                self._create_table_index(table, ix)
