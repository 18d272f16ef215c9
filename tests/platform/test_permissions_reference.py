"""The reference check: for a generated organisation (36 users in a three-level
region tree, five roles), the rows each user's rules select in SQL are exactly
the rows the interpreter accepts one by one, for every action."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from cubebase.platform.permission_rules import ROW_ACTIONS
from cubebase.platform.users import add_role, create_user, load_actor

RULES = [
    {
        "role": "salesperson",
        "read": 'owner = USER() OR (ISBLANK(owner) AND stage = "lead")',
        "create": "owner = USER()",
        "update": 'owner = USER() AND stage IN ("lead", "potential")',
        "delete": 'owner = USER() AND stage = "lead"',
    },
    {
        "role": "regional_manager",
        "read": "ISUNDER(region, USER().region)",
        "update": "ISUNDER(region, USER().region) AND NOT ISBLANK(owner)",
        "delete": "ISUNDER(region, USER().region) AND COUNT(deals) = 0",
        "create": "ISUNDER(region, USER().region)",
    },
    {
        "role": "director",
        "read": "TRUE",
        "update": 'HAS_ROLE("Director") AND stage != "customer"',
    },
    {"role": "auditor", "read": 'SUMIF(deals.amount, deals.stage = "won") >= 500'},
    {"role": "area_peer", "read": "region.parent = USER().region OR region = USER().region"},
]


def build_org(platform) -> None:
    with platform.schema_editor() as ed:
        for role in ("salesperson", "regional_manager", "director", "auditor", "area_peer"):
            add_role(ed, role, role.replace("_", " ").title())
        ed.add_field("users", {"key": "region", "type": "link", "to": "regions"})
        ed.set_permissions("customers", RULES)


pytestmark = pytest.mark.schema.with_args(build_org)


@pytest.fixture
def org(records):
    rnd = random.Random(7)
    s = records
    root = s.create("regions", {"name": "World"}).id
    areas = [s.create("regions", {"name": f"Area {i}", "parent": root}).id for i in range(3)]
    leaves = [
        s.create("regions", {"name": f"Region {a}.{j}", "parent": area}).id
        for a, area in enumerate(areas)
        for j in range(3)
    ]
    all_regions = [root, *areas, *leaves]
    users = []
    plan = (
        [["salesperson"]] * 24
        + [["regional_manager"]] * 6
        + [["director"]] * 2
        + [["auditor"]] * 2
        + [["area_peer"], ["salesperson", "regional_manager"]]
    )
    for i, roles in enumerate(plan):
        uid = create_user(s.platform, s.session, f"u{i}@example.com", roles=roles)
        region = rnd.choice(areas if "regional_manager" in roles else leaves)
        if rnd.random() < 0.1:
            region = None
        s.update("users", uid, {"region": region})
        users.append(uid)
    stages = ["lead", "potential", "customer"]
    for i in range(150):
        cid = s.create(
            "customers",
            {
                "name": f"c{i}",
                "owner": rnd.choice(users) if rnd.random() < 0.85 else None,
                "region": rnd.choice(all_regions) if rnd.random() < 0.9 else None,
                "stage": rnd.choice(stages),
            },
        ).id
        for _ in range(rnd.choice([0, 0, 1, 2, 3])):
            s.create(
                "deals",
                {
                    "customer": cid,
                    "amount": str(rnd.choice([100, 250, 400, 900])),
                    "stage": rnd.choice(["new", "won", "lost"]),
                },
            )
    for cid in rnd.sample(range(1, 151), 10):
        s.delete("customers", cid)
    return users


def test_sql_rows_equal_interpreted_rows_for_every_user_and_action(org, records):
    table = records.table("customers")
    t = table.sql
    everything = [{"id": r.id, **r.values} for r in records.list("customers", limit=1000).records]
    assert len(everything) == 140
    checked = 0
    nonempty = 0
    for uid in org:
        service = records.platform.records(
            records.session, load_actor(records.platform, records.session, uid)
        )
        for action in ROW_ACTIONS:
            cond = service.access.condition(table, action)
            stmt = sa.select(t.c.id).where(t.c.deleted_at.is_(None))
            if cond is not None:
                stmt = stmt.where(cond)
            in_sql = set(records.session.scalars(stmt))
            interpreted = {r["id"] for r in everything if service.access.allows(table, action, r)}
            assert in_sql == interpreted, (uid, action)
            checked += 1
            nonempty += bool(in_sql)
        # and the records service's own read path agrees
        assert {r.id for r in service.list("customers", limit=1000).records} == {
            r["id"] for r in everything if service.access.allows(table, "read", r)
        }
    assert checked == len(org) * 4
    assert nonempty > len(org)  # the rules select something for most users and actions
