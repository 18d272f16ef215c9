"""Type changes: every value converted through the new type's own parser, with a
preview of what would not convert (nothing changed) and history for what was lost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .. import materialized
from ..errors import BadRequest
from ..fieldtypes import FIELD_TYPES, ConversionError
from ..models import FieldDef, HistoryEntry
from ..schema import (
    USERS,
    Field,
    Table,
)
from .common import (
    BUILTIN_USER_FIELDS,
    CONVERTIBLE,
    PREVIEW_ROWS,
    DataLossError,
)


@dataclass
class ConversionPreview:
    """What a type change would do to the values a field holds."""

    total: int = 0  # values that are not blank
    failed: int = 0  # values that cannot convert and would become blank
    changed: int = 0  # values that convert only approximately (rounded, time dropped)
    examples: list[dict[str, Any]] = field(default_factory=list)  # {id, value, message}

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "failed": self.failed,
            "changed": self.changed,
            "examples": self.examples,
        }

    def loss(self, field_key: str, new_type: str) -> str | None:
        """What would be lost, in words; None when nothing would."""
        parts = []
        if self.failed:
            parts.append(
                f"{self.failed:,} of {self.total:,} values of `{field_key}` cannot become "
                f"{new_type} and would be lost"
            )
        if self.changed:
            parts.append(
                f"{self.changed:,} of {self.total:,} values of `{field_key}` would be rounded "
                "or lose their time of day"
            )
        return "; ".join(parts) + " (confirm to go ahead)" if parts else None


class TypeChanges:
    """Type changes; mixed into ``SchemaEditor``."""

    def preview_type_change(
        self, table_key: str, field_key: str, new_type: str, config: dict | None = None
    ) -> ConversionPreview:
        """Which values would not convert to ``new_type`` (nothing is changed)."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        target = self._target_field(f, new_type, config or {})
        self._check_still_indexable(table, f, new_type)
        preview, _, _ = self._convert_all(table, f, target)
        return preview

    def change_field_type(
        self,
        table_key: str,
        field_key: str,
        new_type: str,
        config: dict | None = None,
        *,
        confirm: bool = False,
    ) -> ConversionPreview:
        """Change a field's type, converting every value. Values that cannot
        convert make the change fail unless confirmed; then they become blank
        (and the history says so)."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        target = self._target_field(f, new_type, config or {})
        self._check_still_indexable(table, f, new_type)
        preview, converted, lost = self._convert_all(table, f, target)
        loss = preview.loss(f.key, new_type)
        if loss and not confirm:
            raise DataLossError(loss, [preview.to_dict()])
        old_col = f.column_name
        tmp = f"{old_col}_new"
        self._drop_indexes(table, f)
        in_indexes = self._drop_table_indexes_with(table, f)
        self.ops.add_column(table.sql.name, sa.Column(tmp, target.ftype.column_type(target)))
        tmp_table = sa.table(
            table.sql.name, sa.column("id"), sa.column(tmp, target.ftype.column_type(target))
        )
        if converted:
            stmt = (
                sa.update(tmp_table)
                .where(tmp_table.c.id == sa.bindparam("rid"))
                .values({tmp: sa.bindparam("val", type_=target.ftype.column_type(target))})
            )
            batch = [{"rid": rid, "val": val} for rid, val in converted]
            for i in range(0, len(batch), 5000):
                self.session.execute(stmt, batch[i : i + 5000])
        self.ops.drop_column(table.sql.name, old_col)
        self.ops.alter_column(table.sql.name, tmp, new_column_name=old_col)
        fd = self.session.get(FieldDef, f.id)
        fd.type = new_type
        fd.config = dict(target.config)
        if fd.unique and not target.ftype.can_be_unique:
            fd.unique = False
        self._changed(table.id)
        new_field = self.schema.table(table_key).field(f.key)
        self._create_indexes(self.schema.table(table_key), new_field)
        self._recreate_table_indexes(self.schema.table(table_key), in_indexes)
        if lost:
            self._record_lost(table, f, lost, f"type changed from {f.type} to {new_type}")
        # stored formulas that read the field see the converted values
        materialized.recompute_dependents(self.session, self.schema, table_key, f.key)
        return preview

    def _target_field(self, f: Field, new_type: str, config: dict) -> Field:
        if f.system or f.type not in CONVERTIBLE:
            raise BadRequest(
                f"A {f.type} field cannot change its type; add a new field and copy the values instead"
            )
        if new_type not in CONVERTIBLE:
            raise BadRequest(f"A field cannot be changed into a {new_type} field")
        if f.table_key == USERS and f.key in BUILTIN_USER_FIELDS:
            raise BadRequest(f"The built-in field `users.{f.key}` cannot change its type")
        t = FIELD_TYPES[new_type]
        cfg = dict(config)
        problems = t.check_config(cfg)
        if problems:
            raise BadRequest(f"Field `{f.key}`: " + "; ".join(problems))
        for kept in ("permissions", "indexed"):  # who may see it, and its index, stay
            if f.config.get(kept) and kept not in cfg:
                cfg[kept] = f.config[kept]
        return dataclasses.replace(
            f, type=new_type, unique=f.unique and t.can_be_unique, config=cfg, default=None
        )

    def _convert_all(self, table: Table, f: Field, target: Field):
        """Convert every value in Python through the target type's own parser, so a
        type change accepts exactly what a form or import would."""
        preview = ConversionPreview()
        converted: list[tuple[int, Any]] = []
        lost: list[tuple[int, Any, Any]] = []  # (id, old, new) of each value lost or changed
        col = table.column(f)
        rows = self.session.execute(
            sa.select(table.sql.c.id, col)
            .where(col.is_not(None))
            .order_by(table.sql.c.id)
            .execution_options(yield_per=5000)
        )
        for rid, raw in rows:
            value = f.ftype.from_db(f, raw)
            if f.ftype.is_blank(value):
                continue
            preview.total += 1
            try:
                new = convert_value(f, target, value)
                target.ftype.check_storable(target, new, self.dialect)
            except ConversionError as exc:
                preview.failed += 1
                lost.append((rid, f.ftype.to_json(f, value), None))
                if len(preview.examples) < PREVIEW_ROWS:
                    preview.examples.append(
                        {"id": rid, "value": f.ftype.display(f, value), "message": str(exc)}
                    )
                continue
            if narrowed(f, target, value, new):
                preview.changed += 1
                lost.append((rid, f.ftype.to_json(f, value), target.ftype.to_json(target, new)))
                if len(preview.examples) < PREVIEW_ROWS:
                    shown = target.ftype.display(target, new)
                    preview.examples.append(
                        {
                            "id": rid,
                            "value": f.ftype.display(f, value),
                            "message": f"would become {shown}",
                        }
                    )
            if not target.ftype.is_blank(new):
                converted.append((rid, target.ftype.to_db(target, new)))
        return preview, converted, lost

    def _record_lost(
        self, table: Table, f: Field, lost: list[tuple[int, Any, Any]], note: str
    ) -> None:
        """A history entry for every value a type change made blank or changed."""
        now = datetime.now(UTC)
        self.session.add_all(
            [
                HistoryEntry(
                    table_id=table.id,
                    record_id=rid,
                    version=0,
                    action="schema",
                    changed_at=now,
                    changed_by=None,
                    note=note,
                    changes={str(f.id): [old, new]},
                )
                for rid, old, new in lost
            ]
        )


def convert_value(old: Field, new: Field, value: Any) -> Any:
    """One value from ``old``'s type to ``new``'s, by way of its text."""
    if isinstance(value, list):
        if new.type == "multi_select":
            return new.ftype.to_python(new, value)
        text = ", ".join(map(str, value))
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = old.ftype.to_json(old, value)
        text = text if isinstance(text, str) else str(text)
    if new.type == "date" and old.type == "datetime":
        return value.astimezone(new.timezone).date()
    return new.ftype.parse_text(new, text)


NUMERIC = frozenset({"number", "currency", "integer"})


def narrowed(old: Field, new: Field, value: Any, converted: Any) -> bool:
    """Whether a converted value kept less than the original: a number rounded to
    fewer decimals, a date and time cut to its date."""
    if old.type in NUMERIC and new.type in NUMERIC and converted is not None:
        return Decimal(converted) != Decimal(value)
    if old.type == "datetime" and new.type == "date":
        return value.astimezone(new.timezone).time() != time(0)
    return False
