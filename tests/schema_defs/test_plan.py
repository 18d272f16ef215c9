"""Every plan operation, applied on both databases, and the round trip after each."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.errors import ConflictError
from cubebase.platform.schema_changes import DataLossError
from cubebase.schema_defs import apply_app, live_app, load_app, plan_app
from cubebase.schema_defs.export import default_label, to_data

from .conftest import SALES, snapshot

APP = "app: shop\nroles: [clerk]\n"


def apply(platform, path, **kw):
    return apply_app(platform, load_app(path), **kw)


def kinds(plan) -> list[str]:
    return [s.kind for s in plan.steps]


def assert_in_sync(platform, path) -> None:
    """The files and the database agree: an empty plan, and the export means the same."""
    app = load_app(path)
    assert plan_app(platform, app).empty, plan_app(platform, app).describe()
    with platform.session() as s:
        exported = live_app(platform.schema(s), s, app.app)
    assert _by_key(to_data(exported)) == _by_key(normalized(app))


def normalized(app) -> dict:
    """The app as export writes it: no seed, no renamed_from, default labels left out."""
    want = to_data(app)
    for t in want.get("tables", []):
        for name in ("seed", "demo", "renamed_from"):
            t.pop(name, None)
        if t.get("label") == default_label(t["key"], table=True):
            del t["label"]
        for f in t.get("fields", []):
            f.pop("renamed_from", None)
            if f.get("label") == default_label(f["key"]):
                del f["label"]
    roles = []
    for r in want.get("roles", []):
        if isinstance(r, dict) and r.get("label") == default_label(r["key"], table=True):
            r = r["key"]
        roles.append(r)
    if roles:
        want["roles"] = roles
    return want


def _by_key(data: dict) -> dict:
    out = dict(data)
    out["tables"] = sorted(data.get("tables", []), key=lambda t: t["key"])
    out["roles"] = sorted((r if isinstance(r, str) else r["key"]) for r in data.get("roles", []))
    return out


def rows(platform, table: str, sort: str = "id") -> list[dict]:
    with platform.session() as s:
        page = platform.records(s, Actor.system_actor()).list(table, sort=sort, limit=100)
        system = {"created_at", "created_by", "updated_at", "updated_by"}
        return [{k: v for k, v in r.values.items() if k not in system} for r in page.records]


def add(platform, table: str, *values: dict) -> None:
    with platform.session(write=True) as s, s.begin():
        service = platform.records(s, Actor.system_actor())
        for v in values:
            service.create(table, v)


# --- install ------------------------------------------------------------------------------


def test_install_the_sample_app_then_nothing_to_do(platform):
    result = apply(platform, SALES)
    assert result.applied
    assert kinds(result.plan).count("add_role") == 3
    assert kinds(result.plan).count("create_table") == 3
    with platform.session() as s:
        schema = platform.schema(s)
        customers = schema.table("customers")
        assert customers.app == "sales"
        assert customers.display_field == "name"
        assert customers.field("stage").default == '"lead"'
        assert [p["role"] for p in customers.config["permissions"]] == [
            "salesperson",
            "regional_manager",
        ]
        assert customers.field("phone").config["permissions"] == [
            {"role": "finance", "read": "FALSE"}
        ]
        assert customers.config["views"][0]["key"] == "leads"
        assert schema.table("deals").config["lock"]
        assert schema.table("users").field("region").target_key == "regions"
        assert schema.table("regions").field("staff").config["reverse_of"]
        version = platform.registry.current_version(s)
    regions = rows(platform, "regions")
    assert [r["name"] for r in regions] == ["World", "Europe", "Asia"]
    assert regions[1]["parent"] == 1
    assert_in_sync(platform, SALES)
    before = snapshot(platform)
    again = apply(platform, SALES)
    assert again.plan.empty and not again.applied
    assert snapshot(platform) == before  # not even the schema version moved
    assert before["version"] == version


# --- renames ------------------------------------------------------------------------------


def test_rename_table_and_field_keeps_records(platform, write_app):
    path = write_app(
        {
            "app.yaml": APP,
            "customers.yaml": "key: customers\nfields:\n  - {key: name, type: text}\n",
            "deals.yaml": "key: deals\nfields:\n  - {key: customer, type: link, to: customers}\n",
        }
    )
    apply(platform, path)
    add(platform, "customers", {"name": "Ada"})
    add(platform, "deals", {"customer": 1})
    path = write_app(
        {
            "app.yaml": APP,
            "customers.yaml": """
                key: clients
                renamed_from: customers
                fields:
                  - {key: full_name, type: text, renamed_from: name}
            """,
            "deals.yaml": "key: deals\nfields:\n  - {key: customer, type: link, to: clients}\n",
        },
        folder=path.name,
    )
    plan = plan_app(platform, load_app(path))
    assert [s.text for s in plan.steps] == [
        "Rename table `customers` to `clients`",
        "Rename field `clients.name` to `full_name`",
        "Change field `clients.full_name`: label Full name",
        "Rename table `clients` to Clients (its label)",
    ]
    apply(platform, path)
    assert rows(platform, "clients") == [{"full_name": "Ada"}]
    assert rows(platform, "deals")[0]["customer"] == 1
    assert_in_sync(platform, path)


# --- type changes ----------------------------------------------------------------------


def test_type_change_over_existing_data(platform, write_app):
    base = "key: items\nfields:\n  - {key: code, type: text}\n  - {key: price, type: number}\n"
    path = write_app({"app.yaml": APP, "items.yaml": base})
    apply(platform, path)
    add(platform, "items", {"code": "12", "price": "1.25"}, {"code": "abc", "price": "2"})
    path = write_app(
        {
            "app.yaml": APP,
            "items.yaml": """
                key: items
                fields:
                  - {key: code, type: integer}
                  - {key: price, type: number, precision: 1}
            """,
        },
        folder=path.name,
    )
    plan = plan_app(platform, load_app(path))
    assert kinds(plan) == ["change_type", "change_type"]
    assert plan.steps[0].text == "Change the type of `items.code` from text to integer"
    assert plan.steps[0].loses == 1
    assert "1 of 2 values of `code` cannot become" in plan.steps[0].loss
    assert "`abc`" in plan.steps[0].loss
    assert plan.steps[1].text == "Change the decimals of `items.price` to 1"
    assert plan.steps[1].loses == 1  # 1.25 is rounded
    before = snapshot(platform)
    with pytest.raises(DataLossError) as exc:
        apply(platform, path)
    assert "--confirm-data-loss" in exc.value.message
    assert "1 of 2 values of `code` cannot become" in exc.value.message
    assert snapshot(platform) == before
    apply(platform, path, confirm_data_loss=True)
    assert rows(platform, "items") == [
        {"code": 12, "price": Decimal("1.3")},
        {"code": None, "price": Decimal("2")},
    ]
    assert_in_sync(platform, path)


# --- settings ---------------------------------------------------------------------------


def test_field_settings_and_defaults(platform, write_app):
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": """
                key: t
                fields:
                  - {key: name, type: text}
                  - {key: stage, type: select, options: [a, b], default: '"a"'}
                  - {key: owner, type: user}
                  - {key: n, type: number, default: '1'}
                  - {key: calc, type: formula, formula: 'n + 1'}
                  - {key: code, type: autonumber}
            """,
        }
    )
    apply(platform, path)
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": """
                key: t
                label: Things
                fields:
                  - {key: name, type: text, label: Title, required: true, unique: true, help: The title, max_length: 50, indexed: true}
                  - {key: stage, type: select, options: [a, b, c], default: '"b"'}
                  - {key: owner, type: user, related_name: things}
                  - {key: n, type: number}
                  - {key: calc, type: formula, formula: 'n * 2'}
                  - {key: code, type: autonumber, prefix: T-}
            """,
        },
        folder=path.name,
    )
    plan = plan_app(platform, load_app(path))
    texts = [s.text for s in plan.steps]
    assert texts == [
        "Change field `t.name`: label Title; now required; now unique; help text; max length 50; indexed",
        "Change field `t.stage`: options a, b, c",
        "Change field `t.owner`: other side named `things`",
        "Change field `t.calc`: formula `n * 2`",
        "Change field `t.code`: prefix T-",
        'Set the default of `t.stage` to `"b"`',
        "Remove the default of `t.n`",
        "Rename table `t` to Things (its label)",
    ]
    apply(platform, path)
    assert_in_sync(platform, path)
    with platform.session() as s:
        t = platform.schema(s).table("t")
        assert t.field("name").unique and t.field("name").config["indexed"]
        assert platform.schema(s).table("users").field("things").config["reverse_of"]
    # and back: settings removed
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": """
                key: t
                label: Things
                fields:
                  - {key: name, type: text}
                  - {key: stage, type: select, options: [a, b, c]}
                  - {key: owner, type: user}
                  - {key: n, type: number}
                  - {key: calc, type: formula, formula: 'n * 2'}
                  - {key: code, type: autonumber}
            """,
        },
        folder=path.name,
    )
    apply(platform, path)
    assert_in_sync(platform, path)
    with platform.session() as s:
        assert not platform.schema(s).table("users").fields.get("things")


def test_removing_an_option_in_use_rolls_back_everything(platform, write_app):
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": "key: t\nfields:\n  - {key: stage, type: select, options: [a, b]}\n",
        }
    )
    apply(platform, path)
    add(platform, "t", {"stage": "b"})
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": """
                key: t
                fields:
                  - {key: stage, type: select, options: [a]}
                  - {key: extra, type: text}
            """,
            "u.yaml": "key: u\nfields:\n  - {key: x, type: text}\n",
        },
        folder=path.name,
    )
    before = snapshot(platform)
    with pytest.raises(ConflictError) as exc:
        apply(platform, path, confirm_data_loss=True)
    assert exc.value.message.startswith("Change field `t.stage`: options a: Options still in use")
    assert snapshot(platform) == before


# --- rules and views ----------------------------------------------------------------------

RULES_V1 = """
key: customers
display: name
fields:
  - {key: name, type: text}
  - {key: phone, type: phone}
  - {key: owner, type: user}
  - {key: closed, type: boolean}
