"""Interpreter specifics: value normalisation, missing context, throughput."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from cubebase.formula import EvalContext, check, evaluate


def test_record_values_are_normalised(world):
    c = check("amount * 2", world, "deals")
    assert evaluate(c, {"amount": 1.1}) == Decimal("2.2")
    assert evaluate(c, {"amount": 3}) == Decimal(6)
    d = check('DATEADD(closed_on, 1, "days")', world, "deals")
    assert evaluate(d, {"closed_on": "2026-01-31"}) == date(2026, 2, 1)
    assert evaluate(d, {"closed_on": datetime(2026, 1, 31, 23, 0)}) == date(2026, 2, 1)
    t = check("last_seen < NOW()", world, "customers")
    ctx = EvalContext(now=datetime(2026, 1, 1, 12, tzinfo=UTC))
    aware = datetime(2026, 1, 1, 13, tzinfo=UTC).astimezone()  # same instant, local zone
    assert evaluate(t, {"last_seen": aware}, ctx) is False


def test_unsaved_record_and_missing_resolver(world):
    assert evaluate(check("COUNT(deals)", world, "customers"), {"name": "new"}) == 0
    assert evaluate(check("region.name", world, "customers"), {"region": 3}) is None
    assert evaluate(check("USER().name", world, "customers"), {}) is None
    assert evaluate(check("account_manager = USER()", world, "customers"), {}) is False


def test_user_fields_come_from_the_context_user(world):
    ctx = EvalContext(
        user={"id": 9, "name": "Zoe", "regions": ["North"]}, user_roles=frozenset({"A"})
    )
    assert evaluate(check("USER().name", world, "customers"), {}, ctx) == "Zoe"
    assert evaluate(check('"North" IN USER().regions', world, "customers"), {}, ctx) is True
    assert evaluate(check('HAS_ROLE("A")', world, "customers"), {}, ctx) is True
