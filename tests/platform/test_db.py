"""Database URLs and engines: clear configuration errors, never a traceback."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.platform.db import make_engine, normalize_url
from cubebase.platform.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense://", "supports sqlite and postgresql"),
        ("mysql://user@host/db", "uses 'mysql'"),
        ("http://example.com", "uses 'http'"),
        ("", "is not valid"),
        ("not a url", "is not valid"),
        (None, "is not valid"),
        ("postgresql://user:secret@host:port/db", "is not valid"),
        ("postgresql+psycopg2://user:secret@host/db", "driver"),
        ("sqlite+pysqlcipher:///x.db", "driver"),
    ],
)
def test_bad_urls_are_config_errors(url, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_engine(url)
    assert "secret" not in err.value.message
    assert "sqlite" in err.value.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://host/db", "postgresql+psycopg://host/db"),
        ("postgres://u:p@host:5433/db", "postgresql+psycopg://u:p@host:5433/db"),
        ("postgresql+psycopg://host/db", "postgresql+psycopg://host/db"),
        ("sqlite:///data/x.sqlite", "sqlite:///data/x.sqlite"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_good_urls(url, expected):
    assert normalize_url(url) == expected


def test_sqlite_engine_settings(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    finally:
        engine.dispose()


def test_ddl_rolls_back_on_both_databases(engine):
    """Schema changes rely on transactional DDL, SQLite included."""
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t_probe (id INTEGER PRIMARY KEY)")
        raise RuntimeError
    assert "t_probe" not in sa.inspect(engine).get_table_names()
