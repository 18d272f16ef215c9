"""What the caller may see of the schema, and the request's records service."""

from __future__ import annotations

from flask import current_app, g

from ...platform.errors import NotFound
from ...platform.records import RecordsService
from ...platform.schema import Field, Table
from .auth import db_session


def service() -> RecordsService:
    """The records service for the caller, in the request's session (one per request)."""
    svc = g.get("records")
    if svc is None:
        svc = g.records = current_app.extensions["cubebase"].records(db_session(), g.actor)
    return svc


def visible_tables(svc: RecordsService) -> list[Table]:
    """Tables the caller may read some record of: one of the caller's roles has a
    read rule on the table that is not FALSE (admins: every table)."""
    return svc.access.readable_tables()


def visible_table(svc: RecordsService, key: str) -> Table:
    """The table, or a 404 when the caller may read none of its records (as for a
    table that does not exist)."""
    table = svc.table(key)
    if not svc.access.may_read(table):
        raise NotFound(f"There is no table `{key}`")
    return table


def visible_fields(svc: RecordsService, table: Table) -> list[Field]:
    """The table's fields without those hidden from the caller on every record."""
    return svc.access.readable_fields(table)
