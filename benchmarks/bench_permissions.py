"""Row permissions: the records service under a read rule vs. the DBA's SQL.

    python -m benchmarks.bench_permissions --db postgresql            # 1,000,000 customers
    python -m benchmarks.bench_permissions --db sqlite --rows 100000
    python -m benchmarks.bench_permissions --db sqlite --quick        # a smoke run: 20,000

The organisation: a region tree (1 root -> 6 areas -> 36 regions), 200
salespeople, 6 regional managers (one per area, ``users.region`` = the area), a
manager of one leaf region and a director. Customers are the generator's rows (``generate.py``) with their region
one of the 36 leaf regions and an ``account_manager`` (a link to ``users``) spread
uniformly over the salespeople. The read rules of ``customers``::

    salesperson       account_manager = USER()
    regional_manager  ISUNDER(region, USER().region)
    director          TRUE

Measured per role, on the same physical table:

1. First page (50, sorted by name) and the next page with its cursor:
   ``platform.records(session, load_actor(...)).list("customers", sort="name",
   limit=50)`` against the Core query a DBA writes for the same question
   (``WHERE deleted_at IS NULL AND <rule> ORDER BY name, id LIMIT 51``; for the
   regional manager a recursive CTE over regions, seeded from the user's row).
   Both sides read the same pages (checked). Also timed: our statement executed
   bare on a Core connection (what our SQL costs without our Python), and a whole
   request (a session, ``load_actor``, a records service, the first page).
2. ``count(cap=10000)`` against the exact ``count()``, and the DBA's equivalents.

On PostgreSQL the managers are measured twice: against the DBA's plain
``region IN (SELECT id FROM subtree)`` and against ``region = ANY(ARRAY(...))``
(what a DBA writes after seeing the first one's parallel plan). Last, the index a
DBA adds for "my customers by name", ``(account_manager, name, id)``, is created by
hand and the salesperson measured again.

EXPLAIN (ANALYZE, BUFFERS on PostgreSQL; QUERY PLAN on SQLite) of every statement
each side sent goes into the JSON results in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.platform.users import add_role, create_user, load_actor

from . import generate
from .bench_records import Env, _load, _pct, write_results
from .bench_records import bench_env as records_bench_env

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
DEFAULT_PG_URL = "postgresql+psycopg://127.0.0.1:5432/test"
PAGE = 50
CAP = 10_000
AREAS, REGIONS_PER_AREA, SALESPEOPLE = 6, 6, 200

RULES = [
    {"role": "salesperson", "read": "account_manager = USER()"},
    {"role": "regional_manager", "read": "ISUNDER(region, USER().region)"},
    {"role": "director", "read": "TRUE"},
]


# --- environment ---------------------------------------------------------------


def bench_env(db: str, rows: int, keep: bool) -> Iterator[Env]:
    return records_bench_env(db, rows, keep, name="perm")


# --- schema and data -----------------------------------------------------------


def customer_fields() -> list[dict[str, Any]]:
    """The generator's customers, ``name`` indexed (what a DBA adds for a list sorted
    by name), and the account manager (a link: indexed, as every link is)."""
    fields = [dict(f) for f in generate.CUSTOMER_FIELDS]
    for f in fields:
        if f["key"] == "name":
            f["indexed"] = True
    return [*fields, {"key": "account_manager", "type": "link", "to": "users"}]


def build_org(env: Env, seed: int) -> dict[str, Any]:
    """Regions tree, roles, users, the customers table and its read rules."""
    p = env.platform
    with p.schema_editor() as ed:
        ed.create_table("regions", "Regions", fields=[{"key": "name", "type": "text"}])
        ed.add_field("regions", {"key": "parent", "type": "link", "to": "regions"})
        ed.add_field("users", {"key": "region", "type": "link", "to": "regions"})
        for role in ("salesperson", "regional_manager", "director"):
            add_role(ed, role)
        ed.create_table("customers", "Customers", fields=customer_fields())
        ed.set_permissions("customers", RULES)
    system = Actor.system_actor()
    org: dict[str, Any] = {}
    with p.session(write=True) as s, s.begin():
        svc = p.records(s, system)
        (root,) = svc.bulk_create("regions", [{"name": "World"}])
        areas = svc.bulk_create(
            "regions", [{"name": f"Area {a + 1}", "parent": root} for a in range(AREAS)]
        )
        leaves = svc.bulk_create(
            "regions",
            [
                {"name": f"Region {a + 1}.{r + 1}", "parent": area}
                for a, area in enumerate(areas)
                for r in range(REGIONS_PER_AREA)
            ],
        )
        sales = [
            create_user(p, s, f"sales{i:03d}@example.com", roles=["salesperson"])
            for i in range(SALESPEOPLE)
        ]
        managers = []
        for a, area in enumerate(areas):
            uid = create_user(p, s, f"manager{a + 1}@example.com", roles=["regional_manager"])
            p.records(s, system).update("users", uid, {"region": area})
            managers.append(uid)
        # a manager of one leaf region: a small subtree (1/36 of the customers)
        uid = create_user(p, s, "manager.leaf@example.com", roles=["regional_manager"])
        p.records(s, system).update("users", uid, {"region": leaves[0]})
        org["leaf_manager"] = uid
        director = create_user(p, s, "director@example.com", roles=["director"])
    org.update(root=root, areas=areas, leaves=leaves, sales=sales, managers=managers)
    org["director"] = director
    return org


def customer_chunks(rows: int, chunk: int, seed: int, org: dict) -> Iterator[list[dict]]:
    """The generator's rows in the leaf regions, each with an account manager (drawn
    from a second stream, so the generator's own rows stay those of ``seed``)."""
    rng = random.Random(seed + 1)
    sales = org["sales"]
    for batch in generate.chunks(rows, chunk, seed=seed, region_ids=org["leaves"]):
        for r in batch:
            r["account_manager"] = rng.choice(sales)
        yield batch


