"""Who is calling: a bearer token, or the browser session with a CSRF token.

``Authorization: Bearer TOKEN`` wins whenever the header is sent: the session
cookie is then ignored, and no CSRF token is needed (a page on another site
cannot make a browser send that header). Without the header, the signed Flask
session's ``user_id`` (set by the login page) identifies the caller, and every
request that is not GET, HEAD or OPTIONS must carry the session's CSRF token in
``X-CSRFToken``. Either way the user is loaded from the database on every
request, so a deactivated user or a removed role takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, session
from flask import request as flask_request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from ...platform.actor import Actor
from ...platform.errors import CubebaseError, Forbidden
from ...platform.users import load_actor, token_actor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADERS = ("X-CSRFToken", "X-CSRF-Token")


class Unauthorized(CubebaseError):
    code = "unauthorized"
    http_status = 401


class CSRFFailed(Forbidden):
    code = "csrf_failed"


@dataclass(frozen=True)
class Caller:
    actor: Actor
    token_id: int | None  # None: the browser session
    rate_key: str  # whose requests the rate limit counts


def db_session():
    """The request's database session (closed at teardown). Write endpoints get a
    write session (see ``api.writes``), opened before the caller is looked up."""
    if "db" not in g:
        g.db = current_app.extensions["cubebase"].session()
    return g.db


def authenticate() -> Caller:
    header = flask_request.headers.get("Authorization")
    if header is not None:
        return _bearer(header)
    user_id = session.get("user_id")
    if user_id is not None:
        return _browser_session(user_id)
    raise Unauthorized("Send an API token (Authorization: Bearer TOKEN) or sign in")


def _bearer(header: str) -> Caller:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send an API token: Authorization: Bearer TOKEN")
    platform = current_app.extensions["cubebase"]
    found = token_actor(platform, db_session(), token)
    if found is None:
        raise Unauthorized("The API token is not valid, was revoked, or its user is inactive")
    token_id, actor = found
    return Caller(actor, token_id, f"t{token_id}")


def _browser_session(user_id) -> Caller:
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not 0 < user_id < 2**31:
        session.clear()
        raise Unauthorized("Your session is not valid; sign in again")
    platform = current_app.extensions["cubebase"]
    actor = load_actor(platform, db_session(), user_id)
    if actor is None:
        session.clear()
        raise Unauthorized("Your account is inactive or was removed; sign in again")
    if flask_request.method not in SAFE_METHODS:
        token = next(
            (flask_request.headers[h] for h in CSRF_HEADERS if h in flask_request.headers), None
        )
        try:
            validate_csrf(token)
        except CSRFValidationError as exc:
            raise CSRFFailed(
                f"Send the page's CSRF token in the X-CSRFToken header ({exc.args[0]})"
            ) from None
    return Caller(actor, None, f"u{user_id}")
