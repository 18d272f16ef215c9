"""Stored form ({#id}), display form, dependencies and formula-field cycles."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cubebase.formula import FormulaError, check, dependencies, find_cycle, to_display, to_stored


def ids(world, table, *keys):
    return [world.tables[table].fields[k].id for k in keys]


def test_stored_uses_ids_and_keeps_formatting(world):
    src = 'IF( {Deal Amount} >= 100000 ,\n   TEXT(amount*0.05) ,  customer.region.name & "x" )'
    a, c = ids(world, "deals", "amount", "customer")
    (r,) = ids(world, "customers", "region")
    (n,) = ids(world, "regions", "name")
    stored = to_stored(src, world, "deals")
    assert stored == (
        f'IF( {{#{a}}} >= 100000 ,\n   TEXT({{#{a}}}*0.05) ,  {{#{c}}}.{{#{r}}}.{{#{n}}} & "x" )'
    )
    assert to_display(stored, world, "deals") == (
        'IF( amount >= 100000 ,\n   TEXT(amount*0.05) ,  customer.region.name & "x" )'
    )


def test_aggregates_and_user_paths_are_stored(world):
    src = 'SUMIF(deals.amount, deals.stage = "won") + USER().level'
    stored = to_stored(src, world, "customers")
    assert "deals" not in stored and "level" not in stored and "USER()" in stored
    assert to_display(stored, world, "customers") == src


def test_renamed_field_still_works(world):
    stored = to_stored("amount * 2", world, "deals")
    deals = world.tables["deals"]
    old = deals.fields.pop("amount")
    deals.fields["value"] = replace(old, key="value", label="Deal Value")
    assert to_display(stored, world, "deals") == "value * 2"
    assert check(stored, world, "deals").type_name == "Number"


def test_display_uses_label_when_key_is_not_a_name(world):
    stored = to_stored("amount * 2", world, "deals")
    deals = world.tables["deals"]
    deals.fields["amount"] = replace(deals.fields["amount"], key="in")
    assert to_display(stored, world, "deals") == "{Deal Amount} * 2"


def test_deleted_field_stays_as_id_and_is_reported(world):
    stored = to_stored("amount * 2", world, "deals")
    (a,) = ids(world, "deals", "amount")
    del world.tables["deals"].fields["amount"]
    assert to_display(stored, world, "deals") == f"{{#{a}}} * 2"
    with pytest.raises(FormulaError, match=f"field #{a} no longer exists"):
        check(stored, world, "deals")


def test_to_stored_refuses_invalid_formulas(world):
    with pytest.raises(FormulaError):
        to_stored("amout * 2", world, "deals")


def test_dependencies(world):
    formula = 'SUMIF(deals.amount, deals.stage = "won") > 0 AND region.name = "x"'
    deps = dependencies(check(formula, world, "customers"))
    got = {(t, world.tables[t].by_id(i).key) for t, i in deps}
    assert got == {
        ("customers", "deals"),
        ("deals", "customer"),
        ("deals", "amount"),
        ("deals", "stage"),
        ("customers", "region"),
        ("regions", "name"),
    }
    deps = dependencies(
        check("ISUNDER(region, USER().region) AND won_total > 0", world, "customers")
    )
    got = {(t, world.tables[t].by_id(i).key) for t, i in deps}
    assert got == {
        ("customers", "region"),
        ("users", "region"),
        ("regions", "parent"),
        ("customers", "won_total"),
    }


def test_find_cycle(world):
    assert find_cycle(world) is None
    # a proposed formula for `won_total` that reads `big`, which reads `won_total`
    cycle = find_cycle(world, "customers", "won_total", "IF(big, 1, 0)")
    assert cycle == [("customers", "won_total"), ("customers", "big"), ("customers", "won_total")]
    # across tables: won_total -> deals.commission -> customer.big -> won_total
    assert find_cycle(world, "customers", "won_total", "SUM(deals.commission)") is None
    world_deals = world.tables["deals"]
    world_deals.fields["commission"] = replace(
        world_deals.fields["commission"], formula="IF(customer.big, 1, 0)"
    )
    cycle = find_cycle(world, "customers", "won_total", "SUM(deals.commission)")
    assert cycle[0] == cycle[-1] and len(cycle) == 4
    assert set(cycle) == {("customers", "big"), ("customers", "won_total"), ("deals", "commission")}


def test_self_reference_is_a_cycle_at_check_time(world):
    with pytest.raises(FormulaError, match="cycle"):
        check("won_total + 1", world, "customers", field_key="won_total")
    assert find_cycle(world, "customers", "won_total", "won_total + 1") == [
        ("customers", "won_total"),
        ("customers", "won_total"),
    ]