def load_customers(env: Env, rows: int, chunk: int, seed: int, org: dict) -> dict:
    """``bulk_create`` through the system actor, one transaction per chunk."""
    p = env.platform
    system = Actor.system_actor()
    started = time.perf_counter()
    busy = 0.0
    done = 0
    for k, batch in enumerate(customer_chunks(rows, chunk, seed, org)):
        t0 = time.perf_counter()
        with p.session(write=True) as s, s.begin():
            p.records(s, system).bulk_create("customers", batch)
        busy += time.perf_counter() - t0
        done += len(batch)
        if k % 10 == 9 or done == rows:
            print(
                f"  loaded {done:>9,} customers ({done / busy:,.0f} rows/s, "
                f"{time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    return {
        "rows": rows,
        "chunk": chunk,
        "seconds": round(busy, 1),
        "rows_per_s": round(rows / busy),
    }


def analyze(env: Env) -> float:
    t0 = time.perf_counter()
    p = env.platform
    with p.session() as s:
        schema = p.schema(s)
        names = [schema.table(k).sql.name for k in ("customers", "regions", "users")]
    if env.db == "postgresql":
        with p.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for t in [*names, "cb_history"]:
                conn.execute(sa.text(f'VACUUM ANALYZE "{t}"'))
    else:
        with p.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with p.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return round(time.perf_counter() - t0, 1)


def add_index(env: Env, dba: Dba) -> float:
    """The index a DBA adds for "my customers by name" (the schema editor indexes
    single fields only): (account_manager, name, id)."""
    t0 = time.perf_counter()
    cols = ", ".join([dba.manager.name, dba.name.name, "id"])
    with env.platform.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE INDEX "bench_ix_manager_name" ON "{dba.t.name}" ({cols})')
    analyze(env)
    return round(time.perf_counter() - t0, 1)


# --- the DBA's queries ---------------------------------------------------------


