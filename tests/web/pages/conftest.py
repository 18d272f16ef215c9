"""Fixtures for the staff web app: the sample app installed, signed-in clients."""

from __future__ import annotations

import re

import pytest

from cubebase.apps.sample import SALES_EMAIL, SALES_PASSWORD, install_sample_app
from cubebase.platform.actor import Actor

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
TOKEN_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = TOKEN_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


class Browser:
    """A test client that signs in and posts forms with the page's CSRF token."""

    def __init__(self, client):
        self.client = client

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def token(self, url: str = "/login") -> str:
        resp = self.client.get(url)
        return csrf_of(resp.get_data(as_text=True))

    def post(self, url, data=None, *, token_from: str | None = None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(token_from or url))
        return self.client.post(url, data=data, **kw)

    def login(self, email: str, password: str):
        return self.post("/login", {"email": email, "password": password}, token_from="/login")


@pytest.fixture
def platform(app):
    return app.extensions["cubebase"]


@pytest.fixture
def sample(app, platform):
    install_sample_app(platform)
    return platform


@pytest.fixture
def admin(app, sample) -> Browser:
    b = Browser(app.test_client())
    resp = b.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return b


@pytest.fixture
def sales(app, sample) -> Browser:
    b = Browser(app.test_client())
    resp = b.login(SALES_EMAIL, SALES_PASSWORD)
    assert resp.status_code == 302
    return b


def system_records(platform):
    """A records service as the platform itself, in a session that commits on exit."""

    class _Ctx:
        def __enter__(self):
            self.session = platform.session(write=True)
            self.session.begin()
            return platform.records(self.session, Actor.system_actor())

        def __exit__(self, exc_type, *rest):
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
            self.session.close()

    return _Ctx()
