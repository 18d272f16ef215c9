"""Exact messages and positions for invalid formulas; all errors are collected."""

from __future__ import annotations

import pytest

from cubebase.formula import FormulaError, check, check_result
from cubebase.formula.types import BOOLEAN, NUMBER

from .helpers import parser_calls

MESSAGES = [
    ("amout + 1", "unknown field `amout` — did you mean `amount`?", 1, 1),
    ("{Deal Amout} * 2", "unknown field `{Deal Amout}` — did you mean `{Deal Amount}`?", 1, 1),
    ("customer.regoin.name", "unknown field `regoin` in Customers — did you mean `region`?", 1, 10),
    (
        'amount + "x"',
        '`amount + "x"`: cannot add Number and Text — use & to join texts, '
        "or VALUE(text) to read a number",
        1,
        1,
    ),
    ('amount = "5"', '`amount = "5"`: cannot compare Number and Text', 1, 8),
    (
        'customer = "Acme"',
        '`customer = "Acme"`: cannot compare Record(customers) and Text — compare a field of '
        "the record (e.g. customer.name) or its id (e.g. customer = 6)",
        1,
        10,
    ),
    (
        "customer < 6",
        "`customer < 6`: Record(customers) values can only be compared with = and != "
        "(a number there is the record's id)",
        1,
        10,
    ),
    ("customer = 6.5", "`6.5` is not a record id: ids are whole numbers", 1, 12),
    ("customer IN (2, 1.5)", "`1.5` is not a record id: ids are whole numbers", 1, 17),
    ("ID(amount)", "ID expects a link, got Number", 1, 4),
    ("ROUND(amount * 0.05, 2", "missing closing parenthesis for this `(`", 1, 6),
    ("IF(amount > 1, 2, 3))", "unexpected `)`: there is no `(` to close here", 1, 21),
    ("amount +", "the formula ends too early: a value is missing after `+`", 1, 8),
    ('"abc', 'this text is never closed: add a closing "', 1, 1),
    ("{Deal Amount", "this field name is never closed: add a closing }", 1, 1),
    ("amount amount", "unexpected `amount`: is an operator or a comma missing before it?", 1, 8),
    ("a = b = c", "unexpected `=`: comparisons cannot be chained; combine them with AND", 1, 7),
    ("ROUNDD(1)", "unknown function `ROUNDD` — did you mean `ROUND`?", 1, 1),
    ("ROUND(1, 2, 3)", "ROUND takes 1 to 2 arguments, got 3: ROUND(number, [digits])", 1, 1),
    ("IF(amount, 1, 2)", "IF (argument 1) expects a condition (TRUE/FALSE), got Number", 1, 4),
    (
        'IF(stage = "won", 1, "x")',
        "IF: all results must have the same type, got Number and Text",
        1,
        22,
    ),
    (
        'DATEADD(closed_on, 1, "fortnights")',
        'DATEADD\'s unit must be one of "days", "weeks", "months", "years", written as text',
        1,
        23,
    ),
    (
        "SUM(amount)",
        "SUM needs a one-to-many or many-to-many link of this table, e.g. SUM(deals.amount)",
        1,
        5,
    ),
    ("stage.name", "`stage` is a Text, not a link: it has no fields", 1, 7),
    ("LEN(amount)", "LEN (argument 1) expects a Text, got Number", 1, 5),
    (
        "closed_on + 1",
        '`closed_on + 1`: cannot add Date and Number — use DATEADD(date, n, "days") '
        'or DATEDIFF(a, b, "days")',
        1,
        1,
    ),
    ("x # 3", "unexpected character `#`", 1, 3),
    ("", "the formula is empty", 1, 1),
    (
        "IF(,1)",
        "unexpected `,`: a value is missing before it (commas separate function arguments)",
        1,
        4,
    ),
    ("{#999}", "field #999 no longer exists", 1, 1),
    ("amount\n  + stagee", "unknown field `stagee` — did you mean `stage`?", 2, 5),
]


