"""A small sample app for ``cubebase demo`` and the web tests, until the CRM exists.

``cubebase app install`` (schema definition files) is not there yet, so the
tables are made directly through the ``SchemaEditor`` by
``create_sample_tables_with_schema_editor``; when the app format lands this
becomes a folder of schema definition files installed the ordinary way.

Tables: ``companies`` and ``deals`` (a deal links to its company; a company
lists its deals), a formula field, a validation rule, a lock rule (lost deals
are closed), and a ``sales`` role that reads everything, works on open deals
and cannot delete companies.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from ...platform.actor import Actor
from ...platform.core import Platform
from ...platform.users import add_role, create_user, find_user_id

APP = "sample"
STAGES = ["lead", "qualified", "proposal", "won", "lost"]
SEGMENTS = ["enterprise", "mid-market", "small business"]
TAGS = ["renewal", "upsell", "partner", "urgent"]
SALES_EMAIL = "sales@example.com"
SALES_PASSWORD = "sales-password-1"  # noqa: S105 - the demo's published sample login


def is_installed(platform: Platform) -> bool:
    with platform.session() as session:
        return platform.schema(session).has_table("deals")


def create_sample_tables_with_schema_editor(platform: Platform) -> None:
    """The sample app's tables, rules and role, through the schema editor (stand-in
    for ``cubebase app install sample`` until the app format exists)."""
    with platform.schema_editor() as editor:
        add_role(editor, "sales", "Sales", app=APP)
        editor.create_table(
            "companies",
            "Companies",
            app=APP,
            display_field="name",
            fields=[
                {"key": "name", "label": "Name", "type": "text", "required": True},
                {
                    "key": "segment",
                    "label": "Segment",
                    "type": "select",
                    "options": SEGMENTS,
                    "help": "How big the customer is",
                },
                {"key": "email", "label": "E-mail", "type": "email"},
                {"key": "website", "label": "Website", "type": "url"},
                {"key": "notes", "label": "Notes", "type": "long_text"},
            ],
        )
        editor.create_table(
            "deals",
            "Deals",
            app=APP,
            display_field="title",
            fields=[
                {"key": "title", "label": "Title", "type": "text", "required": True},
                {
                    "key": "company",
                    "label": "Company",
                    "type": "link",
                    "to": "companies",
                    "related_name": "deals",
                },
                {
                    "key": "stage",
                    "label": "Stage",
                    "type": "select",
                    "options": STAGES,
                    "default": '"lead"',
                },
                {
                    "key": "amount",
                    "label": "Amount",
                    "type": "currency",
                    "help": "Expected revenue in euros",
                },
                {"key": "probability", "label": "Probability (%)", "type": "integer"},
                {"key": "close_date", "label": "Close date", "type": "date"},
                {"key": "tags", "label": "Tags", "type": "multi_select", "options": TAGS},
                {"key": "hot", "label": "Hot", "type": "boolean"},
                {
                    "key": "summary",
                    "label": "Summary",
                    "type": "formula",
                    "formula": 'UPPER(stage) & ": " & title',
                },
            ],
        )
        editor.set_validations(
            "deals",
            [
                {
                    "rule": "OR(ISBLANK(amount), amount >= 0)",
                    "message": "Amount cannot be negative",
                },
                {
                    "rule": "OR(ISBLANK(probability), AND(probability >= 0, probability <= 100))",
                    "message": "Probability is a percentage from 0 to 100",
                },
            ],
        )
        editor.set_lock("deals", 'stage = "lost"')
        editor.set_permissions(
            "companies",
            [{"role": "sales", "read": "TRUE", "create": "TRUE", "update": "TRUE"}],
        )
        editor.set_permissions(
            "deals",
            [
                {
                    "role": "sales",
                    "read": "TRUE",
                    "create": "TRUE",
                    "update": 'stage <> "won"',
                    "delete": 'stage = "lead"',
                }
            ],
        )
        editor.set_permissions("users", [{"role": "sales", "read": "TRUE"}])


def install_sample_app(platform: Platform, *, demo_data: bool = True, companies: int = 12) -> bool:
    """Install the sample app (and its demo data) unless it is there; True when installed now."""
    if is_installed(platform):
        return False
    create_sample_tables_with_schema_editor(platform)
    with platform.session(write=True) as session, session.begin():
        if find_user_id(platform, session, SALES_EMAIL) is None:
            create_user(
                platform,
                session,
                SALES_EMAIL,
                name="Sam Sales",
                roles=["sales"],
                password=SALES_PASSWORD,
            )
        if demo_data:
            add_demo_data(platform, session, companies)
    return True


def add_demo_data(platform: Platform, session, companies: int = 12) -> None:
    rng = random.Random(8)  # the same demo every time
    records = platform.records(session, Actor.system_actor())
    names = [
        "Acme",
        "Globex",
        "Initech",
        "Umbrella",
        "Hooli",
        "Stark Industries",
        "Wayne Enterprises",
        "Wonka",
        "Tyrell",
        "Cyberdyne",
        "Soylent",
        "Vandelay",
    ]
    today = date.today()
    for i in range(companies):
        name = names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")
        company = records.create(
            "companies",
            {
                "name": name,
                "segment": rng.choice(SEGMENTS),
                "email": f"hello@{name.lower().replace(' ', '')}.example",
                "website": f"https://{name.lower().replace(' ', '')}.example",
            },
        )
        for j in range(rng.randint(1, 4)):
            stage = rng.choice(STAGES)
            records.create(
                "deals",
                {
                    "title": f"{name} deal {j + 1}",
                    "company": company.id,
                    "stage": stage,
                    "amount": Decimal(rng.randrange(1_000, 90_000, 500)),
                    "probability": {"lead": 10, "qualified": 30, "proposal": 60}.get(
                        stage, 100 if stage == "won" else 0
                    ),
                    "close_date": today + timedelta(days=rng.randint(-30, 90)),
                    "tags": rng.sample(TAGS, rng.randint(0, 2)),
                    "hot": rng.random() < 0.3,
                },
            )
