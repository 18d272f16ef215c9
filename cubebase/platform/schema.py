"""The live schema: user tables as SQLAlchemy Core tables built from metadata.

A ``Schema`` is an immutable snapshot of every table and field at one schema
version. ``SchemaRegistry`` caches the snapshot and rebuilds it when the
``schema_version`` counter in ``cb_state`` moves, which any process's schema
change bumps in its own transaction: so many gunicorn and rq workers always see
the same tables without talking to each other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..formula import schema as fschema
from .errors import NotFound
from .fieldtypes import FieldType, LinkType, get_type
from .models import FieldDef, MetaState, TableDef

SCHEMA_VERSION_KEY = "schema_version"
_SEEN = "cb_schema"  # Session.info: (transaction, schema) last read in it
USERS = "users"


@dataclass(eq=False)
class Field:
    """A field of a table at one schema version. ``ftype``, ``column_name``,
    ``link_kind`` and ``writable`` are worked out on first use and kept: a field's
    type and settings do not change within a snapshot (a changed field is a new one,
    e.g. ``dataclasses.replace``)."""

    id: int
    table_id: int
    table_key: str
    key: str
    label: str
    type: str
    required: bool = False
    unique: bool = False
    default: str | None = None
    help: str | None = None
    position: int = 0
    system: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    target_key: str | None = None  # links and users: the target table's key
    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @cached_property
    def ftype(self) -> FieldType:
        return get_type(self.type)

    @cached_property
    def column_name(self) -> str | None:
        t = self.ftype
        if t.system_column:
            return t.system_column
        if t.column_type(self) is None:
            return None
        return f"f_{self.id}"

    @cached_property
    def link_kind(self) -> str | None:
        t = self.ftype
        return t.kind(self) if isinstance(t, LinkType) else None

    @cached_property
    def writable(self) -> bool:
        return self.ftype.writable and self.link_kind not in ("reverse", "reverse_many")

    def describe(self) -> dict[str, Any]:
        """The field as the API and the designer show it."""
        out: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "label": self.label,
            "type": self.type,
        }
        for name in ("required", "unique", "system"):
            if getattr(self, name):
                out[name] = True
        if self.default:
            out["default"] = self.default
        if self.help:
            out["help"] = self.help
        cfg = {k: v for k, v in self.config.items() if k not in ("to", "reverse_of")}
        if self.target_key:
            cfg["to"] = self.target_key
        out.update(cfg)
        if not self.writable:
            out["read_only"] = True
        return out


@dataclass(eq=False)
class Table:
    id: int
    key: str
    label: str
    display_field: str | None
    app: str | None
    system: bool
    config: dict[str, Any]
    fields: dict[str, Field]
    sql: sa.Table
    junctions: dict[int, sa.Table]
    signature: tuple | None = field(default=None, repr=False)  # its metadata rows, compared

    def field(self, key: str) -> Field:
        try:
            return self.fields[key]
        except KeyError:
            raise NotFound(f"Table `{self.key}` has no field `{key}`") from None

    def field_by_id(self, field_id: int) -> Field | None:
        for f in self.fields.values():
            if f.id == field_id:
                return f
        return None

    def column(self, f: Field) -> sa.Column:
        return self.sql.c[f.column_name]

    def data_fields(self) -> list[Field]:
        """Fields whose values a record carries (everything but reverse sides)."""
        return [f for f in self.fields.values() if f.link_kind not in ("reverse", "reverse_many")]


def table_name(table_id: int) -> str:
    return f"t_{table_id}"


def junction_name(field_id: int) -> str:
    return f"j_{field_id}"


def id_column_type() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def system_columns() -> list[sa.Column]:
    """Columns every user table has, whatever its fields."""
    ts = sa.DateTime(timezone=True)
    return [
        sa.Column("id", id_column_type(), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("created_by", sa.Integer),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("updated_by", sa.Integer),
        sa.Column("deleted_at", ts),
        sa.Column("deleted_by", sa.Integer),
    ]


def field_column(table_id: int, f: Field, target_id: int | None) -> sa.Column | None:
    """The Core column of a field, with its foreign key for many-to-one links."""
    name = f.column_name
    if name is None or f.ftype.system_column:
        return None
    args: list[Any] = []
    if f.link_kind == "one" and target_id is not None:
        args.append(sa.ForeignKey(f"{table_name(target_id)}.id", name=f"fk_t{table_id}_f{f.id}"))
    return sa.Column(name, f.ftype.column_type(f), *args)


def field_indexes(t: sa.Table, table_id: int, f: Field) -> list[sa.Index]:
    """Indexes a field needs: links are indexed; unique fields get a unique index
    over the live (not trashed) rows."""
    name = f.column_name
    if name is None or f.ftype.system_column:
        return []
    col = t.c[name]
    if f.unique:
        live = t.c.deleted_at.is_(None)
        return [
            sa.Index(
                f"uq_t{table_id}_f{f.id}",
                col,
                unique=True,
                sqlite_where=live,
                postgresql_where=live,
            )
        ]
    if needs_plain_index(f):
        return [sa.Index(f"ix_t{table_id}_f{f.id}", col)]
    return []


def needs_plain_index(f: Field) -> bool:
    """Links and fields marked ``indexed`` get an index (unique ones have theirs)."""
    return not f.unique and (f.link_kind == "one" or bool(f.config.get("indexed")))


def junction_columns(source_id: int, target_id: int) -> list[sa.Column]:
    """A many-to-many link's rows: (this record, linked record)."""
    return [
        sa.Column(
            "source_id",
            id_column_type(),
            sa.ForeignKey(f"{table_name(source_id)}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "target_id",
            id_column_type(),
            sa.ForeignKey(f"{table_name(target_id)}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    ]


def junction_table(metadata: sa.MetaData, f: Field, source_id: int, target_id: int) -> sa.Table:
    return sa.Table(
        junction_name(f.id),
        metadata,
        *junction_columns(source_id, target_id),
        sa.Index(f"ix_j{f.id}_target", "target_id"),
    )


class Schema:
    """Every user table at one schema version."""

    def __init__(self, version: int, tables: list[Table], metadata: sa.MetaData, tz: tzinfo):
        self.version = version
        self.metadata = metadata
        self.timezone = tz
        self.tables: dict[str, Table] = {t.key: t for t in tables}
        self.by_id: dict[int, Table] = {t.id: t for t in tables}
        self._formula_schema: FormulaSchema | None = None
        # Checked formulas by (table, stored text, expected type): parsed once per
        # schema version and process, shared by every request.
        self.formula_cache: dict[tuple[str, str, str | None], Any] = {}

    def table(self, key: str) -> Table:
        try:
            return self.tables[key]
        except KeyError:
            raise NotFound(f"There is no table `{key}`") from None

    def has_table(self, key: str) -> bool:
        return key in self.tables

    def formula_schema(self) -> FormulaSchema:
        if self._formula_schema is None:
            self._formula_schema = FormulaSchema(self)
        return self._formula_schema

    @classmethod
    def load(cls, session: Session, version: int, tz: tzinfo) -> Schema:
        tdefs = session.scalars(sa.select(TableDef).order_by(TableDef.id)).all()
        fdefs = session.scalars(sa.select(FieldDef).order_by(FieldDef.position, FieldDef.id)).all()
        return cls.from_defs(version, tdefs, fdefs, tz)

    @classmethod
    def from_defs(
        cls,
        version: int,
        tdefs: list[TableDef],
        fdefs: list[FieldDef],
        tz: tzinfo,
        previous: Schema | None = None,
    ) -> Schema:
        """A snapshot from metadata rows (``fdefs`` in position order); also used
        to check app files against the schema they would make, before applying.

        With ``previous`` (a snapshot private to the caller, as the schema editor's
        own), a table whose rows did not change keeps its Core table and fields and
        only the changed tables are built again, in ``previous``'s MetaData: a long
        run of schema changes then costs each step one changed table, not the whole
        schema. ``previous`` stays usable but should not be handed out afterwards."""
        keys = {t.id: t.key for t in tdefs}
        field_rows: dict[int, list[FieldDef]] = {t.id: [] for t in tdefs}
        for fd in fdefs:
            field_rows.setdefault(fd.table_id, []).append(fd)
        by_field_id = {fd.id: fd for fd in fdefs}
        signatures = {td.id: _signature(td, field_rows[td.id], keys, by_field_id) for td in tdefs}
        kept: dict[int, Table] = {}
        if previous is not None:
            metadata = previous.metadata
            for old in previous.tables.values():
                sig = signatures.get(old.id)
                if sig is not None and sig == old.signature:
                    kept[old.id] = old
                    continue
                for fid, j in old.junctions.items():
                    f = old.field_by_id(fid)
                    if f is not None and f.link_kind == "many" and metadata.tables.get(j.name) is j:
                        metadata.remove(j)
                if metadata.tables.get(old.sql.name) is old.sql:
                    metadata.remove(old.sql)
        else:
            metadata = sa.MetaData()
        tables: list[Table] = []
        for td in tdefs:
            old = kept.get(td.id)
            if old is not None:
                fields, t = old.fields, old.sql
            else:
                fields = {}
                for fd in field_rows[td.id]:
                    fields[fd.key] = _field_from_def(fd, td.key, keys, by_field_id, tz)
                columns = system_columns()
                for f in fields.values():
                    col = field_column(td.id, f, _target_id(f, keys, by_field_id))
                    if col is not None:
                        columns.append(col)
                t = sa.Table(table_name(td.id), metadata, *columns)
                for f in fields.values():
                    field_indexes(t, td.id, f)  # an Index on a table's column attaches to it
            tables.append(
                Table(
                    td.id,
                    td.key,
                    td.label,
                    td.display_field,
                    td.app,
                    td.system,
                    dict(td.config or {}),
                    fields,
                    t,
                    {},
                    signatures[td.id],
                )
            )
        by_key = {t.key: t for t in tables}
        for t in tables:
            old = kept.get(t.id)
            for f in t.fields.values():
                if f.link_kind == "many":
                    if old is not None and f.id in old.junctions:
                        t.junctions[f.id] = old.junctions[f.id]
                        continue
                    target = by_key[f.target_key]
                    t.junctions[f.id] = junction_table(metadata, f, t.id, target.id)
        for t in tables:
            for f in t.fields.values():
                if f.link_kind == "reverse_many":
                    fwd = by_field_id[f.config["reverse_of"]]
                    t.junctions[f.id] = by_key[keys[fwd.table_id]].junctions[fwd.id]
        return cls(version, tables, metadata, tz)


def _signature(
    td: Any, rows: list[Any], keys: dict[int, str], by_field_id: dict[int, Any]
) -> tuple | None:
    """Everything a table's snapshot is built from, when given plain rows (the
    schema editor's): equal signatures, equal tables. Rows kept from an earlier
    read compare by identity, so an unchanged table costs almost nothing; the keys
    of the tables its links point to are part of it (links name targets by key)."""
    if not isinstance(td, sa.Row):
        return None
    targets = []
    for fd in rows:
        if fd.type == "link":
            cfg = fd.config or {}
            if cfg.get("reverse_of"):
                fwd = by_field_id.get(cfg["reverse_of"])
                targets.append(keys.get(fwd.table_id) if fwd is not None else None)
            else:
                targets.append(keys.get(cfg.get("to")))
    return (tuple(td), tuple(rows), tuple(targets))


def _target_id(f: Field, keys: dict[int, str], by_field_id: dict[int, FieldDef]) -> int | None:
    if f.target_key is None:
        return None
    for tid, key in keys.items():
        if key == f.target_key:
            return tid
    return None


def _field_from_def(
    fd: FieldDef, table_key: str, keys: dict[int, str], by_field_id: dict[int, FieldDef], tz: tzinfo
) -> Field:
    config = dict(fd.config or {})
    target_key = None
    if fd.type in ("user", "created_by", "updated_by"):
        target_key = USERS
    elif fd.type == "link":
        if config.get("reverse_of"):
            fwd = by_field_id.get(config["reverse_of"])
            target_key = keys.get(fwd.table_id) if fwd else None
        else:
            target_key = keys.get(config.get("to"))
    return Field(
        id=fd.id,
        table_id=fd.table_id,
        table_key=table_key,
        key=fd.key,
        label=fd.label,
        type=fd.type,
        required=fd.required,
        unique=fd.unique,
        default=fd.default,
        help=fd.help,
        position=fd.position,
        system=fd.system,
        config=config,
        target_key=target_key,
        timezone=tz,
    )


class SchemaRegistry:
    """Per-application cache of the live schema (no module globals)."""

    def __init__(self, timezone: str = "UTC"):
        self._lock = threading.Lock()
        self._schema: Schema | None = None
        self.tz = ZoneInfo(timezone)

    @staticmethod
    def current_version(session: Session) -> int:
        v = session.scalar(sa.select(MetaState.value).where(MetaState.key == SCHEMA_VERSION_KEY))
        return int(v or 0)

    def get(self, session: Session) -> Schema:
        """The schema as of the session's transaction: its version is read once per
        transaction (a request that loads the user, then lists, asks once)."""
        seen = self._seen(session)
        return seen if seen is not None else self.at_version(session, self.current_version(session))

    @staticmethod
    def _seen(session: Session) -> Schema | None:
        """The schema this transaction already read, if any."""
        seen = session.info.get(_SEEN)
        if seen is not None and session.in_transaction() and seen[0] is session.get_transaction():
            return seen[1]
        return None

    def cached(self) -> Schema | None:
        """The last schema loaded (maybe stale): for statements that read the schema
        version themselves along with what they need (see ``users.load_actor``)."""
        return self._schema

    def at_version(self, session: Session, version: int) -> Schema:
        """The schema at ``version``, read in the session's transaction: remembered
        for the rest of the transaction."""
        cached = self._schema
        if cached is None or cached.version != version:
            with self._lock:
                cached = self._schema = Schema.load(session, version, self.tz)
        session.info[_SEEN] = (session.get_transaction(), cached)
        return cached

    def note_version(self, session: Session, version: int) -> Schema:
        """The schema version was read along with something else: remember the schema
        for the transaction, unless it already has one."""
        seen = self._seen(session)
        return seen if seen is not None else self.at_version(session, int(version or 0))

    @staticmethod
    def version_column() -> sa.ScalarSelect:
        return (
            sa.select(MetaState.value)
            .where(MetaState.key == SCHEMA_VERSION_KEY)
            .scalar_subquery()
            .label("cb_schema_version")
        )

    def invalidate(self) -> None:
        self._schema = None


def bump_schema_version(session: Session) -> int:
    """Advance the version in the caller's transaction (also serializes concurrent
    schema changes on PostgreSQL through the row lock)."""
    session.execute(
        sa.update(MetaState)
        .where(MetaState.key == SCHEMA_VERSION_KEY)
        .values(value=MetaState.value + 1)
    )
    return SchemaRegistry.current_version(session)


class FormulaSchema:
    """The platform's side of ``cubebase.formula.schema.SchemaProvider``."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self._cache: dict[str, fschema.TableInfo] = {}

    def table_keys(self) -> list[str]:
        return list(self.schema.tables)

    def table(self, key: str) -> fschema.TableInfo | None:
        if key in self._cache:
            return self._cache[key]
        t = self.schema.tables.get(key)
        if t is None:
            return None
        info = fschema.TableInfo(id=t.id, key=t.key, label=t.label, sql=t.sql)
        for f in t.fields.values():
            info.fields[f.key] = self._field_info(t, f)
        parent = t.config.get("parent_field")
        if parent is None:
            parent = next(
                (
                    f.key
                    for f in t.fields.values()
                    if f.link_kind == "one" and f.target_key == t.key
                ),
                None,
            )
        info.parent_field = parent
        self._cache[key] = info
        return info

    def _field_info(self, t: Table, f: Field) -> fschema.FieldInfo:
        ftype = f.ftype
        kind = f.link_kind
        link = None
        storage = ftype.storage
        column = f.column_name
        if kind in ("one",):
            link = fschema.LinkInfo(target=f.target_key)
        elif kind == "reverse":
            fwd_id = f.config["reverse_of"]
            target = self.schema.tables[f.target_key]
            fwd = target.field_by_id(fwd_id)
            storage, link = "reverse", fschema.LinkInfo(target=f.target_key, target_field=fwd.key)
        elif kind in ("many", "reverse_many"):
            j = t.junctions[f.id]
            src, dst = ("source_id", "target_id") if kind == "many" else ("target_id", "source_id")
            storage = "junction"
            link = fschema.LinkInfo(
                target=f.target_key, junction=j, source_column=src, target_column=dst
            )
        options = tuple(f.config.get("options") or ()) or None
        precision = f.config.get("precision")
        if precision is None and f.type == "currency":
            precision = 2
        return fschema.FieldInfo(
            id=f.id,
            key=f.key,
            label=f.label,
            type=ftype.formula_type(f),
            storage=storage,
            column=column,
            link=link,
            formula=f.config.get("formula"),
            options=options,
            precision=precision,
        )
