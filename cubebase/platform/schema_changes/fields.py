"""Adding, renaming, reconfiguring and deleting fields (links with their reverse
sides, select options, autonumbers)."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from ..errors import BadRequest, ConflictError
from ..fieldtypes import FIELD_TYPES
from ..models import Counter, FieldDef, TableDef
from ..schema import (
    Field,
    Table,
    field_column,
    junction_columns,
    junction_name,
    needs_plain_index,
)
from ..usage import refuse_if_used
from .common import (
    BUILTIN_USER_FIELDS,
    DataLossError,
    _kind,
    _label,
    check_key,
    check_label,
    split_spec,
    user_types,
)


class FieldChanges:
    """Field changes; mixed into ``SchemaEditor``."""

    def add_field(self, table_key: str, spec: dict[str, Any]) -> Field:
        table = self.schema.table(table_key)
        attrs, config = split_spec(spec)
        key = check_key(attrs.get("key"), "field")
        if key in table.fields:
            raise ConflictError(f"Table `{table_key}` already has a field `{key}`")
        ftype = attrs.get("type")
        if ftype not in FIELD_TYPES or FIELD_TYPES[ftype].system_column:
            raise BadRequest(f"`{ftype}` is not a field type (one of: {', '.join(user_types())})")
        t = FIELD_TYPES[ftype]
        related_name = config.pop("related_name", None)
        formula_source = config.pop("formula", None) if ftype == "formula" else None
        if ftype == "formula":
            if not isinstance(formula_source, str) or not formula_source.strip():
                raise BadRequest(f"Formula field `{key}` needs a `formula`")
            config["result_type"] = "text"
        default_source = attrs.get("default")
        if default_source is not None and not t.writable:
            raise BadRequest(f"A {ftype} field is calculated and cannot have a default")
        if ftype == "link":
            target_key = config.get("to")
            if not isinstance(target_key, str) or not self.schema.has_table(target_key):
                raise BadRequest(f"Link field `{key}` needs `to`: the key of an existing table")
            config["to"] = self.schema.table(target_key).id
            config["many"] = bool(config.get("many", False))
            if not config["many"]:
                config.pop("many")
        problems = [
            p
            for p in t.check_config({k: v for k, v in config.items() if k != "to"})
            if "`to`" not in p
        ]
        if problems:
            raise BadRequest(f"Field `{key}`: " + "; ".join(problems))
        unique = bool(attrs.get("unique", False))
        if unique and (not t.can_be_unique or config.get("many")):
            raise BadRequest(f"A {_kind(ftype, config)} field cannot be unique")
        position = 1 + max((f.position for f in table.fields.values() if not f.system), default=0)
        fd = FieldDef(
            table_id=table.id,
            key=key,
            label=check_label(attrs.get("label") or _label(key)),
            type=ftype,
            required=bool(attrs.get("required", False)),
            unique=unique,
            default=None,
            help=attrs.get("help"),
            position=position,
            config=config,
        )
        self.session.add(fd)
        self.session.flush()
        field_ = self._field_of(fd, table_key)
        if field_.link_kind == "many":
            target = self.schema.table(field_.target_key)
            self.ops.create_table(junction_name(fd.id), *junction_columns(table.id, target.id))
            self.ops.create_index(f"ix_j{fd.id}_target", junction_name(fd.id), ["target_id"])
        else:
            target_id = None
            if field_.target_key:
                target_id = self.schema.table(field_.target_key).id
            col = field_column(table.id, field_, target_id)
            if col is not None:
                if self.dialect == "sqlite" and col.foreign_keys:
                    # SQLite cannot add a foreign key to a table: rebuild it (batch mode).
                    with self.ops.batch_alter_table(table.sql.name, recreate="always") as batch:
                        batch.add_column(col)
                else:
                    self.ops.add_column(table.sql.name, col)
                self._create_indexes(table, field_)
        if ftype == "autonumber":
            self.session.add(Counter(field_id=fd.id, value=0))
            self.session.flush()
            self._number_existing(table, field_)
        if related_name:
            self._add_reverse(fd, field_, related_name)
        self._changed(table.id, *self._reverse_table_ids(field_, related_name))
        if formula_source is not None:
            self._save_formula(table_key, key, formula_source)
        if default_source is not None:
            self._save_default(table_key, key, default_source)
        return self.schema.table(table_key).field(key)

    def update_field(
        self,
        table_key: str,
        field_key: str,
        *,
        key: str | None = None,
        label: str | None = None,
        required: bool | None = None,
        unique: bool | None = None,
        default: Any = ...,
        help: Any = ...,
        config: dict | None = None,
    ) -> Field:
        """Rename a field or change its settings. Renaming touches metadata only."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        fd = self.session.get(FieldDef, f.id)
        if f.system and (key or unique is not None or config):
            raise BadRequest(f"The automatic field `{field_key}` cannot be changed")
        if key is not None and key != f.key:
            check_key(key, "field")
            if key in table.fields:
                raise ConflictError(f"Table `{table_key}` already has a field `{key}`")
            if table.system and f.key in BUILTIN_USER_FIELDS:
                raise BadRequest(f"The built-in field `users.{f.key}` cannot be renamed")
            fd.key = key
            if table.display_field == f.key:
                self.session.get(TableDef, table.id).display_field = key
        if label is not None:
            fd.label = check_label(label)
        if required is not None:
            fd.required = bool(required)
        if help is not ...:
            fd.help = help
        if config is not None:
            self._check_fixed_settings(f, config)
            merged = {**fd.config, **config}
            related_changed = "related_name" in config and config["related_name"] != fd.config.get(
                "related_name"
            )
            related = merged.pop("related_name", None) if related_changed else None
            new_formula = merged.pop("formula", None) if "formula" in config else None
            if f.type == "link":
                merged["to"] = fd.config.get("to")
            if "permissions" in config:
                raise BadRequest("Field rules are changed with their own operation")
            problems = f.ftype.check_config(
                {k: v for k, v in merged.items() if k not in ("to", "permissions")}
            )
            if problems:
                raise BadRequest(f"Field `{f.key}`: " + "; ".join(problems))
            if f.type in ("select", "multi_select"):
                self._check_options_kept(table, f, merged.get("options") or [])
            fd.config = merged
            if related_changed:
                self._set_related_name(f, related)
            indexed_now = dataclasses.replace(f, config=merged)
            if needs_plain_index(indexed_now) != needs_plain_index(f) and f.column_name:
                if needs_plain_index(indexed_now):
                    self.ops.create_index(
                        f"ix_t{table.id}_f{f.id}", table.sql.name, [f.column_name]
                    )
                else:
                    self.ops.drop_index(f"ix_t{table.id}_f{f.id}", table_name=table.sql.name)
            f = indexed_now
        if unique is not None and unique != f.unique:
            if unique and (not f.ftype.can_be_unique or f.column_name is None):
                raise BadRequest(f"A {_kind(f.type, f.config)} field cannot be unique")
            self._set_unique(table, f, unique)
            fd.unique = unique
        related = config is not None and "related_name" in config
        self._changed(table.id, *self._reverse_table_ids(f, related))
        if config is not None and f.type == "formula" and new_formula is not None:
            self._save_formula(table_key, fd.key, new_formula)
        if default is not ...:
            self._save_default(table_key, fd.key, default)
        return self.schema.table(table_key).field(fd.key)

    def _check_fixed_settings(self, f: Field, config: dict) -> None:
        """Settings that shape the stored data cannot change in place."""
        link = {
            "to": f.target_key,
            "many": bool(f.config.get("many")),
            "reverse_of": f.config.get("reverse_of"),
        }
        wanted = {**config, "many": bool(config.get("many"))}
        if any(name in config and wanted[name] != current for name, current in link.items()):
            raise BadRequest(
                f"Where `{f.key}` links to cannot be changed in place; add a new link "
                "field and delete this one"
            )
        if "precision" in config and f.type in ("number", "currency"):
            if config["precision"] != f.ftype.precision(f):
                raise BadRequest(
                    f"Change the precision of `{f.key}` with a type change: it converts the "
                    "stored values"
                )

    def delete_field(self, table_key: str, field_key: str, *, confirm: bool = False) -> int:
        """Delete a field; refused while it holds values unless confirmed.
        Returns the number of values lost."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        if f.system:
            raise BadRequest(f"The automatic field `{field_key}` cannot be deleted")
        if table.system and f.key in BUILTIN_USER_FIELDS:
            raise BadRequest(f"The built-in field `users.{f.key}` cannot be deleted")
        refuse_if_used(self.platform, self.session, self.schema, table, f)
        count = self._count_values(table, f)
        if count and not confirm:
            raise DataLossError(
                f"Field `{f.key}` holds {count:,} values; deleting it loses them (confirm to go ahead)",
                [{"field": f.key, "values": count}],
            )
        kind = f.link_kind
        if kind in ("reverse", "reverse_many"):
            fwd = self.session.get(FieldDef, f.config["reverse_of"])
            fwd.config = {k: v for k, v in fwd.config.items() if k != "related_name"}
        else:
            self._drop_reverse_of(f)
        if kind == "many":
            self.ops.drop_table(table.junctions[f.id].name)
        elif f.column_name is not None:
            self._drop_indexes(table, f)
            self._drop_table_indexes_with(table, f)
            self._forget_table_indexes_with(table, f)
            if kind == "one" and self.dialect == "sqlite":
                with self.ops.batch_alter_table(table.sql.name, recreate="always") as batch:
                    batch.drop_column(f.column_name)
            else:
                self.ops.drop_column(table.sql.name, f.column_name)
        if table.display_field == f.key:
            self.session.get(TableDef, table.id).display_field = None
        self.session.execute(sa.delete(Counter).where(Counter.field_id == f.id))
        self.session.execute(sa.delete(FieldDef).where(FieldDef.id == f.id))
        self._changed()
        return count

    # --- questions and small changes used by app files (schema_defs) ---------------
    def count_values(self, table_key: str, field_key: str) -> int:
        """How many values a field holds (what deleting it would lose)."""
        table = self.schema.table(table_key)
        return self._count_values(table, table.field(field_key))

    def _reverse_table_ids(self, f: Field, related: Any) -> list[int]:
        """The table holding (or that held) the reverse side of link ``f``."""
        if not related or not f.target_key or not self.schema.has_table(f.target_key):
            return []
        return [self.schema.table(f.target_key).id]

    def _field_of(self, fd: FieldDef, table_key: str) -> Field:
        from ..schema import _field_from_def

        keys = {t.id: t.key for t in self.schema.tables.values()}
        by_id = {fd.id: fd}
        if fd.config.get("reverse_of"):
            by_id[fd.config["reverse_of"]] = self.session.get(FieldDef, fd.config["reverse_of"])
        return _field_from_def(fd, table_key, keys, by_id, self.platform.registry.tz)

    def _add_reverse(self, fwd: FieldDef, field_: Field, related_name: str) -> None:
        target = self.schema.table(field_.target_key)
        check_key(related_name, "field")
        if related_name in target.fields:
            raise ConflictError(
                f"`{related_name}` is already a field of `{target.key}`; choose another related_name"
            )
        cfg: dict[str, Any] = {"reverse_of": fwd.id}
        if field_.link_kind == "many":
            cfg["many"] = True
        self.session.add(
            FieldDef(
                table_id=target.id,
                key=related_name,
                label=_label(related_name),
                type="link",
                position=500 + fwd.id,
                config=cfg,
            )
        )
        fwd.config = {**fwd.config, "related_name": related_name}
        self.session.flush()

    def _set_related_name(self, f: Field, related_name: str | None) -> None:
        fwd = self.session.get(FieldDef, f.id)
        self._drop_reverse_of(f)
        fwd.config = {k: v for k, v in fwd.config.items() if k != "related_name"}
        self.session.flush()
        if related_name:
            self._add_reverse(fwd, f, related_name)

    def _drop_reverse_of(self, f: Field) -> None:
        if f.link_kind in ("one", "many") or f.type == "user":
            for other in self.schema.tables.values():
                for rf in other.fields.values():
                    if rf.config.get("reverse_of") == f.id:
                        self.session.execute(sa.delete(FieldDef).where(FieldDef.id == rf.id))

    def _check_options_kept(self, table: Table, f: Field, options: list[str]) -> None:
        """Removing an option that records still use would lose data: refuse it."""
        removed = set(f.config.get("options") or []) - set(options)
        if not removed:
            return
        col = table.column(f)
        if f.type == "select":
            used = self.session.scalars(
                sa.select(col).where(col.in_(sorted(removed))).distinct().limit(5)
            ).all()
        else:
            used = sorted(
                {
                    v
                    for row in self.session.scalars(sa.select(col).where(col.is_not(None)))
                    for v in f.ftype.from_db(f, row)
                    if v in removed
                }
            )[:5]
        if used:
            raise ConflictError(
                f"Options still in use by `{f.key}` cannot be removed: {', '.join(map(str, used))}"
            )

    def _count_values(self, table: Table, f: Field) -> int:
        kind = f.link_kind
        if kind == "many":
            return (
                self.session.scalar(sa.select(sa.func.count()).select_from(table.junctions[f.id]))
                or 0
            )
        if f.column_name is None or f.type == "formula":
            return 0  # a stored formula's column holds no data of its own
        return (
            self.session.scalar(sa.select(sa.func.count()).where(table.column(f).is_not(None))) or 0
        )

    def _number_existing(self, table: Table, f: Field) -> None:
        """A new autonumber field numbers the existing records in id order."""
        rows = self.session.scalars(sa.select(table.sql.c.id).order_by(table.sql.c.id)).all()
        if not rows:
            return
        t = sa.table(table.sql.name, sa.column("id"), sa.column(f.column_name))
        self.session.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("rid"))
            .values({f.column_name: sa.bindparam("n")}),
            [{"rid": rid, "n": n} for n, rid in enumerate(rows, start=1)],
        )
        self.session.execute(
            sa.update(Counter).where(Counter.field_id == f.id).values(value=len(rows))
        )
