"""Creating, renaming, configuring and deleting tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from ..errors import BadRequest, ConflictError
from ..fieldtypes import SYSTEM_FIELDS
from ..models import Counter, FieldDef, HistoryEntry, TableDef
from ..schema import (
    Table,
    system_columns,
    table_name,
)
from ..usage import refuse_if_used
from .common import (
    RULE_KEYS,
    DataLossError,
    check_key,
    check_label,
)


def system_field_defs(
    table_id: int, field_id: Callable[[str], int | None] = lambda key: None
) -> list[FieldDef]:
    """The rows of a table's system fields (id, version, ...), the same whether the table
    is created or an app's planned schema is checked; ``field_id``: the id a key gets
    (None: the database's)."""
    return [
        FieldDef(
            id=field_id(fkey),
            table_id=table_id,
            key=fkey,
            label=flabel,
            type=ftype,
            system=True,
            position=1000 + pos,
            config={},
            required=False,
            unique=False,
        )
        for pos, (fkey, flabel, ftype) in enumerate(SYSTEM_FIELDS)
    ]


class TableChanges:
    """Table changes; mixed into ``SchemaEditor``."""

    def create_table(
        self,
        key: str,
        label: str | None = None,
        *,
        fields: list[dict] = (),
        display_field: str | None = None,
        app: str | None = None,
        system: bool = False,
        config: dict | None = None,
    ) -> Table:
        check_key(key, "table")
        if self.schema.has_table(key):
            raise ConflictError(f"A table `{key}` already exists")
        td = TableDef(
            key=key,
            label=check_label(label or key.replace("_", " ").title()),
            display_field=display_field,
            app=app,
            system=system,
            config=config or {},
            created_at=datetime.now(UTC),
        )
        self.session.add(td)
        self.session.flush()
        self.session.add_all(system_field_defs(td.id))
        self.ops.create_table(table_name(td.id), *system_columns())
        self._changed(td.id)
        for spec in fields:
            self.add_field(key, spec)
        if display_field:
            self.schema.table(key).field(display_field)
        return self.schema.table(key)

    def update_table(
        self,
        key: str,
        *,
        new_key: str | None = None,
        label: str | None = None,
        display_field: str | None = None,
        config: dict | None = None,
    ) -> Table:
        """Rename a table or change its settings: metadata only."""
        table = self.schema.table(key)
        td = self.session.get(TableDef, table.id)
        if new_key is not None and new_key != key:
            if table.system:
                raise BadRequest(f"The built-in table `{key}` cannot be renamed")
            check_key(new_key, "table")
            if self.schema.has_table(new_key):
                raise ConflictError(f"A table `{new_key}` already exists")
            td.key = new_key
            for hook in self.platform.hooks.after_table_rename:
                hook(self.session, key, new_key)
        if label is not None:
            td.label = check_label(label)
        if display_field is not None:
            table.field(display_field)
            td.display_field = display_field
        if config is not None:
            if not isinstance(config, dict):
                raise BadRequest("Table settings must be an object")
            managed = sorted(set(config) & RULE_KEYS)
            if managed:
                raise BadRequest(
                    f"`{managed[0]}` is changed with its own operation, not as a table setting"
                )
            td.config = {
                **{k: v for k, v in (td.config or {}).items() if k in RULE_KEYS},
                **config,
            }
        self._changed(table.id)
        return self.schema.table(td.key)

    def delete_table(self, key: str, *, confirm: bool = False) -> int:
        """Drop a table; refused while it holds records unless confirmed, and while
        other tables link to it. Returns the number of records lost."""
        table = self.schema.table(key)
        if table.system:
            raise BadRequest(f"The built-in table `{key}` cannot be deleted")
        for other in self.schema.tables.values():
            if other.key == key:
                continue
            for f in other.fields.values():
                if f.target_key == key and f.link_kind in ("one", "many"):
                    raise ConflictError(
                        f"Table `{key}` cannot be deleted: field `{other.key}.{f.key}` links to it"
                    )
        refuse_if_used(self.platform, self.session, self.schema, table)
        count = self.session.scalar(sa.select(sa.func.count()).select_from(table.sql)) or 0
        if count and not confirm:
            raise DataLossError(
                f"Table `{key}` holds {count:,} records; deleting it loses them (confirm to go ahead)",
                [{"table": key, "records": count}],
            )
        for f in table.fields.values():
            if f.link_kind == "many":
                self.ops.drop_table(table.junctions[f.id].name)
        for f in list(table.fields.values()):
            self._drop_reverse_of(f)
        self.ops.drop_table(table.sql.name)
        self.session.execute(sa.delete(HistoryEntry).where(HistoryEntry.table_id == table.id))
        # explicit: SQLite does not cascade while the editor has foreign keys off
        field_ids = [f.id for f in table.fields.values()]
        self.session.execute(sa.delete(Counter).where(Counter.field_id.in_(field_ids)))
        self.session.execute(sa.delete(FieldDef).where(FieldDef.table_id == table.id))
        self.session.execute(sa.delete(TableDef).where(TableDef.id == table.id))
        self._changed()
        return count

    def count_records(self, table_key: str) -> int:
        """How many records a table holds, the trash included."""
        table = self.schema.table(table_key)
        return self.session.scalar(sa.select(sa.func.count()).select_from(table.sql)) or 0

    def reorder_fields(self, table_key: str, keys: list[str]) -> Table:
        """Put the named fields first, in this order (form order); metadata only."""
        table = self.schema.table(table_key)
        for pos, key in enumerate(keys, start=1):
            f = table.field(key)
            if not f.system:
                self.session.get(FieldDef, f.id).position = pos
        self._changed(table.id)
        return self.schema.table(table_key)

    def clear_display_field(self, table_key: str) -> Table:
        table = self.schema.table(table_key)
        self.session.get(TableDef, table.id).display_field = None
        self._changed(table.id)
        return self.schema.table(table_key)
