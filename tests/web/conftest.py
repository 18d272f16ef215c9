from __future__ import annotations

import pytest

from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.users import create_token
from cubebase.web import create_app


@pytest.fixture
def app(engine, tmp_path):
    config = Config(
        database_url=engine.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        secret_key="test-secret",
    )
    platform = Platform(config, engine=engine)
    init_platform(platform, admin_password="admin-password-1")
    return create_app(config, platform)


@pytest.fixture
def token(app) -> str:
    platform = app.extensions["cubebase"]
    with platform.session() as session, session.begin():
        return create_token(platform, session, "admin@example.com")


@pytest.fixture
def client(app, token):
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return c
