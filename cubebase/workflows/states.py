"""Workflow states and the helpers the workflow and automation engines share: time,
rows made once, the holders of a role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..platform.records import FormulaFilter

Clock = Callable[[], datetime]
OPEN = "open"
RUNNING = "running"


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they are UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def add_once(session: Session, row: Any) -> bool:
    """Insert ``row`` in a savepoint; False (nothing kept) when its unique key is already
    there, so a retried job or a second process never makes it twice."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def role_holders(system: Any, role: str) -> list[int]:
    """The ids of the active users holding ``role`` (``system``: a records service)."""
    page = system.list(
        "users",
        where=FormulaFilter(f'"{role}" IN roles AND active'),
        sort="id",
        limit=500,
        fields=["email"],
    )
    return [r.id for r in page.records]
