"""Online schema changes: tables and fields are created, renamed, retyped and
deleted while the data stays.

Every change writes the metadata rows and runs the DDL through Alembic's
operations on the same connection, inside the transaction opened by
``Platform.schema_editor()``: a failure anywhere rolls back both. Renames touch
metadata only (columns are named from ids). On SQLite, dropping a link column
rebuilds the table in Alembic batch mode; other changes use SQLite's own
ALTER TABLE.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import Session

from ..formula import types as ft
from . import formulas, materialized, permission_rules
from .errors import BadRequest, ConflictError
from .fieldtypes import FIELD_TYPES, SYSTEM_FIELDS, ConversionError
from .models import Counter, FieldDef, HistoryEntry, TableDef
from .schema import (
    USERS,
    Field,
    Schema,
    Table,
    bump_schema_version,
    field_column,
    junction_columns,
    junction_name,
    needs_plain_index,
    system_columns,
    table_name,
)

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_KEYS = frozenset(
    {
        "id",
        "version",
        "deleted_at",
        "deleted_by",
        "and",
        "or",
        "not",
        "in",
        "true",
        "false",
        "blank",
        "user",
        "fields",
    }
)
CONVERTIBLE = frozenset(
    {
        "text",
        "long_text",
        "number",
        "currency",
        "integer",
        "boolean",
        "date",
        "datetime",
        "select",
        "multi_select",
        "email",
        "phone",
        "url",
    }
)
FIELD_ATTRS = ("key", "label", "type", "required", "unique", "default", "help")
PREVIEW_ROWS = 20
RULE_KEYS = frozenset({"validations", "permissions", "lock"})  # each has its own operation


class DataLossError(ConflictError):
    """A change that would lose values; repeat it with confirmation to go ahead."""

    code = "data_loss"


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


def check_key(key: Any, what: str = "field") -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise BadRequest(
            f"`{key}` is not a valid {what} key: use lower-case letters, digits and _, "
            "starting with a letter (at most 63 characters)"
        )
    if key in RESERVED_KEYS:
        raise BadRequest(f"`{key}` is a reserved word and cannot be a {what} key")
    return key


def check_label(label: Any) -> str:
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        raise BadRequest("a label must be 1 to 200 characters")
    return label.strip()


class SchemaEditor:
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

    # --- tables -----------------------------------------------------------------
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
        for pos, (fkey, flabel, ftype) in enumerate(SYSTEM_FIELDS):
            self.session.add(
                FieldDef(
                    table_id=td.id,
                    key=fkey,
                    label=flabel,
                    type=ftype,
                    system=True,
                    position=1000 + pos,
                    config={},
                )
            )
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

    # --- fields -----------------------------------------------------------------
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

    def set_validations(self, table_key: str, rules: list[dict[str, str]]) -> Table:
        """Replace a table's validation rules: each a Boolean formula and the message
        shown when a record does not satisfy it."""
        table = self.schema.table(table_key)
        stored_rules = []
        for i, rule in enumerate(rules):
            if (
                not isinstance(rule, dict)
                or not isinstance(rule.get("message"), str)
                or not rule["message"].strip()
            ):
                raise BadRequest(f"Validation rule {i + 1} needs a `rule` formula and a `message`")
            stored, _ = formulas.store(
                self.schema, table_key, rule.get("rule"), f"Validation rule {i + 1}", ft.BOOLEAN
            )
            stored_rules.append({"rule": stored, "message": rule["message"].strip()})
        td = self.session.get(TableDef, table.id)
        td.config = {**(td.config or {}), "validations": stored_rules}
        self._changed(table.id)
        return self.schema.table(table_key)

    def set_permissions(self, table_key: str, rules: list[dict[str, Any]]) -> Table:
        """Replace a table's row rules: per role, a Boolean formula for each of
        read, create, update and delete (a missing action grants nothing)."""
        table = self.schema.table(table_key)
        stored = permission_rules.store_row_rules(self.session, self.schema, table, rules)
        td = self.session.get(TableDef, table.id)
        td.config = {**(td.config or {}), "permissions": stored}
        self._changed(table.id)
        return self.schema.table(table_key)

    def set_lock(self, table_key: str, rule: str | None) -> Table:
        """Set (or with None clear) the formula that makes a record read-only for everyone."""
        table = self.schema.table(table_key)
        td = self.session.get(TableDef, table.id)
        config = dict(td.config or {})
        if rule is None or (isinstance(rule, str) and not rule.strip()):
            config.pop("lock", None)
        else:
            config["lock"], _ = formulas.store(
                self.schema, table_key, rule, "Lock rule", ft.BOOLEAN
            )
        td.config = config
        self._changed(table.id)
        return self.schema.table(table_key)

    def set_field_permissions(
        self, table_key: str, field_key: str, rules: list[dict[str, Any]]
    ) -> Field:
        """Replace a field's rules: per role, Boolean formulas for read and write."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        stored = permission_rules.store_field_rules(self.session, self.schema, table, f, rules)
        fd = self.session.get(FieldDef, f.id)
        config = {k: v for k, v in fd.config.items() if k != "permissions"}
        if stored:
            config["permissions"] = stored
        fd.config = config
        self._changed(table.id)
        return self.schema.table(table_key).field(field_key)

    def _save_formula(self, table_key: str, field_key: str, source: str) -> None:
        stored, checked = formulas.store(
            self.schema, table_key, source, f"Formula field `{field_key}`", field_key=field_key
        )
        table = self.schema.table(table_key)
        before = table.field(field_key)
        fd = self.session.get(FieldDef, before.id)
        keep = materialized.should_store(checked)
        if before.column_name is not None:  # a stored formula: its column is rebuilt
            self.ops.drop_column(table.sql.name, before.column_name)
        fd.config = {
            **{k: v for k, v in fd.config.items() if k != "stored"},
            "formula": stored,
            "result_type": formulas.result_type_name(checked.type),
            **({"stored": True} if keep else {}),
        }
        self._changed(fd.table_id)
        formulas.check_no_cycle(self.schema, table_key, field_key)
        if keep:
            f = self.schema.table(table_key).field(field_key)
            self.ops.add_column(table.sql.name, sa.Column(f.column_name, f.ftype.column_type(f)))
        materialized.recompute_dependents(self.session, self.schema, table_key, field_key)

    def _save_default(self, table_key: str, field_key: str, source: str | None) -> None:
        f = self.schema.table(table_key).field(field_key)
        fd = self.session.get(FieldDef, f.id)
        if source is None or (isinstance(source, str) and not source.strip()):
            fd.default = None
        else:
            if not f.writable:
                raise BadRequest(f"A {f.type} field is calculated and cannot have a default")
            fd.default, _ = formulas.store(
                self.schema, table_key, source, f"Default of `{field_key}`", f.ftype.formula_type(f)
            )
        self._changed(f.table_id)

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

    def preview_type_change(
        self, table_key: str, field_key: str, new_type: str, config: dict | None = None
    ) -> ConversionPreview:
        """Which values would not convert to ``new_type`` (nothing is changed)."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        target = self._target_field(f, new_type, config or {})
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
        preview, converted, lost = self._convert_all(table, f, target)
        loss = preview.loss(f.key, new_type)
        if loss and not confirm:
            raise DataLossError(loss, [preview.to_dict()])
        old_col = f.column_name
        tmp = f"{old_col}_new"
        self._drop_indexes(table, f)
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
        if new_field.unique:
            self._create_indexes(self.schema.table(table_key), new_field)
        if lost:
            self._record_lost(table, f, lost, f"type changed from {f.type} to {new_type}")
        # stored formulas that read the field see the converted values
        materialized.recompute_dependents(self.session, self.schema, table_key, f.key)
        return preview

    def delete_field(self, table_key: str, field_key: str, *, confirm: bool = False) -> int:
        """Delete a field; refused while it holds values unless confirmed.
        Returns the number of values lost."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        if f.system:
            raise BadRequest(f"The automatic field `{field_key}` cannot be deleted")
        if table.system and f.key in BUILTIN_USER_FIELDS:
            raise BadRequest(f"The built-in field `users.{f.key}` cannot be deleted")
        for check in self.platform.hooks.before_field_delete:
            check(self.schema, table, f)
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

    # --- internals ------------------------------------------------------------------
    def _reverse_table_ids(self, f: Field, related: Any) -> list[int]:
        """The table holding (or that held) the reverse side of link ``f``."""
        if not related or not f.target_key or not self.schema.has_table(f.target_key):
            return []
        return [self.schema.table(f.target_key).id]

    def _field_of(self, fd: FieldDef, table_key: str) -> Field:
        from .schema import _field_from_def

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
        if f.config.get("permissions"):
            cfg["permissions"] = f.config["permissions"]  # who may see it stays as it was
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


BUILTIN_USER_FIELDS = frozenset({"email", "name", "roles", "active"})


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


def split_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A field spec -> (column attributes, type settings)."""
    if not isinstance(spec, dict):
        raise BadRequest("a field must be given as a mapping of settings")
    attrs = {k: spec[k] for k in FIELD_ATTRS if k in spec}
    config = {k: v for k, v in spec.items() if k not in FIELD_ATTRS}
    return attrs, config


def user_types() -> list[str]:
    return sorted(n for n, t in FIELD_TYPES.items() if not t.system_column)


def _kind(ftype: str, config: dict) -> str:
    if ftype == "link" and config.get("reverse_of"):
        return "related records"
    return "many-to-many link" if ftype == "link" and config.get("many") else ftype


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()
