"""``DATEDIFF(x, f, "days") <op> k`` on a Date column compiles to a range on the bare
column (``f <= :date``), which an index on ``f`` can serve, with the interpreter's
result on every row: each operator, both argument orders, ``k`` on either side,
whole, non-whole, negative and blank ``k``, blank ``x`` and ``f``, leap days, month
ends and the ends of the calendar."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from cubebase.formula import SqlContext, check, compile_condition, compile_value
from cubebase.formula.sql_ranges import SqlRanges

from .helpers import TODAY, World, same

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}
OPS = ["<", "<=", ">", ">=", "=", "!="]
MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
TESTS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def shapes(x: str, op: str, k: str, field: str = "since") -> list[str]:
    """The four ways to write the comparison: x first or the field first, and k on
    the right or on the left."""
    return [
        f'DATEDIFF({x}, {field}, "days") {op} {k}',
        f'DATEDIFF({field}, {x}, "days") {op} {k}',
        f'{k} {MIRROR[op]} DATEDIFF({x}, {field}, "days")',
        f'{k} {MIRROR[op]} DATEDIFF({field}, {x}, "days")',
    ]


def compiled(world, formula, dialect, condition=True):
    ctx = SqlContext(world, world.tables["customers"], dialect=dialect, today=TODAY, user_id=7)
    checked = check(formula, world, "customers")
    expr = compile_condition(checked, ctx) if condition else compile_value(checked, ctx)
    return expr.compile(dialect=DIALECTS[dialect])


# ------------------------------------------------------------------ compile level
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("k", ["30", "-30", "30.5", "0"])
def test_the_bare_column_is_compared_with_one_date(world, dialect, op, k):
    col = "t_3." + world.tables["customers"].fields["since"].column
    param = r"\?" if dialect == "sqlite" else r"%\(param_1\)s::DATE"
    for i, formula in enumerate(shapes("TODAY()", op, k)):
        c = compiled(world, formula, dialect)
        text = str(c)
        if op == "=" and k == "30.5":  # a whole number of days is never 30.5
            assert text in ("0", "false"), formula
            continue
        if op == "!=" and k == "30.5":  # ... so it always differs, unless f is blank
            assert text == f"{col} IS NOT NULL", formula
            continue
        m = re.fullmatch(rf"{re.escape(col)} (<=|>=|=|!=) {param}", text)
        assert m, f"{dialect}: {formula!r} compiled to {text!r}"
        (bound,) = c.params.values()
        # the column test and the formula agree on every day around the bound
        diff_sign = 1 if i % 2 == 0 else -1  # DATEDIFF(x, f) = f - x; DATEDIFF(f, x) = x - f
        for days in range(-100, 101):
            f = TODAY + timedelta(days=days)
            want = TESTS[op](diff_sign * days, float(k))
            assert TESTS[m.group(1)](f, bound) == want, (formula, f, bound)
        value = str(compiled(world, formula, dialect, condition=False))
        assert value.startswith(f"coalesce({col} "), value  # two-valued, still the bare column


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    "formula",
    [
        'DATEDIFF(TODAY(), last_seen, "days") <= 30',  # a DateTime field: left as it is
        'DATEDIFF(TODAY(), since, "months") <= 3',  # months are not a fixed number of days
        'DATEDIFF(TODAY(), since, "days") <= score',  # k reads the record
        'DATEDIFF(since, DATEADD(since, 3, "days"), "days") <= 3',  # x reads the record
        'DATEDIFF(TODAY(), DATEADD(since, 1, "days"), "days") <= 3',  # not a bare field
        'DATEDIFF(TODAY(), since, "days") <= USER().level',  # bound per run, not folded
    ],
)
def test_other_shapes_keep_the_arithmetic(world, dialect, formula):
    text = str(compiled(world, formula, dialect))
    assert text.startswith("round("), text  # the difference computed on every row


# ------------------------------------------------------------------ results
ANCHORS = {  # x -> its date (None: blank)
    "TODAY()": TODAY,
    "NOW()": TODAY,  # a DateTime counts by its (UTC) date
    "DATE(2024, 2, 29)": date(2024, 2, 29),
    "DATE(2024, 1, 31)": date(2024, 1, 31),
    "EOMONTH(DATE(2025, 2, 1), 0)": date(2025, 2, 28),
    'DATEADD(DATE(2025, 12, 31), 0, "days")': date(2025, 12, 31),
    "DATE(1, 1, 2)": date(1, 1, 2),  # bounds before the first date there is
    "DATE(9999, 12, 30)": date(9999, 12, 30),  # ... and after the last
    "BLANK()": None,
}
KS = ["30", "0", "-30", "1", "-1", "30.5", "-30.5", "0.5", "-0.5", "29.9999999996", "1 / 3"]
KS += ["(1 / 0)"]  # a blank k
EDGES = [  # leap days, month ends, the ends of the calendar
    date(2024, 2, 28),
    date(2024, 2, 29),
    date(2024, 3, 1),
    date(2025, 2, 28),
    date(2025, 3, 1),
    date(2025, 12, 31),
    date(2026, 1, 31),
    date(2026, 2, 28),
    date(2026, 3, 31),
    date(1, 1, 1),
    date(9999, 12, 31),
]


def boundary_days(anchor: date | None) -> list[date | None]:
    """Dates k-1, k, k+1 days either side of the anchor for every whole k used."""
    out: list[date | None] = [None, *EDGES]
    if anchor is None:
        return out
    for m in (0, 1, 2, 29, 30, 31):
        for sign in (1, -1):
            n = anchor.toordinal() + sign * m
            if 1 <= n <= date.max.toordinal():
                out.append(date.fromordinal(n))
    return list(dict.fromkeys(out))


@pytest.fixture
def empty_world(engine):
    w = World()
    w.create(engine)
    return w, engine


def _batches(items, size=120):
    return [items[i : i + size] for i in range(0, len(items), size)]


@pytest.mark.parametrize("anchor", list(ANCHORS))
def test_same_rows_as_the_interpreter_and_the_arithmetic(empty_world, anchor, monkeypatch):
    """Each formula gives the interpreter's value on every row, and the value the SQL
    gave before the rewrite (the arithmetic on every row); WHERE selects the same rows."""
    w, engine = empty_world
    for rid, day in enumerate(boundary_days(ANCHORS[anchor]), start=1):
        w.add("customers", rid, since=day)
    w.insert_all(engine)
    formulas = [f for op in OPS for k in KS for f in shapes(anchor, op, k)]
    py = w.py_values(formulas)
    new: dict[int, list] = {rid: [] for rid in py}
    old: dict[int, list] = {rid: [] for rid in py}
    for batch in _batches(formulas):
        for rid, vals in w.sql_values(engine, batch).items():
            new[rid] += vals
    with monkeypatch.context() as mp:
        mp.setattr(SqlRanges, "date_range", lambda self, n: None)
        for batch in _batches(formulas):
            for rid, vals in w.sql_values(engine, batch).items():
                old[rid] += vals
    problems = []
    for rid, want in py.items():
        since = w.rows["customers"][rid]["since"]
        for i, f in enumerate(formulas):
            if not (same(want[i], new[rid][i]) and same(old[rid][i], new[rid][i])):
                problems.append(
                    f"{f!r} since={since}: interpreter {want[i]!r}, "
                    f"arithmetic {old[rid][i]!r}, range {new[rid][i]!r}"
                )
    assert not problems, f"{engine.dialect.name}:\n" + "\n".join(problems[:20])
    for i, f in enumerate(formulas):
        assert w.sql_where(engine, f) == [rid for rid in py if py[rid][i] is True], f


def test_aggregate_conditions_use_the_range_too(db):
    """``COUNTIF(deals, DATEDIFF(TODAY(), deals.closed_on, "days") <= 13)``: the item's
    Date column compared bare inside the aggregate, agreeing with the interpreter."""
    w, engine = db
    formulas = [
        f"COUNTIF(deals, {f})"
        for op in OPS
        for k in ("13", "-5", "5.5", "64")
        for f in shapes("TODAY()", op, k, field="deals.closed_on")
    ]
    py = w.py_values(formulas)
    for batch in _batches(formulas, 16):  # many subqueries in one SELECT plan slowly on PG
        sql, first = w.sql_values(engine, batch), formulas.index(batch[0])
        for rid in py:
            for i, f in enumerate(batch):
                assert same(py[rid][first + i], sql[rid][i]), (engine.dialect.name, f, rid)
    text = str(compiled(w, formulas[1], engine.dialect.name, condition=False))
    assert "julianday" not in text
    assert re.search(r"t_4_1\.f_\d+ (<=|>=) ", text), text
