"""Scheduled automations: schedules and their next due time (time zones included), the
sweep on both databases, once per record and due time, a killed run re-run, claims."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from cubebase.schema_defs.schedules import parse_schedule
from cubebase.workflows.automations import engine as automation_engine
from cubebase.workflows.automations import install
from cubebase.workflows.jobs import sweep
from cubebase.workflows.models import Automation, Notification

from .automation_fixtures import (
    build_automation_schema,
    create,
    deploy,
    notifications,
    rows,
    runs,
    user_id,
)
from .conftest import Clock

pytestmark = pytest.mark.schema.with_args(build_automation_schema)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("hourly", "hourly"),
        ("daily 6:00", "daily 06:00"),
        ("Daily  06:30", "daily 06:30"),
        ("weekly mon 07:15", "weekly mon 07:15"),
        ("monthly 31 23:59", "monthly 31 23:59"),
    ],
)
def test_schedules_parse(text, normal):
    assert parse_schedule(text).text == normal


@pytest.mark.parametrize(
    "text", ["", "daily", "daily 24:00", "daily 6", "weekly 07:00", "monthly 0 06:00", "often"]
)
def test_bad_schedules_do_not_parse(text):
    assert parse_schedule(text) is None


def at(y, m, d, hh=0, mm=0, tz=UTC) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


def test_next_due_times_in_the_workspace_time_zone():
    daily = parse_schedule("daily 06:00")
    # 06:00 in Berlin is 05:00 UTC in winter, 04:00 UTC in summer
    assert daily.next_after(at(2026, 1, 10, 4, 0), BERLIN) == at(2026, 1, 10, 5, 0)
    assert daily.next_after(at(2026, 1, 10, 5, 0), BERLIN) == at(2026, 1, 11, 5, 0)
    assert daily.next_after(at(2026, 7, 10, 12, 0), BERLIN) == at(2026, 7, 11, 4, 0)
    # across the spring change (29 March 2026): the due time keeps its local hour
    assert daily.next_after(at(2026, 3, 28, 6, 0), BERLIN) == at(2026, 3, 29, 4, 0)
    weekly = parse_schedule("weekly mon 07:00")  # 2026-03-02 is a Monday
    assert weekly.next_after(at(2026, 3, 2, 6, 0), UTC) == at(2026, 3, 2, 7, 0)
    assert weekly.next_after(at(2026, 3, 2, 7, 0), UTC) == at(2026, 3, 9, 7, 0)
    monthly = parse_schedule("monthly 31 06:00")  # short months: their last day
    assert monthly.next_after(at(2026, 2, 1), UTC) == at(2026, 2, 28, 6, 0)
    assert monthly.next_after(at(2026, 4, 1), UTC) == at(2026, 4, 30, 6, 0)
    hourly = parse_schedule("hourly")
    assert hourly.next_after(at(2026, 3, 2, 9, 30), UTC) == at(2026, 3, 2, 10, 0)
    assert hourly.next_after(at(2026, 3, 2, 10, 0), UTC) == at(2026, 3, 2, 11, 0)


EXPIRE = """
automations:
  - key: expire_subscriptions
    table: subscriptions
    on: schedule
    schedule: daily 06:00
    when: 'end_date < TODAY() AND status = "active"'
    actions:
      - update: {status: '"not renewed"'}
      - notify: {role: admin_office, subject: '"Not renewed: " & name'}
"""


def subscriptions(platform, n: int, ended: int) -> list[int]:
    ids = []
    for i in range(n):
        end = date(2020, 1, 1) if i < ended else date(2099, 1, 1)
        ids.append(
            create(
                platform, "subscriptions", {"name": f"s{i}", "end_date": end, "status": "active"}
            )
        )
    return ids


def next_run(platform, key: str) -> datetime:
    with platform.session() as s:
        v = s.scalar(sa.select(Automation.next_run_at).where(Automation.key == key))
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def test_the_sweep_acts_on_matching_records_once_per_due_time(platform):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, EXPIRE, clock)
    assert next_run(platform, "expire_subscriptions") == at(2026, 3, 3, 6, 0)
    ids = subscriptions(platform, 5, ended=3)
    assert engine.run_due(clock.now) == []  # not due yet
    clock.advance(days=1)
    (result,) = engine.run_due(clock.now)
    assert (result.done, result.failed, result.slot) == (3, 0, "2026-03-03T06:00Z")
    status = {r["id"]: r["status"] for r in rows(platform, "subscriptions")}
    assert [status[i] for i in ids] == ["not renewed"] * 3 + ["active"] * 2
    assert len(notifications(platform)) == 3
    assert next_run(platform, "expire_subscriptions") == at(2026, 3, 4, 6, 0)
    # the same due time again (a job run twice): nothing more
    again = engine.sweep(result_id(platform), "2026-03-03T06:00Z")
    assert (again.done, again.failed) == (0, 0)
    assert len(notifications(platform)) == 3
    # the next day: nothing matches any more
    clock.advance(days=1)
    assert sweep(platform, clock.now)["automations"] == 0


def test_a_due_time_run_twice_acts_once_on_records_that_still_match(platform):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(
        platform,
        """
