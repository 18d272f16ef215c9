"""Errors a user can cause, each with a message a business user understands.

The web layer maps them to HTTP codes: ValidationError 422, ConflictError 409,
NotFound 404, Forbidden 403, LockedError 409, BadRequest 400, ConfigError is a CLI/startup error.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class CubebaseError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(CubebaseError):
    code = "config_error"


class BadRequest(CubebaseError):
    code = "bad_request"


class NotFound(CubebaseError):
    code = "not_found"
    http_status = 404


class Forbidden(CubebaseError):
    code = "forbidden"
    http_status = 403


class ConflictError(CubebaseError):
    code = "conflict"
    http_status = 409


class LockedError(ConflictError):
    """The record is closed by its table's lock rule: nobody may change it."""

    code = "locked"


@dataclass
class FieldProblem:
    field: str | None  # field key, or None for a record-level rule
    message: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"field": self.field, "message": self.message}
        d.update(self.extra)
        return d


class ValidationError(CubebaseError):
    """One problem per field (or per record-level rule); nothing was written."""

    code = "validation_failed"
    http_status = 422

    def __init__(self, problems: list[FieldProblem]):
        self.problems = problems
        summary = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
        super().__init__(summary, [p.to_dict() for p in problems])
