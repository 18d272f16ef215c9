"""The CRM's scheduled automations as the scheduler runs them (the engine's due-run
on a fixed clock moved a day ahead), on SQLite and PostgreSQL: the admin office's
daily lists (crm.md problem 3) and the reminder the day before a planned activity
(problem 6). The commission automations are in test_acceptance.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from cubebase.workflows.automations import install
from cubebase.workflows.models import Automation, Notification

API = "/api/v1/tables"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the engine's clock: a Monday morning


def notifications(co, who: str) -> list[tuple[str, str]]:
    uid = co.uid(who)
    with co.platform.session() as s:
        rows = s.scalars(
            sa.select(Notification).where(Notification.user_id == uid).order_by(Notification.id)
        )
        return [(n.subject, n.body) for n in rows]


def run_next_day(co, minutes: int = 1) -> None:
    """The scheduler's sweep a day after ``NOW``: every daily automation is due (its
    run sees the due day, 3 March, as TODAY())."""
    engine = install(co.platform, lambda: NOW)
    with co.platform.session(write=True) as s, s.begin():
        # the installed CRM was scheduled on the real clock: each due next after NOW
        # (called twice, the same due time twice, as two scheduler processes would)
        for a in s.scalars(sa.select(Automation).where(Automation.trigger == "schedule")):
            a.next_run_at = engine.next_run(a.definition, NOW)
    engine.run_due(NOW + timedelta(days=1, minutes=minutes))


def test_the_admin_office_gets_its_daily_lists(co):
    region = co.ids("regions")["Beijing"]
    for name in ("Half Done Ltd", "No Fax Inc"):  # leads may be incomplete
        resp = co.ann.post(
            f"{API}/customers/records",
            json={"fields": {"name": name, "region": region, "account_manager": co.uid("ann"),
                             "phone": "+86 10 1234 5678"}},
        )  # fmt: skip
        assert resp.status_code == 201, resp.get_json()
    cid = co.ids("customers")["Beijing Media"]
    resp = co.ann.post(
        f"{API}/interactions/records",
        json={"fields": {"customer": cid, "time": "2026-03-02T10:00:00Z", "content": "Called"}},
    )
    assert resp.status_code == 201, resp.get_json()

    run_next_day(co)
    # the list counts what the office's own view of incomplete customers shows
    incomplete = co.all("olga", "customers", "&filter=incomplete")
    assert sorted(c["fields"]["name"] for c in incomplete) == ["Half Done Ltd", "No Fax Inc"]
    got = dict(notifications(co, "olga"))
    assert got["Report: Incomplete customers (2 rows)"] == (
        "Incomplete customers: 2 rows. Open it: /reports/incomplete_customers"
    )
    assert "Report: Unclosed interactions (1 row)" in got
    # the office opens the list the notification links to
    body = co.olga.get("/api/v1/reports/incomplete_customers").get_json()
    assert [r[0] for r in body["rows"]] == ["Half Done Ltd", "No Fax Inc"]
    # the same due time again (a second scheduler process): nothing sent twice
    run_next_day(co, minutes=2)
    assert len(notifications(co, "olga")) == 2
    assert notifications(co, "ann") == []  # the lists are the office's


def test_a_salesperson_is_reminded_the_day_before_a_planned_visit(co):
    cid = co.ids("customers")["Beijing Media"]
    ann = co.uid("ann")
    # the run due at 07:00 on 3 March reminds of the activities of 4 March
    day = date(2026, 3, 4)
    for subject, when, done in (("Visit Beijing Media", day, False), ("Call back", day, True),
                                ("Fair", day + timedelta(days=3), False)):  # fmt: skip
        resp = co.ann.post(
            f"{API}/activities/records",
            json={"fields": {"subject": subject, "date": date.isoformat(when), "customer": cid,
                             "assigned_to": ann, "kind": "visit", "done": done}},
        )  # fmt: skip
        assert resp.status_code == 201, resp.get_json()
    run_next_day(co)
    assert notifications(co, "ann") == [("Tomorrow: Visit Beijing Media", "visit Beijing Media")]
