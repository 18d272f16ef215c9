"""The web app for staff: sign-in, the navigation of tables, grids, record forms,
record pages, kanban boards and exports (see docs/web.md).

Server-rendered Jinja2 (autoescaped) and WTForms; htmx (vendored under
``static/vendor``) where a part of a page updates in place. Every request loads
the signed-in user from the database (a deactivated user or a removed role takes
effect at once) and reads and writes records only through the records service,
so the permission rules apply exactly as in the REST API.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from ...platform.errors import CubebaseError, Forbidden, NotFound
from ...platform.users import load_actor

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__, template_folder="templates")

PUBLIC_ENDPOINTS = frozenset({"pages.login", "pages.health"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@bp.record_once
def _setup(state) -> None:
    app = state.app
    # Cookies: HttpOnly and SameSite=Lax are set by create_app; Secure whenever the
    # site is served over HTTPS (CUBEBASE_SECURE_COOKIES=1 behind a TLS proxy).
    import os

    secure = os.environ.get("CUBEBASE_SECURE_COOKIES", "").strip() in ("1", "true", "yes")
    app.config["SESSION_COOKIE_SECURE"] = secure
    app.config["SESSION_COOKIE_NAME"] = "cubebase_session"
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # valid as long as the session
    app.jinja_env.globals["field_display"] = _lazy_display
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    # Pages outside any blueprint's routes (an unknown URL, a wrong method): an HTML
    # page for people, the API's JSON under /api/.
    def page_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            from ..api import _http_error_body

            return _http_error_body(exc)
        return _error_page(exc.code or 500, exc.name, exc.description)

    for code in (404, 405):
        app.register_error_handler(code, page_error)


def _lazy_display(*args, **kwargs):
    from .common import display_value

    return display_value(*args, **kwargs)


def _error_page(status: int, title: str, message: str):
    user = g.get("actor")
    return (
        render_template("pages/error.html", status=status, title=title, message=message, user=user),
        status,
    )


@bp.before_request
def _load_user():
    platform = current_app.extensions["cubebase"]
    g.db = platform.session(write=request.method in WRITE_METHODS)
    g.actor = None
    user_id = session.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool) and 0 < user_id < 2**31:
        g.actor = load_actor(platform, g.db, user_id)
        if g.actor is None:
            session.clear()
    elif user_id is not None:
        session.clear()
    if g.actor is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method == "GET":
            return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("pages.login"))
    return None


@bp.after_request
def _headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    )
    if g.get("actor") is not None:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return _error_page(404, "Not found", exc.message)


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return _error_page(403, "Not allowed", exc.message)


@bp.errorhandler(CubebaseError)
def _refused(exc: CubebaseError):
    return _error_page(exc.http_status, "That did not work", exc.message)


@bp.errorhandler(CSRFError)
def _csrf(exc: CSRFError):
    return _error_page(
        400,
        "The form expired",
        "The form was open too long or came from another site. Go back, reload the page "
        "and try again.",
    )


@bp.errorhandler(413)
def _too_large(exc: HTTPException):
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return _error_page(
        413,
        "The file is too large",
        f"At most {limit // 1024 // 1024} MB can be sent at once (an import: 10 MB). "
        "Split the file and import it in parts.",
    )


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return _error_page(exc.code or 500, exc.name, exc.description)


@bp.errorhandler(OperationalError)
def _busy(exc: OperationalError):
    log.warning("database busy in %s %s: %s", request.method, request.path, exc.orig)
    return _error_page(503, "Busy", "The database is busy; try again in a moment.")


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("unexpected error in %s %s", request.method, request.path)
    return _error_page(500, "Something went wrong", "It has been logged. Try again later.")


from . import (  # noqa: E402,F401  (routes register on bp)
    auth,
    calendar,
    charts,
    grid,
    imports,
    inbox,
    kanban,
    records,
    reports,
    saved_views,
)
