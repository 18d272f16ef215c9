"""USER() is one named parameter (``to_sql.USER_PARAM``): a statement built for one
user runs for another by passing ``{USER_PARAM: id}``, and no sub-formula using
USER() is folded into a constant (which would bake the builder's id in)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.formula import check, compile_condition, compile_value
from cubebase.formula.to_sql import USER_PARAM

CONDITIONS = [
    "account_manager = USER()",
    "ISBLANK(USER())",
    "NOT ISBLANK(USER())",
    "IF(ISBLANK(USER()), FALSE, TRUE)",
    "IF(USER().level = 3, active, NOT active)",
    "USER() IN team",
    "ISUNDER(region, USER().region)",
    'USER().name = "Bob" OR score > 10',
    "COUNTIF(deals, ISBLANK(USER()) OR deals.amount > USER().level * 100) > 0",
]


def _where(w, engine, formula, built_for, run_as):
    ctx = w.sql_context(engine, user_id=built_for)
    base = w.tables["customers"].sql
    cond = compile_condition(check(formula, w, "customers"), ctx)
    q = sa.select(base.c.id).where(cond).order_by(base.c.id)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(q, {USER_PARAM: run_as})]


@pytest.mark.parametrize("formula", CONDITIONS)
def test_a_condition_built_for_one_user_runs_for_another(db, formula):
    w, engine = db
    for built_for in (1, 2):
        for run_as in (1, 2, None):
            want = w.sql_where(engine, formula, user_id=run_as)
            py = w.py_values([formula], user_id=run_as)
            assert want == [rid for rid, v in py.items() if v[0]], (formula, run_as)
            got = _where(w, engine, formula, built_for, run_as)
            assert got == want, f"{formula!r} built for user {built_for}, run as {run_as}"


@pytest.mark.parametrize(
    "formula", ["ISBLANK(USER())", "IF(ISBLANK(USER()), 1, 0)", "USER()", "USER().level + 1"]
)
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_user_is_never_folded_into_a_constant(world, formula, dialect):
    """A formula reading no field would be folded into one constant, except when it
    uses USER(): the statement keeps the parameter, whoever it was built for."""
    from sqlalchemy.dialects import postgresql, sqlite

    built = {}
    for uid in (3, 4):
        ctx = world.sql_context(_Dialect(dialect), user_id=uid)
        expr = compile_value(check(formula, world, "customers"), ctx)
        compiled = sa.select(expr).compile(
            dialect=sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()
        )
        assert USER_PARAM in compiled.params, formula
        assert compiled.params[USER_PARAM] == uid
        built[uid] = (str(compiled), sa.select(expr)._generate_cache_key())
    assert built[3][0] == built[4][0]  # the same SQL for both users
    assert built[3][1] == built[4][1]  # and the same compiled-cache entry


def test_folded_user_formulas_give_each_users_answer(db):
    w, engine = db
    formulas = ["ISBLANK(USER())", "IF(USER().level = 3, 1, 0)", "USER()", "USER().level + 1"]
    ctx = w.sql_context(engine, user_id=2)
    base = w.tables["customers"].sql
    cols = [compile_value(check(f, w, "customers"), ctx) for f in formulas]
    q = sa.select(*cols).select_from(base).where(base.c.id == 1)
    with engine.connect() as conn:
        as_2 = list(conn.execute(q).one())
        as_1 = list(conn.execute(q, {USER_PARAM: 1}).one())
        as_nobody = list(conn.execute(q, {USER_PARAM: None}).one())
    assert as_2[:3] == [False, 0, 2] and as_2[3] is None  # Bob has no level
    assert as_1 == [False, 1, 1, 4]  # Ann: level 3
    assert as_nobody == [True, 0, None, None]


class _Dialect:
    """Stands in for an engine where only the dialect name is read."""

    def __init__(self, name: str) -> None:
        self.dialect = type("D", (), {"name": name})()
