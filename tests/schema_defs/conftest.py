"""Fixtures for app files: the platform fixtures (both databases) and helpers to
write an app into a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.platform.conftest import (  # noqa: F401 - fixtures
    _templates,
    admin,
    fast_password_hash,
    platform,
)

SALES = Path(__file__).parent / "apps" / "sales"


@pytest.fixture
def write_app(tmp_path):
    """Write files {name: text} into a fresh app folder and return its path."""
    counter = iter(range(1000))

    def write(files: dict[str, str], folder: str | None = None) -> Path:
        path = tmp_path / (folder or f"app{next(counter)}")
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.yaml"):
            old.unlink()
        for name, text in files.items():
            (path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def snapshot(p) -> dict:
    """What a test checks to say "the database is untouched": the schema version,
    every metadata row and every user table's row count."""
    from cubebase.platform.models import FieldDef, Role, TableDef

    with p.session() as s:
        version = p.registry.current_version(s)
        tables = [tuple(r) for r in s.execute(sa.select(TableDef.__table__).order_by("id"))]
        fields = [tuple(r) for r in s.execute(sa.select(FieldDef.__table__).order_by("id"))]
        roles = [tuple(r) for r in s.execute(sa.select(Role.__table__).order_by("id"))]
        counts = {
            t[0]: s.scalar(sa.text(f"SELECT count(*) FROM t_{t[0]}"))  # noqa: S608
            for t in tables
        }
        names = sorted(sa.inspect(s.connection()).get_table_names())
    return {
        "version": version,
        "tables": tables,
        "fields": fields,
        "roles": roles,
        "counts": counts,
        "names": names,
    }
