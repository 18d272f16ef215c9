"""Workflow fixtures: a schema with projects and quotes, users in roles, a
controlled clock, and the two real workflows of ``fixtures/`` deployed.

The platform fixtures of tests/platform are reused (templates per process and
database kind); ``build_workflow_schema`` adds this package's tables and users
to the template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.users import add_role, create_user, find_user_id, load_actor
from cubebase.workflows.definitions import load_and_validate
from cubebase.workflows.engine import install
from tests.platform import conftest as platform_fixtures

# the platform fixtures (templates per process and database kind), reused here
_templates = platform_fixtures._templates
admin = platform_fixtures.admin
fast_password_hash = platform_fixtures.fast_password_hash
platform = platform_fixtures.platform

FIXTURES = Path(__file__).parent / "fixtures"
ROLES = [
    "consultant",
    "group_leader",
    "company_reviewer",
    "process_reviewer",
    "technical_director",
    "print_office",
    "sales",
    "sales_manager",
    "pricing_committee",
]
# email -> roles
USERS = {
    "consultant@example.com": ["consultant"],
    "leader@example.com": ["group_leader"],
    "boss@example.com": ["group_leader"],
    "reviewer@example.com": ["company_reviewer"],
    "process@example.com": ["process_reviewer"],
    "director@example.com": ["technical_director"],
    "print@example.com": ["print_office"],
    "seller@example.com": ["sales", "pricing_committee"],
    "manager@example.com": ["sales_manager"],
    "c1@example.com": ["pricing_committee"],
    "c2@example.com": ["pricing_committee"],
}


def pytest_configure(config):
    config.addinivalue_line("markers", "schema(*builders): tables added to the platform template")


def build_workflow_schema(platform) -> None:  # noqa: F811
    with platform.schema_editor() as ed:
        for r in ROLES:
            add_role(ed, r)
        ed.add_field("users", {"key": "manager", "type": "user"})
        ed.create_table(
            "projects",
            "Projects",
            display_field="name",
            fields=[
                {"key": "name", "type": "text", "required": True},
                {"key": "consultant", "type": "user"},
                {"key": "group_leader", "type": "user"},
                {"key": "report", "type": "long_text"},
                {"key": "score", "type": "integer"},
                {"key": "note", "type": "text"},
            ],
        )
        # everyone in a workflow role may read and change projects; sellers their quotes
        ed.set_permissions(
            "projects",
            [{"role": r, "read": "TRUE", "update": "TRUE", "create": "TRUE"} for r in ROLES[:6]],
        )
        ed.create_table(
            "quotes",
            "Quotes",
            fields=[
                {"key": "title", "type": "text"},
                {"key": "owner", "type": "user"},
                {"key": "discount", "type": "number", "precision": 3},
                {"key": "reason", "type": "text"},
            ],
        )
        ed.set_permissions(
            "quotes",
            [
                {
                    "role": "sales",
                    "read": "owner = USER()",
                    "update": "owner = USER()",
                    "create": "TRUE",
                },
                {"role": "sales_manager", "read": "TRUE", "update": "TRUE"},
                {"role": "pricing_committee", "read": "TRUE"},
            ],
        )
    with platform.session(write=True) as s, s.begin():
        for email, roles in USERS.items():
            create_user(platform, s, email, name=email.split("@")[0], roles=roles)
        records = platform.records(s, Actor.system_actor())
        boss = find_user_id(platform, s, "boss@example.com")
        manager = find_user_id(platform, s, "manager@example.com")
        records.update("users", find_user_id(platform, s, "leader@example.com"), {"manager": boss})
        records.update(
            "users", find_user_id(platform, s, "seller@example.com"), {"manager": manager}
        )


pytestmark = pytest.mark.schema.with_args(build_workflow_schema)


class Clock:
    """A controlled clock: tests move it; nothing sleeps for a deadline."""

    def __init__(self, now: datetime | None = None):
        self.now = now or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wf(platform, clock):  # noqa: F811
    """The platform with the workflow engine installed and the fixtures deployed."""
    engine = install(platform, clock)
    with platform.session(write=True) as s, s.begin():
        roles = set(ROLES) | {"admin"}
        compiled = []
        for name in ("consulting_project.yaml", "quote_discount.yaml"):
            compiled += load_and_validate(FIXTURES / name, platform.schema(s), roles)
        engine.deploy(s, compiled)
    return engine


@pytest.fixture
def users(platform) -> dict[str, Actor]:  # noqa: F811
    out = {}
    with platform.session() as s:
        for email in USERS:
            out[email.split("@")[0]] = load_actor(platform, s, find_user_id(platform, s, email))
    return out
