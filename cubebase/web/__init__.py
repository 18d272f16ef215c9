"""The web app: ``create_app(config)`` builds a Flask app around one Platform.

Blueprints per area (``api`` for the REST API, ``pages`` for the staff web app). No import-time
side effects: everything is wired inside the factory.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from ..platform.config import Config
from ..platform.core import Platform
from .json_provider import FastJSONProvider

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, platform: Platform | None = None) -> Flask:
    config = config or (platform.config if platform else Config.from_env())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.json = FastJSONProvider(app)  # a record's fields keep their form order
    app.extensions["cubebase"] = platform or Platform(config)

    from .api import bp as api_bp
    from .pages import bp as pages_bp

    # Pages check CSRF tokens on every form post; the API checks them itself,
    # only for browser-session writes (bearer-token calls need none).
    csrf = CSRFProtect(app)
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    app.teardown_appcontext(_close_db_session)
    return app


def _close_db_session(_exc: BaseException | None) -> None:
    from flask import g

    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def get_platform(app: Flask) -> Platform:
    return app.extensions["cubebase"]
