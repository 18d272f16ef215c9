"""The platform's own tables (typed SQLAlchemy models, migrated by Alembic).

User tables are *not* here: they are Core tables built from ``TableDef`` and
``FieldDef`` rows (see ``schema.py``), named ``t_<table id>`` with columns
``f_<field id>``, so renaming a table or field touches only these rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    type_annotation_map = {JsonDict: JSON, datetime: DateTime(timezone=True)}


class MetaState(Base):
    """Single-row counters shared by every process: the schema version lets each
    process know when its cached table objects are stale."""

    __tablename__ = "cb_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class TableDef(Base):
    __tablename__ = "cb_tables"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    display_field: Mapped[str | None] = mapped_column(String(64))
    app: Mapped[str | None] = mapped_column(String(64))
    system: Mapped[bool] = mapped_column(default=False)
    config: Mapped[JsonDict] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class FieldDef(Base):
    __tablename__ = "cb_fields"
    __table_args__ = (UniqueConstraint("table_id", "key", name="uq_cb_fields_table_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_id: Mapped[int] = mapped_column(
        ForeignKey("cb_tables.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    required: Mapped[bool] = mapped_column(default=False)
    unique: Mapped[bool] = mapped_column(default=False)
    default: Mapped[str | None] = mapped_column(Text)  # a formula
    help: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)
    system: Mapped[bool] = mapped_column(default=False)  # created_at & co, kept automatically
    config: Mapped[JsonDict] = mapped_column(default=dict)  # options, precision, to, many, ...


class Counter(Base):
    """Autonumber counters, advanced atomically with UPDATE ... RETURNING."""

    __tablename__ = "cb_counters"
    field_id: Mapped[int] = mapped_column(
        ForeignKey("cb_fields.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Role(Base):
    __tablename__ = "cb_roles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    app: Mapped[str | None] = mapped_column(String(64))


class Credential(Base):
    """A user's password hash, kept apart from the users table so no list, export
    or API response can ever carry it."""

    __tablename__ = "cb_credentials"
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    changed_at: Mapped[datetime]


class ApiToken(Base):
    __tablename__ = "cb_api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown to admins to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class HistoryEntry(Base):
    """One row per record write: who, when, what, and each field's old and new value
    (``changes`` maps field id -> [old, new] in JSON form)."""

    __tablename__ = "cb_history"
    __table_args__ = (Index("ix_cb_history_record", "table_id", "record_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    table_id: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # create update delete restore
    changed_at: Mapped[datetime]
    changed_by: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[JsonDict] = mapped_column(default=dict)


class ApiTokenUse(Base):
    """How an API token was used, counted per hour: requests, writes and refused
    requests (4xx), and the last caller address. Each process adds its counts
    every few seconds (an upsert that adds), so many workers share one row."""

    __tablename__ = "cb_api_token_use"
    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)  # the hour's start, UTC
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    writes: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[datetime]
    last_ip: Mapped[str | None] = mapped_column(String(64))


class SavedView(Base):
    """A user's own saved view of a table: the grid's state (columns, sort, filter,
    search, conditions, grouping) as query-string arguments. Shared views, defined
    by admins, live in the table's settings (``views``) and in app files."""

    __tablename__ = "cb_saved_views"
    __table_args__ = (Index("ix_cb_saved_views_user_table", "user_id", "table_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    table_id: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    state: Mapped[JsonDict] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class Report(Base):
    """A report (the app format's `reports:`): a list or a grouped summary of one
    table's records, always run as the viewer. ``definition`` holds its formulas in
    stored form (field ids), so renaming a field or the table keeps the report."""

    __tablename__ = "cb_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    app: Mapped[str | None] = mapped_column(String(64))
    table_id: Mapped[int] = mapped_column(Integer, index=True)
    label: Mapped[str] = mapped_column(String(200))
    definition: Mapped[JsonDict] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Dashboard(Base):
    """A dashboard (the app format's `dashboards:`): charts and tables of reports,
    shown to the roles it names."""

    __tablename__ = "cb_dashboards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    app: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    definition: Mapped[JsonDict] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
