"""The value types of the formula language.

A type is a small frozen value so it can be compared, hashed and printed in
error messages ("expected Number, got Text").
"""

from __future__ import annotations

from dataclasses import dataclass

USERS_TABLE = "users"


@dataclass(frozen=True)
class FType:
    """A formula type.

    ``kind`` is one of number, text, boolean, date, datetime, record, list, blank.
    ``table`` names the target table of a record (or of a list of records);
    ``item`` is the element type of a list.
    """

    kind: str
    table: str | None = None
    item: FType | None = None

    def __str__(self) -> str:
        if self.kind == "record":
            return "User" if self.table == USERS_TABLE else f"Record({self.table})"
        if self.kind == "list":
            return f"List({self.item})" if self.item else "List"
        return {"datetime": "DateTime"}.get(self.kind, self.kind.capitalize())


NUMBER = FType("number")
TEXT = FType("text")
BOOLEAN = FType("boolean")
DATE = FType("date")
DATETIME = FType("datetime")
BLANK = FType("blank")


def record_of(table: str) -> FType:
    return FType("record", table=table)


def list_of(item: FType) -> FType:
    return FType("list", item=item, table=item.table if item.kind == "record" else None)


USER = record_of(USERS_TABLE)


def gives_users(t: FType) -> bool:
    """A user or a list of users: what assignees and receivers must be."""
    return (t.kind == "record" and t.table == USERS_TABLE) or (
        t.kind == "list" and t.item is not None and t.item.table == USERS_TABLE
    )
