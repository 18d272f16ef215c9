"""Formula benchmarks: formula fields on a page, filter and sort by an aggregate,
interpreter throughput.

    python -m benchmarks.bench_formulas --db sqlite
    python -m benchmarks.bench_formulas --db postgresql
    python -m benchmarks.bench_formulas --db sqlite --quick        # a smoke run

Data (seeded, see ``benchmarks.generate``): 100,000 customers (the generator's
rows), 1,000,000 deals (about 10 per customer, a tenth of the customers are key
accounts with five times as many), 16 regions in 4 areas. ``customers`` carries
20 formula fields (arithmetic, text, IF/SWITCH, dates, link paths up to
``region.area.name``, aggregates over ``deals``); ``customers_plain`` is its
twin without them (same rows, same indexes). Customers and deals are loaded
with Core inserts (loading is not what is measured), then ANALYZEd.

1. Formula fields on a page: ``records.list("customers", limit=50)`` against
   the same call on the twin, and against ``fields=`` the stored fields of
   ``customers``; pages walked by cursor from the first row and from the middle,
   a fresh records service per page, alternating which side goes first. Python
   cost is measured apart: building the statement, its cache key, compiling it
   on a miss; SQLAlchemy's compiled cache is checked on every executed statement
   and ``formula.check`` calls are counted (none may happen per page).
2. Filter and sort by an aggregate: ``records.list("customers",
   where=FormulaFilter("won_total > 50000"), sort="-won_total", limit=50)``
   against the GROUP BY derived table a DBA writes (same rows checked).
3. Interpreter: ``cubebase.formula.evaluate`` of a pre-checked 13-node formula
   over in-memory records, on one core.
4. The page as the user receives it (``web``): ``GET /api/v1/tables/customers/records?
   limit=50`` (JSON, a bearer token) and the grid page ``/t/customers`` with every
   column chosen (``fields=``, HTML), each against the same request on the twin,
   through the Flask test client in this process (the server's time: routing, the
   caller, the list, JSON or the template; no network). Same pages as part 1 (by
   cursor, from the start and from the middle), the sides take turns going first,
   each pair of answers checked to hold the same records.

PostgreSQL runs in a schema of its own, SQLite in a file under benchmarks/data/
(both removed at the end; ``--keep`` keeps them). Results go to
benchmarks/results/ as JSON, and a summary is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy import event

from cubebase import formula as F
from cubebase.formula import ast as A
from cubebase.platform.listing import encode_cursor
from cubebase.platform.records import FormulaFilter

from . import generate
from .bench_records import (
    Env,
    _dump_profile,
    _load,
    _ms,
    _pct,
    analyze,
    bench_env,
    write_results,
)

PAGE = 50
DEAL_STAGES = ("new", "won", "lost")
DEAL_STAGE_WEIGHTS = (45, 30, 25)
AREAS = ("North", "South", "East", "West")

DEAL_FIELDS: list[dict[str, Any]] = [
    {"key": "customer", "type": "link", "to": "customers", "related_name": "deals"},
    {"key": "amount", "type": "currency"},
    {"key": "stage", "type": "select", "options": list(DEAL_STAGES)},
    {"key": "closed_on", "type": "date"},
]

# 20 formula fields of ``customers``: what admins put on a CRM list view.
FORMULA_FIELDS: list[tuple[str, str]] = [
    ("amount_k", "amount / 1000"),
    ("amount_gross", "ROUND(amount * 1.19, 2)"),
    ("commission", "IF(amount >= 100000, amount * 0.05, amount * 0.03)"),
    ("score_band", 'IF(score >= 80, "A", IF(score >= 50, "B", "C"))'),
    ("score_pct", "score / 100"),
    ("priority", 'SWITCH(stage, "customer", 3, "potential", 2, 1)'),
    ("is_customer", 'stage = "customer"'),
    ("contact", 'name & " <" & email & ">"'),
    ("initials", "UPPER(LEFT(name, 3))"),
    ("name_len", "LEN(name)"),
    ("domain", 'MID(email, FIND("@", email) + 1, 100)'),
    ("signup_year", "YEAR(signed_up)"),
    ("tenure_days", 'DATEDIFF(signed_up, TODAY(), "days")'),
    ("region_name", "region.name"),
    ("area_name", "region.area.name"),
    ("label", 'name & " (" & region.name & ")"'),
    ("won_total", 'SUMIF(deals.amount, deals.stage = "won")'),
    ("deal_count", "COUNT(deals)"),
    ("open_deals", 'COUNTIF(deals, deals.stage = "new")'),
    ("won_commission", "ROUND(won_total * 0.04, 2)"),
]

# The same 20 values as ordinary fields of another copy of the customers (filled
# from the formulas' values): what 20 more columns cost a page, formulas or not.
WIDE_TYPES = {"number": "number", "text": "text", "boolean": "boolean", "date": "date"}

PARTS = ("page", "aggregate", "interpreter", "web")
INTERP_FORMULA = "IF(amount >= 100000, amount * 0.05, amount * 0.03) + LEN(name)"


# --- data ----------------------------------------------------------------------


def deal_rows(
    n: int, customer_ids: list[int], *, seed: int = 42
) -> Any:  # Iterator[dict[str, Any]]
    """``n`` deals over ``customer_ids``: a tenth of the customers (key accounts)
    get five times the deals of the others; amounts have a long tail."""
    rng = random.Random(seed + 1)
    weights = [5 if rng.random() < 0.1 else 1 for _ in customer_ids]
    cum = list(_accumulate(weights))
    for _ in range(n):
        stage = rng.choices(DEAL_STAGES, DEAL_STAGE_WEIGHTS)[0]
        amount = (
            None
            if rng.random() < 0.03
            else Decimal(int(rng.lognormvariate(8.3, 1.1) * 100)).scaleb(-2)
        )
        closed = (
            date(2020, 1, 1) + timedelta(days=rng.randint(0, 6 * 365)) if stage != "new" else None
        )
        yield {
            "customer": rng.choices(customer_ids, cum_weights=cum)[0],
            "amount": amount,
            "stage": stage,
            "closed_on": closed,
        }


def _accumulate(xs: list[int]):
    total = 0
    for x in xs:
        total += x
        yield total


def create_tables(env: Env) -> None:
    p = env.platform
    with p.schema_editor() as ed:
        ed.create_table("areas", "Areas", fields=[{"key": "name", "type": "text"}])
        ed.create_table(
            "regions",
            "Regions",
            fields=[
                {"key": "name", "type": "text", "unique": True},
                {"key": "area", "type": "link", "to": "areas"},
            ],
        )
        ed.create_table("customers", "Customers", fields=generate.CUSTOMER_FIELDS)
        ed.create_table("customers_plain", "Customers (plain)", fields=generate.CUSTOMER_FIELDS)
        ed.create_table("deals", "Deals", fields=DEAL_FIELDS)


def add_formula_fields(env: Env) -> None:
    with env.platform.schema_editor() as ed:
        for key, source in FORMULA_FIELDS:
            ed.add_field("customers", {"key": key, "type": "formula", "formula": source})


def core_insert(env: Env, table_key: str, rows, chunk: int = 10_000) -> int:
    """Rows of {field key: Python value} straight into the table (no history)."""
    p = env.platform
    with p.session() as s:
        table = p.schema(s).table(table_key)
    fields = {k: f for k, f in table.fields.items() if f.column_name and not f.ftype.system_column}
    insert = sa.insert(table.sql)
    now = datetime.now(UTC)
    user = env.admin.user_id
    n = 0
    batch: list[dict] = []

    def flush() -> None:
        with p.engine.begin() as conn:
            conn.execute(insert, batch)
        batch.clear()

    for r in rows:
        row = {
            "version": 1,
            "created_at": now,
            "created_by": user,
            "updated_at": now,
            "updated_by": user,
        }
        for k, v in r.items():
            f = fields[k]
            row[f.column_name] = f.ftype.to_db(f, v)
        batch.append(row)
        n += 1
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return n


def load(env: Env, customers: int, deals: int, seed: int) -> dict:
    p = env.platform
    t0 = time.perf_counter()
    create_tables(env)
    with p.session() as s, s.begin():
        svc = p.records(s, env.admin)
        area_ids = svc.bulk_create("areas", [{"name": a} for a in AREAS])
        region_ids = svc.bulk_create(
            "regions",
            [{"name": r, "area": area_ids[i % 4]} for i, r in enumerate(generate.region_names())],
        )
    for key in ("customers", "customers_plain"):
        core_insert(env, key, generate.customer_rows(customers, seed=seed, region_ids=region_ids))
    with p.session() as s:
        t = p.schema(s).table("customers").sql
        customer_ids = list(s.scalars(sa.select(t.c.id).order_by(t.c.id)))
    loaded = time.perf_counter()
    core_insert(env, "deals", deal_rows(deals, customer_ids, seed=seed))
    print(
        f"  loaded {customers:,} customers (twice) and {deals:,} deals "
        f"in {time.perf_counter() - t0:.0f}s (deals {time.perf_counter() - loaded:.0f}s)",
        flush=True,
    )
    add_formula_fields(env)
    make_wide(env)
    with p.session() as s:
        schema = p.schema(s)
        tables = [
            schema.table(k).sql.name
            for k in ("customers", "customers_plain", "customers_wide", "deals")
        ]
    analyze(env, tables)
    return {"customers": customers, "deals": deals, "load_s": round(time.perf_counter() - t0, 1)}


def make_wide(env: Env) -> None:
    """``customers_wide``: the customers' stored fields plus 20 ordinary fields (number,
    text, true/false) holding the formulas' values, read through the records service
    and written straight into the table."""
    p = env.platform
    with p.session() as s:
        formulas = p.schema(s).table("customers")
        extra = [
            {"key": key, "type": WIDE_TYPES[formulas.fields[key].config["result_type"]]}
            for key, _ in FORMULA_FIELDS
        ]
    with p.schema_editor() as ed:
        ed.create_table(
            "customers_wide",
            "Customers (wide)",
            fields=[*generate.CUSTOMER_FIELDS, *extra],
        )
    keys = [f["key"] for f in generate.CUSTOMER_FIELDS] + [f["key"] for f in extra]
    with p.session() as s:
        rows = p.records(s, env.admin).iter_records("customers", sort="id", fields=keys)
        core_insert(env, "customers_wide", ({k: r.values[k] for k in keys} for r in rows))


# --- instrumentation ------------------------------------------------------------


class CacheWatch:
    """Counts SQLAlchemy compiled-cache hits and misses of executed statements."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.counts: dict[str, int] = {}
        self.on = False

    def __enter__(self):
        event.listen(self.engine, "after_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "after_cursor_execute", self._seen)
        return False

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not self.on or context is None:
            return
        kind = context.cache_hit.name.lower()  # cache_hit, cache_miss, ...
        if "cb_state" not in statement:  # every data statement (not the schema version)
            self.counts[kind] = self.counts.get(kind, 0) + 1


class CheckCounter:
    """Counts ``formula.check`` calls (parse + type-check) while switched on."""

    def __init__(self):
        self.calls = 0
        self._orig = F.check

    def __enter__(self):
        orig = self._orig

        def counting(*args, **kwargs):
            self.calls += 1
            return orig(*args, **kwargs)

        F.check = counting
        return self

    def __exit__(self, *exc):
        F.check = self._orig
        return False


def _median_time(fn: Callable[[], Any], n: int) -> float:
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs)


