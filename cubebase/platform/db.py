"""Engines and sessions, configured the same way for every process."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .errors import ConfigError


def _masked(url: object) -> str:
    """The URL for a message, without its password."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(url))


def normalize_url(url: str) -> str:
    """Validate a database URL and pick our drivers (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number fails here
    except (ArgumentError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"The database URL {_masked(url)!r} is not valid "
            "(expected e.g. sqlite:///path/to/file.sqlite or postgresql://host/dbname)"
        ) from exc
    if parsed.drivername == "postgres":  # the spelling many hosting services use
        parsed = parsed.set(drivername="postgresql")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"The database URL uses {backend!r}; Cubebase supports sqlite and postgresql"
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy, not pysqlite, open transactions (see _sqlite_begin), so DDL
    # is transactional and SAVEPOINTs work.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn) -> None:
    # A write session (Platform.session(write=True)) takes the write lock at BEGIN,
    # so a second writer waits its turn (busy timeout) instead of failing when the
    # snapshot it read from went stale while it waited.
    immediate = conn.get_execution_options().get("sqlite_begin") == "immediate"
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs) -> sa.Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_url(url)
    try:
        return _create(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"The database driver of {_masked(url)!r} is not installed "
            "(use sqlite:/// or postgresql://, which need nothing extra)"
        ) from exc


def _create(url: str, **kwargs) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "connect", _postgres_utc)
    return engine


def _postgres_utc(dbapi_conn, _record) -> None:
    # Formulas pass instants as naive UTC parameters; with the session in UTC they
    # compare correctly with timestamptz columns whatever the server's default zone.
    with dbapi_conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    dbapi_conn.commit()
