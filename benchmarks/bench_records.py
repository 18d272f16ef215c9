"""Records service vs. hand-written SQLAlchemy Core, on the same tables.

    python -m benchmarks.bench_records --db sqlite --rows 1000000
    python -m benchmarks.bench_records --db postgresql --rows 1000000
    python -m benchmarks.bench_records --db sqlite --quick          # a smoke run

1. Bulk insert: ``RecordsService.bulk_create`` in chunks (one call and one
   transaction per chunk, as an importer does) into ``customers``, against a
   Core ``insert(table)`` executemany of the same dicts into ``customers_dba``, a
   table created the same way (same columns, indexes and foreign key). Chunks
   alternate which side goes first, so both see tables of the same size.
2. Keyset paging on ``customers`` (the table the records service filled): our
   ``records.list(where=..., sort=..., cursor=...)`` against the keyset query a
   DBA writes, page after page, both reading the same pages (checked). Only the
   database call and the conversion of the rows the endpoint needs are timed:
   ``list()`` on one side, ``execute`` + fetch into dicts on the other.

PostgreSQL runs in a schema of its own (created, and dropped at the end); SQLite
in a file under benchmarks/data/ (deleted at the end). Results go to
benchmarks/results/ as JSON, and a summary is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform as pyplatform
import pstats
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.listing import Condition, encode_cursor
from cubebase.platform.users import find_user_id, load_actor

from . import generate

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
DEFAULT_PG_URL = "postgresql+psycopg://127.0.0.1:5432/test"
PAGE = 50


# --- environment ---------------------------------------------------------------


@dataclass
class Env:
    db: str
    platform: Platform
    admin: Actor
    info: dict[str, Any] = field(default_factory=dict)


@contextmanager
def bench_env(db: str, rows: int, keep: bool, name: str = "bench") -> Iterator[Env]:
    """A fresh, initialised platform on a private database (a schema of its own on
    PostgreSQL, a file of its own on SQLite, so benchmarks can run side by side);
    removed afterwards unless ``keep``."""
    DATA.mkdir(parents=True, exist_ok=True)
    cleanup: Callable[[], None]
    if db == "sqlite":
        path = DATA / f"{name}-{rows}-{uuid.uuid4().hex[:8]}.sqlite"
        url = f"sqlite:///{path}"

        def cleanup() -> None:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)

    else:
        base = sa.engine.make_url(os.environ.get("CUBEBASE_BENCH_POSTGRES_URL", DEFAULT_PG_URL))
        schema = f"cb_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

        def cleanup() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    platform = Platform(Config(database_url=url, data_dir=DATA))
    try:
        init_platform(platform, admin_password="bench-admin-password")
        with platform.session() as s:
            admin_actor = load_actor(platform, s, find_user_id(platform, s, "admin@example.com"))
        env = Env(db, platform, admin_actor)
        env.info = machine_info(platform)
        if db == "postgresql":
            env.info["postgres_schema"] = schema
        yield env
    finally:
        platform.dispose()
        if keep:
            print(f"kept the database: {url}")
        else:
            cleanup()


def machine_info(platform: Platform) -> dict[str, Any]:
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
            mem_gb = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    with platform.engine.connect() as conn:
        if platform.dialect == "postgresql":
            server = conn.execute(sa.text("SHOW server_version")).scalar()
        else:
            server = sqlite3.sqlite_version
    import psycopg

    return {
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "cpu": _cpu_model(),
        "python": pyplatform.python_version(),
        "sqlalchemy": sa.__version__,
        "psycopg": psycopg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "database": f"{platform.dialect} {server}",
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def create_tables(env: Env) -> tuple[list[int], str, str]:
    """regions (filled), customers and customers_dba (same shape, empty)."""
    p = env.platform
    with p.schema_editor() as ed:
        ed.create_table(
            "regions", "Regions", fields=[{"key": "name", "type": "text", "unique": True}]
        )
        ed.create_table("customers", "Customers", fields=generate.CUSTOMER_FIELDS)
        ed.create_table("customers_dba", "Customers (DBA)", fields=generate.CUSTOMER_FIELDS)
    with p.session() as s, s.begin():
        region_ids = p.records(s, env.admin).bulk_create(
            "regions", [{"name": n} for n in generate.region_names()]
        )
        schema = p.schema(s)
        return (
            region_ids,
            schema.table("customers").sql.name,
            schema.table("customers_dba").sql.name,
        )


# --- bulk insert -------------------------------------------------------------


def bench_insert(env: Env, rows: int, chunk: int, seed: int, region_ids: list[int]) -> dict:
    p = env.platform
    with p.session() as s:
        schema = p.schema(s)
    dba = schema.table("customers_dba")
    columns = {f.key: f.column_name for f in dba.fields.values() if not f.ftype.system_column}
    columns = {k: v for k, v in columns.items() if v is not None}
    insert_dba = sa.insert(dba.sql)
    user = env.admin.user_id

    def ours(batch: list[dict]) -> float:
        t0 = time.perf_counter()
        with p.session(write=True) as s, s.begin():  # as an import job does
            p.records(s, env.admin).bulk_create("customers", batch)
        return time.perf_counter() - t0

    def hand(batch: list[dict]) -> float:
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        db_rows = []
        for r in batch:
            row = {
                "version": 1,
                "created_at": now,
                "created_by": user,
                "updated_at": now,
                "updated_by": user,
            }
            for k, v in r.items():
                row[columns[k]] = v
            db_rows.append(row)
        with p.engine.begin() as conn:
            conn.execute(insert_dba, db_rows)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"ours": [], "hand": []}
    done = 0
    started = time.perf_counter()
    for k, batch in enumerate(generate.chunks(rows, chunk, seed=seed, region_ids=region_ids)):
        gc.collect()
        order = [("ours", ours), ("hand", hand)]
        if k % 2:
            order.reverse()
        for name, fn in order:
            times[name].append(fn(batch))
        done += len(batch)
        if k % 10 == 9 or done == rows:
            print(
                f"  inserted {done:>9,} rows each  "
                f"(ours {done / sum(times['ours']):>8,.0f} rows/s, "
                f"hand {done / sum(times['hand']):>8,.0f} rows/s, "
                f"{time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    out = {"rows": rows, "chunk": chunk}
    for name, ts in times.items():
        rates = [len_ / t for len_, t in zip(_chunk_sizes(rows, chunk), ts, strict=True)]
        out[name] = {
            "seconds": round(sum(ts), 3),
            "rows_per_s": round(rows / sum(ts)),
            "chunk_rows_per_s_p50": round(statistics.median(rates)),
            "first_chunk_rows_per_s": round(rates[0]),
            "last_chunk_rows_per_s": round(rates[-1]),
        }
    out["ratio"] = round(out["hand"]["rows_per_s"] / out["ours"]["rows_per_s"], 2)
    return out


def _chunk_sizes(rows: int, chunk: int) -> list[int]:
    return [min(chunk, rows - s) for s in range(0, rows, chunk)]


def analyze(env: Env, tables: list[str]) -> None:
    """Fresh statistics (and, on PostgreSQL, a vacuumed visibility map)."""
    t0 = time.perf_counter()
    if env.db == "postgresql":
        with env.platform.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for t in [*tables, "cb_history"]:
                conn.execute(sa.text(f'VACUUM ANALYZE "{t}"'))
    else:
        with env.platform.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with env.platform.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"  analyzed in {time.perf_counter() - t0:.1f}s", flush=True)


# --- paging -----------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    sort: str  # a field key, ascending
    where: dict[str, Any]  # field key -> value (equality)
    pages: int
    note: str = ""


def bench_paging(env: Env, sc: Scenario, warmup: int) -> dict:
    """Walk ``sc.pages`` pages (half from the first page, half from the middle of the
    result), alternating which side reads a page first."""
    p = env.platform
    session = p.session()
    svc = p.records(session, env.admin)  # opens the transaction (schema version read)
    table = svc.table("customers")
    t = table.sql
    sort_f = table.fields[sc.sort]
    sort_col = t.c[sort_f.column_name]
    cols = [t.c.id, t.c.version, t.c.deleted_at]
    cols += [t.c[f.column_name] for f in table.data_fields() if f.column_name is not None]
    base = [t.c.deleted_at.is_(None), sort_col.is_not(None)]
    params: dict[str, Any] = {}
    for i, (k, v) in enumerate(sc.where.items()):
        base.append(t.c[table.fields[k].column_name] == sa.bindparam(f"w{i}"))
        params[f"w{i}"] = v
    # The DBA's keyset query. ``sort IS NOT NULL``: SQLite sorts blanks first, and a row
    # comparison with a blank is never true, so a DBA keeps them out of this walk.
    # One extra row tells whether there is a next page (ours reads one extra too).
    first_q = sa.select(*cols).where(*base).order_by(sort_col, t.c.id).limit(PAGE + 1)
    next_q = (
        sa.select(*cols)
        .where(*base, sa.tuple_(sort_col, t.c.id) > _after(sort_col, t.c.id))
        .order_by(sort_col, t.c.id)
        .limit(PAGE + 1)
    )
    where = [Condition(k, "eq", v) for k, v in sc.where.items()]
    conn = p.engine.connect()
    conn.execute(sa.text("SELECT 1"))  # open the transaction, as the session's is

    def ours(cursor: str | None):
        t0 = time.perf_counter()
        page = svc.list("customers", where=where, sort=sc.sort, limit=PAGE, cursor=cursor)
        dt = time.perf_counter() - t0
        return dt, [r.id for r in page.records], page.next_cursor

    def hand(after: tuple | None):
        t0 = time.perf_counter()
        if after is None:
            result = conn.execute(first_q, params)
        else:
            result = conn.execute(next_q, {**params, "v": after[0], "i": after[1]})
        rows = [r._asdict() for r in result]
        dt = time.perf_counter() - t0
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        last = rows[-1]
        return dt, [r["id"] for r in rows], (last[sort_f.column_name], last["id"]) if more else None

    last_cursors: dict[str, Any] = {}

    def walk(start: tuple | None, n: int, record: dict[str, list[float]] | None) -> None:
        cursor = encode_cursor(sc.sort, [*start]) if start is not None else None
        after = start
        for i in range(n):
            if i % 2:
                h = hand(after)
                o = ours(cursor)
            else:
                o = ours(cursor)
                h = hand(after)
            if o[1] != h[1]:
                raise AssertionError(f"{sc.name}: page {i} differs between ours and hand-written")
            if record is not None:
                record["ours"].append(o[0])
                record["hand"].append(h[0])
            cursor, after = o[2], h[2]
            if cursor is not None:
                last_cursors["ours"], last_cursors["hand"] = cursor, after
            if cursor is None or after is None:
                if (cursor is None) != (after is None):
                    raise AssertionError(f"{sc.name}: one side ended before the other")
                break

    middle = conn.execute(
        sa.select(sort_col, t.c.id)
        .where(*base)
        .order_by(sort_col, t.c.id)
        .offset(sa.bindparam("off"))
        .limit(1),
        {**params, "off": _count(conn, t, base, params) // 2},
    ).one()
    gc.collect()
    walk(None, warmup, None)
    walk(tuple(middle), warmup, None)
    lat: dict[str, list[float]] = {"ours": [], "hand": []}
    gc.collect()
    walk(None, sc.pages - sc.pages // 2, lat)
    walk(tuple(middle), sc.pages // 2, lat)
    next_cursor, next_after = last_cursors["ours"], last_cursors["hand"]
    plans = explain(env, {"ours": lambda: ours(next_cursor), "hand": lambda: hand(next_after)})
    request = _request_overhead(env)
    conn.close()
    session.close()
    out: dict[str, Any] = {"pages": len(lat["ours"]), "note": sc.note}
    for name, xs in lat.items():
        out[name] = {"p50_ms": _ms(_pct(xs, 50)), "p95_ms": _ms(_pct(xs, 95))}
    out["ratio_p50"] = round(_pct(lat["ours"], 50) / _pct(lat["hand"], 50), 2)
    out["ratio_p95"] = round(_pct(lat["ours"], 95) / _pct(lat["hand"], 95), 2)
    out["request_setup_p50_ms"] = _ms(request)
    out["plans"] = plans
    return out


def _after(sort_col, id_col) -> sa.Tuple:
    return sa.tuple_(sa.bindparam("v", type_=sort_col.type), sa.bindparam("i", type_=id_col.type))


def _count(conn, t, base, params) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(t).where(*base), params).scalar()


def _request_overhead(env: Env) -> float:
    """What every request pays before ``list``: a session and a records service
    (which reads the schema version)."""
    xs = []
    for _ in range(50):
        t0 = time.perf_counter()
        with env.platform.session() as s:
            env.platform.records(s, env.admin)
        xs.append(time.perf_counter() - t0)
    return _pct(xs[10:], 50)


def explain(env: Env, calls: dict[str, Callable[[], Any]]) -> dict[str, list[str]]:
    """The plans the database chose for each side's next-page query: every statement
    the call sends is caught on its way to the driver and explained with its values."""
    out: dict[str, list[str]] = {}
    for name, call in calls.items():
        sent: list[tuple[str, Any]] = []

        def catch(conn, cursor, statement, parameters, context, executemany, sent=sent):
            if statement.lstrip().upper().startswith("SELECT") and " LIMIT " in statement:
                sent.append((statement, parameters))

        sa.event.listen(env.platform.engine, "before_cursor_execute", catch)
        try:
            call()
        finally:
            sa.event.remove(env.platform.engine, "before_cursor_execute", catch)
        prefix = "EXPLAIN " if env.db == "postgresql" else "EXPLAIN QUERY PLAN "
        plans = []
        with env.platform.engine.connect() as conn:
            for statement, parameters in sent:
                rows = conn.exec_driver_sql(prefix + statement, parameters).all()
                plans.append(" | ".join(str(r[-1]).strip() for r in rows))
        out[name] = plans
    return out


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _ms(x: float) -> float:
    return round(x * 1000, 3)


def add_index(env: Env, table: str, name: str, columns: list[str]) -> float:
    """A plain index a DBA adds for a report (the schema editor has no API for
    indexes on non-unique fields yet)."""
    t0 = time.perf_counter()
    with env.platform.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE INDEX "{name}" ON "{table}" ({", ".join(columns)})')
    analyze(env, [table])
    return round(time.perf_counter() - t0, 1)


# --- main ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    results: dict[str, Any] = {
        "db": args.db,
        "rows": args.rows,
        "seed": args.seed,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load(),
    }
    with bench_env(args.db, args.rows, args.keep) as env:
        results["machine"] = env.info
        print(f"== {args.db}: {args.rows:,} rows, {env.info['database']}", flush=True)
        region_ids, ours_table, dba_table = create_tables(env)
        profiler = cProfile.Profile() if args.profile == "insert" else None
        if profiler:
            profiler.enable()
        results["insert"] = bench_insert(env, args.rows, args.chunk, args.seed, region_ids)
        results["insert"]["load_average_after"] = _load()
        if profiler:
            profiler.disable()
            _dump_profile(profiler, args, "insert")
        analyze(env, [ours_table, dba_table])
        p = env.platform
        with p.session() as s:
            table = p.schema(s).table("customers")
        col = {k: f.column_name for k, f in table.fields.items()}
        scenarios = [
            Scenario(
                "sort by email (unique index)",
                "email",
                {},
                args.pages,
                "the unique field's partial index (deleted_at IS NULL) serves the order",
            ),
            Scenario(
                "stage = customer, sort by amount, no index",
                "amount",
                {"stage": "customer"},
                max(4, args.pages // 20),
                "no index on amount: every page scans and sorts the matching rows",
            ),
            Scenario(
                "stage = customer, sort by amount, index (stage, amount, id)",
                "amount",
                {"stage": "customer"},
                args.pages,
                "index added by hand for the benchmark",
            ),
        ]
        results["paging"] = {}
        for sc in scenarios:
            if "index (stage" in sc.name:
                secs = add_index(
                    env, ours_table, "bench_ix_stage_amount", [col["stage"], col["amount"], "id"]
                )
                print(f"  created index (stage, amount, id) in {secs}s", flush=True)
            profiler = cProfile.Profile() if args.profile == "list" else None
            if profiler:
                profiler.enable()
            r = bench_paging(env, sc, warmup=min(args.warmup, sc.pages))
            if profiler:
                profiler.disable()
                _dump_profile(profiler, args, "list-" + sc.sort)
            r["load_average_after"] = _load()
            results["paging"][sc.name] = r
            print(
                f"  {sc.name}: ours p50 {r['ours']['p50_ms']} ms p95 {r['ours']['p95_ms']} ms, "
                f"hand p50 {r['hand']['p50_ms']} ms p95 {r['hand']['p95_ms']} ms, "
                f"ratio p50 {r['ratio_p50']} p95 {r['ratio_p95']}",
                flush=True,
            )
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_average_at_end"] = _load()
    return results


def _load() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine skews timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _dump_profile(profiler: cProfile.Profile, args, what: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"profile-{args.db}-{args.rows}-{what}.pstats"
    profiler.dump_stats(path)
    with open(path.with_suffix(".txt"), "w") as f:
        pstats.Stats(profiler, stream=f).sort_stats("cumulative").print_stats(60)
    print(f"  profile written to {path}", flush=True)


def summary(results: dict) -> str:
    ins = results["insert"]
    lines = [
        f"### {results['db']}, {results['rows']:,} rows ({results['machine']['database']})",
        "",
        f"load average (1/5/15 min) at start {results['load_average_at_start']}, "
        f"at end {results['load_average_at_end']}",
        "",
        "| measure | ours | hand-written | ours slower by (×) |",
        "| --- | ---: | ---: | ---: |",
        f"| bulk insert, rows/s (chunks of {ins['chunk']:,}) | {ins['ours']['rows_per_s']:,} "
        f"| {ins['hand']['rows_per_s']:,} | {ins['ratio']:.2f} |",
    ]
    for name, r in results["paging"].items():
        for q in ("p50", "p95"):
            lines.append(
                f"| page of {PAGE}, {name}, {q} ms | {r['ours'][f'{q}_ms']:.2f} "
                f"| {r['hand'][f'{q}_ms']:.2f} | {r[f'ratio_{q}']:.2f} |"
            )
    return "\n".join(lines)


def write_results(name: str, results: dict, summary_text: str | None = None) -> Path:
    """Save a run's figures as ``benchmarks/results/<name>-<UTC time>.json`` and print
    its summary table (every benchmark reports the same way)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    if summary_text is not None:
        print()
        print(summary_text)
        print()
    print(f"results: {path}")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Records service vs. hand-written Core")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], required=True)
    ap.add_argument("--rows", type=int, default=None, help="records to insert (1,000,000)")
    ap.add_argument("--chunk", type=int, default=10_000, help="records per bulk_create call")
    ap.add_argument("--pages", type=int, default=200, help="pages of 50 measured per scenario")
    ap.add_argument("--warmup", type=int, default=20, help="pages read before measuring")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20,000 rows, 40 pages")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--profile", choices=["insert", "list"], help="cProfile one part")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 20_000
        args.pages, args.warmup = min(args.pages, 40), min(args.warmup, 5)
    args.rows = args.rows or 1_000_000
    results = run(args)
    write_results(f"{args.db}-{args.rows}", results, summary(results))


if __name__ == "__main__":
    sys.exit(main())
