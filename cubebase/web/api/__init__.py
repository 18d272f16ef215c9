"""The REST API under /api/v1 (see interfaces.md).

Every error leaves as ``{"error": {"code", "message", "details"}}`` with the
documented status; nothing a client sends can produce a traceback.
"""

from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ...platform.errors import BadRequest, CubebaseError
from .auth import authenticate

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error_response(code: str, message: str, status: int, details: list | None = None):
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return jsonify(body), status


@bp.errorhandler(CubebaseError)
def _cubebase_error(exc: CubebaseError):
    return error_response(exc.code, exc.message, exc.http_status, exc.details)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(exc.code or 400, "bad_request")
    return error_response(code, exc.description or exc.name, exc.code or 400)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("unexpected error in %s %s", request.method, request.path)
    return error_response("internal", "Something went wrong on our side; it has been logged", 500)


@bp.before_request
def _authenticate():
    g.actor = authenticate()


def json_body() -> dict:
    """The request's JSON object, or a 400 that says what is wrong."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("Send a JSON object with Content-Type: application/json")
    return data


from . import formula  # noqa: E402,F401  (routes register on the blueprint)
