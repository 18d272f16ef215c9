from __future__ import annotations

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform


@pytest.fixture(autouse=True)
def fast_password_hash(monkeypatch):
    """scrypt with a small work factor: the same code path, a hundred times faster."""
    from werkzeug.security import generate_password_hash

    from cubebase.platform import users

    monkeypatch.setattr(
        users,
        "hash_password",
        lambda password: generate_password_hash(password, method="scrypt:1024:8:1"),
    )


@pytest.fixture
def platform(engine, tmp_path):
    """An initialised platform (tables, users, admin) on each database."""
    p = Platform(
        Config(
            database_url=str(engine.url.render_as_string(hide_password=False)), data_dir=tmp_path
        ),
        engine=engine,
    )
    init_platform(p, admin_password="admin-password-1")
    return p


@pytest.fixture
def admin(platform) -> Actor:
    from cubebase.platform.users import find_user_id, load_actor

    with platform.session() as s:
        return load_actor(platform, s, find_user_id(platform, s, "admin@example.com"))


@pytest.fixture
def crm(platform):
    """A small schema: regions (a tree), customers, deals, tags (many-to-many)."""
    with platform.schema_editor() as ed:
        ed.create_table(
            "regions",
            "Regions",
            fields=[
                {"key": "name", "type": "text", "required": True, "unique": True},
            ],
        )
        ed.add_field(
            "regions",
            {"key": "parent", "type": "link", "to": "regions", "related_name": "children"},
        )
        ed.create_table("tags", "Tags", fields=[{"key": "name", "type": "text"}])
        ed.create_table(
            "customers",
            "Customers",
            display_field="name",
            fields=[
                {"key": "name", "type": "text", "required": True},
                {"key": "email", "type": "email", "unique": True},
                {"key": "phone", "type": "phone"},
                {"key": "stage", "type": "select", "options": ["lead", "potential", "customer"]},
                {"key": "region", "type": "link", "to": "regions", "related_name": "customers"},
                {"key": "owner", "type": "user"},
                {
                    "key": "tags",
                    "type": "link",
                    "to": "tags",
                    "many": True,
                    "related_name": "customers",
                },
            ],
        )
        ed.create_table(
            "deals",
            "Deals",
            fields=[
                {
                    "key": "customer",
                    "type": "link",
                    "to": "customers",
                    "related_name": "deals",
                    "required": True,
                },
                {"key": "amount", "type": "currency"},
                {"key": "stage", "type": "select", "options": ["new", "won", "lost"]},
                {"key": "closed_on", "type": "date"},
                {"key": "number", "type": "autonumber"},
            ],
        )
    return platform


@pytest.fixture
def records(crm, admin):
    """A records service in an open session (committed by the test when needed)."""
    session = crm.session()
    yield crm.records(session, admin)
    session.rollback()
    session.close()
