"""Summary reports and the automation schedule sweep vs. the DBA's SQL.

    python -m benchmarks.bench_reports --db sqlite --rows 100000
    python -m benchmarks.bench_reports --db postgresql --rows 1000000
    python -m benchmarks.bench_reports --db sqlite --quick          # a smoke run: 20,000

Data (seeded): ``deals`` (name, owner: a user, indexed; stage, indexed; amount;
closed_on; renewal_on, indexed; status; renewal_notice), ``--salespeople`` users
with the role ``salesperson`` whose read rule is ``owner = USER()``. 30% of the deals
are won, closed over the last three years; 40% of those are ``active`` with a renewal
from 5 days ago to three years ahead. Loaded with Core inserts (loading is not
measured), then ANALYZEd.

1. Reports: "won deals by owner and month of closed_on" (two groups, a date grain,
   count and sum, sorted by the sum) and "deal count by stage", each as the admin and
   as one salesperson (the row rule), three sides interleaved, rotating who goes
   first: ``records.aggregate(...)`` (the query), ``run_report(...)`` (what the report
   page computes: the aggregate, link names, display texts) and the GROUP BY a DBA
   writes on a Core connection. The groups and their figures are checked equal.
2. The schedule sweep of ``DATEDIFF(TODAY(), renewal_on, "days") <= 30 AND status =
   "active"``: finding the due records (the engine's own ``_matching``: one SELECT
   of the ids through the records service's filters) against the DBA's one SELECT of the same ids
   (``renewal_on <= :today + 30``, which the index on renewal_on serves) and against
   the DBA's SELECT with the platform's own expression of the date difference (what
   the paging costs apart from the predicate). Then the whole run of the schedule
   (``run_due`` at its due time; the action ``update: {renewal_notice: 'TODAY()'}``):
   seconds, per record, statements per record, and the DBA's one UPDATE of the same
   ids for scale; afterwards exactly the due records carry the notice (checked).

EXPLAIN (ANALYZE, BUFFERS on PostgreSQL; QUERY PLAN on SQLite) of every statement
each side sent goes into the JSON results (benchmarks/results/reports-*.json).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.platform.records import FormulaFilter
from cubebase.platform.reports import build, run_report
from cubebase.platform.users import add_role, create_user, load_actor
from cubebase.schema_defs.automations import load_automations_text, validate_automations
from cubebase.workflows.automations import install
from cubebase.workflows.automations.engine import AutomationEngine
from cubebase.workflows.models import Automation, AutomationRun

from .bench_formulas import core_insert
from .bench_records import Env, _load, _ms, _pct, analyze, bench_env, write_results

STAGES = ("new", "qualified", "proposal", "won", "lost")
STAGE_WEIGHTS = (30, 15, 10, 30, 15)
STATUSES = ("active", "renewed", "lapsed")
TODAY = date(2026, 11, 23)
DUE_AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # daily 06:00, workspace zone UTC
WHEN = 'DATEDIFF(TODAY(), renewal_on, "days") <= 30 AND status = "active"'

DEAL_FIELDS: list[dict[str, Any]] = [
    {"key": "name", "type": "text"},
    {"key": "owner", "type": "user", "indexed": True},
    {"key": "stage", "type": "select", "options": list(STAGES), "indexed": True},
    {"key": "amount", "type": "currency"},
    {"key": "closed_on", "type": "date"},
    {"key": "renewal_on", "type": "date", "indexed": True},
    {"key": "status", "type": "select", "options": list(STATUSES)},
    {"key": "renewal_notice", "type": "date"},
]

REPORTS: dict[str, dict[str, Any]] = {
    "won by owner and month": {
        "table": "deals",
        "filter": 'stage = "won"',
        "group_by": ["owner", "closed_on:month"],
        "measures": ["count", "sum(amount)"],
        "sort": "-sum(amount)",
    },
    "deal count by stage": {"table": "deals", "group_by": ["stage"], "measures": ["count"]},
}

AUTOMATION = f"""
automations:
  - key: renewal_notice
    table: deals
    on: schedule
    schedule: daily 06:00
    when: '{WHEN}'
    actions:
      - update: {{renewal_notice: 'TODAY()'}}
