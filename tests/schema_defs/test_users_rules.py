"""Rules on the built-in users table from an app's `key: users` entry: without them a
role sees no user at all (no colleague in a picker, a filter through a user field
matches nothing); with them the role reads what the rules allow. Planned, exported
back (round trip), and an app writes only its own roles' rules there."""

from __future__ import annotations

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.records.values import FormulaFilter
from cubebase.platform.users import create_user, load_actor
from cubebase.schema_defs import apply_app, live_app, load_app

from .test_plan import apply, assert_in_sync, kinds
from .test_validation import has, meaning_of

APP = "app: shop\nroles: [clerk]\n"
ORDERS = """
key: orders
fields:
  - {key: title, type: text}
  - {key: owner, type: user}
permissions:
  - {role: clerk, read: true}
"""
USERS_RULES = """
key: users
permissions:
  - {role: clerk, read: active}
field_permissions:
  - {field: roles, role: clerk, read: false}
"""


def _setup(platform, write_app, users: str | None):
    files = {"app.yaml": APP, "orders.yaml": ORDERS}
    if users:
        files["users.yaml"] = users
    path = write_app(files, "shop")
    result = apply(platform, path)
    with platform.session(write=True) as s, s.begin():
        ann = create_user(platform, s, "ann@example.com", name="Ann", roles=["clerk"])
        bob = create_user(platform, s, "bob@example.com", name="Bob", roles=["clerk"])
        old = create_user(platform, s, "old@example.com", name="Old", roles=["clerk"])
        rs = platform.records(s, Actor.system_actor())
        rs.update("users", old, {"active": False})
        rs.create("orders", {"title": "Bob's", "owner": bob})
    return path, result, ann


def _as(platform, user_id: int, fn):
    with platform.session() as s:
        return fn(platform.records(s, load_actor(platform, s, user_id)))


def test_without_rules_a_role_sees_no_user(platform, write_app):
    _, _, ann = _setup(platform, write_app, None)
    assert _as(platform, ann, lambda rs: rs.list("users").records) == []
    found = _as(
        platform,
        ann,
        lambda rs: rs.list("orders", where=FormulaFilter('owner.email = "bob@example.com"')),
    )
    assert found.records == []


def test_rules_on_users_let_a_role_read_colleagues(platform, write_app):
    path, result, ann = _setup(platform, write_app, USERS_RULES)
    text = result.plan.describe()
    assert "Row rules of `users` for the roles of app `shop` (clerk)" in text
    assert "Field rules of `users.roles` for the roles of app `shop` (clerk)" in text
    people = _as(platform, ann, lambda rs: rs.list("users", sort="name").records)
    names = {p.values["name"] for p in people}
    assert {"Ann", "Bob"} <= names and "Old" not in names  # active users only
    assert all("roles" not in p.values for p in people)  # hidden by the field rule
    assert all(not {"password", "password_hash", "token"} & set(p.values) for p in people)
    found = _as(
        platform,
        ann,
        lambda rs: rs.list("orders", where=FormulaFilter('owner.email = "bob@example.com"')),
    )
    assert [r.values["title"] for r in found.records] == ["Bob's"]
    assert_in_sync(platform, path)  # exported back the same


def test_an_app_keeps_other_apps_rules_on_users(platform, write_app):
    path, _, _ = _setup(platform, write_app, USERS_RULES)
    other = write_app(
        {
            "app.yaml": "app: desk\nroles: [agent]\n",
            "users.yaml": "key: users\npermissions:\n  - {role: agent, read: true}\n",
        },
        "desk",
    )
    apply_app(platform, load_app(other))
    assert kinds(apply(platform, path).plan) == []  # shop's rules untouched by desk's
    with platform.session() as s:
        roles = [r["role"] for r in platform.schema(s).table("users").config["permissions"]]
        desk = live_app(platform.schema(s), s, "desk")
    assert sorted(roles) == ["agent", "clerk"]
    users = next(t for t in desk.tables if t.key == "users")
    assert [r.role for r in users.permissions] == ["agent"]
    without = write_app({"app.yaml": APP, "orders.yaml": ORDERS}, "shop")
    assert kinds(apply(platform, without).plan) == ["set_permissions", "set_field_permissions"]
    with platform.session() as s:
        users_t = platform.schema(s).table("users")
        assert [r["role"] for r in users_t.config["permissions"]] == ["agent"]
        assert not users_t.field("roles").config.get("permissions")


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        (
            "key: users\npermissions:\n  - {role: stranger, read: true}\n",
            "shop/users.yaml:3 permissions[0].role: on the shared users table an app writes "
            "rules only for its own roles: list `stranger` under `roles`",
        ),
        (
            "key: users\nvalidations:\n  - {rule: 'TRUE', message: x}\n",
            "shop/users.yaml:2 validations: the built-in users table takes only `fields` here",
        ),
        (
            "key: users\nfield_permissions:\n  - {field: nope, role: clerk, read: true}\n",
            "shop/users.yaml:3 field_permissions[0].field: unknown field `nope`",
        ),
    ],
)
def test_users_rule_mistakes(platform, users, expected):
    has(meaning_of(platform, {"app.yaml": APP, "users.yaml": users}), expected)