automations:
  - key: remind_active
    table: subscriptions
    on: schedule
    schedule: daily 06:00
    when: 'status = "active"'
    actions:
      - notify: {role: admin_office, subject: '"Still active: " & name'}
""",
        clock,
    )
    subscriptions(platform, 3, ended=0)
    (first,) = engine.run_due(clock.advance(days=1))
    with platform.session() as s:
        aid = s.scalar(sa.select(Automation.id))
    second = engine.sweep(aid, first.slot)  # the job again (rq retried it)
    assert (first.done, second.done, second.skipped) == (3, 0, 3)
    assert len(notifications(platform)) == 3
    engine.run_due(clock.advance(days=1))  # the next due time is a new slot
    assert len(notifications(platform)) == 6


def result_id(platform) -> int:
    with platform.session() as s:
        return s.scalar(sa.select(Automation.id).where(Automation.key == "expire_subscriptions"))


def test_a_failing_record_is_recorded_and_the_others_go_on(platform):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(
        platform,
        """
automations:
  - key: bad_status
    table: subscriptions
    on: schedule
    schedule: hourly
    when: 'amount > 0'
    actions:
      - update: {status: 'IF(amount > 5, "no such status", "not renewed")'}
""",
        clock,
    )
    a = create(platform, "subscriptions", {"name": "a", "amount": 1})
    b = create(platform, "subscriptions", {"name": "b", "amount": 10})
    (result,) = engine.run_due(clock.advance(hours=1))
    assert (result.done, result.failed) == (1, 1)
    got = {(r[0], r[2]) for r in runs(platform)}
    assert got == {(a, "done"), (b, "failed")}
    (message,) = [r[3] for r in runs(platform) if r[2] == "failed"]
    assert "Automation `Bad status`" in message and "status" in message


def test_a_run_killed_midway_then_run_again_acts_once_per_record(platform, monkeypatch):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, EXPIRE, clock)
    subscriptions(platform, 4, ended=4)
    real = automation_engine.AutomationEngine._run_actions
    calls = []

    def dies_on_the_third(self, ctx):
        calls.append(ctx.record_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed: this transaction never commits
        real(self, ctx)

    monkeypatch.setattr(automation_engine.AutomationEngine, "_run_actions", dies_on_the_third)
    clock.advance(days=1)
    with pytest.raises(KeyboardInterrupt):
        engine.run_due(clock.now)
    monkeypatch.setattr(automation_engine.AutomationEngine, "_run_actions", real)
    assert [r[2] for r in runs(platform)] == ["done", "done"]
    # its claim holds the due time until it is stale; then another run takes over
    assert engine.run_due(clock.advance(minutes=1)) == []
    (result,) = engine.run_due(clock.advance(minutes=20))
    assert (result.done, result.failed) == (2, 0)
    assert [r["status"] for r in rows(platform, "subscriptions")] == ["not renewed"] * 4
    assert len(notifications(platform)) == 4  # one per record, never twice
    assert next_run(platform, "expire_subscriptions") == at(2026, 3, 4, 6, 0)


def test_only_one_process_claims_a_due_time(platform):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, EXPIRE, clock)
    subscriptions(platform, 2, ended=2)
    due = next_run(platform, "expire_subscriptions")
    aid = result_id(platform)
    now = clock.advance(days=1)
    with platform.session(write=True) as s, s.begin():  # another process holds it
        s.execute(
            sa.update(Automation).where(Automation.id == aid).values(claim="other", claimed_at=now)
        )
    assert engine._run_claimed(aid, due, now) is None
    assert runs(platform) == []


def test_without_a_table_the_actions_run_once_per_due_time(platform):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(
        platform,
        """