"""


# --- data ----------------------------------------------------------------------


def deal_rows(n: int, owners: list[int], seed: int):
    rng = random.Random(seed)
    for i in range(n):
        stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        amount = (
            None
            if rng.random() < 0.03
            else Decimal(int(rng.lognormvariate(8.3, 1.1) * 100)).scaleb(-2)
        )
        closed = status = renewal = None
        if stage in ("won", "lost"):
            closed = TODAY - timedelta(days=rng.randint(1, 3 * 365))
        if stage == "won":
            status = rng.choices(STATUSES, (40, 35, 25))[0]
            if status == "active":
                renewal = TODAY + timedelta(days=rng.randint(-5, 3 * 365))
            else:
                renewal = closed + timedelta(days=365)
        yield {
            "name": f"Deal {i + 1}",
            "owner": rng.choice(owners),
            "stage": stage,
            "amount": amount,
            "closed_on": closed,
            "renewal_on": renewal,
            "status": status,
        }


def load(env: Env, rows: int, salespeople: int, seed: int) -> dict[str, Any]:
    p = env.platform
    t0 = time.perf_counter()
    with p.schema_editor() as ed:
        add_role(ed, "salesperson")
        ed.create_table("deals", "Deals", display_field="name", fields=DEAL_FIELDS)
        ed.set_permissions("deals", [{"role": "salesperson", "read": "owner = USER()"}])
    with p.session(write=True) as s, s.begin():
        owners = [
            create_user(p, s, f"sales{i:02d}@example.com", roles=["salesperson"])
            for i in range(salespeople)
        ]
    core_insert(env, "deals", deal_rows(rows, owners, seed))
    with p.session() as s:
        name = p.schema(s).table("deals").sql.name
    analyze(env, [name])
    secs = round(time.perf_counter() - t0, 1)
    print(f"  loaded {rows:,} deals in {secs}s", flush=True)
    return {"deals": rows, "salespeople": salespeople, "load_s": secs, "owners": owners}


# --- instrumentation ------------------------------------------------------------


class Sent:
    """The statements sent through the engine while switched on (not the schema
    version check), for counting and for EXPLAIN."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []
        self.on = False

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)
        return False

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on and "cb_state" not in statement:
            self.statements.append((statement, parameters))


def plans_of(env: Env, conn, call: Callable[[], Any], most: int = 3) -> list[str]:
    """EXPLAIN of the SELECTs ``call`` sends (the first ``most``), with their values."""
    with Sent(env.platform.engine) as sent:
        sent.on = True
        call()
        sent.on = False
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if env.db == "postgresql" else "EXPLAIN QUERY PLAN "
    out = []
    selects = [x for x in sent.statements if x[0].lstrip().upper().startswith("SELECT")]
    for statement, parameters in selects[:most]:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
        out.append(statement + "\n" + "\n".join(str(r[-1]) for r in rows))
    return out


def interleave(sides: dict[str, Callable[[], tuple[float, Any]]], runs: int, warmup: int, check):
    """Each side ``warmup + runs`` times, rotating who goes first; ``check`` compares
    the answers of every round. Latencies (seconds) of the measured rounds per side."""
    lat: dict[str, list[float]] = {k: [] for k in sides}
    order = list(sides)
    gc.collect()
    for i in range(warmup + runs):
        got = {}
        k = i % len(order)
        for name in order[k:] + order[:k]:
            dt, got[name] = sides[name]()
            if i >= warmup:
                lat[name].append(dt)
        check(got)
    return lat