class Dba:
    """The Core queries a DBA writes for each role's question."""

    def __init__(self, env: Env):
        p = env.platform
        with p.session() as s:
            schema = p.schema(s)
        self.table = customers = schema.table("customers")
        t = self.t = customers.sql
        self.cols = [t.c.id, t.c.version, t.c.deleted_at] + [
            t.c[f.column_name] for f in customers.data_fields() if f.column_name is not None
        ]
        self.name = t.c[customers.fields["name"].column_name]
        self.manager = t.c[customers.fields["account_manager"].column_name]
        self.region = t.c[customers.fields["region"].column_name]
        users = schema.table("users")
        regions = schema.table("regions")
        u, r = users.sql, regions.sql
        user_region = u.c[users.fields["region"].column_name]
        parent = r.c[regions.fields["parent"].column_name]
        uid = sa.bindparam("uid", type_=sa.Integer())
        # the user's region and everything below it
        down = (
            sa.select(r.c.id)
            .join(u, user_region == r.c.id)
            .where(u.c.id == uid, u.c.deleted_at.is_(None))
            .cte("subtree", recursive=True)
        )
        child = r.alias("child")
        down = down.union_all(sa.select(child.c.id).join(down, child.c[parent.name] == down.c.id))
        self.rule = {
            "salesperson": [self.manager == uid],
            "regional_manager": [self.region.in_(sa.select(down.c.id))],
            "director": [],
        }
        if env.db == "postgresql":
            # the subtree as an array computed once (an InitPlan), then a filter: what a
            # DBA writes after seeing the semi-join's plan (a parallel Gather Merge)
            subtree = sa.func.array(sa.select(down.c.id).scalar_subquery())
            self.rule["regional_manager_any"] = [self.region == sa.any_(subtree)]

    def conditions(self, role: str) -> list:
        return [self.t.c.deleted_at.is_(None), *self.rule[role]]

    def first(self, role: str) -> sa.Select:
        return (
            sa.select(*self.cols)
            .where(*self.conditions(role))
            .order_by(self.name, self.t.c.id)
            .limit(PAGE + 1)
        )

    def after(self, role: str) -> sa.Select:
        after = sa.tuple_(self.name, self.t.c.id) > sa.tuple_(
            sa.bindparam("v", type_=self.name.type), sa.bindparam("i", type_=sa.Integer())
        )
        return (
            sa.select(*self.cols)
            .where(*self.conditions(role), after)
            .order_by(self.name, self.t.c.id)
            .limit(PAGE + 1)
        )

    def count(self, role: str, cap: int | None) -> sa.Select:
        if cap is None:
            return sa.select(sa.func.count()).select_from(self.t).where(*self.conditions(role))
        inner = sa.select(self.t.c.id).where(*self.conditions(role)).limit(cap + 1)
        return sa.select(sa.func.count()).select_from(inner.subquery())


# --- measuring -----------------------------------------------------------------


class Catch:
    """Every statement sent to the driver while active (for EXPLAIN, and to run our
    own statement bare)."""

    def __init__(self, engine: sa.Engine, table: str):
        self.engine = engine
        self.table = f"FROM {table}"  # statements reading customers
        self.sent: list[tuple[str, Any]] = []

    def _on(self, conn, cursor, statement, parameters, context, executemany):
        if self.table in statement and statement.lstrip()[:4].upper() in ("SELE", "WITH"):
            self.sent.append((statement, parameters))

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._on)


def explain(env: Env, sent: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    out = []
    with env.platform.engine.connect() as conn:
        for statement, parameters in sent:
            if env.db == "postgresql":
                rows = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                ).all()
                plan = [r[0] for r in rows]
            else:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                plan = [str(r[-1]) for r in rows]
            out.append({"sql": statement, "params": _jsonable(parameters), "plan": plan})
    return out


