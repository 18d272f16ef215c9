"""Fixtures: the test schema on each database (``engine`` comes from tests/conftest.py).

On PostgreSQL every statement of the formula tests runs under a statement timeout:
a generated formula whose SQL is slow fails in seconds with the formulas named
(``World.sql_values`` / ``sql_where``), instead of hanging CI.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from .helpers import STATEMENT_TIMEOUT, World, seed_basic


def _statement_timeout(dbapi_conn, _record) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}s'")
    dbapi_conn.commit()  # a session setting; committed so a rollback keeps it


@pytest.fixture
def engine(engine):
    """The shared ``engine`` fixture, with the statement timeout on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        engine.dispose()  # every connection from now on goes through the hook
        event.listen(engine, "connect", _statement_timeout)
    return engine


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def db(engine):
    """(world, engine) with the tables created and the basic rows inserted."""
    w = World()
    w.create(engine)
    seed_basic(w)
    w.insert_all(engine)
    return w, engine
