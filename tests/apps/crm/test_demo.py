"""The demo generator: seeded and reproducible, and every row goes through the
records service's validation (small volumes here; the full company is timed by
`cubebase demo`)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

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


def check_credits(platform: Platform, today: date) -> None:
    """Every deal won in the statements' six months has one credit per seller, on the
    seller's statement of its month, whether the bulk load wrote it or the automations
    did (the last days' wins); a cancelled deal's credits carry their clawback."""
    with platform.session() as s:
        records = platform.records(s, Actor.system_actor())
        deals = {r.id: r.values for r in records.list("opportunities", limit=1000).records}
        credits = [r.values for r in records.list("commission_credits", limit=1000).records]
        months = {r.id: r.values for r in records.list("commission_statements", limit=1000).records}
    first = date(2025, 10, 1)  # six months back from March 2026
    by_deal: dict[int, set[int]] = {}
    for c in credits:
        by_deal.setdefault(c["opportunity"], set()).add(c["salesperson"])
        statement = months[c["statement"]]
        deal = deals[c["opportunity"]]
        assert statement["salesperson"] == c["salesperson"]
        assert statement["month"] == deal["closed_on"].replace(day=1)
        assert (c["clawback_statement"] is not None) == (deal["stage"] == "cancelled")
    for oid, d in deals.items():
        if d["stage"] in ("won", "cancelled") and d["closed_on"] >= first:
            sellers = {d["owner"]} | ({d["co_seller"]} if d["co_seller"] else set())
            assert by_deal.get(oid) == sellers, (oid, d)
    recent = [
        d
        for d in deals.values()
        if d["stage"] == "won" and d["closed_on"] > today - timedelta(days=3)
    ]
    assert all(d["probability"] == 100 for d in recent)


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
    check_credits(platforms[0], date(2026, 3, 18))
    # a second load finds customers and does nothing
    assert demo.load_demo(platforms[0], seed=7).skipped
    # workflows in flight: projects at their steps, transfers waiting for approval
    with platforms[0].session() as s:
        from cubebase.workflows.models import Instance

        running = s.query(Instance).filter(Instance.status == "running").count()
    assert running == 7 + 3  # 7 projects from the report to printing, 3 transfers
    platforms[1].engine.dispose()