def _jsonable(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {k: str(v) for k, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        return [str(v) for v in parameters]
    return str(parameters)


def _stats(xs: list[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "p50_ms": round(_pct(xs, 50) * 1000, 3),
        "p95_ms": round(_pct(xs, 95) * 1000, 3),
    }


def bench_role(
    env: Env, dba: Dba, role: str, uid: int, iterations: int, count_iterations: int, profile
) -> dict[str, Any]:
    """First and next page, ours and the DBA's, interleaved; then counts."""
    p = env.platform
    with p.session() as session, p.engine.connect() as conn:
        return _bench_role(
            env, dba, role, uid, iterations, count_iterations, profile, session, conn
        )


def _bench_role(
    env: Env, dba: Dba, role, uid, iterations, count_iterations, profile, session, conn
) -> dict[str, Any]:
    p = env.platform
    actor = load_actor(p, session, uid)
    svc = p.records(session, actor)  # opens the transaction (schema version read)
    conn.execute(sa.text("SELECT 1"))  # open the transaction, as the session's is
    first_q, after_q = dba.first(role), dba.after(role)
    name_col = dba.name.name

    def ours_first():
        page = svc.list("customers", sort="name", limit=PAGE)
        return page, [r.id for r in page.records]

    def ours_next(cursor):
        page = svc.list("customers", sort="name", limit=PAGE, cursor=cursor)
        return page, [r.id for r in page.records]

    def hand(stmt, params):
        rows = [r._asdict() for r in conn.execute(stmt, params)]
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        last = (rows[-1][name_col], rows[-1]["id"]) if more else None
        return last, [r["id"] for r in rows]

    # our statements, caught once, to run them bare on the DBA's connection
    with Catch(p.engine, dba.t.name) as c1:
        page1, _ = ours_first()
    with Catch(p.engine, dba.t.name) as c2:
        ours_next(page1.next_cursor)
    bare = {"first": c1.sent, "next": c2.sent}

    def ours_bare(which: str):
        ids = []
        for statement, parameters in bare[which]:
            rows = [r._asdict() for r in conn.exec_driver_sql(statement, parameters)]
            ids.extend(r["id"] for r in rows)
        return ids

    lat: dict[str, list[float]] = {
        k: []
        for k in ("ours_first", "ours_next", "hand_first", "hand_next", "bare_first", "bare_next")
    }

    def one_round(record: bool, k: int) -> None:
        perf = time.perf_counter
        results = {}

        def run_ours():
            t0 = perf()
            page, ids1 = ours_first()
            t1 = perf()
            _, ids2 = ours_next(page.next_cursor)
            t2 = perf()
            results["ours"] = (ids1, ids2)
            return t1 - t0, t2 - t1

        def run_hand():
            t0 = perf()
            last, ids1 = hand(first_q, {"uid": uid})
            t1 = perf()
            _, ids2 = hand(after_q, {"uid": uid, "v": last[0], "i": last[1]})
            t2 = perf()
            results["hand"] = (ids1, ids2)
            return t1 - t0, t2 - t1

        def run_bare():
            t0 = perf()
            ours_bare("first")
            t1 = perf()
            ours_bare("next")
            t2 = perf()
            return t1 - t0, t2 - t1

        order = [("ours", run_ours), ("hand", run_hand), ("bare", run_bare)]
        order = order[k % 3 :] + order[: k % 3]
        for name, fn in order:
            if name == "ours" and profile is not None:
                profile.enable()
                a, b = fn()
                profile.disable()
            else:
                a, b = fn()
            if record:
                lat[f"{name}_first"].append(a)
                lat[f"{name}_next"].append(b)
        if results["ours"] != results["hand"]:
            raise AssertionError(f"{role}: ours and the DBA's pages differ")

    gc.collect()
    for k in range(max(5, iterations // 10)):
        one_round(False, k)
    gc.collect()
    for k in range(iterations):
        one_round(True, k)

    # a whole request: a session, the actor, a records service, the first page
    def request_ours() -> float:
        t0 = time.perf_counter()
        with p.session() as s:
            a = load_actor(p, s, uid)
            p.records(s, a).list("customers", sort="name", limit=PAGE)
        return time.perf_counter() - t0

    def request_hand() -> float:
        t0 = time.perf_counter()
        with p.engine.connect() as c:
            [r._asdict() for r in c.execute(first_q, {"uid": uid})]
        return time.perf_counter() - t0

    req: dict[str, list[float]] = {"ours": [], "hand": []}
    for k in range(iterations // 2 + 10):
        pair = [("ours", request_ours), ("hand", request_hand)]
        if k % 2:
            pair.reverse()
        for name, fn in pair:
            dt = fn()
            if k >= 10:
                req[name].append(dt)

    # counts: capped and exact, ours and the DBA's
    counts: dict[str, Any] = {}
    values: dict[str, int] = {}

    def timed(fn, n):
        xs = []
        for _ in range(n):
            t0 = time.perf_counter()
            v = fn()
            xs.append(time.perf_counter() - t0)
        return v, xs

    count_fns = {
        "ours_capped": lambda: svc.count("customers", cap=CAP),
        "hand_capped": lambda: conn.execute(dba.count(role, CAP), {"uid": uid}).scalar(),
        "ours_exact": lambda: svc.count("customers"),
        "hand_exact": lambda: conn.execute(dba.count(role, None), {"uid": uid}).scalar(),
    }
    for name, fn in count_fns.items():
        fn()  # warm
        n = count_iterations if "capped" in name else max(3, count_iterations // 3)
        values[name], xs = timed(fn, n)
        counts[name] = _stats(xs)
    if (
        values["ours_capped"] != values["hand_capped"]
        or values["ours_exact"] != values["hand_exact"]
    ):
        raise AssertionError(f"{role}: counts differ: {values}")
    counts["values"] = values

    # plans of both sides: first and next page, capped count
    plans: dict[str, Any] = {}
    last, _ = hand(first_q, {"uid": uid})
    with Catch(p.engine, dba.t.name) as c:
        hand(first_q, {"uid": uid})
    plans["hand_first"] = explain(env, c.sent)
    with Catch(p.engine, dba.t.name) as c:
        hand(after_q, {"uid": uid, "v": last[0], "i": last[1]})
    plans["hand_next"] = explain(env, c.sent)
    plans["ours_first"] = explain(env, bare["first"])
    plans["ours_next"] = explain(env, bare["next"])
    with Catch(p.engine, dba.t.name) as c:
        svc.count("customers", cap=CAP)
    plans["ours_capped_count"] = explain(env, c.sent)
    with Catch(p.engine, dba.t.name) as c:
        conn.execute(dba.count(role, CAP), {"uid": uid}).scalar()
    plans["hand_capped_count"] = explain(env, c.sent)

    out: dict[str, Any] = {"user_id": uid, "iterations": iterations}
    out["visible_rows"] = values["hand_exact"]
    for k, xs in lat.items():
        out[k] = _stats(xs)
    for which in ("first", "next"):
        out[f"ratio_{which}_p50"] = round(
            _pct(lat[f"ours_{which}"], 50) / _pct(lat[f"hand_{which}"], 50), 2
        )
        out[f"ratio_{which}_p95"] = round(
            _pct(lat[f"ours_{which}"], 95) / _pct(lat[f"hand_{which}"], 95), 2
        )
    out["request_ours"] = _stats(req["ours"])
    out["request_hand"] = _stats(req["hand"])
    out["counts"] = counts
    out["plans"] = plans
    return out


# --- main ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "db": args.db,
        "rows": args.rows,
        "seed": args.seed,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load(),
    }
    with bench_env(args.db, args.rows, args.keep) as env:
        results["machine"] = env.info
        print(f"== {args.db}: {args.rows:,} customers, {env.info['database']}", flush=True)
        org = build_org(env, args.seed)
        results["load"] = load_customers(env, args.rows, args.chunk, args.seed, org)
        results["load"]["load_average_after"] = _load()
        results["analyze_seconds"] = analyze(env)
        dba = Dba(env)
        sales, manager = org["sales"][0], org["managers"][0]
        # (scenario, the DBA's query for it, the user)
        scenarios = [
            ("salesperson", "salesperson", sales),
            ("regional_manager", "regional_manager", manager),
            ("regional_manager, DBA with = ANY(ARRAY(subtree))", "regional_manager_any", manager),
            ("regional_manager of one leaf region", "regional_manager", org["leaf_manager"]),
            (
                "regional_manager of one leaf region, DBA with = ANY(ARRAY(subtree))",
                "regional_manager_any",
                org["leaf_manager"],
            ),
            ("director", "director", org["director"]),
            ("salesperson, index (account_manager, name, id)", "salesperson", sales),
        ]
        results["scenarios"] = {}
        for name, rule, uid in scenarios:
            if rule not in dba.rule:
                continue
            if "index (" in name:
                results["composite_index_seconds"] = add_index(env, dba)
            profile = cProfile.Profile() if args.profile else None
            r = bench_role(env, dba, rule, uid, args.iterations, args.count_iterations, profile)
            r["dba_query"] = rule
            r["load_average_after"] = _load()
            results["scenarios"][name] = r
            if profile is not None:
                _dump_profile(profile, args, rule)
            print(
                f"  {name} ({r['visible_rows']:,} rows): first page ours "
                f"{r['ours_first']['p50_ms']} / DBA {r['hand_first']['p50_ms']} ms "
                f"(x{r['ratio_first_p50']}), next ours {r['ours_next']['p50_ms']} / DBA "
                f"{r['hand_next']['p50_ms']} ms (x{r['ratio_next_p50']}); our SQL bare "
                f"{r['bare_first']['p50_ms']} / {r['bare_next']['p50_ms']} ms; count capped "
                f"{r['counts']['ours_capped']['p50_ms']} exact "
                f"{r['counts']['ours_exact']['p50_ms']} ms; request ours "
                f"{r['request_ours']['p50_ms']} / DBA {r['request_hand']['p50_ms']} ms; "
                f"load {r['load_average_after']}",
                flush=True,
            )
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_average_at_end"] = _load()
    return results


def _dump_profile(profiler: cProfile.Profile, args, what: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"profile-perm-{args.db}-{args.rows}-{what}.pstats"
    profiler.dump_stats(path)
    with open(path.with_suffix(".txt"), "w") as f:
        pstats.Stats(profiler, stream=f).sort_stats("cumulative").print_stats(50)
        pstats.Stats(profiler, stream=f).sort_stats("tottime").print_stats(30)
    print(f"  profile written to {path}", flush=True)


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"### {results['db']}, {results['rows']:,} customers ({results['machine']['database']})",
        "",
        f"load average (1/5/15 min) at start {results['load_average_at_start']}, "
        f"at end {results['load_average_at_end']}; loaded at "
        f"{results['load']['rows_per_s']:,} rows/s",
        "",
        "| role | rows visible | page | ours p50 | DBA p50 | ratio p50 | ours p95 | DBA p95 "
        "| our SQL bare p50 | capped count p50 | exact count p50 |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for role, r in results["scenarios"].items():
        c = r["counts"]
        for which in ("first", "next"):
            lines.append(
                f"| {role} | {r['visible_rows']:,} | {which} | {r[f'ours_{which}']['p50_ms']:.2f} "
                f"| {r[f'hand_{which}']['p50_ms']:.2f} | {r[f'ratio_{which}_p50']:.2f} "
                f"| {r[f'ours_{which}']['p95_ms']:.2f} | {r[f'hand_{which}']['p95_ms']:.2f} "
                f"| {r[f'bare_{which}']['p50_ms']:.2f} "
                f"| {c['ours_capped']['p50_ms']:.2f} / {c['hand_capped']['p50_ms']:.2f} "
                f"| {c['ours_exact']['p50_ms']:.2f} / {c['hand_exact']['p50_ms']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Row permissions: records service vs. DBA's SQL")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], required=True)
    ap.add_argument("--rows", type=int, default=None, help="customers (1,000,000)")
    ap.add_argument("--chunk", type=int, default=10_000, help="records per bulk_create call")
    ap.add_argument("--iterations", type=int, default=200, help="first+next pages per role")
    ap.add_argument("--count-iterations", type=int, default=15, help="capped counts per role")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20,000 rows")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--profile", action="store_true", help="cProfile our list calls per role")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 20_000
        args.iterations = min(args.iterations, 40)
        args.count_iterations = min(args.count_iterations, 6)
    args.rows = args.rows or 1_000_000
    results = run(args)
    write_results(f"permissions-{args.db}-{args.rows}", results, summary(results))


if __name__ == "__main__":
    sys.exit(main())