@pytest.mark.parametrize(("formula", "message", "line", "column"), MESSAGES)
def test_message(world, formula, message, line, column):
    result = check_result(formula, world, "deals")
    assert "errors" in result, result
    first = result["errors"][0]
    assert first["message"] == message
    assert (first["line"], first["column"]) == (line, column)
    assert "\n" in first["excerpt"]


def test_caret_points_at_the_span(world):
    with pytest.raises(FormulaError) as exc:
        check('IF(amount > 1, amount + "x", 0)', world, "deals")
    item = exc.value.errors[0]
    assert item.excerpt == 'IF(amount > 1, amount + "x", 0)\n               ^^^^^^^^^^^^'
    assert "line 1, column 16" in str(exc.value)


def test_all_errors_are_collected(world):
    result = check_result("amout + stagee + ROUND(1, 2, 3)", world, "deals")
    assert [e["message"] for e in result["errors"]] == [
        "unknown field `amout` — did you mean `amount`?",
        "unknown field `stagee` — did you mean `stage`?",
        "ROUND takes 1 to 2 arguments, got 3: ROUND(number, [digits])",
    ]


def test_expected_type(world):
    assert check_result("amount > 5", world, "deals", BOOLEAN) == {"type": "Boolean"}
    result = check_result("amount", world, "deals", BOOLEAN)
    assert result["errors"][0]["message"] == (
        "this formula must give a Boolean, but it gives a Number"
    )
    assert check_result("BLANK()", world, "deals", NUMBER) == {"type": "Blank"}


def test_types_reported(world):
    assert check_result("amount * 2", world, "deals") == {"type": "Number"}
    assert check_result("customer", world, "deals") == {"type": "Record(customers)"}
    assert check_result("USER()", world, "deals") == {"type": "User"}
    assert check_result("customer.tags", world, "deals") == {"type": "List(Text)"}
    assert check_result("closed_on", world, "deals") == {"type": "Date"}


def test_unknown_table(world):
    result = check_result("1", world, "nope")
    assert result["errors"][0]["message"] == "unknown table `nope`"


def test_too_long_is_refused_before_parsing(world):
    src = "1+" * 50_000 + "1"
    with parser_calls() as parsed:
        result = check_result(src, world, "deals")
    assert parsed == []
    assert result["errors"][0]["message"] == (
        "the formula is too long (100001 characters; at most 10000)"
    )


@pytest.mark.parametrize(
    "src",
    ["(" * 5000 + "1" + ")" * 5000, "ROUND(" * 3000 + "1" + ")" * 3000, "IF(" * 65 + "1"],
)
def test_too_deep_is_refused_before_parsing(world, src):
    with parser_calls() as parsed:
        result = check_result(src, world, "deals")
    assert parsed == []
    assert "errors" in result
    msg = result["errors"][0]["message"]
    assert "too long" in msg or "nested too deeply" in msg


@pytest.mark.parametrize("src", ["-" * 3000 + "1", "1" + "+1" * 3000, "NOT " * 2000 + "TRUE"])
def test_long_operator_chains_are_refused_not_crashing(world, src):
    result = check_result(src, world, "deals")
    assert result["errors"][0]["message"].startswith("the formula is too complex")


def test_cycle_between_formula_fields_is_an_error(world):
    from dataclasses import replace

    from cubebase.formula import to_stored

    deals = world.tables["deals"]
    deals.fields["commission"] = replace(deals.fields["commission"], formula="bonus + 1")
    deals.fields["bonus"] = replace(
        deals.fields["commission"], id=900, key="bonus", label="Bonus", formula="commission * 2"
    )
    result = check_result("commission", world, "deals")
    assert result["errors"][0]["message"].startswith("formula field `commission` has an invalid")
    assert "cycle" in result["errors"][0]["message"]
    del to_stored
