"""Shared by the automation tests: a small sales schema (opportunities, commission
statements and credits, subscriptions), users, and deploying automations from YAML."""

from __future__ import annotations

import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.platform.users import add_role, create_user, find_user_id
from cubebase.schema_defs.automations import load_automations_text, validate_automations
from cubebase.workflows.automations import install
from cubebase.workflows.models import AutomationRun, Notification

SELLERS = ("ann@example.com", "bob@example.com")


def build_automation_schema(platform) -> None:
    with platform.schema_editor() as ed:
        add_role(ed, "admin_office")
        add_role(ed, "sales")
        ed.create_table(
            "opportunities",
            "Opportunities",
            display_field="name",
            fields=[
                {"key": "name", "type": "text", "required": True},
                {"key": "stage", "type": "select", "options": ["open", "won", "lost"]},
                {"key": "owner", "type": "user"},
                {"key": "amount", "type": "number", "precision": 2},
                {"key": "co_share", "type": "number", "precision": 0},
                {"key": "closed_on", "type": "date"},
                {"key": "touches", "type": "integer"},
            ],
        )
        ed.create_table(
            "commission_statements",
            "Commission statements",
            fields=[
                {"key": "salesperson", "type": "user"},
                {"key": "month", "type": "date"},
                {"key": "note", "type": "text"},
            ],
        )
        ed.create_table(
            "commission_credits",
            "Commission credits",
            fields=[
                {"key": "opportunity", "type": "link", "to": "opportunities"},
                {"key": "salesperson", "type": "user"},
                {"key": "statement", "type": "link", "to": "commission_statements"},
                {"key": "share", "type": "number", "precision": 0},
            ],
        )
        ed.create_table(
            "subscriptions",
            "Subscriptions",
            fields=[
                {"key": "name", "type": "text"},
                {"key": "end_date", "type": "date"},
                {"key": "status", "type": "select", "options": ["active", "not renewed"]},
                {"key": "amount", "type": "number", "precision": 2},
            ],
        )
        ed.set_permissions(  # sellers read the big subscriptions only, the office all
            "subscriptions",
            [
                {"role": "admin_office", "read": "TRUE"},
                {"role": "sales", "read": "amount > 100"},
            ],
        )
    with platform.session(write=True) as s, s.begin():
        for email in SELLERS:
            create_user(platform, s, email, name=email.split("@")[0], roles=["sales"])
        create_user(platform, s, "office@example.com", name="office", roles=["admin_office"])


def deploy(platform, text: str, clock=None):
    """Automations from YAML, checked against the live schema and saved."""
    engine = install(platform, clock)
    specs, lines = load_automations_text(text)
    with platform.session(write=True) as s, s.begin():
        schema = platform.schema(s)
        compiled = validate_automations(specs, schema, {"admin", "admin_office", "sales"}, lines)
        engine.save(s, schema, compiled)
    return engine


def system(platform, session):
    return platform.records(session, Actor.system_actor())


def create(platform, table: str, values: dict, actor: Actor | None = None) -> int:
    with platform.session(write=True) as s, s.begin():
        return platform.records(s, actor or Actor.system_actor()).create(table, values).id


def update(platform, table: str, rid: int, values: dict, actor: Actor | None = None) -> None:
    with platform.session(write=True) as s, s.begin():
        platform.records(s, actor or Actor.system_actor()).update(table, rid, values)


def rows(platform, table: str) -> list[dict]:
    with platform.session() as s:
        page = system(platform, s).list(table, sort="id", limit=500)
        return [{"id": r.id, **r.values} for r in page.records]


def user_id(platform, email: str) -> int:
    with platform.session() as s:
        return find_user_id(platform, s, email)


def notifications(platform) -> list[tuple[int, str, str]]:
    with platform.session() as s:
        return [
            (n.user_id, n.subject, n.body)
            for n in s.scalars(sa.select(Notification).order_by(Notification.id))
        ]


def runs(platform) -> list[tuple[int, str, str, str | None]]:
    with platform.session() as s:
        return [
            (r.record_id, r.slot, r.status, r.message)
            for r in s.scalars(sa.select(AutomationRun).order_by(AutomationRun.id))
        ]
