"""Who is calling: a bearer token, or (later) the browser session with CSRF."""

from __future__ import annotations

from flask import current_app, g
from flask import request as flask_request

from ...platform.actor import Actor
from ...platform.errors import CubebaseError
from ...platform.users import authenticate_token


class Unauthorized(CubebaseError):
    code = "unauthorized"
    http_status = 401


def db_session():
    """The request's database session (closed at teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["cubebase"].session()
    return g.db


def authenticate() -> Actor:
    header = flask_request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send an API token: Authorization: Bearer TOKEN")
    platform = current_app.extensions["cubebase"]
    session = db_session()
    actor = authenticate_token(platform, session, token.strip())
    if actor is None:
        session.rollback()
        raise Unauthorized("The API token is not valid, was revoked, or its user is inactive")
    session.commit()  # records when the token was last used
    return actor
