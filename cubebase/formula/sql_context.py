"""What the SQL compiler is given besides the formula (``SqlContext``), and the SQL
types of formula values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from .schema import SchemaProvider, TableInfo
from .types import FType

NUMERIC = sa.Numeric(asdecimal=True)
USER_PARAM = "cb_user_id"  # the bound parameter USER() compiles to
RowScope = Callable[[TableInfo, FromClause], "ColumnElement[bool] | None"]


@dataclass
class SqlContext:
    """Everything the SQL compiler needs besides the formula.

    ``alias`` is the FROM clause the base table is selected under (defaults to
    ``table.sql``). ``now``/``today`` are bound parameters, so the database sees
    the same instant as the interpreter; ``now`` should be timezone-aware (it is
    converted to naive UTC, the DateTime storage convention). ``row_scope`` is
    called for every other table a link path or aggregate reads; the condition
    it returns is added to that subquery (None: no restriction).

    ``joins``: when a dict is given, aggregates over the base row compile to a
    column of a grouped derived table (``SELECT link, agg(...) ... GROUP BY link``)
    instead of a correlated subquery, and the derived table is put in ``joins``
    (signature -> (subquery, ON clause)) for the caller to LEFT JOIN to the base
    table, once per distinct aggregate. One pass over the linked rows instead of
    an index probe per row: for filters and sorts, which read every row.
    """

    schema: SchemaProvider
    table: TableInfo
    alias: FromClause | None = None
    dialect: str = "sqlite"
    now: datetime | None = None
    today: date | None = None
    user_id: int | None = None
    user_roles: frozenset[str] = field(default_factory=frozenset)
    row_scope: RowScope | None = None
    joins: dict[Any, tuple[FromClause, ColumnElement]] | None = None

    def __post_init__(self) -> None:
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {self.dialect!r}")
        if self.now is None:
            self.now = datetime.now(UTC)
        if self.today is None:
            self.today = self.now.date()


def sqltype(t: FType) -> sa.types.TypeEngine:
    return {
        "number": NUMERIC,
        "text": sa.String(),
        "boolean": sa.Boolean(),
        "date": sa.Date(),
        "datetime": sa.DateTime(),
        "record": sa.Integer(),
    }.get(t.kind, sa.String())


def naive_utc(dt: datetime) -> datetime:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt
