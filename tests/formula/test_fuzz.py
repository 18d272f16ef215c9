"""Fuzzing: arbitrary input never raises anything but FormulaError, and limits hold."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cubebase.formula import FormulaError, check, evaluate, to_display, to_stored
from cubebase.formula.functions import REGISTRY

from .helpers import World, parser_calls

WORLD = World()
TOKENS = [
    "amount",
    "stage",
    "customer",
    ".",
    "region",
    "name",
    "{Deal Amount}",
    "{#26}",
    "{#",
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&",
    "=",
    "!=",
    "<>",
    "<",
    ">=",
    " AND ",
    " or ",
    " NOT ",
    " IN ",
    "TRUE",
    "false",
    '"x"',
    "'y'",
    '"',
    "'",
    "{",
    "}",
    "1",
    "2.5",
    "1e3",
    "USER()",
    "deals",
    "BLANK()",
    " ",
    "\n",
    "é",
    "#",
    ";",
    "__import__",
    "[",
    "]",
    *[f"{name}(" for name in REGISTRY],
]


def _try(src: str) -> None:
    try:
        checked = check(src, WORLD, "deals")
    except FormulaError as exc:
        assert exc.errors
        for e in exc.errors:
            assert e.message and e.line >= 1 and e.column >= 1 and "\n" in e.excerpt
        return
    try:
        evaluate(checked, {"id": 1, "amount": None})
        stored = to_stored(src, WORLD, "deals")
        to_display(stored, WORLD, "deals")
    except FormulaError:
        pass


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_arbitrary_text_only_raises_formula_error(src):
    _try(src)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_token_soup_only_raises_formula_error(src):
    _try(src)


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(["(", "-", "NOT ", "IF(", "ROUND(", "{a}.", "1+", '"', "{"]),
    st.integers(100, 20_000),
)
def test_repetition_is_refused_before_parsing_grows(chunk, n):
    """Limits are checked by a linear pre-scan: input over the length or nesting
    limits never reaches the parser, so parsing work cannot grow with it."""
    from cubebase.formula import parser

    with parser_calls() as sizes:
        _try(chunk * n)
    depth = (chunk * n).count("(")  # the chunks never close a parenthesis
    if len(chunk * n) > parser.MAX_LENGTH or depth > parser.MAX_BRACKET_DEPTH:
        assert sizes == []
    assert all(size <= parser.MAX_LENGTH for size in sizes)