automations:
  - key: office_daily
    on: schedule
    schedule: daily 07:00
    actions:
      - notify: {role: admin_office, subject: '"Good morning"', body: '"Lists are ready"'}
""",
        clock,
    )
    office = user_id(platform, "office@example.com")
    engine.run_due(clock.advance(days=1))
    engine.run_due(clock.now)
    assert notifications(platform) == [(office, "Good morning", "Lists are ready")]
    engine.run_now("office_daily")  # by hand: a slot of its own
    assert len(notifications(platform)) == 2
    assert [r[:2] for r in runs(platform)] == [
        (0, "2026-03-03T07:00Z"),
        (0, "now:2026-03-03T09:00Z"),
    ]
    assert next_run(platform, "office_daily") == at(2026, 3, 4, 7, 0)


def test_missed_due_times_run_once_then_the_next_is_in_the_future(platform):
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, EXPIRE, clock)
    subscriptions(platform, 1, ended=1)
    (result,) = engine.run_due(clock.advance(days=10))
    assert result.done == 1
    assert next_run(platform, "expire_subscriptions") == at(2026, 3, 13, 6, 0)
    assert clock.now < next_run(platform, "expire_subscriptions") <= clock.now + timedelta(days=1)


def test_cli_lists_and_runs_an_automation_now(platform):
    from click.testing import CliRunner

    from cubebase.cli import main

    clock = Clock(at(2026, 3, 2, 9, 0))
    deploy(platform, EXPIRE, clock)
    deploy(
        platform,
        """
automations:
  - key: on_create
    table: subscriptions
    on: create
    actions: [{update: {amount: '1'}}]
""",
    )
    subscriptions(platform, 3, ended=2)
    runner = CliRunner()
    url = platform.config.database_url
    listed = runner.invoke(main, ["automation", "list", "--db", url])
    assert listed.exit_code == 0, listed.output
    assert "expire_subscriptions  on daily 06:00 of subscriptions  next 2026-03-03 06:00" in (
        listed.output
    )
    assert "on_create  on create of subscriptions" in listed.output
    ran = runner.invoke(main, ["automation", "run", "expire_subscriptions", "--db", url])
    assert ran.exit_code == 0, ran.output
    assert "expire_subscriptions: 2 done, 0 failed, 0 already done" in ran.output
    assert [r["status"] for r in rows(platform, "subscriptions")].count("not renewed") == 2
    assert "last run" in runner.invoke(main, ["automation", "list", "--db", url]).output
    bad = runner.invoke(main, ["automation", "run", "on_create", "--db", url])
    assert bad.exit_code != 0 and "only scheduled automations run by hand" in bad.output
    missing = runner.invoke(main, ["automation", "run", "nope", "--db", url])
    assert missing.exit_code != 0 and "No automation `nope`" in missing.output


def save_active_subscriptions_report(platform) -> None:
    from cubebase.platform.reports import build, save_report

    with platform.session(write=True) as s, s.begin():
        schema = platform.schema(s)
        spec = {
            "label": "Active subscriptions",
            "table": "subscriptions",
            "filter": 'status = "active"',
            "columns": ["name", "amount"],
            "sort": "name",
            "roles": ["admin_office", "sales"],
        }
        save_report(s, schema, build(schema, "active_subscriptions", spec))


def test_send_report_runs_the_report_as_each_receiver(platform):
    save_active_subscriptions_report(platform)
    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(
        platform,
        """
automations:
  - key: office_daily_lists
    on: schedule
    schedule: daily 07:00
    actions:
      - send_report: {report: active_subscriptions, role: admin_office}
      - send_report: {report: active_subscriptions, role: sales}
