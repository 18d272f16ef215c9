"""The formula spec's "Examples that must work", on a real platform schema: each
checks, runs as SQL in a list filter, and runs in the interpreter, with the
same answer on both databases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cubebase.platform.records import FormulaFilter
from cubebase.platform.users import add_role, create_user, load_actor

EXAMPLES = [
    ("deals", "IF(amount >= 100000, amount * 0.05, amount * 0.03)", "Number"),
    ("customers", "account_manager = USER()", "Boolean"),
    ("customers", 'region IN USER().regions OR HAS_ROLE("Director")', "Boolean"),
    ("customers", "ISUNDER(account_manager.department, USER().department)", "Boolean"),
    (
        "customers",
        'DATEDIFF(TODAY(), subscription_end, "days") <= 30 AND status = "active"',
        "Boolean",
    ),
    ("customers", "COUNTIF(interactions, interactions.closed = FALSE) = 0", "Boolean"),
    (
        "customers",
        'ROUND(SUMIF(deals.amount, deals.stage = "won" AND '
        "MONTH(deals.closed_on) = MONTH(TODAY())) * 0.04, 2)",
        "Number",
    ),
    ("customers", '{Contact Name} & " <" & email & ">"', "Text"),
]


@pytest.fixture
def world(platform):
    with platform.schema_editor() as ed:
        ed.create_table("departments", fields=[{"key": "name", "type": "text"}])
        ed.add_field("departments", {"key": "parent", "type": "link", "to": "departments"})
        ed.add_field(
            "users",
            {"key": "regions", "type": "multi_select", "options": ["North", "South", "East"]},
        )
        ed.add_field("users", {"key": "department", "type": "link", "to": "departments"})
        ed.create_table(
            "customers",
            fields=[
                {"key": "contact_name", "label": "Contact Name", "type": "text"},
                {"key": "email", "type": "email"},
                {"key": "region", "type": "select", "options": ["North", "South", "East"]},
                {"key": "account_manager", "type": "user"},
                {"key": "subscription_end", "type": "date"},
                {"key": "status", "type": "select", "options": ["active", "lapsed"]},
            ],
        )
        ed.create_table(
            "interactions",
            fields=[
                {
                    "key": "customer",
                    "type": "link",
                    "to": "customers",
                    "related_name": "interactions",
                },
                {"key": "closed", "type": "boolean"},
            ],
        )
        ed.create_table(
            "deals",
            fields=[
                {"key": "customer", "type": "link", "to": "customers", "related_name": "deals"},
                {"key": "amount", "type": "currency"},
                {"key": "stage", "type": "select", "options": ["new", "won"]},
                {"key": "closed_on", "type": "date"},
            ],
        )
        add_role(ed, "director", "Director")
        add_role(ed, "sales", "Sales")
        for table in ("customers", "interactions", "deals", "departments", "users"):
            ed.set_permissions(table, [{"role": "sales", "read": "TRUE"}])
    return platform


def test_every_spec_example_checks_with_its_type(world):
    from cubebase.platform.formulas import check_formula

    with world.session() as session:
        for table, formula, expected in EXAMPLES:
            assert check_formula(world, session, None, table, formula) == {"type": expected}, (
                formula
            )


def test_every_spec_example_agrees_in_sql_and_interpreter(world):
    today = date.today()
    with world.session() as session:
        system = world.records(session, load_actor(world, session, 1))
        head = system.create("departments", {"name": "Sales"})
        team = system.create("departments", {"name": "North team", "parent": head.id})
        other = system.create("departments", {"name": "Finance"})
        boss_id = create_user(
            world, session, "boss@example.com", roles=["sales"], password="boss-password-1"
        )
        rep_id = create_user(
            world, session, "rep@example.com", roles=["sales"], password="rep-password-1"
        )
        system.update("users", boss_id, {"department": head.id, "regions": ["North"]})
        system.update("users", rep_id, {"department": team.id, "regions": ["South"]})
        acc_id = create_user(world, session, "acc@example.com", password="acc-password-1")
        system.update("users", acc_id, {"department": other.id})
        a = system.create(
            "customers",
            {
                "contact_name": "Ann Lee",
                "email": "ann@x.com",
                "region": "North",
                "account_manager": rep_id,
                "subscription_end": (today + timedelta(days=10)).isoformat(),
                "status": "active",
            },
        )
        b = system.create(
            "customers",
            {
                "contact_name": "Bo",
                "region": "East",
                "account_manager": acc_id,
                "subscription_end": (today + timedelta(days=90)).isoformat(),
                "status": "active",
            },
        )
        system.create("interactions", {"customer": a.id, "closed": True})
        system.create("interactions", {"customer": b.id, "closed": False})
        system.create(
            "deals",
            {"customer": a.id, "amount": "1000", "stage": "won", "closed_on": today.isoformat()},
        )
        system.create("deals", {"customer": a.id, "amount": "500", "stage": "new"})
        session.commit()

        boss = world.records(session, load_actor(world, session, boss_id))
        rt = boss.formulas
        for table_key, formula, kind in EXAMPLES:
            table = boss.table(table_key)
            interpreted = {}
            for rec in boss.list(table_key).records:
                checked = rt.checked(table_key, formula)
                from cubebase import formula as F

                interpreted[rec.id] = F.evaluate(
                    checked, {"id": rec.id, **rec.values}, rt.eval_context()
                )
            if kind == "Boolean":
                in_sql = {r.id for r in boss.list(table_key, where=FormulaFilter(formula)).records}
                assert in_sql == {i for i, v in interpreted.items() if v is True}, formula
            else:
                from sqlalchemy import select

                expr = F.compile_value(rt.checked(table_key, formula), rt.sql_context(table))
                rows = dict(session.execute(select(table.sql.c.id, expr)).all())
                for rid, value in interpreted.items():
                    sql_value = rows[rid]
                    if kind == "Number" and value is not None:
                        assert float(sql_value) == pytest.approx(float(value)), formula
                    else:
                        assert sql_value == value, formula
        # The boss (head of Sales, region North) sees Ann's customer through the tree
        # and the region; the department of Finance is not under Sales.
        tree = FormulaFilter("ISUNDER(account_manager.department, USER().department)")
        assert {r.id for r in boss.list("customers", where=tree).records} == {a.id}
        region = FormulaFilter('region IN USER().regions OR HAS_ROLE("Director")')
        assert {r.id for r in boss.list("customers", where=region).records} == {a.id}
        renew = FormulaFilter(
            'DATEDIFF(TODAY(), subscription_end, "days") <= 30 AND status = "active"'
        )
        assert {r.id for r in boss.list("customers", where=renew).records} == {a.id}


def test_has_role_accepts_the_role_key_and_its_label(world):
    with world.session() as session:
        uid = create_user(
            world, session, "s@example.com", roles=["sales"], password="s-password-12"
        )
        session.commit()
        svc = world.records(session, load_actor(world, session, uid))
        for formula, expected in [
            ('HAS_ROLE("Sales")', 1),
            ('HAS_ROLE("sales")', 1),
            ('HAS_ROLE("Director")', 0),
        ]:
            assert svc.count("users", where=FormulaFilter(formula)) == (
                svc.count("users") if expected else 0
            ), formula
