"""Two writers at the same time, each in its own thread and session.

On PostgreSQL the second writer is made to wait on the first one's lock (we watch
``pg_stat_activity`` until it does), so the race is the real one every time: the
unique index or the version guard decides, not the checks done in Python first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import ConflictError, CubebaseError, ValidationError


def _wait_until_blocked(platform, timeout: float = 10.0) -> None:
    """Until some other session of this database waits for a lock."""
    deadline = time.monotonic() + timeout
    with platform.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first")


def _race(
    platform, actor, first: Callable[[Any], Any], second: Callable[[Any], Any]
) -> tuple[Any, Any]:
    """Run ``first`` and hold its transaction open until ``second`` (in another
    thread and session) waits for its lock; then commit both. Returns each one's
    result or the CubebaseError it raised."""
    outcome: dict[str, Any] = {}
    started = threading.Barrier(2, timeout=10)

    def run(name: str, action: Callable, hold: bool) -> None:
        with platform.session() as session:
            rs = platform.records(session, actor)
            try:
                if hold:
                    outcome[name] = action(rs)
                    started.wait()
                    _wait_until_blocked(platform)
                else:
                    started.wait()
                    outcome[name] = action(rs)
                session.commit()
            except CubebaseError as exc:
                outcome[name] = exc
                session.rollback()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                outcome[name] = exc
                session.rollback()

    threads = [
        threading.Thread(target=run, args=("first", first, True)),
        threading.Thread(target=run, args=("second", second, False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcome["first"], outcome["second"]


postgres_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def pg(crm):
    return crm


@postgres_only
def test_same_unique_value_at_the_same_time(pg, admin):
    first, second = _race(
        pg,
        admin,
        lambda rs: rs.create("customers", {"name": "A", "email": "same@x.test"}),
        lambda rs: rs.create("customers", {"name": "B", "email": "same@x.test"}),
    )
    assert not isinstance(first, Exception), first
    assert isinstance(second, ValidationError), second
    assert [p.field for p in second.problems] == ["email"]
    assert "just used by another record" in second.problems[0].message
    with pg.session() as s:
        rs = pg.records(s, admin)
        assert [r.values["name"] for r in rs.list("customers").records] == ["A"]


@postgres_only
def test_same_unique_value_in_two_bulk_imports(pg, admin):
    first, second = _race(
        pg,
        admin,
        lambda rs: rs.bulk_create("regions", [{"name": "North"}, {"name": "South"}]),
        lambda rs: rs.bulk_create("regions", [{"name": "East"}, {"name": "South"}]),
    )
    assert isinstance(first, list) and isinstance(second, ValidationError)
    assert second.problems[0].field == "name"
    with pg.session() as s:
        names = {r.values["name"] for r in pg.records(s, admin).list("regions").records}
    assert names == {"North", "South"}  # nothing of the second import


@postgres_only
def test_same_unique_value_in_two_bulk_imports_written_by_copy(pg, admin):
    # batches this large go in with COPY: the race is lost inside COPY, and still
    # comes back as the field's problem, with nothing of the second import written
    from cubebase.platform.records import COPY_MIN_ROWS

    n = COPY_MIN_ROWS + 20
    first, second = _race(
        pg,
        admin,
        lambda rs: rs.bulk_create("regions", [{"name": f"A{i}"} for i in range(n)]),
        lambda rs: rs.bulk_create(
            "regions", [{"name": f"B{i}"} for i in range(n)] + [{"name": "A7"}]
        ),
    )
    assert isinstance(first, list) and len(first) == n, first
    assert isinstance(second, ValidationError), second
    assert [p.field for p in second.problems] == ["name"]
    assert "just used by another record" in second.problems[0].message
    with pg.session() as s:
        rs = pg.records(s, admin)
        names = {r.values["name"] for r in rs.list("regions", limit=1000).records}
        assert names == {f"A{i}" for i in range(n)}
        assert len(rs.history("regions", first[0])) == 1
        rs.bulk_create("regions", [{"name": f"C{i}"} for i in range(n)])  # still usable


@postgres_only
def test_two_updates_of_the_same_version(pg, admin):
    with pg.session() as s:
        acme = pg.records(s, admin).create("customers", {"name": "Acme"})
        s.commit()
    first, second = _race(
        pg,
        admin,
        lambda rs: rs.update("customers", acme.id, {"phone": "+1 111"}, version=1),
        lambda rs: rs.update("customers", acme.id, {"name": "Acme 2"}, version=1),
    )
    assert first.version == 2
    assert isinstance(second, ConflictError), second
    assert second.details[0]["current_version"] == 2
    with pg.session() as s:
        rs = pg.records(s, admin)
        got = rs.get("customers", acme.id)
        assert (got.version, got.values["name"], got.values["phone"]) == (2, "Acme", "+1 111")
        assert [h["action"] for h in rs.history("customers", acme.id)] == ["create", "update"]


@postgres_only
def test_two_updates_without_a_version_never_overwrite_blindly(pg, admin):
    """The second writer read version 1: its UPDATE is guarded by it, so it is told
    about the first change instead of silently writing over it."""
    with pg.session() as s:
        acme = pg.records(s, admin).create("customers", {"name": "Acme"})
        s.commit()
    first, second = _race(
        pg,
        admin,
        lambda rs: rs.update("customers", acme.id, {"phone": "+1 111"}),
        lambda rs: rs.update("customers", acme.id, {"name": "Acme 2"}),
    )
    assert first.version == 2
    assert isinstance(second, ConflictError), second


@postgres_only
def test_autonumbers_of_concurrent_creates_do_not_collide(pg, admin):
    with pg.session() as s:
        acme = pg.records(s, admin).create("customers", {"name": "Acme"})
        s.commit()
    first, second = _race(
        pg,
        admin,
        lambda rs: rs.create("deals", {"customer": acme.id}).values["number"],
        lambda rs: rs.create("deals", {"customer": acme.id}).values["number"],
    )
    assert sorted([first, second]) == [1, 2]


@sqlite_only
@pytest.mark.parametrize("write", [True, False])
def test_sqlite_writers(crm, admin, write):
    """SQLite has one writer at a time. Write sessions queue: the second waits for
    the first and its unique check then sees the first one's record. Plain sessions
    cannot wait (the second one's snapshot went stale): it is told to try again."""
    outcome: dict[str, Any] = {}
    go = threading.Event()

    def first() -> None:
        with crm.session(write=write) as s:
            crm.records(s, admin).create("customers", {"name": "A", "email": "same@x.test"})
            go.set()
            time.sleep(0.5)
            s.commit()

    def second() -> None:
        go.wait(10)
        with crm.session(write=write) as s:
            try:
                crm.records(s, admin).create("customers", {"name": "B", "email": "same@x.test"})
                s.commit()
                outcome["second"] = "created"
            except Exception as exc:  # noqa: BLE001
                outcome["second"] = exc

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if write:
        assert isinstance(outcome["second"], ValidationError), outcome["second"]
        assert "already used" in outcome["second"].problems[0].message
    else:  # (on a very slow machine the second may even start after the commit)
        assert isinstance(outcome["second"], ConflictError | ValidationError), outcome["second"]
    with crm.session() as s:
        assert crm.records(s, admin).count("customers") == 1
