"""Indexes of single fields: unique fields get a partial unique index over the
live rows (the trash does not block a value), links and `indexed` fields a plain one."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from ..errors import ConflictError
from ..schema import (
    Field,
    Table,
    needs_plain_index,
)


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