def figures(lat: dict[str, list[float]], base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, xs in lat.items():
        out[name] = {"p50_ms": _ms(_pct(xs, 50)), "p95_ms": _ms(_pct(xs, 95))}
    for name, xs in lat.items():
        if name != base:
            out[f"ratio_p50_{name}"] = round(_pct(xs, 50) / _pct(lat[base], 50), 2)
            out[f"ratio_p95_{name}"] = round(_pct(xs, 95) / _pct(lat[base], 95), 2)
    return out


# --- 1. reports ----------------------------------------------------------------


def hand_report(env: Env, svc, spec: dict[str, Any], owner: int | None) -> sa.Select:
    """The GROUP BY a DBA writes for the report's question."""
    table = svc.table("deals")
    t = table.sql
    c = {k: t.c[f.column_name] for k, f in table.fields.items() if f.column_name}
    conds = [t.c.deleted_at.is_(None)]
    if spec.get("filter"):
        conds.append(c["stage"] == "won")
    if owner is not None:
        conds.append(c["owner"] == owner)
    keys = []
    for g in spec["group_by"]:
        key, _, grain = g.partition(":")
        if grain and env.db == "postgresql":
            keys.append(sa.cast(sa.func.date_trunc(grain, c[key]), sa.Date))
        elif grain:
            keys.append(sa.func.strftime("%Y-%m-01", c[key]))
        else:
            keys.append(c[key])
    labelled = [k.label(f"g{i}") for i, k in enumerate(keys)]
    measures = [sa.func.count().label("n")]
    if "sum(amount)" in spec["measures"]:
        measures.append(sa.func.coalesce(sa.func.sum(c["amount"]), 0).label("total"))
    order = [measures[-1].desc()] if spec.get("sort") else []
    return sa.select(*labelled, *measures).where(*conds).group_by(*labelled).order_by(*order)


def _cents(x: Any) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def _day(x: Any) -> Any:
    return date.fromisoformat(x[:10]) if isinstance(x, str) else x


def bench_report(
    env: Env, name: str, actor: Actor, owner: int | None, runs: int, warmup: int
) -> dict[str, Any]:
    p = env.platform
    spec = REPORTS[name]
    with p.session() as session, p.engine.connect() as conn:
        svc = p.records(session, actor)
        report = build(svc.schema, "bench", spec)
        stmt = hand_report(env, svc, spec, owner)
        conn.execute(sa.text("SELECT 1"))  # open the transaction, as the session's is
        agg_args = {
            "group_by": spec["group_by"],
            "measures": [(m.fn, m.field.key if m.field else None) for m in report.measures],
            "sort": spec.get("sort", "").replace("(", ":").rstrip(")") or None,
        }

        def ours_aggregate() -> tuple[float, Any]:
            s = p.records(session, actor)
            t0 = time.perf_counter()
            groups = s.aggregate("deals", where=_filter(spec), **agg_args)
            dt = time.perf_counter() - t0
            rows = [
                (r["group"], r.get("group2"), r["count"], r.get("sum:amount")) for r in groups.rows
            ]
            return dt, (rows, groups.more)

        def ours_report() -> tuple[float, Any]:
            s = p.records(session, actor)
            t0 = time.perf_counter()
            result = run_report(s, report)
            dt = time.perf_counter() - t0
            return dt, (len(result.rows), result.more)

        def hand() -> tuple[float, Any]:
            t0 = time.perf_counter()
            rows = conn.execute(stmt).all()
            dt = time.perf_counter() - t0
            out = []
            for r in rows:
                g2 = r[1] if len(spec["group_by"]) > 1 else None
                total = r[-1] if "sum(amount)" in spec["measures"] else None
                out.append((r[0], _day(g2), r[len(spec["group_by"])], total))
            return dt, (out, False)

        def check(got: dict[str, Any]) -> None:
            ours, more = got["aggregate"]
            theirs, _ = got["hand"]
            if more or got["report"] != (len(ours), False):
                raise AssertionError(f"{name}: the report stopped at its limit or lost rows")
            if _as_set(ours) != _as_set(theirs):
                raise AssertionError(f"{name}: ours and the DBA's GROUP BY differ")
            if spec.get("sort") and [r[3] for r in ours] != sorted(
                (r[3] for r in ours), reverse=True
            ):
                raise AssertionError(f"{name}: not sorted by the sum")

        sides = {"aggregate": ours_aggregate, "report": ours_report, "hand": hand}
        lat = interleave(sides, runs, warmup, check)
        out = figures(lat, "hand")
        groups = ours_aggregate()[1][0]
        out["groups"] = len(groups)
        out["records"] = sum(r[2] for r in groups)
        out["plans"] = {
            "ours": plans_of(env, conn, ours_aggregate),
            "hand": plans_of(env, conn, hand),
        }
    return out


def _filter(spec: dict[str, Any]) -> list[FormulaFilter] | None:
    return [FormulaFilter(spec["filter"])] if spec.get("filter") else None


def _as_set(rows: list[tuple]) -> set[tuple]:
    """Groups as comparable tuples: dates as dates, sums to the cent."""
    out = set()
    for g1, g2, n, total in rows:
        out.add((g1, _day(g2), int(n), None if total is None else _cents(total)))
    return out


# --- 2. the schedule sweep --------------------------------------------------------


def deploy(env: Env) -> tuple[AutomationEngine, int]:
    """The automation, saved with the clock a day before its due time, so its next due
    time is ``DUE_AT``."""
    p = env.platform
    engine = install(p, clock=lambda: DUE_AT - timedelta(days=1))
    specs, lines = load_automations_text(AUTOMATION)
    with p.session(write=True) as s, s.begin():
        schema = p.schema(s)
        compiled = validate_automations(specs, schema, {"admin", "salesperson"}, lines)
        engine.save(s, schema, compiled)
        aid = s.scalar(sa.select(Automation.id).where(Automation.key == "renewal_notice"))
    return engine, aid


def bench_sweep(env: Env, engine: AutomationEngine, runs: int, warmup: int) -> dict[str, Any]:
    p = env.platform
    with p.session() as session, p.engine.connect() as conn:
        system = engine.records(session, DUE_AT)
        table = system.table("deals")
        t = table.sql
        c = {k: t.c[f.column_name] for k, f in table.fields.items() if f.column_name}
        live = t.c.deleted_at.is_(None)
        today = sa.bindparam("today", TODAY, type_=sa.Date)
        if env.db == "postgresql":  # the platform's own expression of the difference
            diff: sa.ColumnElement = c["renewal_on"] - today
            horizon: sa.ColumnElement = today + 30
        else:
            diff = sa.cast(
                sa.func.julianday(c["renewal_on"]) - sa.func.julianday(today), sa.Integer
            )
            horizon = sa.func.date(today, "+30 days")
        active = c["status"] == "active"
        hand_q = sa.select(t.c.id).where(live, active, c["renewal_on"] <= horizon)
        same_q = sa.select(t.c.id).where(live, diff <= 30, active)
        hand_q, same_q = hand_q.order_by(t.c.id), same_q.order_by(t.c.id)
        conn.execute(sa.text("SELECT 1"))

        def ours() -> tuple[float, list[int]]:
            s = engine.records(session, DUE_AT)
            t0 = time.perf_counter()
            ids = engine._matching(s, table, WHEN)
            return time.perf_counter() - t0, ids

        def side(stmt):
            def run() -> tuple[float, list[int]]:
                t0 = time.perf_counter()
                ids = list(conn.execute(stmt).scalars())
                return time.perf_counter() - t0, ids

            return run

        def check(got: dict[str, list[int]]) -> None:
            if not (got["ours"] == got["hand"] == got["hand_same_expression"]):
                raise AssertionError("the sweep's ids differ from the DBA's")

        sides = {"ours": ours, "hand": side(hand_q), "hand_same_expression": side(same_q)}
        lat = interleave(sides, runs, warmup, check)
        out = figures(lat, "hand")
        due = ours()[1]
        out["due"] = len(due)
        out["plans"] = {
            "ours": plans_of(env, conn, ours, most=2),
            "hand": plans_of(env, conn, side(hand_q)),
            "hand_same_expression": plans_of(env, conn, side(same_q)),
        }
    out["run"] = whole_run(env, engine, due)
    return out


def whole_run(env: Env, engine: AutomationEngine, due: list[int]) -> dict[str, Any]:
    """``run_due`` at the due time: claim, sweep, one transaction per record, next due
    time; then the DBA's one UPDATE of the same ids (for scale: no history, no run
    rows, no validation)."""
    p = env.platform
    gc.collect()
    with Sent(p.engine) as sent:
        sent.on = True
        t0 = time.perf_counter()
        results = engine.run_due(DUE_AT)
        secs = time.perf_counter() - t0
        sent.on = False
    (r,) = results
    if r.done != len(due) or r.failed or r.skipped:
        raise AssertionError(f"the run did {r.done} of {len(due)} ({r.messages[:3]})")
    with p.session() as s:
        table = p.schema(s).table("deals")
        t = table.sql
        col = t.c[table.fields["renewal_notice"].column_name]
        noticed = list(s.scalars(sa.select(t.c.id).where(col.is_not(None)).order_by(t.c.id)))
        done = s.scalar(
            sa.select(sa.func.count())
            .select_from(AutomationRun)
            .where(AutomationRun.status == "done")
        )
    if noticed != due or done != len(due):
        raise AssertionError("the records acted on are not the due records")
    t0 = time.perf_counter()
    with p.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.id.in_(due))
            .values({col: TODAY, "version": t.c.version + 1, "updated_at": DUE_AT})
        )
    hand = time.perf_counter() - t0
    kinds: dict[str, int] = {}
    for statement, _ in sent.statements:
        word = statement.lstrip().split(None, 1)[0].upper()
        kinds[word] = kinds.get(word, 0) + 1
    n = max(1, len(due))
    return {
        "records": len(due),
        "seconds": round(secs, 2),
        "per_record_ms": _ms(secs / n),
        "statements": len(sent.statements),
        "statements_per_record": round(len(sent.statements) / n, 1),
        "statement_kinds": kinds,
        "hand_update_seconds": round(hand, 3),
    }


