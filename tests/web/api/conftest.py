"""API fixtures: the platform and small CRM of tests/platform (built once per process
and database kind, copied into each test's database), a Flask app around it, the
admin's token, and helpers to add users with tokens or browser sessions."""

from __future__ import annotations

import secrets

import pytest
from itsdangerous import URLSafeTimedSerializer

from cubebase.platform.users import add_role, create_token, create_user, find_user_id
from cubebase.web import create_app
from tests.platform import conftest as _platform_tests

# fixtures shared with the platform tests (templates built once per process)
_templates = _platform_tests._templates
admin = _platform_tests.admin
crm = _platform_tests.crm
fast_password_hash = _platform_tests.fast_password_hash
platform = _platform_tests.platform


@pytest.fixture
def app(crm):
    crm.config.api_usage_flush_seconds = 0  # write token use at once, so tests can read it
    crm.config.secret_key = "test-secret"
    return create_app(crm.config, crm)


@pytest.fixture
def token(app) -> str:
    p = app.extensions["cubebase"]
    with p.session() as session, session.begin():
        return create_token(p, session, "admin@example.com")


@pytest.fixture
def client(app, token):
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return c


class Users:
    """Adds users (with roles) and gives API clients for them."""

    def __init__(self, app):
        self.app = app
        self.platform = app.extensions["cubebase"]

    def role(self, key: str) -> None:
        with self.platform.schema_editor() as editor:
            add_role(editor, key)

    def add(self, email: str, roles: list[str] = ()) -> int:
        for r in roles:
            self.role(r)
        with self.platform.session(write=True) as session, session.begin():
            return create_user(self.platform, session, email, roles=list(roles))

    def token(self, email: str) -> str:
        with self.platform.session(write=True) as session, session.begin():
            return create_token(self.platform, session, email)

    def client(self, email: str, roles: list[str] = ()):
        with self.platform.session() as session:
            exists = find_user_id(self.platform, session, email) is not None
        if not exists:
            self.add(email, roles)
        c = self.app.test_client()
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.token(email)}"
        return c

    def browser(self, email: str = "admin@example.com"):
        """A client signed in through the session cookie, and its CSRF token."""
        with self.platform.session() as session:
            user_id = find_user_id(self.platform, session, email)
        c = self.app.test_client()
        raw = secrets.token_hex(20)
        with c.session_transaction() as sess:
            sess["user_id"] = user_id
            sess["csrf_token"] = raw
        csrf = URLSafeTimedSerializer(self.app.secret_key, salt="wtf-csrf-token").dumps(raw)
        return c, csrf


@pytest.fixture
def users(app) -> Users:
    return Users(app)


def make_customer(client, **fields) -> dict:
    fields.setdefault("name", "Acme")
    resp = client.post("/api/v1/tables/customers/records", json={"fields": fields})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def error_of(resp) -> dict:
    body = resp.get_json()
    assert body is not None, resp.get_data(as_text=True)[:200]
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]
