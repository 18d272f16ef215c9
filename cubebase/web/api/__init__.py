"""The REST API under /api/v1 (see interfaces.md and docs/api.md).

Every error leaves as ``{"error": {"code", "message", "details"}}`` with the
documented status; nothing a client sends can produce a traceback. Each request
uses one database session (a write session for the endpoints marked ``writes``),
loads the caller from the database, counts against the caller's rate limit, and
reads and writes records only through the records service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Blueprint, Flask, current_app, g, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from ...platform.errors import BadRequest, CubebaseError
from .auth import SAFE_METHODS, authenticate
from .limits import RateLimiter, UsageLog, namespace_for

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PREFIX = "/api/"

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    431: "headers_too_large",
}

WRITE_ENDPOINTS: set[str] = set()


def writes(view):
    """Mark a view as a unit of work that writes: its request gets a write session
    (on SQLite the write lock is taken at BEGIN, so writers queue instead of failing)."""
    WRITE_ENDPOINTS.add(f"{bp.name}.{view.__name__}")
    return view


class RateLimited(CubebaseError):
    code = "rate_limited"
    http_status = 429


@dataclass
class ApiState:
    limiter: RateLimiter
    usage: UsageLog
    openapi: dict = field(default_factory=dict)  # cached documents by schema version


def api_state(app: Flask | None = None) -> ApiState:
    return (app or current_app).extensions["cubebase_api"]


def error_response(code: str, message: str, status: int, details: list | None = None):
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return jsonify(body), status


def _http_error_body(exc: HTTPException):
    status = exc.code or 400
    message = exc.description or exc.name
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"The request body is too large (at most {limit:,} bytes)"
    resp, status = error_response(HTTP_CODES.get(status, "bad_request"), message, status)
    if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp, status


@bp.record_once
def _setup(state) -> None:
    app = state.app
    platform = app.extensions["cubebase"]
    config = platform.config
    app.extensions["cubebase_api"] = ApiState(
        RateLimiter(
            config.api_rate_limit,
            config.api_rate_window,
            config.redis_url,
            namespace_for(config.database_url),
        ),
        UsageLog(platform, config.api_usage_flush_seconds),
    )

    # Errors raised before a blueprint is chosen (no route matched: 404, 405) or
    # outside a view: JSON under /api/, Flask's own pages elsewhere.
    def http_error(exc: HTTPException):
        if request.path.startswith(PREFIX):
            return _http_error_body(exc)
        return exc

    app.register_error_handler(HTTPException, http_error)


@bp.errorhandler(CubebaseError)
def _cubebase_error(exc: CubebaseError):
    resp, status = error_response(exc.code, exc.message, exc.http_status, exc.details)
    if isinstance(exc, RateLimited):
        resp.headers["Retry-After"] = str(g.rate.reset)
    return resp, status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _http_error_body(exc)


@bp.errorhandler(RecursionError)
def _too_deep(exc: RecursionError):
    return error_response("bad_request", "The request is nested too deeply", 400)


@bp.errorhandler(OperationalError)
def _busy(exc: OperationalError):
    log.warning("database busy in %s %s: %s", request.method, request.path, exc.orig)
    resp, status = error_response("busy", "The database is busy; try again in a moment", 503, [])
    resp.headers["Retry-After"] = "1"
    return resp, status


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("unexpected error in %s %s", request.method, request.path)
    return error_response("internal", "Something went wrong on our side; it has been logged", 500)


@bp.before_request
def _before() -> None:
    if request.endpoint in WRITE_ENDPOINTS:
        g.db = current_app.extensions["cubebase"].session(write=True)
    caller = authenticate()
    g.caller = caller
    g.actor = caller.actor
    limiter = api_state().limiter
    if limiter.enabled:
        g.rate = limiter.hit(caller.rate_key)
        if not g.rate.allowed:
            raise RateLimited(
                f"Too many requests: at most {limiter.limit} per {limiter.window} seconds; "
                f"try again in {g.rate.reset} seconds"
            )


@bp.after_request
def _after(response):
    rate = g.get("rate")
    if rate is not None:
        response.headers["X-RateLimit-Limit"] = str(rate.limit)
        response.headers["X-RateLimit-Remaining"] = str(rate.remaining)
        response.headers["X-RateLimit-Reset"] = str(rate.reset)
    # the response is built: end the request's transaction now (on SQLite this
    # releases the write lock before the token-use log may need it)
    db = g.pop("db", None)
    if db is not None:
        db.rollback()
        db.close()
    caller = g.get("caller")
    if caller is not None and caller.token_id is not None:
        api_state().usage.record(
            caller.token_id,
            caller.actor.user_id,
            write=request.method not in SAFE_METHODS,
            refused=response.status_code >= 400,
            ip=request.remote_addr,
        )
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def json_body() -> dict:
    """The request's JSON object, or a 400 that says what is wrong."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("Send a JSON object with Content-Type: application/json")
    return data


from . import files, formula, openapi, records, reports, schema, tables, tasks  # noqa: E402,F401  (routes register on bp)
