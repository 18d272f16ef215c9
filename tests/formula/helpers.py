"""A small CRM-like schema for the formula tests, on both databases.

``World`` holds the SQLAlchemy tables (``t_<id>`` with columns ``f_<field id>``),
implements ``SchemaProvider`` for the checker and ``RecordResolver`` for the
interpreter over the very rows it inserts, so both back ends see the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from cubebase.formula import EvalContext, SqlContext, check, compile_condition, compile_value
from cubebase.formula import evaluate as f_evaluate
from cubebase.formula.schema import FieldInfo, LinkInfo, TableInfo
from cubebase.formula.types import BOOLEAN, DATE, DATETIME, NUMBER, TEXT, USER, list_of, record_of

STATEMENT_TIMEOUT = 5  # seconds a PostgreSQL statement of the formula tests may run
NOW = datetime(2026, 3, 15, 10, 30, 0, tzinfo=UTC)
TODAY = date(2026, 3, 15)
JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

_SQL_TYPES = {
    "number": sa.Numeric(),
    "text": sa.Text(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "datetime": sa.DateTime(),
    "record": sa.Integer(),
}


class World:
    """Tables + schema provider + record resolver over the same rows."""

    def __init__(self) -> None:
        self.md = sa.MetaData()
        self.tables: dict[str, TableInfo] = {}
        self.rows: dict[str, dict[int, dict[str, Any]]] = {}
        self.junction_rows: list[tuple[int, int]] = []
        self._next_field = 1
        self._build()

    # ------------------------------------------------------------ schema
    def _f(self, key, label, ftype, storage="column", **kw) -> FieldInfo:
        fid = self._next_field
        self._next_field += 1
        column = f"f_{fid}" if storage in ("column", "json_list") else None
        return FieldInfo(
            id=fid, key=key, label=label, type=ftype, storage=storage, column=column, **kw
        )

    def _table(self, tid, key, label, fields, parent_field=None) -> TableInfo:
        cols = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)]
        for f in fields:
            if f.storage == "column":
                cols.append(sa.Column(f.column, _SQL_TYPES[f.type.kind]))
            elif f.storage == "json_list":
                cols.append(sa.Column(f.column, JSON))
        t = sa.Table(f"t_{tid}", self.md, *cols)
        info = TableInfo(tid, key, label, t, {f.key: f for f in fields}, parent_field)
        self.tables[key] = info
        self.rows[key] = {}
        return info

    def _build(self) -> None:
        f = self._f
        self._table(
            1,
            "regions",
            "Regions",
            [f("name", "Name", TEXT), f("parent", "Parent", record_of("regions"))],
            parent_field="parent",
        )
        self.junction = sa.Table(
            "t_team",
            self.md,
            sa.Column("customer_id", sa.Integer),
            sa.Column("user_id", sa.Integer),
        )
        self._table(
            2,
            "users",
            "Users",
            [
                f("email", "Email", TEXT),
                f("name", "Name", TEXT),
                f("region", "Region", record_of("regions")),
                f("regions", "Regions", list_of(TEXT), "json_list"),
                f("level", "Level", NUMBER),
                f(
                    "accounts",
                    "Accounts",
                    list_of(record_of("customers")),
                    "junction",
                    link=LinkInfo(
                        "customers",
                        junction=self.junction,
                        source_column="user_id",
                        target_column="customer_id",
                    ),
                ),
            ],
        )
        self._table(
            3,
            "customers",
            "Customers",
            [
                f("name", "Contact Name", TEXT),
                f("email", "Email", TEXT),
                f("stage", "Stage", TEXT),
                f("region", "Region", record_of("regions")),
                f("account_manager", "Account Manager", USER),
                f("score", "Score", NUMBER),
                f("rate", "Rate", NUMBER),
                f("active", "Active", BOOLEAN),
                f("since", "Customer Since", DATE),
                f("last_seen", "Last Seen", DATETIME),
                f("tags", "Tags", list_of(TEXT), "json_list"),
                f(
                    "deals",
                    "Deals",
                    list_of(record_of("deals")),
                    "reverse",
                    link=LinkInfo("deals", target_field="customer"),
                ),
                f(
                    "team",
                    "Team",
                    list_of(USER),
                    "junction",
                    link=LinkInfo(
                        "users",
                        junction=self.junction,
                        source_column="customer_id",
                        target_column="user_id",
                    ),
                ),
                f(
                    "won_total",
                    "Won Total",
                    NUMBER,
                    "formula",
                    formula='SUMIF(deals.amount, deals.stage = "won")',
                ),
                f("big", "Big Customer", BOOLEAN, "formula", formula="won_total > 1000"),
                f("order", "Order", NUMBER),  # a key that is not a plain name in display
            ],
        )
        self._table(
            4,
            "deals",
            "Deals",
            [
                f("customer", "Customer", record_of("customers")),
                f("amount", "Deal Amount", NUMBER),
                f("stage", "Stage", TEXT),
                f("closed_on", "Closed On", DATE),
                f("closed", "Closed", BOOLEAN),
                f(
                    "commission",
                    "Commission",
                    NUMBER,
                    "formula",
                    formula="IF(amount >= 100000, amount * 0.05, amount * 0.03)",
                ),
            ],
        )
        # the stored form of the formula fields uses ids, like the platform stores them
        from cubebase.formula import to_stored

        for tkey in ("customers", "deals"):
            t = self.tables[tkey]
            for fld in list(t.fields.values()):
                if fld.storage == "formula":
                    stored = to_stored(fld.formula, self, tkey)
                    t.fields[fld.key] = FieldInfo(**{**fld.__dict__, "formula": stored})

    # ------------------------------------------------------------ SchemaProvider
    def table(self, key: str) -> TableInfo | None:
        return self.tables.get(key)

    def table_keys(self) -> Sequence[str]:
        return list(self.tables)

    # ------------------------------------------------------------ RecordResolver
    def get(self, table: str, record_id: int) -> Mapping[str, Any] | None:
        row = self.rows.get(table, {}).get(record_id)
        return None if row is None else {"id": record_id, **row}

    def related(self, table: str, record_id: int, field_key: str) -> Sequence[Mapping[str, Any]]:
        f = self.tables[table].fields[field_key]
        target = f.link.target
        if f.storage == "reverse":
            return [
                {"id": rid, **row}
                for rid, row in sorted(self.rows[target].items())
                if row.get(f.link.target_field) == record_id
            ]
        ids = [
            (b if f.link.source_column == "customer_id" else a)
            for a, b in self.junction_rows
            if (a if f.link.source_column == "customer_id" else b) == record_id
        ]
        return [
            {"id": i, **self.rows[target][i]} for i in sorted(set(ids)) if i in self.rows[target]
        ]

    def is_under(self, table: str, node_id: int, ancestor_id: int) -> bool:
        parent = self.tables[table].parent_field
        seen = set()
        cur = node_id
        while cur is not None and cur not in seen:
            if cur == ancestor_id:
                return True
            seen.add(cur)
            row = self.rows[table].get(cur)
            cur = row.get(parent) if row else None
        return False

    # ------------------------------------------------------------ data
    def create(self, engine: sa.Engine) -> None:
        self.md.create_all(engine)

    def add(self, table: str, rid: int, **values: Any) -> None:
        self.rows[table][rid] = dict(values)

    def insert_all(self, engine: sa.Engine) -> None:
        with engine.begin() as conn:
            for tkey, rows in self.rows.items():
                info = self.tables[tkey]
                conn.execute(info.sql.delete())
                payload = []
                for rid, row in rows.items():
                    rec = {"id": rid}
                    for f in info.fields.values():
                        if f.column:
                            rec[f.column] = row.get(f.key)
                    payload.append(rec)
                if payload:
                    conn.execute(info.sql.insert(), payload)
            conn.execute(self.junction.delete())
            if self.junction_rows:
                conn.execute(
                    self.junction.insert(),
                    [{"customer_id": c, "user_id": u} for c, u in self.junction_rows],
                )

    def clear(self) -> None:
        for rows in self.rows.values():
            rows.clear()
        self.junction_rows.clear()

    # ------------------------------------------------------------ running formulas
    def sql_context(self, engine, table="customers", user_id=1, roles=("Sales",), **kw):
        info = self.tables[table]
        return SqlContext(
            schema=self,
            table=info,
            alias=info.sql,
            dialect=engine.dialect.name,
            now=NOW,
            today=TODAY,
            user_id=user_id,
            user_roles=frozenset(roles),
            **kw,
        )

    def eval_context(self, user_id=1, roles=("Sales",)) -> EvalContext:
        user = self.get("users", user_id) if user_id is not None else None
        return EvalContext(
            resolver=self, user=user, user_roles=frozenset(roles), now=NOW, today=TODAY
        )

    def sql_values(self, engine, formulas: list[str], table="customers", **kw) -> dict[int, list]:
        """{id: [value of each formula]} computed by the database in one SELECT."""
        ctx = self.sql_context(engine, table, **kw)
        info = self.tables[table]
        cols = [
            compile_value(check(f, self, table), ctx).label(f"v{i}") for i, f in enumerate(formulas)
        ]
        q = sa.select(info.sql.c.id, *cols).order_by(info.sql.c.id)
        rows = _execute(engine, q, formulas)
        return {r[0]: list(r[1:]) for r in rows}

    def sql_where(self, engine, formula: str, table="customers", **kw) -> list[int]:
        ctx = self.sql_context(engine, table, **kw)
        info = self.tables[table]
        cond = compile_condition(check(formula, self, table), ctx)
        q = sa.select(info.sql.c.id).where(cond).order_by(info.sql.c.id)
        return [r[0] for r in _execute(engine, q, [formula])]

    def py_values(self, formulas: list[str], table="customers", user_id=1, roles=("Sales",)):
        ctx = self.eval_context(user_id, roles)
        checked = [check(f, self, table) for f in formulas]
        return {
            rid: [f_evaluate(c, {"id": rid, **row}, ctx) for c in checked]
            for rid, row in sorted(self.rows[table].items())
        }


def _execute(engine, q, formulas: list[str]) -> list:
    """Run ``q``; a statement cancelled by the timeout fails naming the formulas."""
    try:
        with engine.connect() as conn:
            return conn.execute(q).all()
    except sa.exc.OperationalError as exc:
        if "statement timeout" not in str(exc):
            raise
        raise AssertionError(
            f"{engine.dialect.name}: the SQL of {formulas!r} ran over the "
            f"{STATEMENT_TIMEOUT}s statement timeout"
        ) from None


def same(a: Any, b: Any) -> bool:
    """Equal, numbers within float noise (SQLite computes in binary floats)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        a, b = Decimal(str(a)), Decimal(str(b))
        return abs(a - b) <= Decimal("1e-7") * max(Decimal(1), abs(a), abs(b))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return a == b


