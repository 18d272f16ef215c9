"""Formula fields, defaults and validation rules, as the records service runs them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cubebase.platform.errors import ConflictError, ValidationError
from cubebase.platform.formulas import InvalidFormula
from cubebase.platform.records import FormulaFilter


@pytest.fixture
def sales(crm):
    with crm.schema_editor() as ed:
        ed.add_field(
            "deals",
            {
                "key": "commission",
                "type": "formula",
                "formula": "IF(amount >= 100000, amount * 0.05, amount * 0.03)",
            },
        )
        ed.add_field(
            "customers",
            {
                "key": "won_total",
                "type": "formula",
                "formula": 'SUMIF(deals.amount, deals.stage = "won")',
            },
        )
        ed.add_field(
            "customers", {"key": "deal_count", "type": "formula", "formula": "COUNT(deals)"}
        )
        ed.add_field(
            "customers",
            {"key": "label", "type": "formula", "formula": 'name & " (" & region.name & ")"'},
        )
        ed.update_field("deals", "stage", default='"new"')
        ed.set_validations(
            "deals",
            [
                {"rule": "amount >= 0", "message": "The amount cannot be negative"},
                {
                    "rule": 'stage != "won" OR NOT ISBLANK(closed_on)',
                    "message": "A won deal needs a close date",
                },
            ],
        )
    return crm


@pytest.fixture
def svc(sales, admin):
    session = sales.session()
    yield sales.records(session, admin)
    session.rollback()
    session.close()


def _seed(svc):
    north = svc.create("regions", {"name": "North"})
    acme = svc.create("customers", {"name": "Acme", "region": north.id})
    beta = svc.create("customers", {"name": "Beta"})
    svc.create(
        "deals",
        {"customer": acme.id, "amount": "200000", "stage": "won", "closed_on": "2026-03-01"},
    )
    svc.create(
        "deals", {"customer": acme.id, "amount": "1000", "stage": "won", "closed_on": "2026-03-02"}
    )
    svc.create("deals", {"customer": beta.id, "amount": "5000"})
    return acme, beta


def test_formula_fields_are_computed_in_lists_and_gets(svc):
    acme, beta = _seed(svc)
    got = svc.get("customers", acme.id)
    assert got.values["won_total"] == Decimal("201000")
    assert got.values["deal_count"] == 2
    assert got.values["label"] == "Acme (North)"
    page = svc.list("deals", sort="amount")
    assert [r.values["commission"] for r in page.records] == [
        Decimal("30"),
        Decimal("150"),
        Decimal("10000"),
    ]
    beta_now = svc.get("customers", beta.id)
    assert beta_now.values["won_total"] == 0
    assert beta_now.values["label"] == "Beta ()"


def test_lists_filter_and_sort_by_formulas(svc):
    acme, beta = _seed(svc)
    page = svc.list("customers", sort="-won_total")
    assert [r.id for r in page.records] == [acme.id, beta.id]
    page = svc.list("customers", where=FormulaFilter("won_total > 100000"))
    assert [r.id for r in page.records] == [acme.id]
    assert svc.count("deals", where=FormulaFilter('stage = "new"')) == 1


def test_paging_by_a_formula_field_visits_every_record(svc):
    region = svc.create("regions", {"name": "South"})
    cust = svc.create("customers", {"name": "Gamma", "region": region.id})
    for amount in [5, 3, 9, 1, 7, 3, 8]:
        svc.create("deals", {"customer": cust.id, "amount": amount})
    seen, cursor = [], None
    while True:
        page = svc.list("deals", sort="commission", limit=3, cursor=cursor)
        seen += [r.values["commission"] for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 7


def test_a_bad_filter_formula_is_a_clear_error(svc):
    with pytest.raises(InvalidFormula) as err:
        svc.list("deals", where=FormulaFilter("amout > 5"))
    assert "did you mean `amount`" in err.value.message
    assert err.value.details[0]["column"] == 1


def test_defaults_fill_fields_left_out(svc):
    acme, _ = _seed(svc)
    deal = svc.create("deals", {"customer": acme.id, "amount": 10})
    assert deal.values["stage"] == "new"
    explicit = svc.create("deals", {"customer": acme.id, "amount": 10, "stage": "lost"})
    assert explicit.values["stage"] == "lost"


def test_validation_rules_refuse_bad_records_on_every_write_path(svc):
    acme, _ = _seed(svc)
    with pytest.raises(ValidationError) as err:
        svc.create("deals", {"customer": acme.id, "amount": -5, "stage": "won"})
    messages = [p.message for p in err.value.problems]
    assert messages == ["The amount cannot be negative", "A won deal needs a close date"]
    before = svc.count("deals")
    with pytest.raises(ValidationError) as err:
        svc.bulk_create(
            "deals", [{"customer": acme.id, "amount": 1}, {"customer": acme.id, "amount": -1}]
        )
    assert err.value.problems[0].extra["row"] == 1
    assert svc.count("deals") == before
    deal = svc.create("deals", {"customer": acme.id, "amount": 1})
    with pytest.raises(ValidationError):
        svc.update("deals", deal.id, {"stage": "won"})
    assert svc.get("deals", deal.id).values["stage"] == "new"
    ok = svc.update("deals", deal.id, {"stage": "won", "closed_on": "2026-05-01"})
    assert ok.version == 2


def test_renaming_a_field_keeps_formulas_working(sales, admin):
    with sales.schema_editor() as ed:
        ed.update_field("deals", "amount", key="value", label="Deal value")
    with sales.session() as session:
        svc = sales.records(session, admin)
        acme, _ = _seed_renamed(svc)
        assert svc.get("customers", acme.id).values["won_total"] == Decimal("300")
        field = sales.schema(session).table("customers").field("won_total")
        from cubebase.platform.formulas import display

        assert display(sales.schema(session), "customers", field.config["formula"]) == (
            'SUMIF(deals.value, deals.stage = "won")'
        )


def _seed_renamed(svc):
    acme = svc.create("customers", {"name": "Acme"})
    svc.create(
        "deals", {"customer": acme.id, "value": 300, "stage": "won", "closed_on": "2026-01-01"}
    )
    return acme, None


def test_deleting_a_field_a_formula_uses_is_refused_by_name(sales):
    with pytest.raises(ConflictError) as err, sales.schema_editor() as ed:
        ed.delete_field("deals", "amount", confirm=True)
    assert "formula field `customers.won_total`" in err.value.message
    assert "formula field `deals.commission`" in err.value.message
    with sales.session() as session:
        assert "amount" in sales.schema(session).table("deals").fields


def test_formula_cycles_are_refused(sales):
    with pytest.raises(InvalidFormula) as err, sales.schema_editor() as ed:
        ed.add_field("deals", {"key": "a", "type": "formula", "formula": "commission + 1"})
        ed.update_field("deals", "commission", config={"formula": "a * 2"})
    assert "cycle" in err.value.message
    with sales.session() as session:
        assert "a" not in sales.schema(session).table("deals").fields


def test_datetime_formulas_agree_with_stored_timestamps(svc):
    """created_at is a timestamp with time zone on PostgreSQL; NOW() and date
    arithmetic in formulas must see the same instant on both databases."""
    acme, _ = _seed(svc)
    assert svc.count("customers", where=FormulaFilter("created_at <= NOW()")) == 2
    assert (
        svc.count("customers", where=FormulaFilter('created_at > DATEADD(NOW(), -1, "days")')) == 2
    )
    assert (
        svc.count("customers", where=FormulaFilter('DATEDIFF(created_at, NOW(), "days") >= 1')) == 0
    )


def test_preview_computes_formula_fields_of_an_unsaved_record(svc):
    acme, _ = _seed(svc)
    assert Decimal(svc.preview("deals", {"amount": "200000"})["commission"]) == 10000
    assert Decimal(svc.preview("deals", {"amount": "1000"})["commission"]) == 30
    saved = svc.preview("customers", {}, record_id=acme.id)
    assert Decimal(saved["won_total"]) == 201000
    assert saved["label"] == "Acme (North)"
    assert svc.preview("deals", {"amount": "not a number"})["commission"] is None
    assert svc.count("deals") == 3


def test_records_in_the_trash_never_count_in_formulas(svc):
    acme, _ = _seed(svc)
    big = svc.list("deals", where=FormulaFilter("amount = 200000")).records[0]
    svc.delete("deals", big.id)
    got = svc.get("customers", acme.id)
    assert got.values["won_total"] == Decimal("1000")
    assert got.values["deal_count"] == 1
    assert Decimal(svc.preview("customers", {}, record_id=acme.id)["won_total"]) == 1000
    assert svc.count("customers", where=FormulaFilter("won_total > 100000")) == 0
    page = svc.list("customers", sort="-won_total", where=FormulaFilter("deal_count >= 1"))
    assert [r.values["won_total"] for r in page.records] == [Decimal("1000"), Decimal("0")]
    north = svc.get("regions", got.values["region"])
    svc.delete("regions", north.id)
    assert svc.get("customers", acme.id).values["label"] == "Acme ()"
