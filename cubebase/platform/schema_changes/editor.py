"""The schema editor: one transaction of schema changes, and the schema as changed so far."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import Session

from ..models import FieldDef, TableDef
from ..schema import (
    Schema,
    bump_schema_version,
)
from .fields import FieldChanges
from .indexes import IndexChanges, TableIndexChanges
from .retype import TypeChanges
from .rules import RuleChanges
from .tables import TableChanges


class SchemaEditor(
    TableChanges, FieldChanges, TypeChanges, RuleChanges, IndexChanges, TableIndexChanges
):
    """Makes schema changes inside one transaction (see ``Platform.schema_editor``)."""

    def __init__(self, session: Session, platform):
        self.session = session
        self.platform = platform
        self.ops = Operations(MigrationContext.configure(session.connection()))
        self.dialect = session.connection().dialect.name
        self._schema: Schema | None = None
        self._previous: Schema | None = None  # the last snapshot, reused table by table
        self._rows: dict[int, list] = {}  # table id -> its field rows as last read
        self._dirty: set[int] | None = None  # tables to read again (None: all)

    # --- the current schema, reloaded after each change -----------------------
    @property
    def schema(self) -> Schema:
        """The schema as changed so far. After a change it is read again on first
        use: only the field rows of the tables a change touched are read again, and
        only tables whose rows changed are built again (the rest is kept from the
        previous snapshot), so an app of many tables and fields installs in time
        proportional to its size rather than its square."""
        if self._schema is None:
            version = bump_schema_version(self.session)
            tdefs = self.session.execute(sa.select(TableDef.__table__).order_by("id")).all()
            fields_t = FieldDef.__table__
            stmt = sa.select(fields_t).order_by("table_id", "position", "id")
            live = {td.id for td in tdefs}
            if self._dirty is None:
                reread = live
                rows = self.session.execute(stmt).all()
            else:
                reread = (self._dirty | (live - set(self._rows))) & live
                rows = (
                    self.session.execute(stmt.where(fields_t.c.table_id.in_(sorted(reread)))).all()
                    if reread
                    else []
                )
            for tid in reread:
                self._rows[tid] = []
            for row in rows:
                self._rows.setdefault(row.table_id, []).append(row)
            for tid in set(self._rows) - live:
                del self._rows[tid]
            fdefs = [row for td in tdefs for row in self._rows.get(td.id, [])]
            self._schema = Schema.from_defs(
                version, tdefs, fdefs, self.platform.registry.tz, previous=self._previous
            )
            self._previous = self._schema
            self._dirty = set()
        return self._schema

    def _changed(self, *table_ids: int) -> None:
        """After a change: flush it, and read the schema again when next needed.
        ``table_ids``: the only tables whose fields the change touched (none given:
        any table may have changed)."""
        self.session.flush()
        self._schema = None
        if not table_ids:
            self._dirty = None
        elif self._dirty is not None:
            self._dirty.update(table_ids)