def seed_basic(w: World) -> None:
    """A fixed data set used by the table-driven tests."""
    w.add("regions", 1, name="World", parent=None)
    w.add("regions", 2, name="Asia", parent=1)
    w.add("regions", 3, name="China", parent=2)
    w.add("regions", 4, name="Guangzhou", parent=3)
    w.add("regions", 5, name="Europe", parent=1)
    w.add(
        "users",
        1,
        email="ann@example.com",
        name="Ann",
        region=2,
        regions=["North", "East"],
        level=Decimal(3),
    )
    w.add("users", 2, email="bob@example.com", name="Bob", region=5, regions=[], level=None)
    w.add(
        "customers",
        1,
        name="Acme Ltd",
        email="info@acme.test",
        stage="customer",
        region=4,
        account_manager=1,
        score=Decimal("12.5"),
        rate=Decimal("0.05"),
        active=True,
        since=date(2024, 1, 31),
        last_seen=datetime(2026, 3, 1, 8, 0, 0),
        tags=["North", "vip"],
        order=Decimal(1),
    )
    w.add(
        "customers",
        2,
        name="Beta",
        email=None,
        stage="lead",
        region=5,
        account_manager=2,
        score=Decimal("-3"),
        rate=None,
        active=False,
        since=date(2025, 12, 15),
        last_seen=None,
        tags=[],
        order=None,
    )
    w.add(
        "customers",
        3,
        name=None,
        email="",
        stage=None,
        region=None,
        account_manager=None,
        score=None,
        rate=Decimal(0),
        active=None,
        since=None,
        last_seen=None,
        tags=None,
        order=None,
    )
    w.add(
        "deals",
        1,
        customer=1,
        amount=Decimal("1000.50"),
        stage="won",
        closed_on=date(2026, 3, 2),
        closed=True,
    )
    w.add(
        "deals",
        2,
        customer=1,
        amount=Decimal("250"),
        stage="won",
        closed_on=date(2026, 1, 10),
        closed=False,
    )
    w.add(
        "deals", 3, customer=1, amount=Decimal("99.99"), stage="lost", closed_on=None, closed=None
    )
    w.add(
        "deals",
        4,
        customer=2,
        amount=Decimal("120000"),
        stage="proposal",
        closed_on=None,
        closed=False,
    )
    w.add(
        "deals", 5, customer=2, amount=None, stage="won", closed_on=date(2026, 3, 20), closed=True
    )
    w.junction_rows.extend([(1, 1), (1, 2), (2, 2)])


@contextmanager
def parser_calls():
    """Record the sizes the lark parser is asked to parse while the block runs,
    to show that input over the limits never reaches it."""
    from cubebase.formula import parser

    sizes: list[int] = []
    real = parser._PARSER

    class Counting:
        def parse(self, text, *args, **kwargs):
            sizes.append(len(text))
            return real.parse(text, *args, **kwargs)

    parser._PARSER = Counting()
    try:
        yield sizes
    finally:
        parser._PARSER = real