""",
        clock,
    )
    for name, amount in (("small", 10), ("big", 500), ("huge", 900)):
        create(platform, "subscriptions", {"name": name, "amount": amount, "status": "active"})
    engine.run_due(clock.advance(days=1))
    office, ann = user_id(platform, "office@example.com"), user_id(platform, "ann@example.com")
    got = {uid: (subject, body) for uid, subject, body in notifications(platform)}
    assert got[office] == (
        "Report: Active subscriptions (3 rows)",
        "Active subscriptions: 3 rows. Open it: /reports/active_subscriptions",
    )
    assert got[ann][0] == "Report: Active subscriptions (2 rows)"  # her rules apply
    engine.run_due(clock.now)
    assert len(notifications(platform)) == 3  # the office and two sellers, once per due time


def test_two_sweeps_at_once_run_a_due_time_once(platform):
    import threading

    clock = Clock(at(2026, 3, 2, 9, 0))
    engine = deploy(platform, EXPIRE, clock)
    subscriptions(platform, 3, ended=3)
    now = clock.advance(days=1)
    barrier = threading.Barrier(2)
    results = []

    def one_process():
        barrier.wait()
        results.append(engine.run_due(now))

    threads = [threading.Thread(target=one_process) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for batch in results for r in batch]
    assert len(done) == 1 and done[0].done == 3
    assert len(notifications(platform)) == 3


def test_send_report_mails_the_csv_when_smtp_is_set(platform, monkeypatch):
    monkeypatch.setitem(platform.config.smtp, "host", "mail.example.com")
    save_active_subscriptions_report(platform)
    clock = Clock(at(2026, 3, 2, 9, 0))
    deploy(
        platform,
        """
automations:
  - key: office_lists
    on: schedule
    schedule: hourly
    actions: [{send_report: {report: active_subscriptions, role: admin_office}}]
""",
        clock,
    )
    create(platform, "subscriptions", {"name": "big", "amount": 500, "status": "active"})
    install(platform).run_due(clock.advance(hours=1))
    with platform.session() as s:
        (n,) = s.scalars(sa.select(Notification)).all()
    assert n.email_status == "pending"  # the outbox sends it
    assert n.body == (
        "Active subscriptions: 1 row. Open it: /reports/active_subscriptions\n\n"
        "Name,Amount\r\nbig,500\r\n"
    )


MORNING_CHECK = """
automations:
  - key: morning_check
    table: subscriptions
    on: schedule
    schedule: daily 07:55
    when: 'end_date < TODAY() AND status = "active"'
    actions:
      - update: {status: '"not renewed"', end_date: 'TODAY()'}
"""


def test_a_run_sees_its_due_date_in_the_workspace_time_zone(platform, engine, tmp_path):
    """TODAY() in `when` and in the actions is the due time's date in the workspace
    time zone, not the real date nor the UTC one: 07:55 in Shanghai is 23:55 UTC the
    day before, and a run that starts late, past local midnight, still sees the day it
    was due."""
    import dataclasses

    from cubebase.platform.core import Platform

    shanghai = Platform(
        dataclasses.replace(platform.config, timezone="Asia/Shanghai", data_dir=tmp_path),
        engine=engine,
    )
    clock = Clock(at(2026, 3, 2, 12, 0))
    automations = deploy(shanghai, MORNING_CHECK, clock)
    assert next_run(shanghai, "morning_check") == at(2026, 3, 2, 23, 55)
    ended = {  # end date -> id
        end: create(
            shanghai, "subscriptions", {"name": str(end), "end_date": end, "status": "active"}
        )  # fmt: skip
        for end in (date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4))
    }

    def state() -> dict[date, tuple[str, date]]:
        by_id = {r["id"]: (r["status"], r["end_date"]) for r in rows(shanghai, "subscriptions")}
        return {end: by_id[rid] for end, rid in ended.items()}

    # just before midnight UTC on 2 March: 3 March in Shanghai (ended 2 March: due)
    (result,) = automations.run_due(clock.advance(hours=11, minutes=58))
    assert (result.done, result.slot) == (1, "2026-03-02T23:55Z")
    assert state() == {
        date(2026, 3, 2): ("not renewed", date(2026, 3, 3)),
        date(2026, 3, 3): ("active", date(2026, 3, 3)),
        date(2026, 3, 4): ("active", date(2026, 3, 4)),
    }
    # due 07:55 on 4 March in Shanghai, run at 00:30 on 5 March: TODAY() is 4 March
    (result,) = automations.run_due(at(2026, 3, 4, 16, 30))
    assert (result.done, result.slot) == (1, "2026-03-03T23:55Z")
    assert state() == {
        date(2026, 3, 2): ("not renewed", date(2026, 3, 3)),
        date(2026, 3, 3): ("not renewed", date(2026, 3, 4)),
        date(2026, 3, 4): ("active", date(2026, 3, 4)),
    }