validations:
  - {rule: 'LEN(name) >= 2', message: Name too short}
permissions:
  - {role: clerk, read: 'owner = USER()', create: true}
field_permissions:
  - {field: phone, role: clerk, read: false}
lock: closed
views:
  - {key: mine, filter: 'owner = USER()', sort: '-name'}
"""

RULES_V2 = """
key: customers
fields:
  - {key: name, type: text}
  - {key: phone, type: phone}
  - {key: owner, type: user}
  - {key: closed, type: boolean}
validations:
  - {rule: 'LEN(name) >= 3', message: Name too short}
  - {rule: 'NOT ISBLANK(phone)', message: Phone needed}
permissions:
  - {role: clerk, read: true, update: 'owner = USER()'}
  - {role: finance, read: true}
field_permissions:
  - {field: name, role: finance, write: false}
views:
  - {key: mine, label: Mine, fields: [name, phone], filter: 'owner = USER()'}
  - {key: open, filter: NOT closed}
"""


def test_rules_views_and_display(platform, write_app):
    app = "app: shop\nroles: [clerk, finance]\n"
    path = write_app({"app.yaml": app, "customers.yaml": RULES_V1})
    apply(platform, path)
    assert_in_sync(platform, path)
    path = write_app({"app.yaml": app, "customers.yaml": RULES_V2}, folder=path.name)
    plan = plan_app(platform, load_app(path))
    assert [s.text for s in plan.steps] == [
        "Stop naming the records of `customers` by a field",
        "Views of `customers`: add `open`",
        "Validation rules of `customers`: add `LEN(name) >= 3`, add `NOT ISBLANK(phone)`, remove 1 rule",
        "Records of `customers` are no longer locked by a rule",
        "Row permissions of `customers`: add `finance` (clerk reads `TRUE`; finance reads `TRUE`)",
        "Field rules of `customers.name` (roles: finance)",
        "Field rules of `customers.phone` (roles: none)",
    ]
    apply(platform, path)
    assert_in_sync(platform, path)
    with platform.session() as s:
        t = platform.schema(s).table("customers")
        assert t.display_field is None and "lock" not in t.config
        assert not t.field("phone").config.get("permissions")
    path = write_app({"app.yaml": app, "customers.yaml": RULES_V1}, folder=path.name)
    apply(platform, path)
    assert_in_sync(platform, path)


def test_field_order_follows_the_file(platform, write_app):
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": "key: t\nfields:\n  - {key: a, type: text}\n  - {key: b, type: text}\n",
        }
    )
    apply(platform, path)
    path = write_app(
        {
            "app.yaml": APP,
            "t.yaml": """
                key: t
                fields:
                  - {key: c, type: link, to: t}
                  - {key: b, type: text}
                  - {key: a, type: text}
            """,
        },
        folder=path.name,
    )
    plan = plan_app(platform, load_app(path))
    assert kinds(plan) == ["add_field", "reorder_fields"]
    apply(platform, path)
    with platform.session() as s:
        keys = [f.key for f in platform.schema(s).table("t").fields.values() if not f.system]
    assert keys == ["c", "b", "a"]
    assert_in_sync(platform, path)


# --- deletions ---------------------------------------------------------------------------


def test_deleting_fields_and_tables_needs_confirmation(platform, write_app):
    path = write_app(
        {
            "app.yaml": APP,
            "a.yaml": """
                key: a
                fields:
                  - {key: name, type: text}
                  - {key: old, type: text}
                  - {key: twice, type: formula, formula: 'old & old'}
            """,
            "b.yaml": "key: b\nfields:\n  - {key: a, type: link, to: a}\n  - {key: c, type: link, to: c}\n",
            "c.yaml": "key: c\nfields:\n  - {key: b, type: link, to: b, many: true}\n",
        }
    )
    apply(platform, path)
    add(platform, "a", {"name": "x", "old": "1"}, {"name": "y", "old": "2"})
    add(platform, "b", {"a": 1})
    path = write_app(
        {"app.yaml": APP, "a.yaml": "key: a\nfields:\n  - {key: name, type: text}\n"},
        folder=path.name,
    )
    plan = plan_app(platform, load_app(path))
    assert [s.text for s in plan.steps] == [
        "Delete field `a.twice` (formula)",
        "Delete field `a.old` (text)",
        "Delete field `b.c` (a link to `c`, deleted too)",
        "Delete field `c.b` (a link to `b`, deleted too)",
        "Delete table B (`b`)",
        "Delete table C (`c`)",
    ]
    assert [(s.loses, s.loss) for s in plan.losses()] == [
        (2, "2 values would be lost"),
        (1, "1 record would be lost"),
    ]
    before = snapshot(platform)
    with pytest.raises(DataLossError) as exc:
        apply(platform, path)
    assert "Delete field `a.old` (text): 2 values would be lost" in exc.value.message
    assert "Delete table B (`b`): 1 record would be lost" in exc.value.message
    assert snapshot(platform) == before
    apply(platform, path, confirm_data_loss=True)
    with platform.session() as s:
        schema = platform.schema(s)
        assert not schema.has_table("b") and not schema.has_table("c")
        assert list(k for k, f in schema.table("a").fields.items() if not f.system) == ["name"]
    assert_in_sync(platform, path)


def test_roles_and_users_fields(platform, write_app):
    path = write_app(
        {
            "app.yaml": """
                app: shop
                roles: [clerk, {key: finance, label: Money people}]
                tables:
                  - key: users
                    fields:
                      - {key: nickname, type: text}
                      - {key: team, type: select, options: [a, b]}
            """
        }
    )
    apply(platform, path)
    assert_in_sync(platform, path)
    with platform.session() as s:
        from cubebase.platform.users import role_keys

        assert {"clerk", "finance"} <= set(role_keys(s))
        users = platform.schema(s).table("users")
        assert users.config["app_fields"] == {"shop": ["nickname", "team"]}
    path = write_app(
        {
            "app.yaml": """
                app: shop
                roles: [{key: finance, label: Finance}]
                tables:
                  - key: users
                    fields:
                      - {key: team, type: select, options: [a, b]}
            """
        },
        folder=path.name,
    )
    plan = plan_app(platform, load_app(path))
    assert [s.text for s in plan.steps] == [
        "Rename role `finance` from Money people to Finance",
        "Delete field `users.nickname` (text)",
        "Record the users fields of app `shop`: team",
    ]
    assert plan.notes == ["role `clerk` is no longer in the files; it is kept (users may hold it)"]
    apply(platform, path)
    with platform.session() as s:
        users = platform.schema(s).table("users")
        assert "nickname" not in users.fields and "email" in users.fields
