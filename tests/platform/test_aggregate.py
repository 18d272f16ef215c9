"""Grouped aggregates (charts, reports): one GROUP BY under the actor's rights."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from cubebase.platform.errors import BadRequest
from cubebase.platform.records import FormulaFilter
from cubebase.platform.users import add_role, create_user, load_actor


def build_aggregate_rules(platform) -> None:
    with platform.schema_editor() as ed:
        add_role(ed, "sales")
        ed.set_permissions("deals", [{"role": "sales", "read": 'stage != "lost"'}])
        ed.set_field_permissions("deals", "closed_on", [{"role": "sales", "read": "FALSE"}])
        ed.add_field("deals", {"key": "signed_at", "type": "datetime"})


pytestmark = pytest.mark.schema.with_args(build_aggregate_rules)


@pytest.fixture
def deals(records):
    c = records.create("customers", {"name": "Acme"}).id
    rows = [
        ("new", "10.50", "2026-01-05"),
        ("new", None, None),
        ("won", "100", "2026-02-01"),
        ("won", "250.25", "2026-03-01"),
        ("lost", "7", "2026-01-09"),
        (None, "1", None),
    ]
    records.bulk_create(
        "deals",
        [{"customer": c, "stage": s, "amount": a, "closed_on": d} for s, a, d in rows],
    )
    return c


def test_groups_with_counts_sums_averages_and_extremes(records, deals):
    result = records.aggregate(
        "deals",
        group_by="stage",
        measures=[("count", None), ("sum", "amount"), ("avg", "amount"), ("max", "closed_on")],
    )
    assert not result.more
    by = {r["group"]: r for r in result.rows}
    assert [r["group"] for r in result.rows][0] is None  # blank first
    assert by["won"] == {
        "group": "won",
        "count": 2,
        "sum:amount": Decimal("350.25"),
        "avg:amount": Decimal("175.125"),
        "max:closed_on": date(2026, 3, 1),
    }
    assert by["new"]["count"] == 2 and by["new"]["sum:amount"] == Decimal("10.5")
    assert by["new"]["avg:amount"] == Decimal("10.5")  # blanks are skipped
    total = records.aggregate("deals", measures=[("count", None), ("sum", "amount")]).rows
    assert total == [{"count": 6, "sum:amount": Decimal("368.75")}]
    empty = records.aggregate(
        "deals", measures=[("count", None), ("sum", "amount")], where=FormulaFilter("amount > 9999")
    ).rows
    assert empty == [{"count": 0, "sum:amount": 0}]


def test_an_actor_aggregates_only_what_they_may_read(records, deals):
    uid = create_user(records.platform, records.session, "s@example.com", roles=["sales"])
    sales = records.platform.records(
        records.session, load_actor(records.platform, records.session, uid)
    )
    groups = {r["group"]: r["count"] for r in sales.aggregate("deals", group_by="stage").rows}
    # `stage != "lost"`: lost deals are not theirs, nor blank ones (a comparison with
    # a blank side is FALSE)
    assert groups == {"new": 2, "won": 2}
    for bad in (
        lambda: sales.aggregate("deals", group_by="closed_on"),
        lambda: sales.aggregate("deals", measures=[("max", "closed_on")]),
        lambda: sales.aggregate("deals", measures=[("count", "closed_on")]),
    ):
        with pytest.raises(BadRequest) as err:
            bad()
        assert "closed_on" in err.value.message


def test_wrong_aggregates_are_clear_errors(records, deals):
    for kwargs, text in [
        ({"measures": [("median", "amount")]}, "Unknown measure"),
        ({"measures": [("sum", "stage")]}, "Cannot take the sum"),
        ({"measures": [("sum", "nope")]}, "no such field"),
        ({"group_by": "tags"}, "no such field"),
        ({"measures": []}, "at least one measure"),
        ({"measures": [("count", None), ("count", None)]}, "twice"),
        ({"limit": 0}, "limit"),
        ({"measures": ["count"]}, "A measure is"),
    ]:
        table = "customers" if kwargs.get("group_by") == "tags" else "deals"
        with pytest.raises(BadRequest) as err:
            records.aggregate(table, **kwargs)
        assert text in err.value.message, kwargs


def test_more_groups_than_the_limit_say_so(records, deals):
    result = records.aggregate("deals", group_by="closed_on", limit=2)
    assert len(result.rows) == 2 and result.more


def test_two_groups_with_a_month_grain_sorted_by_a_measure(records, deals):
    result = records.aggregate(
        "deals",
        group_by=["closed_on:month", "stage"],
        measures=[("count", None), ("sum", "amount")],
    )
    rows = [(r["group"], r["group2"], r["count"], r["sum:amount"]) for r in result.rows]
    assert rows == [
        (None, None, 1, Decimal("1")),  # blanks first, select options in their order
        (None, "new", 1, 0),
        (date(2026, 1, 1), "new", 1, Decimal("10.5")),
        (date(2026, 1, 1), "lost", 1, Decimal("7")),
        (date(2026, 2, 1), "won", 1, Decimal("100")),
        (date(2026, 3, 1), "won", 1, Decimal("250.25")),
    ]
    top = records.aggregate(
        "deals", group_by="stage", measures=[("sum", "amount")], sort="-sum:amount", limit=2
    )
    assert [(r["group"], r["sum:amount"]) for r in top.rows] == [
        ("won", Decimal("350.25")),
        ("new", Decimal("10.5")),
    ]
    assert top.more
    by_stage = records.aggregate("deals", group_by="stage", sort="-stage").rows
    assert [r["group"] for r in by_stage] == ["lost", "won", "new", None]


@pytest.mark.parametrize(
    "grain,expected",
    [
        ("day", [date(2026, 1, 5), date(2026, 1, 9), date(2026, 2, 1), date(2026, 3, 1)]),
        ("week", [date(2026, 1, 5), date(2026, 1, 26), date(2026, 2, 23)]),
        ("quarter", [date(2026, 1, 1)]),
        ("year", [date(2026, 1, 1)]),
    ],
)
def test_date_grains(records, deals, grain, expected):
    rows = records.aggregate("deals", group_by=f"closed_on:{grain}").rows
    assert [r["group"] for r in rows if r["group"] is not None] == expected


def test_a_datetime_groups_by_the_workspace_day_and_month(records, deals, engine, tmp_path):
    """23:30 UTC on 31 January is already 1 February in Paris (and 00:30 UTC on 1 July
    is 02:30 in summer time): grouped in the workspace's zone."""
    c = deals
    records.bulk_create(
        "deals",
        [
            {"customer": c, "signed_at": "2026-01-31T23:30:00Z"},
            {"customer": c, "signed_at": "2026-01-31T22:30:00Z"},
            {"customer": c, "signed_at": "2026-06-30T21:30:00Z"},
            {"customer": c, "signed_at": "2026-06-30T22:30:00Z"},
        ],
    )
    records.session.commit()
    utc = records.aggregate("deals", group_by="signed_at:month").rows
    assert [(r["group"], r["count"]) for r in utc] == [
        (None, 6),
        (date(2026, 1, 1), 2),
        (date(2026, 6, 1), 2),
    ]
    from cubebase.platform.config import Config
    from cubebase.platform.core import Platform

    url = engine.url.render_as_string(hide_password=False)
    paris = Platform(
        Config(database_url=url, data_dir=tmp_path, timezone="Europe/Paris"), engine=engine
    )
    with paris.session() as s:
        svc = paris.records(s, records.actor)
        months = svc.aggregate("deals", group_by="signed_at:month").rows
        days = svc.aggregate("deals", group_by="signed_at:day").rows
    assert [(r["group"], r["count"]) for r in months] == [
        (None, 6),
        (date(2026, 1, 1), 1),  # 23:30 Paris
        (date(2026, 2, 1), 1),  # 00:30 Paris
        (date(2026, 6, 1), 1),  # 23:30 Paris in summer time
        (date(2026, 7, 1), 1),  # 00:30 Paris
    ]
    assert [r["group"] for r in days][1:] == [
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 6, 30),
        date(2026, 7, 1),
    ]


def test_wrong_groups_are_clear_errors(records, deals):
    for kwargs, text in [
        ({"group_by": "amount:month"}, "only dates can be"),
        ({"group_by": "closed_on:fortnight"}, "Unknown grain"),
        ({"group_by": "signed_at"}, "give a grain"),
        ({"group_by": ["stage", "closed_on:month", "customer"]}, "at most 2"),
        ({"group_by": ["stage", "stage"]}, "twice"),
        ({"group_by": "stage", "sort": "-amount"}, "Cannot sort by `amount`"),
    ]:
        with pytest.raises(BadRequest) as err:
            records.aggregate("deals", **kwargs)
        assert text in err.value.message, kwargs
