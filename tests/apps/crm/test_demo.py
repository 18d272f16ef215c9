"""The demo generator: seeded and reproducible, and every row goes through the
records service's validation (small volumes here; the full company is timed by
`cubebase demo`)."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from cubebase.apps.crm import demo, install_crm
from cubebase.platform.actor import Actor
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.db import make_engine

from .conftest import build_platform


def build_crm_only(platform: Platform) -> None:
    install_crm(platform)


def snapshot(platform: Platform) -> dict:
    out = {}
    with platform.session() as s:
        records = platform.records(s, Actor.system_actor())
        for table in ("customers", "opportunities", "interactions", "commission_statements"):
            page = records.list(table, limit=1000)
            out[table] = [
                (r.id, sorted(r.values.items(), key=lambda kv: kv[0])) for r in page.records
            ]
    for rows in out.values():
        for _id, values in rows:
            values[:] = [kv for kv in values if kv[0] not in ("created_at", "updated_at")]
    return out


def test_the_demo_is_seeded_and_reproducible(engine, tmp_path, _templates, monkeypatch):
    if engine.dialect.name != "sqlite":
        pytest.skip("one database is enough to compare two generated copies")
    monkeypatch.setattr(
        demo,
        "VOLUMES",
        {"customers": 300, "interactions": 600, "opportunities": 200, "contacts": 50,
         "activities": 40, "orders": 10},
    )  # fmt: skip
    _templates.copy_into(engine, "platform+crm_only", [build_platform, build_crm_only])
    other = tmp_path / "other.sqlite"
    shutil.copyfile(engine.url.database, other)
    platforms = [
        Platform(Config(database_url=str(engine.url), data_dir=tmp_path), engine=engine),
        Platform(Config(database_url=f"sqlite:///{other}", data_dir=tmp_path),
                 engine=make_engine(f"sqlite:///{other}")),
    ]  # fmt: skip
    stats = [demo.load_demo(p, seed=7, today=date(2026, 3, 18)) for p in platforms]
    assert stats[0].counts == stats[1].counts
    assert stats[0].counts["customers"] == 300 and stats[0].counts["users"] == 41
    assert snapshot(platforms[0]) == snapshot(platforms[1])
    # a second load finds customers and does nothing
    assert demo.load_demo(platforms[0], seed=7).skipped
    # workflows in flight: projects at their steps, transfers waiting for approval
    with platforms[0].session() as s:
        from cubebase.workflows.models import Instance

        running = s.query(Instance).filter(Instance.status == "running").count()
    assert running == 7 + 3  # 7 projects from the report to printing, 3 transfers
    platforms[1].engine.dispose()