# --- main ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "db": args.db,
        "rows": args.rows,
        "seed": args.seed,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load(),
    }
    with bench_env(args.db, args.rows, args.keep, name="reports") as env:
        results["machine"] = env.info
        print(f"== {args.db}: {args.rows:,} deals, {env.info['database']}", flush=True)
        data = load(env, args.rows, args.salespeople, args.seed)
        owner = data.pop("owners")[0]
        results["data"] = data
        results["data"]["load_average_after"] = _load()
        with env.platform.session() as s:
            seller = load_actor(env.platform, s, owner)
        results["reports"] = {}
        for name in REPORTS:
            for who, actor, rule_owner in (
                ("admin", env.admin, None),
                ("salesperson", seller, owner),
            ):
                r = bench_report(env, name, actor, rule_owner, args.runs, args.warmup)
                r["load_average_after"] = _load()
                results["reports"][f"{name}, {who}"] = r
                print(
                    f"  {name}, {who} ({r['groups']} groups of {r['records']:,}): aggregate "
                    f"p50 {r['aggregate']['p50_ms']} ms, report {r['report']['p50_ms']} ms, "
                    f"DBA {r['hand']['p50_ms']} ms; ratio p50 {r['ratio_p50_aggregate']} "
                    f"(report {r['ratio_p50_report']}); load {r['load_average_after']}",
                    flush=True,
                )
        engine, _ = deploy(env)
        r = bench_sweep(env, engine, args.runs, args.warmup)
        r["load_average_after"] = _load()
        results["sweep"] = r
        run_ = r["run"]
        print(
            f"  sweep, {r['due']:,} due: ours p50 {r['ours']['p50_ms']} ms, "
            f"DBA {r['hand']['p50_ms']} ms, DBA with our expression "
            f"{r['hand_same_expression']['p50_ms']} ms; ratio p50 {r['ratio_p50_ours']}; "
            f"whole run {run_['seconds']} s ({run_['per_record_ms']} ms a record, "
            f"{run_['statements_per_record']} statements a record; DBA's UPDATE "
            f"{run_['hand_update_seconds']} s); load {r['load_average_after']}",
            flush=True,
        )
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_average_at_end"] = _load()
    return results


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"### {results['db']}, {results['rows']:,} deals ({results['machine']['database']})",
        "",
        f"load average (1/5/15 min) at start {results['load_average_at_start']}, "
        f"at end {results['load_average_at_end']}",
        "",
        "| question | groups / ids | ours p50 / p95 ms | DBA p50 / p95 ms | ratio p50 / p95 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results["reports"].items():
        for side in ("aggregate", "report"):
            lines.append(
                f"| {name}, `{side}` | {r['groups']} | {r[side]['p50_ms']:.1f} / "
                f"{r[side]['p95_ms']:.1f} | {r['hand']['p50_ms']:.1f} / {r['hand']['p95_ms']:.1f} "
                f"| {r[f'ratio_p50_{side}']:.2f} / {r[f'ratio_p95_{side}']:.2f} |"
            )
    r = results["sweep"]
    for side, label in (("ours", "sweep's SELECT"), ("hand_same_expression", "DBA, our DATEDIFF")):
        lines.append(
            f"| {label} | {r['due']:,} | {r[side]['p50_ms']:.1f} / {r[side]['p95_ms']:.1f} | "
            f"{r['hand']['p50_ms']:.1f} / {r['hand']['p95_ms']:.1f} | "
            f"{r[f'ratio_p50_{side}']:.2f} / {r[f'ratio_p95_{side}']:.2f} |"
        )
    run_ = r["run"]
    lines += [
        "",
        f"whole run: {run_['records']:,} records in {run_['seconds']} s "
        f"({run_['per_record_ms']} ms a record, {run_['statements_per_record']} statements a "
        f"record: {run_['statement_kinds']}); the DBA's one UPDATE {run_['hand_update_seconds']} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Reports and the schedule sweep vs. the DBA's SQL")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], required=True)
    ap.add_argument("--rows", type=int, default=None, help="deals (1,000,000)")
    ap.add_argument("--salespeople", type=int, default=20)
    ap.add_argument("--runs", type=int, default=15, help="measured rounds per question")
    ap.add_argument("--warmup", type=int, default=3, help="rounds before measuring")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20,000 deals, 5 rounds")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 20_000
        args.runs, args.warmup = min(args.runs, 5), min(args.warmup, 1)
    args.rows = args.rows or 1_000_000
    results = run(args)
    write_results(f"reports-{args.db}-{args.rows}", results, summary(results))


if __name__ == "__main__":
    sys.exit(main())
