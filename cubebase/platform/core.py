"""The platform object: one per process, held by the Flask app or the CLI.

It owns the engine, the schema cache and the record hooks, and hands out
sessions, records services and schema editors. Nothing here is module-global.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from .config import Config
from .db import make_engine
from .formulas import formula_users
from .hooks import RecordHooks
from .schema import Schema, SchemaRegistry


class Platform:
    def __init__(self, config: Config, engine: sa.Engine | None = None):
        self.config = config
        self.engine = engine if engine is not None else make_engine(config.database_url)
        self.registry = SchemaRegistry(config.timezone)
        self.hooks = RecordHooks()
        self.hooks.deletion_users.append(formula_users)
        self.hooks.deletion_users.append(_report_users)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            self.engine.execution_options(sqlite_begin="immediate"), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, *, write: bool = False) -> Session:
        """A session. ``write=True`` for a unit of work that writes (a form post, an
        API write, a job): on SQLite its transactions take the write lock at BEGIN,
        so concurrent writers queue instead of failing with "database is locked"."""
        return (self._write_sessions if write else self._sessions)()

    def schema(self, session: Session) -> Schema:
        return self.registry.get(session)

    def records(self, session: Session, actor):
        """A records service for ``actor`` working inside ``session``'s transaction."""
        from .records import RecordsService

        return RecordsService(session, actor, self)

    @contextmanager
    def schema_editor(self) -> Iterator:
        """Schema changes in one transaction: all of them apply, or none.

        On SQLite, foreign-key enforcement is switched off for the connection
        while a table may be rebuilt (batch mode), and checked before commit.
        """
        from .schema_changes import SchemaEditor

        with self.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            try:
                with Session(bind=conn, expire_on_commit=False) as session:
                    with session.begin():
                        editor = SchemaEditor(session, self)
                        yield editor
                        if sqlite:
                            bad = (
                                session.connection()
                                .exec_driver_sql("PRAGMA foreign_key_check")
                                .fetchall()
                            )
                            if bad:
                                raise RuntimeError(f"schema change broke links: {bad[:3]}")
            finally:
                if sqlite:
                    conn.rollback()
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
                self.registry.invalidate()

    def dispose(self) -> None:
        self.engine.dispose()


def _report_users(session: Session, schema: Schema, what) -> list:
    """Finder for reports (late import: reports import the records service)."""
    from .reports import report_users

    return report_users(session, schema, what)
