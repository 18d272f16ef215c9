"""The CRM's scheduled automations as the scheduler runs them (the engine's due-run
with the clock moved ahead), on SQLite and PostgreSQL: the admin office's daily
lists (crm.md problem 3) and the reminder the day before a planned activity
(problem 6). The commission automations are in test_acceptance.py."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from cubebase.workflows.automations import install
from cubebase.workflows.automations.engine import utcnow
from cubebase.workflows.models import Notification

API = "/api/v1/tables"


def notifications(co, who: str) -> list[tuple[str, str]]:
    uid = co.uid(who)
    with co.platform.session() as s:
        rows = s.scalars(
            sa.select(Notification).where(Notification.user_id == uid).order_by(Notification.id)
        )
        return [(n.subject, n.body) for n in rows]


def run_next_day(co) -> None:
    """The scheduler's sweep a day from now: every daily automation is due."""
    install(co.platform).run_due(utcnow() + timedelta(days=1, minutes=1))


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
    install(co.platform).run_due(utcnow() + timedelta(days=1, minutes=2))
    assert len(notifications(co, "olga")) == 2
    assert notifications(co, "ann") == []  # the lists are the office's


def test_a_salesperson_is_reminded_the_day_before_a_planned_visit(co):
    cid = co.ids("customers")["Beijing Media"]
    ann = co.uid("ann")
    # the clock moved ahead makes the schedule due; TODAY() in `when` is the real day
    day = utcnow().date() + timedelta(days=1)
    for subject, when, done in (("Visit Beijing Media", day, False), ("Call back", day, True),
                                ("Fair", day + timedelta(days=3), False)):  # fmt: skip
        resp = co.ann.post(
            f"{API}/activities/records",
            json={"fields": {"subject": subject, "date": date.isoformat(when), "customer": cid,
                             "assigned_to": ann, "kind": "visit", "done": done}},
        )  # fmt: skip
        assert resp.status_code == 201, resp.get_json()
    install(co.platform).run_due(utcnow() + timedelta(days=1, minutes=1))
    assert notifications(co, "ann") == [("Tomorrow: Visit Beijing Media", "visit Beijing Media")]