# --- 1. formula fields on a page -------------------------------------------------


def bench_page(env: Env, pages: int, warmup: int) -> dict:
    with env.platform.session() as session, env.platform.engine.connect() as conn:
        return _bench_page(env, session, conn, pages, warmup)


def _bench_page(env: Env, session, conn, pages: int, warmup: int) -> dict:
    p = env.platform
    svc = p.records(session, env.admin)
    table = svc.table("customers")
    stored = [f.key for f in table.data_fields() if f.type != "formula"]
    formulas = [f.key for f in table.data_fields() if f.type == "formula"]
    assert len(formulas) == len(FORMULA_FIELDS)
    ids = list(session.scalars(sa.select(table.sql.c.id).order_by(table.sql.c.id)))
    starts = [None, ids[len(ids) // 2 - 1]]

    dba_q = dba_page_statement(env, svc)
    conn.execute(sa.text("SELECT 1"))  # open the transaction, as the session's is
    today = datetime.now(p.schema(session).timezone).date()

    def lister(table_key: str, fields: list[str] | None = None):
        def side(cursor: str | None):
            s = p.records(session, env.admin)  # a fresh service, as per request
            t0 = time.perf_counter()
            page = s.list(table_key, limit=PAGE, cursor=cursor, fields=fields)
            dt = time.perf_counter() - t0
            return dt, [{"id": r.id, **r.values} for r in page.records], page.next_cursor

        return side

    def dba(after: int | None):
        t0 = time.perf_counter()
        rows = [r._asdict() for r in conn.execute(dba_q, {"after": after or 0, "today": today})]
        dt = time.perf_counter() - t0
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        return dt, rows, rows[-1]["id"] if more else None

    sides: dict[str, Callable[[Any], Any]] = {
        "formulas": lister("customers"),
        "twin": lister("customers_plain"),
        "wide": lister("customers_wide"),
        "stored_only": lister("customers", stored),
        "dba": dba,
    }
    lat: dict[str, list[float]] = {k: [] for k in sides}

    def walk(start: int | None, n: int, record: bool) -> None:
        state: dict[str, Any] = {k: encode_cursor("", [start]) if start else None for k in sides}
        state["dba"] = start
        order = list(sides)
        for i in range(n):
            got = {}
            k = i % len(order)
            for name in order[k:] + order[:k]:  # rotate who goes first
                dt, got[name], state[name] = sides[name](state[name])
                if record:
                    lat[name].append(dt)
            ours, twin, hand = got["formulas"], got["twin"], got["dba"]
            if (
                not [r["email"] for r in ours]
                == [r["email"] for r in twin]
                == [r["email"] for r in got["wide"]]
            ):
                raise AssertionError("the twin tables gave different pages")
            for a, w in zip(ours, got["wide"], strict=True):
                if any(not _close(a[k], w[k]) for k, _ in FORMULA_FIELDS):
                    raise AssertionError(f"the wide table holds other values: {a} {w}")
            if any(len(r) != 1 + len(stored) + len(formulas) for r in ours):
                raise AssertionError("a page misses formula values")
            for a, b in zip(ours, hand, strict=True):
                same = [a["id"] == b["id"]] + [
                    _close(a[key], b[key])
                    for key in ("won_total", "deal_count", "open_deals", "area_name", "domain")
                ]
                if not all(same):
                    raise AssertionError(f"ours and the DBA's page differ: {a} {b}")
            if state["formulas"] is None:
                break

    checks = CheckCounter()
    with CacheWatch(p.engine) as cache, checks:
        gc.collect()
        for start in starts:
            walk(start, warmup, False)
        checks.calls = 0
        cache.on = True
        gc.collect()
        walk(starts[0], pages - pages // 2, True)
        walk(starts[1], pages // 2, True)
        cache.on = False
    out: dict[str, Any] = {"pages": len(lat["formulas"]), "formula_fields": len(formulas)}
    for name, xs in lat.items():
        out[name] = {"p50_ms": _ms(_pct(xs, 50)), "p95_ms": _ms(_pct(xs, 95))}
    for base in ("twin", "wide", "stored_only", "dba"):
        out[f"ratio_p50_vs_{base}"] = round(_pct(lat["formulas"], 50) / _pct(lat[base], 50), 2)
        out[f"ratio_p95_vs_{base}"] = round(_pct(lat["formulas"], 95) / _pct(lat[base], 95), 2)
    w, t = _pct(lat["wide"], 50), _pct(lat["twin"], 50)
    out["ratio_p50_wide_vs_twin"] = round(w / t, 2)
    out["sql_cache"] = cache.counts
    out["formula_checks_while_measuring"] = checks.calls
    out["python"] = python_costs(env, session, starts[1])
    out["sql_ms"] = page_sql_costs(env, session, starts[1])
    out["one_field_each"] = per_field_costs(env, session, starts[1])
    out["stages_ms"] = page_stages(env, session, starts[1], max(pages, 100))
    out["db_json_ms"] = db_json_costs(env, session, starts[1], max(pages, 100))
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal | float):
        return a is not None and b is not None and abs(Decimal(str(a)) - Decimal(str(b))) < 0.005
    return a == b


def dba_page_statement(env: Env, svc) -> sa.Select:
    """The page a DBA writes for the same 20 values: the 51 customers first, then
    their regions and areas joined, and the deal aggregates of just those customers
    in one GROUP BY (no blank handling beyond what the values need)."""
    pg = env.db == "postgresql"
    cu, rg, ar, dl = (svc.table(k) for k in ("customers", "regions", "areas", "deals"))
    page = (
        sa.select(cu.sql)
        .where(cu.sql.c.deleted_at.is_(None), cu.sql.c.id > sa.bindparam("after"))
        .order_by(cu.sql.c.id)
        .limit(PAGE + 1)
        .cte("page")
    )

    def col(table, alias, key):
        return alias.c[table.fields[key].column_name]

    name, email, stage = (col(cu, page, k) for k in ("name", "email", "stage"))
    amount, score, signed_up = (col(cu, page, k) for k in ("amount", "score", "signed_up"))
    r, a = rg.sql.alias("r"), ar.sql.alias("a")
    d_stage, d_amount, d_customer = (col(dl, dl.sql, k) for k in ("stage", "amount", "customer"))
    d = (
        sa.select(
            d_customer.label("customer"),
            sa.func.sum(sa.case((d_stage == "won", d_amount))).label("won"),
            sa.func.count().label("deal_count"),
            sa.func.count(sa.case((d_stage == "new", 1))).label("open_deals"),
        )
        .where(d_customer.in_(sa.select(page.c.id)))
        .group_by(d_customer)
        .subquery("d")
    )
    won = sa.func.coalesce(d.c.won, 0)
    region_name, area_name = col(rg, r, "name"), col(ar, a, "name")
    today = sa.bindparam("today", type_=sa.Date())
    if pg:
        year = sa.extract("year", signed_up)
        tenure = today - signed_up
        at = sa.func.strpos(email, "@")
    else:
        year = sa.cast(sa.func.strftime("%Y", signed_up), sa.Integer)
        tenure = sa.cast(sa.func.julianday(today) - sa.func.julianday(signed_up), sa.Integer)
        at = sa.func.instr(email, "@")

    def n(text: str):  # a numeric constant as a DBA types it (NUMERIC on PostgreSQL)
        return sa.literal_column(text)

    values = [
        (amount / n("1000.0")).label("amount_k"),
        sa.func.round(amount * n("1.19"), 2).label("amount_gross"),
        sa.case((amount >= 100000, amount * n("0.05")), else_=amount * n("0.03")).label(
            "commission"
        ),
        sa.case((score >= 80, "A"), (score >= 50, "B"), else_="C").label("score_band"),
        (score / n("100.0")).label("score_pct"),
        sa.case((stage == "customer", 3), (stage == "potential", 2), else_=1).label("priority"),
        sa.func.coalesce(stage == "customer", False).label("is_customer"),
        (name + " <" + email + ">").label("contact"),
        sa.func.upper(sa.func.substr(name, 1, 3)).label("initials"),
        sa.func.length(name).label("name_len"),
        sa.func.substr(email, at + 1, 100).label("domain"),
        year.label("signup_year"),
        tenure.label("tenure_days"),
        region_name.label("region_name"),
        area_name.label("area_name"),
        (name + " (" + sa.func.coalesce(region_name, "") + ")").label("label"),
        won.label("won_total"),
        sa.func.coalesce(d.c.deal_count, 0).label("deal_count"),
        sa.func.coalesce(d.c.open_deals, 0).label("open_deals"),
        sa.func.round(won * n("0.04"), 2).label("won_commission"),
    ]
    assert [v.name for v in values] == [k for k, _ in FORMULA_FIELDS]
    return (
        sa.select(page, *values)
        .select_from(
            page.outerjoin(r, r.c.id == col(cu, page, "region"))
            .outerjoin(a, a.c.id == col(rg, r, "area"))
            .outerjoin(d, d.c.customer == page.c.id)
        )
        .order_by(page.c.id)
    )


def _page_statement(svc, table_key: str, after: int | None, fields=None) -> sa.Select:
    """The statement ``list`` executes for a page in id order (built the same way)."""
    table = svc.table(table_key)
    t = table.sql
    stmt = svc._select(table, fields).where(t.c.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(t.c.id > after)
    return stmt.order_by(t.c.id).limit(PAGE + 1)


def python_costs(env: Env, session, after: int) -> dict:
    """Per-page Python work: build the statement, its cache key, compile it (a miss)."""
    p = env.platform
    svc = p.records(session, env.admin)
    dialect = p.engine.dialect
    out: dict[str, Any] = {}
    for name in ("customers", "customers_plain"):
        build = _median_time(lambda n=name: _page_statement(svc, n, after), 300)
        stmt = _page_statement(svc, name, after)
        key = _median_time(stmt._generate_cache_key, 300)
        compile_ = _median_time(lambda s=stmt: s.compile(dialect=dialect), 30)
        out[name] = {
            "build_ms": _ms(build),
            "cache_key_ms": _ms(key),
            "compile_on_miss_ms": _ms(compile_),
            "sql_chars": len(str(stmt.compile(dialect=dialect))),
        }
    # two builds of the statement share one cache key: the compiled SQL is reused
    a = _page_statement(svc, "customers", after)._generate_cache_key()
    b = _page_statement(p.records(session, env.admin), "customers", after + 50)
    out["same_cache_key_across_requests"] = a == b._generate_cache_key()
    return out


def page_sql_costs(env: Env, session, after: int) -> dict:
    """Database time of one page (execute + fetch the rows), without the service."""
    p = env.platform
    svc = p.records(session, env.admin)
    out = {}
    for name in ("customers", "customers_plain"):
        stmt = _page_statement(svc, name, after)
        session.execute(stmt).all()
        out[name] = _ms(_median_time(lambda s=stmt: session.execute(s).all(), 100))
    return out


def db_json_costs(env: Env, session, after: int, n: int) -> dict | None:
    """PostgreSQL writing each record's JSON itself (``json_build_object`` over the page
    statement's columns, decimals as text, times as ISO with Z: one text per record,
    as PostgREST answers) against returning the rows, for the formula table and its
    twin: whether 20 more values cost less when the database renders them. Medians
    of ``n`` interleaved runs on the raw connection (ms); None on SQLite."""
    p = env.platform
    if p.dialect != "postgresql":
        return None
    svc = p.records(session, env.admin)
    statements = {}
    for name in ("customers", "customers_plain"):
        sub = _page_statement(svc, name, after).subquery()
        pairs = []
        for c in sub.c:
            if c.name in ("id", "version", "deleted_at"):
                continue
            v: Any = c
            if isinstance(c.type, sa.Numeric) and not isinstance(c.type, sa.Integer):
                v = sa.cast(c, sa.Text)
            elif isinstance(c.type, sa.DateTime):
                v = sa.func.to_char(sa.func.timezone("UTC", c), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            pairs += [sa.literal(c.name, sa.Text), v]
        doc = sa.func.json_build_object(
            "id", sub.c.id, "version", sub.c.version, "fields", sa.func.json_build_object(*pairs)
        )
        statements[f"json:{name}"] = sa.select(sa.cast(doc, sa.Text))
        statements[f"rows:{name}"] = sa.select(sub)
    conn = session.connection()
    calls = list(statements.items())
    for _, stmt in calls:
        for _ in range(10):
            conn.execute(stmt).all()
    lat: dict[str, list[float]] = {k: [] for k in statements}
    for i in range(n):
        j = i % len(calls)
        for k, stmt in calls[j:] + calls[:j]:
            t0 = time.perf_counter()
            conn.execute(stmt).all()
            lat[k].append(time.perf_counter() - t0)
    out: dict[str, Any] = {k: _ms(_pct(v, 50)) for k, v in lat.items()}
    for kind in ("json", "rows"):
        a, b = _pct(lat[f"{kind}:customers"], 50), _pct(lat[f"{kind}:customers_plain"], 50)
        out[f"{kind}_ratio"] = round(a / b, 2)
    return out


def per_field_costs(env: Env, session, after: int) -> dict:
    """Database time of a page with the stored fields plus one formula field: what each
    formula field adds (execute + fetch, median)."""
    p = env.platform
    svc = p.records(session, env.admin)
    table = svc.table("customers")
    stored = [f.key for f in table.data_fields() if f.type != "formula"]
    base_stmt = _page_statement(svc, "customers", after, stored)
    session.execute(base_stmt).all()
    base = _median_time(lambda: session.execute(base_stmt).all(), 50)
    out = {"stored_only_ms": _ms(base)}
    for key, _ in FORMULA_FIELDS:
        stmt = _page_statement(svc, "customers", after, [*stored, key])
        session.execute(stmt).all()
        out[key] = _ms(_median_time(lambda s=stmt: session.execute(s).all(), 30) - base)
    return out


def page_stages(env: Env, session, after: int, n: int) -> dict:
    """Where a page's time goes, formulas against twin, each stage measured
    interleaved (medians, ms): the database's own work (the page statement wrapped in
    ``count(*)``: executed, nothing sent back), the driver (execute, fetch, decode the
    values, ``cursor.description``), SQLAlchemy (the same statement through
    ``session.execute``, rows built), and the records service's ``list``. Each
    stage includes the ones before it; the differences are what each adds."""
    p = env.platform
    cursor = encode_cursor("", [after])
    sent: dict[str, tuple[str, Any]] = {}

    def grab(conn, cur, statement, parameters, context, executemany):
        if "cb_state" not in statement:
            sent["last"] = (statement, parameters)

    event.listen(p.engine, "before_cursor_execute", grab)
    try:
        for key in ("customers", "customers_plain"):
            p.records(session, env.admin).list(key, limit=PAGE, cursor=cursor)
            sent[key] = sent.pop("last")
    finally:
        event.remove(p.engine, "before_cursor_execute", grab)
    dbapi = session.connection().connection.dbapi_connection

    def server(key: str) -> None:
        sql, params = sent[key]
        cur = dbapi.cursor()
        cur.execute(f"SELECT count(*) FROM ({sql}) AS page", params)
        cur.fetchall()
        cur.close()

    def driver(key: str) -> None:
        sql, params = sent[key]
        cur = dbapi.cursor()
        cur.execute(sql, params)
        cur.fetchall()
        _ = cur.description
        cur.close()

    def sqlalchemy(key: str) -> None:
        sql, params = sent[key]
        session.connection().exec_driver_sql(sql, params).all()

    def service(key: str) -> None:
        p.records(session, env.admin).list(key, limit=PAGE, cursor=cursor)

    stages = {"server": server, "driver": driver, "sqlalchemy": sqlalchemy, "service": service}
    calls = [(f"{st}:{k}", fn, k) for st, fn in stages.items() for k in sent]
    lat: dict[str, list[float]] = {name: [] for name, _, _ in calls}
    for _name, fn, k in calls:
        for _ in range(10):
            fn(k)
    gc.collect()
    for i in range(n):
        j = i % len(calls)
        for name, fn, k in calls[j:] + calls[:j]:  # rotate who goes first
            t0 = time.perf_counter()
            fn(k)
            lat[name].append(time.perf_counter() - t0)
    out: dict[str, Any] = {}
    for st in stages:
        a = _pct(lat[f"{st}:customers"], 50)
        b = _pct(lat[f"{st}:customers_plain"], 50)
        out[st] = {
            "formulas": _ms(a),
            "twin": _ms(b),
            "extra": _ms(a - b),
            "ratio": round(a / b, 2),
        }
    return out


# --- 2. filter and sort by an aggregate ---------------------------------------------


def bench_aggregate(env: Env, runs: int, warmup: int, threshold: int) -> dict:
    with env.platform.session() as session, env.platform.engine.connect() as conn:
        return _bench_aggregate(env, session, conn, runs, warmup, threshold)


def _bench_aggregate(env: Env, session, conn, runs: int, warmup: int, threshold: int) -> dict:
    p = env.platform
    svc = p.records(session, env.admin)
    customers, deals = svc.table("customers"), svc.table("deals")
    c, d = customers.sql, deals.sql
    col = {k: f.column_name for k, f in deals.fields.items()}
    stored = [f for f in customers.data_fields() if f.column_name is not None]
    # The DBA's query: won totals per customer in one pass over deals (GROUP BY),
    # the filter as HAVING, joined to customers, ORDER BY total LIMIT 50.
    total = sa.func.sum(d.c[col["amount"]])
    won = (
        sa.select(d.c[col["customer"]].label("customer_id"), total.label("won_total"))
        .where(d.c[col["stage"]] == "won", d.c.deleted_at.is_(None))
        .group_by(d.c[col["customer"]])
        .having(total > sa.bindparam("threshold"))
        .subquery("won")
    )
    hand_q = (
        sa.select(
            c.c.id,
            c.c.version,
            c.c.deleted_at,
            *(customers.column(f).label(f.column_name) for f in stored),
            won.c.won_total,
        )
        .join_from(c, won, won.c.customer_id == c.c.id)
        .where(c.c.deleted_at.is_(None))
        .order_by(won.c.won_total.desc(), c.c.id.desc())
        .limit(PAGE)
    )
    where = FormulaFilter(f"won_total > {threshold}")
    won_fields = [f.key for f in stored] + ["won_total"]
    conn.execute(sa.text("SELECT 1"))

    def ours() -> tuple[float, list]:
        s = p.records(session, env.admin)
        t0 = time.perf_counter()
        page = s.list("customers", where=where, sort="-won_total", limit=PAGE)
        dt = time.perf_counter() - t0
        return dt, [(r.id, r.values["won_total"]) for r in page.records]

    def ours_narrow() -> tuple[float, list]:
        s = p.records(session, env.admin)
        t0 = time.perf_counter()
        page = s.list("customers", where=where, sort="-won_total", limit=PAGE, fields=won_fields)
        dt = time.perf_counter() - t0
        return dt, [(r.id, r.values["won_total"]) for r in page.records]

    def hand() -> tuple[float, list]:
        t0 = time.perf_counter()
        rows = [dict(m) for m in conn.execute(hand_q, {"threshold": threshold}).mappings()]
        dt = time.perf_counter() - t0
        return dt, [(r["id"], Decimal(str(r["won_total"]))) for r in rows]

    sides = {"ours": ours, "ours_fields": ours_narrow, "hand": hand}
    lat: dict[str, list[float]] = {k: [] for k in sides}
    order = list(sides)
    for i in range(warmup + runs):
        got = {}
        for name in order[i % 3 :] + order[: i % 3]:
            dt, got[name] = sides[name]()
            if i >= warmup:
                lat[name].append(dt)
        if not (_same_totals(got["ours"], got["hand"]) and got["ours"] == got["ours_fields"]):
            raise AssertionError(
                f"ours and hand-written differ: {got['ours'][:3]} {got['hand'][:3]}"
            )
    matching = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(d.c[col["customer"]])
            .where(d.c[col["stage"]] == "won")
            .group_by(d.c[col["customer"]])
            .having(total > threshold)
            .subquery()
        )
    ).scalar()
    out: dict[str, Any] = {"runs": runs, "threshold": threshold, "matching_customers": matching}
    for name, xs in lat.items():
        out[name] = {"p50_ms": _ms(_pct(xs, 50)), "p95_ms": _ms(_pct(xs, 95))}
    for name in ("ours", "ours_fields"):
        out[f"ratio_p50_{name}"] = round(_pct(lat[name], 50) / _pct(lat["hand"], 50), 2)
        out[f"ratio_p95_{name}"] = round(_pct(lat[name], 95) / _pct(lat["hand"], 95), 2)
    out["plans"] = {
        "ours": explain_list(env, session, svc, where, won_fields),
        "hand": explain(env, conn, hand_q.params(threshold=threshold)),
    }
    return out


def _same_totals(a: list, b: list) -> bool:
    if [i for i, _ in a] != [i for i, _ in b]:
        return False
    return all(
        abs(Decimal(str(x)) - Decimal(str(y))) < Decimal("0.005")
        for (_, x), (_, y) in zip(a, b, strict=True)
    )


def explain_list(env: Env, session, svc, where, fields) -> list[str]:
    """The plans of the statements ``list`` runs for the first page."""
    statements: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "cb_state" not in statement:
            statements.append((statement, parameters))

    event.listen(env.platform.engine, "before_cursor_execute", grab)
    try:
        svc.list("customers", where=where, sort="-won_total", limit=PAGE, fields=fields)
    finally:
        event.remove(env.platform.engine, "before_cursor_execute", grab)
    conn = session.connection()
    prefix = "EXPLAIN " if env.db == "postgresql" else "EXPLAIN QUERY PLAN "
    plans = []
    for sql, params in statements:
        rows = conn.exec_driver_sql(prefix + sql, params).all()
        plans.append("\n".join(str(r[-1]) for r in rows))
    return plans


def explain(env: Env, conn, stmt) -> str:
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN " if env.db == "postgresql" else "EXPLAIN QUERY PLAN "
    return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(prefix + sql).all())


# --- 3. interpreter -------------------------------------------------------------


def count_nodes(n: A.TNode) -> int:
    return 1 + sum(count_nodes(c) for c in A.tchildren(n))


def bench_interpreter(env: Env, evaluations: int, repeats: int, seed: int) -> dict:
    p = env.platform
    with p.session() as s:
        fs = p.schema(s).formula_schema()
    checked = F.check(INTERP_FORMULA, fs, "customers")
    nodes = count_nodes(checked.root)
    records = [
        {"id": i + 1, **r}
        for i, r in enumerate(
            generate.customer_rows(10_000, seed=seed, region_ids=list(range(1, 17)))
        )
    ]
    n_rec = len(records)
    ctx = F.EvalContext()
    evaluate = F.evaluate
    # sanity: the interpreter's answer for one record, by hand
    r0 = next(r for r in records if r["amount"] is not None)
    rate = Decimal("0.05") if r0["amount"] >= 100000 else Decimal("0.03")
    assert evaluate(checked, r0) == r0["amount"] * rate + len(r0["name"])

    def run(with_ctx: bool) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process): on a shared machine the CPU
        time is what one core of our own spent, whatever else ran."""
        recs = records
        c0, t0 = time.process_time(), time.perf_counter()
        if with_ctx:
            for i in range(evaluations):
                evaluate(checked, recs[i % n_rec], ctx)
        else:
            for i in range(evaluations):
                evaluate(checked, recs[i % n_rec])
        return time.perf_counter() - t0, time.process_time() - c0

    out: dict[str, Any] = {"formula": INTERP_FORMULA, "nodes": nodes, "evaluations": evaluations}
    for name, with_ctx in (("shared_context", True), ("no_context", False)):
        run(with_ctx)  # warm up
        runs = [run(with_ctx) for _ in range(repeats)]
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        out[name] = {
            "per_s_p50": round(evaluations / statistics.median(wall)),
            "per_s_min": round(evaluations / max(wall)),
            "per_cpu_s_p50": round(evaluations / statistics.median(cpu)),
            "us_per_eval_p50": round(statistics.median(wall) / evaluations * 1e6, 3),
        }

    # the floor: the same arithmetic as a plain Python function
    def plain(r):
        a = r.get("amount")
        if a is None:
            return None
        return (a * Decimal("0.05") if a >= 100000 else a * Decimal("0.03")) + len(r["name"])

    t0 = time.perf_counter()
    for i in range(evaluations):
        plain(records[i % n_rec])
    out["plain_python_per_s"] = round(evaluations / (time.perf_counter() - t0))
    return out


# --- 4. the page as the user receives it: REST API and grid ----------------------------


def bench_web(env: Env, pages: int, warmup: int) -> dict:
    """Server time of the API's list of 50 and of the grid page, with and without the
    20 formula fields (the twin table), interleaved in this process."""
    from cubebase.platform.users import create_token
    from cubebase.web import create_app

    p = env.platform
    with p.session(write=True) as s, s.begin():
        token = create_token(p, s, "admin@example.com", label="bench")
    with p.session() as s:
        schema = p.schema(s)
        cols = {
            key: [
                f.key
                for f in schema.table(key).data_fields()
                if not f.system and f.link_kind not in ("reverse", "reverse_many")
            ]
            for key in ("customers", "customers_plain", "customers_wide")
        }
        t = schema.table("customers").sql
        ids = list(s.scalars(sa.select(t.c.id).order_by(t.c.id)))
    assert len(cols["customers"]) == len(cols["customers_plain"]) + len(FORMULA_FIELDS)
    app = create_app(p.config, p)
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    grid = app.test_client()
    with grid.session_transaction() as sess:
        sess["user_id"] = env.admin.user_id
    # the pages of part 1: walked from the first row and from the middle
    half = pages - pages // 2
    mid = len(ids) // 2 - 1
    afters = [None] + [ids[i * PAGE - 1] for i in range(1, half)]
    afters += [ids[mid + i * PAGE] for i in range(pages // 2)]
    cursors = [None if a is None else encode_cursor("", [a]) for a in afters]
    row_re = re.compile(r'aria-label="Open record (\d+)"')

    def api_side(key: str):
        def side(cursor: str | None) -> tuple[float, list]:
            url = f"/api/v1/tables/{key}/records?limit={PAGE}"
            if cursor:
                url += f"&cursor={cursor}"
            t0 = time.perf_counter()
            resp = api.get(url, headers=auth)
            body = resp.get_data()
            dt = time.perf_counter() - t0
            if resp.status_code != 200:
                raise AssertionError(f"{url}: {resp.status_code} {body[:200]!r}")
            docs = json.loads(body)["records"]
            return dt, [(d["id"], d["fields"]["email"], len(d["fields"])) for d in docs]

        return side

    def grid_side(key: str):
        query = urlencode({"fields": ",".join(cols[key])})

        def side(cursor: str | None) -> tuple[float, list]:
            url = f"/t/{key}?{query}" + (f"&cursor={cursor}" if cursor else "")
            t0 = time.perf_counter()
            resp = grid.get(url)
            body = resp.get_data(as_text=True)
            dt = time.perf_counter() - t0
            if resp.status_code != 200:
                raise AssertionError(f"{url}: {resp.status_code}")
            return dt, [int(i) for i in row_re.findall(body)]

        return side

    sides = {
        "api_formulas": api_side("customers"),
        "api_twin": api_side("customers_plain"),
        "grid_formulas": grid_side("customers"),
        "grid_twin": grid_side("customers_plain"),
        "api_wide": api_side("customers_wide"),
        "grid_wide": grid_side("customers_wide"),
    }
    lat: dict[str, list[float]] = {k: [] for k in sides}
    order = list(sides)

    def walk(cs: list[str | None], record: bool) -> None:
        for i, cursor in enumerate(cs):
            got = {}
            k = i % len(order)
            for name in order[k:] + order[:k]:  # rotate who goes first
                dt, got[name] = sides[name](cursor)
                if record:
                    lat[name].append(dt)
            ours, twin = got["api_formulas"], got["api_twin"]
            if [r[:2] for r in ours] != [r[:2] for r in twin] or len(ours) != PAGE:
                raise AssertionError("the API pages of the twin tables differ")
            if any(a[2] != b[2] + len(FORMULA_FIELDS) for a, b in zip(ours, twin, strict=True)):
                raise AssertionError("an API page misses formula values")
            if [(a[0], a[2]) for a in ours] != [(a[0], a[2]) for a in got["api_wide"]]:
                raise AssertionError("the API pages of the formulas and wide tables differ")
            if not got["grid_formulas"] == got["grid_twin"] == got["grid_wide"]:
                raise AssertionError("the grid pages of the twin tables differ")
            if len(got["grid_formulas"]) != PAGE:
                raise AssertionError("the grid pages of the twin tables differ")
            if [r[0] for r in got["api_formulas"]] != got["grid_formulas"]:
                raise AssertionError("the API and the grid show different records")

    gc.collect()
    walk(cursors[:warmup] + cursors[half : half + warmup], False)
    gc.collect()
    walk(cursors, True)
    out: dict[str, Any] = {
        "pages": len(lat["api_formulas"]),
        "grid_columns": {k: len(v) for k, v in cols.items()},
    }
    for name, xs in lat.items():
        out[name] = {"p50_ms": _ms(_pct(xs, 50)), "p95_ms": _ms(_pct(xs, 95))}
    for kind in ("api", "grid"):
        a, b, w = lat[f"{kind}_formulas"], lat[f"{kind}_twin"], lat[f"{kind}_wide"]
        out[f"{kind}_ratio_p50"] = round(_pct(a, 50) / _pct(b, 50), 2)
        out[f"{kind}_ratio_p95"] = round(_pct(a, 95) / _pct(b, 95), 2)
        out[f"{kind}_wide_ratio_p50"] = round(_pct(w, 50) / _pct(b, 50), 2)
        out[f"{kind}_ratio_p50_vs_wide"] = round(_pct(a, 50) / _pct(w, 50), 2)
    return out


# --- main ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    parts = set(args.only.split(",")) if args.only else set(PARTS)
    results: dict[str, Any] = {
        "db": args.db,
        "seed": args.seed,
        "old_aggregates": args.old_aggregates,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load(),
    }
    with bench_env(args.db, f"formulas-{args.customers}", args.keep) as env:  # type: ignore[arg-type]
        results["machine"] = env.info
        print(
            f"== {args.db}: {args.customers:,} customers, {args.deals:,} deals, "
            f"{env.info['database']}",
            flush=True,
        )
        results["data"] = load(env, args.customers, args.deals, args.seed)
        for part in PARTS:
            if part not in parts:
                continue
            profiler = cProfile.Profile() if args.profile == part else None
            if profiler:
                profiler.enable()
            if part == "page":
                r = bench_page(env, args.pages, args.warmup)
                print(
                    f"  page of {PAGE} with {r['formula_fields']} formula fields: "
                    f"p50 {r['formulas']['p50_ms']} ms p95 {r['formulas']['p95_ms']} ms; "
                    f"twin p50 {r['twin']['p50_ms']} ms p95 {r['twin']['p95_ms']} ms; "
                    f"DBA's SQL for the same values p50 {r['dba']['p50_ms']} ms; "
                    f"ratio p50 {r['ratio_p50_vs_twin']} p95 {r['ratio_p95_vs_twin']}; "
                    f"20 ordinary fields instead (wide) p50 {r['wide']['p50_ms']} ms, "
                    f"wide / twin {r['ratio_p50_wide_vs_twin']}, formulas / wide "
                    f"{r['ratio_p50_vs_wide']}; "
                    f"sql cache {r['sql_cache']}, checks {r['formula_checks_while_measuring']}",
                    flush=True,
                )
            elif part == "aggregate":
                r = bench_aggregate(env, args.runs, min(args.warmup, 3), args.threshold)
                print(
                    f"  filter+sort by won_total ({r['matching_customers']:,} match): "
                    f"ours p50 {r['ours']['p50_ms']} ms p95 {r['ours']['p95_ms']} ms, "
                    f"hand p50 {r['hand']['p50_ms']} ms p95 {r['hand']['p95_ms']} ms, "
                    f"ratio p50 {r['ratio_p50_ours']} p95 {r['ratio_p95_ours']}",
                    flush=True,
                )
            elif part == "web":
                r = bench_web(env, args.pages, args.warmup)
                print(
                    f"  API list of {PAGE}: p50 {r['api_formulas']['p50_ms']} ms, twin "
                    f"{r['api_twin']['p50_ms']} ms, ratio {r['api_ratio_p50']}; grid page: p50 "
                    f"{r['grid_formulas']['p50_ms']} ms, twin {r['grid_twin']['p50_ms']} ms, "
                    f"ratio {r['grid_ratio_p50']}; with 20 ordinary fields instead: API "
                    f"{r['api_wide']['p50_ms']} ms ({r['api_wide_ratio_p50']}x twin), grid "
                    f"{r['grid_wide']['p50_ms']} ms ({r['grid_wide_ratio_p50']}x twin)",
                    flush=True,
                )
            else:
                r = bench_interpreter(env, args.evaluations, args.repeats, args.seed)
                print(
                    f"  interpreter ({r['nodes']} nodes): "
                    f"{r['no_context']['per_s_p50']:,} evaluations/s "
                    f"({r['shared_context']['per_s_p50']:,}/s with a shared EvalContext)",
                    flush=True,
                )
            if profiler:
                profiler.disable()
                where = argparse.Namespace(db=args.db, rows=args.customers)
                _dump_profile(profiler, where, f"formulas-{part}")
            r["load_average_after"] = _load()
            results[part] = r
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def summary(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"### {results['db']}: {results['data']['customers']:,} customers, "
        f"{results['data']['deals']:,} deals ({m['database']})",
        "",
        "| measure | p50 | p95 |",
        "| --- | ---: | ---: |",
    ]
    if "page" in results:
        r = results["page"]
        for name, label in (
            ("formulas", f"page of {PAGE}, {r['formula_fields']} formula fields, ms"),
            ("twin", f"page of {PAGE}, twin table without them, ms"),
            ("wide", f"page of {PAGE}, twin with 20 ordinary fields of the same values, ms"),
            ("stored_only", f"page of {PAGE}, same table, `fields=` stored only, ms"),
            ("dba", f"page of {PAGE}, hand-written SQL computing the same 20 values, ms"),
        ):
            lines.append(f"| {label} | {r[name]['p50_ms']:.2f} | {r[name]['p95_ms']:.2f} |")
        lines.append(f"| ratio wide / twin | {r['ratio_p50_wide_vs_twin']:.2f} | |")
        for base in ("twin", "wide", "dba"):
            lines.append(
                f"| ratio formulas / {base} | {r[f'ratio_p50_vs_{base}']:.2f} "
                f"| {r[f'ratio_p95_vs_{base}']:.2f} |"
            )
        j = r.get("db_json_ms")
        if j:
            lines.append(
                f"| PostgreSQL writing the JSON itself: formulas {j['json:customers']:.3f}, "
                f"twin {j['json:customers_plain']:.3f} ms (rows: {j['rows:customers']:.3f}, "
                f"{j['rows:customers_plain']:.3f}) | ratio {j['json_ratio']:.2f} "
                f"(rows {j['rows_ratio']:.2f}) | |"
            )
        for stage, x in r["stages_ms"].items():
            lines.append(
                f"| stage `{stage}` (p50): formulas {x['formulas']:.3f}, twin {x['twin']:.3f} "
                f"ms, extra {x['extra']:.3f} ms | ratio {x['ratio']:.2f} | |"
            )
    if "aggregate" in results:
        r = results["aggregate"]
        for name, label in (
            ("ours", "`won_total > N`, sort `-won_total`, all fields, ms"),
            ("ours_fields", "the same, `fields=` stored + won_total, ms"),
            ("hand", "hand-written GROUP BY derived table, ms"),
        ):
            lines.append(f"| {label} | {r[name]['p50_ms']:.1f} | {r[name]['p95_ms']:.1f} |")
        lines.append(
            f"| ratio ours / hand | {r['ratio_p50_ours']:.2f} | {r['ratio_p95_ours']:.2f} |"
        )
    if "interpreter" in results:
        r = results["interpreter"]
        lines.append(
            f"| interpreter, {r['nodes']}-node formula, evaluations/s (wall; per CPU second) | "
            f"{r['no_context']['per_s_p50']:,}; {r['no_context']['per_cpu_s_p50']:,} | |"
        )
    if "web" in results:
        r = results["web"]
        for kind, label in (("api", "API list of 50 (JSON)"), ("grid", "grid page, every column")):
            names = {"formulas": "20 formula fields", "twin": "twin", "wide": "wide"}
            for side, name in names.items():
                x = r[f"{kind}_{side}"]
                lines.append(f"| {label}, {name}, ms | {x['p50_ms']:.2f} | {x['p95_ms']:.2f} |")
            lines.append(
                f"| ratio {label} formulas / twin | {r[f'{kind}_ratio_p50']:.2f} "
                f"| {r[f'{kind}_ratio_p95']:.2f} |"
            )
            lines.append(
                f"| ratio {label} wide / twin; formulas / wide | "
                f"{r[f'{kind}_wide_ratio_p50']:.2f}; {r[f'{kind}_ratio_p50_vs_wide']:.2f} | |"
            )
    lines += [
        "",
        f"load average (1/5/15 min) at start {results['load_average_at_start']}, "
        f"after each part {[results[k]['load_average_after'] for k in PARTS if k in results]}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Formula benchmarks")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], required=True)
    ap.add_argument("--customers", type=int, default=None, help="customers (100,000)")
    ap.add_argument("--deals", type=int, default=None, help="deals (1,000,000)")
    ap.add_argument("--pages", type=int, default=200, help="pages of 50 measured")
    ap.add_argument("--warmup", type=int, default=20, help="pages read before measuring")
    ap.add_argument("--runs", type=int, default=15, help="aggregate list calls measured")
    ap.add_argument("--threshold", type=int, default=50_000, help="won_total > threshold")
    ap.add_argument("--evaluations", type=int, default=200_000, help="interpreter calls per run")
    ap.add_argument("--repeats", type=int, default=7, help="interpreter runs")
    ap.add_argument("--only", help="comma list of parts: page,aggregate,interpreter,web")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 10,000 customers")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--profile", choices=list(PARTS))
    ap.add_argument(
        "--old-aggregates",
        action="store_true",
        help="for comparison: filters and sorts by aggregates compiled as before 07c1519 "
        "(correlated subqueries, and formula sorts read in two segments)",
    )
    args = ap.parse_args(argv)
    if args.old_aggregates:
        from cubebase.formula.to_sql import SqlCompiler

        SqlCompiler._groupable = lambda self, n, outer: False  # type: ignore[method-assign]
        from cubebase.platform.records import plans, reading

        plans.computed_key = reading.computed_key = lambda key: False
    if args.quick:
        args.customers = args.customers or 10_000
        args.deals = args.deals or args.customers * 10
        args.pages, args.warmup = min(args.pages, 40), min(args.warmup, 5)
        args.runs, args.evaluations, args.repeats = min(args.runs, 5), 50_000, 3
    args.customers = args.customers or 100_000
    args.deals = args.deals or 1_000_000
    results = run(args)
    old = "-old-aggregates" if args.old_aggregates else ""
    write_results(f"formulas-{args.db}-{args.customers}{old}", results, summary(results))


if __name__ == "__main__":
    sys.exit(main())
