"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is found at ``CUBEBASE_TEST_POSTGRES_URL`` (default: the local
server, database ``test``). Each test gets its own PostgreSQL schema (dropped
afterwards) or its own SQLite file, so tests are isolated and can run in
parallel. When the server is unreachable the PostgreSQL variants skip with the
reason, unless ``CUBEBASE_TEST_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where
they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

DEFAULT_PG_URL = "postgresql+psycopg://127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def _required() -> bool:
    return os.environ.get("CUBEBASE_TEST_REQUIRE_SERVICES") == "1"


def postgres_base_url() -> str:
    return os.environ.get("CUBEBASE_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def redis_test_url() -> str:
    return os.environ.get("CUBEBASE_TEST_REDIS_URL", DEFAULT_REDIS_URL)


_pg_state: dict[str, str | None] = {}


def _postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else the reason (checked once per session)."""
    if "reason" not in _pg_state:
        try:
            eng = sa.create_engine(postgres_base_url())
            with eng.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            eng.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            _pg_state["reason"] = f"PostgreSQL not reachable at {postgres_base_url()}: {exc}"
    return _pg_state["reason"]


def need_postgres() -> None:
    reason = _postgres_unavailable()
    if reason:
        if _required():
            pytest.fail(reason + " (required: CUBEBASE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(reason)


def need_redis() -> str:
    url = redis_test_url()
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        reason = f"Redis not reachable at {url}: {exc}"
        if _required():
            pytest.fail(reason + " (required: CUBEBASE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A URL to an empty database of each kind, private to this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cubebase.sqlite'}"
        return
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = sa.engine.make_url(postgres_base_url())
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url) -> Iterator[sa.Engine]:
    """A SQLAlchemy engine on the private database of ``db_url``."""
    from cubebase.platform.db import make_engine

    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()
