"""CRM acceptance fixtures: the CRM app installed from its files, a small fixed
company (regions, departments, users in every role, a handful of customers),
the web app around it and API clients per user, on SQLite and PostgreSQL.

The installed CRM and the fixed company are built once per process and database
kind and copied into each test's private database (the platform tests'
templates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cubebase.apps.crm import install_crm
from cubebase.platform.actor import Actor
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.users import create_token, create_user, find_user_id
from cubebase.web import create_app
from cubebase.workflows.definitions import load_and_validate
from cubebase.workflows.engine import install
from tests.platform import conftest as _platform_tests

_templates = _platform_tests._templates
fast_password_hash = _platform_tests.fast_password_hash
build_platform = _platform_tests.build_platform

HERE = Path(__file__).parent
DOMAIN = "crm.test"

# the org: (email, roles, region, department, manager)
PEOPLE = [
    ("md", ["director"], None, "Headquarters", None),
    ("sales.director", ["director"], None, "Sales", "md"),
    ("rm.north", ["regional_manager"], "North", "Sales North", "sales.director"),
    ("rm.east", ["regional_manager"], "East", "Sales East", "sales.director"),
    ("ann", ["salesperson"], "Beijing", "Sales North", "rm.north"),
    ("bob", ["salesperson"], "Shenyang", "Sales North", "rm.north"),
    ("cai", ["salesperson"], "Shanghai", "Sales East", "rm.east"),
    ("fiona", ["finance"], None, "Finance", "md"),
    ("olga", ["admin_office"], None, "Admin Office", "md"),
    ("dan", ["dealer"], "North", "Sales", "rm.north"),
    ("dora", ["dealer"], "East", "Sales", "rm.east"),
    ("consultant", ["consultant"], None, "Consulting Group", "leader"),
    ("leader", ["group_leader"], None, "Consulting Group", "techdir"),
    ("reviewer", ["company_reviewer"], None, "Consulting", "techdir"),
    ("process", ["process_reviewer"], None, "Consulting", "techdir"),
    ("techdir", ["technical_director"], None, "Consulting", "md"),
    ("print", ["print_office"], None, "Admin Office", "md"),
]
REGIONS = [("North", None), ("Beijing", "North"), ("Shenyang", "North"), ("East", None),
           ("Shanghai", "East")]  # fmt: skip
DEPARTMENTS = [
    ("Headquarters", None),
    ("Sales", "Headquarters"),
    ("Consulting", "Headquarters"),
    ("Finance", "Headquarters"),
    ("Admin Office", "Headquarters"),
    ("Sales North", "Sales"),
    ("Sales East", "Sales"),
    ("Consulting Group", "Consulting"),
]
# customers: (name, region, owner or None, stage)
CUSTOMERS = [
    ("Beijing Media", "Beijing", "ann", "customer"),
    ("North Star Appliances", "North", "ann", "lead"),
    ("Shenyang Print", "Shenyang", "bob", "potential"),
    ("Unowned North", "Beijing", None, "lead"),
    ("Shanghai Soft", "Shanghai", "cai", "customer"),
    ("Unowned East", "Shanghai", None, "lead"),
]


def email(who: str) -> str:
    return f"{who}@{DOMAIN}"


def full_customer(i: int) -> dict:
    return {
        "category": "regular",
        "industry": "media",
        "phone": f"+86 10 5550 {1000 + i}",
        "fax": f"+86 10 5551 {1000 + i}",
        "contact_person": f"Contact {i}",
        "postcode": f"10000{i}",
        "mailing_address": f"{i} Renmin Road",
        "email": f"c{i}@customer.example",
    }


def build_crm_company(platform: Platform) -> None:
    """The CRM installed from its files, the test-only interaction review workflow,
    and the fixed company above."""
    install_crm(platform)
    engine = install(platform)
    with platform.session(write=True) as s, s.begin():
        compiled = load_and_validate(HERE / "interaction_review.yaml", platform.schema(s))
        engine.deploy(s, compiled)
    with platform.session(write=True) as s, s.begin():
        records = platform.records(s, Actor.system_actor())
        region, dept, user = {}, {}, {}
        for name, parent in REGIONS:
            region[name] = records.create(
                "regions", {"name": name, "parent": region.get(parent)}
            ).id
        for name, parent in DEPARTMENTS:
            dept[name] = records.create(
                "departments", {"name": name, "parent": dept.get(parent)}
            ).id
        for who, roles, _r, _d, _m in PEOPLE:
            user[who] = create_user(platform, s, email(who), name=who.title(), roles=roles)
        for who, _roles, r, d, m in PEOPLE:
            values = {"department": dept[d], "region": region.get(r), "manager": user.get(m)}
            records.update("users", user[who], values)
        for i, (name, r, owner, stage) in enumerate(CUSTOMERS):
            values = {"name": name, "region": region[r], "stage": stage}
            values["account_manager"] = user[owner] if owner else None
            values.update(full_customer(i))
            records.create("customers", values)


@pytest.fixture
def platform(engine, tmp_path, _templates):
    _templates.copy_into(engine, "platform+crm_app", [build_platform, build_crm_company])
    url = engine.url.render_as_string(hide_password=False)
    return Platform(
        Config(database_url=url, data_dir=tmp_path, secret_key="test-secret"), engine=engine
    )


@pytest.fixture
def app(platform):
    platform.config.api_usage_flush_seconds = 0
    platform.config.api_rate_limit = 0
    install(platform)  # the workflow engine on this platform object
    return create_app(platform.config, platform)


class Company:
    """API clients as the people of the story, and ids by name."""

    def __init__(self, app):
        self.app = app
        self.platform: Platform = app.extensions["cubebase"]
        self._clients: dict[str, object] = {}

    def uid(self, who: str) -> int:
        with self.platform.session() as s:
            return find_user_id(self.platform, s, email(who))

    def client(self, who: str):
        if who not in self._clients:
            address = "admin@example.com" if who == "admin" else email(who)
            with self.platform.session(write=True) as s, s.begin():
                token = create_token(self.platform, s, address)
            c = self.app.test_client()
            c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
            self._clients[who] = c
        return self._clients[who]

    def __getattr__(self, who: str):
        if who.startswith("_"):
            raise AttributeError(who)
        return self.client(who.replace("_", "."))

    def ids(self, table: str, name_field: str = "name") -> dict[str, int]:
        body = self.client("admin").get(f"/api/v1/tables/{table}/records?limit=1000").get_json()
        return {r["fields"][name_field]: r["id"] for r in body["records"]}

    def all(self, who: str, table: str, query: str = "") -> list[dict]:
        out, cursor = [], None
        while True:
            url = f"/api/v1/tables/{table}/records?limit=100{query}"
            if cursor:
                url += f"&cursor={cursor}"
            resp = self.client(who).get(url)
            assert resp.status_code == 200, resp.get_json()
            body = resp.get_json()
            out += body["records"]
            cursor = body["next_cursor"]
            if not cursor:
                return out

    def browser(self, who: str):
        """A client signed in through the session cookie (for the export pages)."""
        import secrets

        from itsdangerous import URLSafeTimedSerializer

        c = self.app.test_client()
        raw = secrets.token_hex(20)
        with c.session_transaction() as sess:
            sess["user_id"] = self.uid(who)
            sess["csrf_token"] = raw
        csrf = URLSafeTimedSerializer(self.app.secret_key, salt="wtf-csrf-token").dumps(raw)
        return c, csrf


@pytest.fixture
def co(app) -> Company:
    return Company(app)
