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
