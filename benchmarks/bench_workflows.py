"""Workflows at scale: a user's inbox and the reminder sweep over many open instances.

    python -m benchmarks.bench_workflows --db postgresql --instances 100000
    python -m benchmarks.bench_workflows --db sqlite --instances 100000
    python -m benchmarks.bench_workflows --db sqlite --quick        # a smoke run (2,000)

Data (``--seed``, default 42: the same seed gives the same rows): ``--users``
salespeople, one ``quotes`` record per instance (owner: a salesperson, or the
*heavy* user for ``--heavy`` of them), the workflow below deployed, and one running
instance per quote with its open task. The first instances (``--engine-starts``)
are started through ``WorkflowEngine.start`` and timed; the rest are inserted in
bulk with the shape the engine gives (checked column by column against the
engine's rows), because starting 100,000 instances one transaction at a time
would measure the start, not the inbox. Start times are spread over the last ten
days, so deadlines (3 days) fall from a week ago to three days ahead; a reminder
(1 day before the deadline) more than an hour old counts as already made (its
``remind_at`` cleared, as the sweep does), so the last hour's reminders are due.

Measured:

1. The inbox (``cubebase.workflows.inbox.inbox``, what ``GET /api/v1/tasks``
   runs, in a session of its own per call): for random typical users and for the
   heavy user, with each filter (all, due soon, overdue); p50/p95/p99, and the
   query plan.
2. The reminder sweep (``jobs.remind_due``): the plan of its one query
   (``jobs.due_reminders``) over every task, the statements it sends, its time
   with the due reminders, again (nothing new: idempotent), and when nothing is
   due (what the every-minute sweep mostly does).

PostgreSQL runs in a schema of its own, SQLite in a file under benchmarks/data/;
both are removed at the end (``--keep`` keeps them). Results go to
benchmarks/results/workflows-<db>-<instances>-<time>.json with the machine and
its load averages (the machine is shared: read the figures with them).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.platform.users import add_role
from cubebase.workflows import jobs
from cubebase.workflows.definitions import load_workflows_text, validate_workflows
from cubebase.workflows.engine import install
from cubebase.workflows.inbox import FILTERS, inbox
from cubebase.workflows.models import Instance, Task, Workflow, WorkflowVersion

from .bench_records import Env, _load, _pct, bench_env, write_results

WORKFLOW = """
workflows:
  - key: quote_approval
    table: quotes
    label: Quote approval
    start: manual
    steps:
      - key: approval
        label: Approval
        assignees: owner
        deadline: 3d
        reminder: 1d
        actions:
          - {key: approve, to: done}
          - {key: reject, to: rejected, comment: required}
"""
DEADLINE = timedelta(days=3)
REMINDER = timedelta(days=1)
SPREAD = timedelta(days=10)  # instances started over the last ten days
CHUNK = 10_000


def _stats(xs: list[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "p50_ms": round(_pct(xs, 50) * 1000, 3),
        "p95_ms": round(_pct(xs, 95) * 1000, 3),
        "p99_ms": round(_pct(xs, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(xs) * 1000, 3) if xs else None,
    }


# --- data ----------------------------------------------------------------------------


def build(env: Env, args, rng: random.Random, now: datetime) -> dict[str, Any]:
    p = env.platform
    t0 = time.perf_counter()
    with p.schema_editor() as ed:
        add_role(ed, "sales")
        ed.create_table(
            "quotes",
            "Quotes",
            display_field="title",
            fields=[
                {"key": "title", "type": "text", "required": True},
                {"key": "owner", "type": "user"},
                {"key": "discount", "type": "number", "precision": 3},
            ],
        )
    with p.session(write=True) as s, s.begin():
        users = p.records(s, Actor.system_actor()).bulk_create(
            "users",
            [
                {"email": f"seller{i}@example.com", "name": f"Seller {i}", "roles": ["sales"]}
                for i in range(args.users + 1)
            ],
        )
    heavy, typical = users[0], users[1:]
    owners = [heavy] * args.heavy + [
        typical[rng.randrange(len(typical))] for _ in range(args.instances - args.heavy)
    ]
    rng.shuffle(owners)
    quote_ids: list[int] = []
    for lo in range(0, args.instances, CHUNK):
        batch = [
            {"title": f"Quote {i}", "owner": owners[i], "discount": round(rng.random() * 0.3, 3)}
            for i in range(lo, min(lo + CHUNK, args.instances))
        ]
        with p.session(write=True) as s, s.begin():
            quote_ids += p.records(s, Actor.system_actor()).bulk_create("quotes", batch)
    loaded = time.perf_counter() - t0
    print(f"  {args.users + 1} users, {args.instances:,} quotes in {loaded:.1f}s", flush=True)

    engine = install(p)
    with p.session(write=True) as s, s.begin():
        loaded_wf = load_workflows_text(WORKFLOW, "bench.yaml")
        compiled = validate_workflows(loaded_wf.workflows, p.schema(s), {"sales", "admin"})
        engine.deploy(s, compiled)
    # the first instances through the engine, timed (its clock: now)
    engine.clock = lambda: now
    starts = []
    for record_id in quote_ids[: args.engine_starts]:
        t = time.perf_counter()
        with p.session(write=True) as s, s.begin():
            engine.start(s, env.admin, "quote_approval", record_id)
        starts.append(time.perf_counter() - t)
    # the rest in bulk, with the engine's shape
    t0 = time.perf_counter()
    bulk = bulk_instances(
        env, quote_ids[args.engine_starts :], owners[args.engine_starts :], rng, now
    )
    bulk_s = time.perf_counter() - t0
    print(
        f"  {len(starts)} instances started through the engine "
        f"(p50 {_pct(starts, 50) * 1000:.1f} ms each), {bulk['bulk_instances']:,} in bulk "
        f"in {bulk_s:.1f}s",
        flush=True,
    )
    same_shape(env)
    analyze(env)
    return {
        "users": args.users + 1,
        "heavy_user": heavy,
        "typical_users": typical,
        "quotes_load_s": round(loaded, 1),
        "engine_start": _stats(starts),
        "bulk_s": round(bulk_s, 1),
        "instances": args.instances,
        **bulk,
    }


def bulk_instances(env: Env, record_ids, owners, rng: random.Random, now: datetime) -> dict:
    """Running instances with their open task, as ``WorkflowEngine.start`` makes them."""
    p = env.platform
    with p.session() as s:
        wf = s.scalar(sa.select(Workflow).where(Workflow.key == "quote_approval"))
        version_id = s.scalar(
            sa.select(WorkflowVersion.id).where(WorkflowVersion.workflow_id == wf.id)
        )
        next_id = (s.scalar(sa.select(sa.func.max(Instance.id))) or 0) + 1
    due_now = 0
    with_reminder = 0
    for lo in range(0, len(record_ids), CHUNK):
        instances, tasks = [], []
        for i in range(lo, min(lo + CHUNK, len(record_ids))):
            started = now - SPREAD * rng.random()
            due = started + DEADLINE
            remind = due - REMINDER
            if remind < now - timedelta(hours=1):
                remind = None  # made already: the sweep clears remind_at
            elif remind <= now:
                due_now += 1
            if remind is not None:
                with_reminder += 1
            iid = next_id + i
            instances.append(
                {
                    "id": iid,
                    "workflow_id": wf.id,
                    "version_id": version_id,
                    "table_key": "quotes",
                    "record_id": record_ids[i],
                    "status": "running",
                    "step": "approval",
                    "round": 1,
                    "version": 1,
                    "started_by": env.admin.user_id,
                    "started_at": started,
                    "finished_at": None,
                }
            )
            tasks.append(
                {
                    "instance_id": iid,
                    "step": "approval",
                    "round": 1,
                    "assignee_id": owners[i],
                    "status": "open",
                    "version": 1,
                    "action": None,
                    "outcome": None,
                    "comment": None,
                    "completed_by": None,
                    "created_at": started,
                    "due_at": due,
                    "remind_at": remind,
                    "escalate_at": None,
                    "completed_at": None,
                }
            )
        with p.engine.begin() as conn:
            conn.execute(sa.insert(Instance), instances)
            conn.execute(sa.insert(Task), tasks)
    if env.db == "postgresql":
        with p.engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('cb_wf_instances', 'id'), "
                "(SELECT max(id) FROM cb_wf_instances))"
            )
    return {
        "bulk_instances": len(record_ids),
        "due_reminders": due_now,
        "pending_reminders": with_reminder,
    }


def same_shape(env: Env) -> None:
    """A bulk row and an engine row fill the same columns (values aside)."""
    with env.platform.session() as s:
        first = s.scalar(sa.select(Task).order_by(Task.id).limit(1))
        last = s.scalar(sa.select(Task).order_by(Task.id.desc()).limit(1))
        for col in Task.__table__.columns:
            a, b = getattr(first, col.key), getattr(last, col.key)
            assert (a is None) == (b is None) or col.key == "remind_at", col.key
        ia = s.get(Instance, first.instance_id)
        ib = s.get(Instance, last.instance_id)
        for col in Instance.__table__.columns:
            assert (getattr(ia, col.key) is None) == (getattr(ib, col.key) is None), col.key


def analyze(env: Env) -> None:
    t0 = time.perf_counter()
    if env.db == "postgresql":
        with env.platform.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for t in ("cb_wf_tasks", "cb_wf_instances", "cb_wf_workflows", "cb_notifications"):
                conn.execute(sa.text(f'VACUUM ANALYZE "{t}"'))
    else:
        with env.platform.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with env.platform.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"  analyzed in {time.perf_counter() - t0:.1f}s", flush=True)


# --- plans ---------------------------------------------------------------------------


def caught(env: Env, call, match) -> list[tuple[str, Any]]:
    """The statements ``call`` sends that ``match``."""
    sent: list[tuple[str, Any]] = []

    def catch(conn, cursor, statement, parameters, context, executemany):
        if match(statement):
            sent.append((statement, parameters))

    sa.event.listen(env.platform.engine, "before_cursor_execute", catch)
    try:
        call()
    finally:
        sa.event.remove(env.platform.engine, "before_cursor_execute", catch)
    return sent


def explain(env: Env, statement: str, parameters: Any) -> list[str]:
    """The plan (PostgreSQL: with ANALYZE and BUFFERS, in a transaction rolled back)."""
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if env.db == "postgresql" else "EXPLAIN QUERY PLAN "
    with env.platform.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
        conn.rollback()
    return [str(r[-1]) for r in rows]


# --- measurements --------------------------------------------------------------------


def bench_inbox(env: Env, data: dict, args, rng: random.Random, now: datetime) -> dict:
    p = env.platform
    engine = install(p)
    engine.clock = lambda: now
    with p.session() as s:
        actors = {
            uid: Actor(user_id=uid, roles=frozenset({"sales"}))
            for uid in [data["heavy_user"], *rng.sample(data["typical_users"], 50)]
        }
        expected = dict(
            s.execute(
                sa.select(Task.assignee_id, sa.func.count())
                .where(Task.status == "open", Task.assignee_id.in_(list(actors)))
                .group_by(Task.assignee_id)
            ).all()
        )
    typical = [uid for uid in actors if uid != data["heavy_user"]]

    def call(uid: int, f: str) -> list:
        with p.session() as s:
            return inbox(p, s, actors[uid], filter=f, now=now)

    got = call(typical[0], "all")
    assert len(got) == min(50, expected.get(typical[0], 0)), (len(got), expected)
    assert len(call(data["heavy_user"], "all")) == min(50, expected[data["heavy_user"]])
    out: dict[str, Any] = {
        "typical_user_open_tasks_p50": statistics.median(expected.get(u, 0) for u in typical),
        "heavy_user_open_tasks": expected[data["heavy_user"]],
        "load_before": _load(),
    }
    gc.collect()
    for who in ("typical", "heavy"):
        for f in FILTERS:
            for _ in range(args.warmup):
                call(rng.choice(typical) if who == "typical" else data["heavy_user"], f)
            times, sizes = [], []
            for _ in range(args.samples):
                uid = rng.choice(typical) if who == "typical" else data["heavy_user"]
                t = time.perf_counter()
                page = call(uid, f)
                times.append(time.perf_counter() - t)
                sizes.append(len(page))
            out[f"{who}:{f}"] = {**_stats(times), "tasks_per_page_p50": statistics.median(sizes)}
            print(
                f"  inbox {who:>7} {f:>8}: p50 {out[f'{who}:{f}']['p50_ms']:7.2f} ms  "
                f"p95 {out[f'{who}:{f}']['p95_ms']:7.2f} ms  ({statistics.median(sizes):.0f} tasks)",
                flush=True,
            )
    out["load_after"] = _load()
    plans = {}
    for who, uid in (("typical", typical[0]), ("heavy", data["heavy_user"])):
        for f in FILTERS:
            sent = caught(
                env,
                lambda uid=uid, f=f: call(uid, f),
                lambda st: "cb_wf_tasks" in st and " LIMIT " in st.upper(),
            )
            plans[f"{who}:{f}"] = explain(env, *sent[0])
    out["plans"] = plans
    return out


def bench_sweep(env: Env, data: dict, now: datetime) -> dict:
    p = env.platform
    install(p).clock = lambda: now
    dialect = p.dialect
    # the sweep's one query over every task, explained before it runs
    with p.session() as s:
        sent = caught(
            env,
            lambda: s.execute(jobs.due_reminders(now, None, dialect)).all(),
            lambda st: "remind_at <=" in st,
        )
        s.rollback()
    (query,) = sent
    plan = explain(env, *query)
    load_before = _load()
    statements: list[str] = []

    def count(conn, cursor, statement, *a):
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE")):
            statements.append(statement.split("\n")[0][:80])

    sa.event.listen(p.engine, "before_cursor_execute", count)
    try:
        t = time.perf_counter()
        made = jobs.remind_due(p, now)
        first = time.perf_counter() - t
    finally:
        sa.event.remove(p.engine, "before_cursor_execute", count)
    assert made == data["due_reminders"], (made, data["due_reminders"])
    t = time.perf_counter()
    again = jobs.remind_due(p, now)
    second = time.perf_counter() - t
    assert again == 0
    idle = []
    for _ in range(20):
        t = time.perf_counter()
        jobs.remind_due(p, now + timedelta(seconds=30))
        idle.append(time.perf_counter() - t)
    out = {
        "tasks": data["instances"],
        "pending_reminders": data["pending_reminders"],
        "due_reminders": made,
        "query": query[0],
        "plan": plan,
        "statements": statements,
        "first_run_ms": round(first * 1000, 1),
        "per_reminder_ms": round(first * 1000 / max(made, 1), 3),
        "second_run_ms": round(second * 1000, 1),
        "nothing_due": _stats(idle),
        "load_before": load_before,
        "load_after": _load(),
    }
    print(
        f"  sweep: {made:,} reminders of {data['instances']:,} tasks in {first * 1000:.0f} ms "
        f"({len(statements)} statements); again {second * 1000:.1f} ms (0 new); "
        f"nothing due p50 {out['nothing_due']['p50_ms']:.2f} ms",
        flush=True,
    )
    print("  plan: " + "\n        ".join(plan), flush=True)
    return out


def run(args) -> dict:
    rng = random.Random(args.seed)
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # fixed: the same seed, the same rows
    results: dict[str, Any] = {
        "args": vars(args),
        "started": datetime.now(UTC).isoformat(),
        "load_start": _load(),
    }
    with bench_env(args.db, args.instances, args.keep) as env:
        results["machine"] = env.info
        print(f"{args.db}: {args.instances:,} open instances", flush=True)
        data = build(env, args, rng, now)
        results["data"] = {k: v for k, v in data.items() if k != "typical_users"}
        results["inbox"] = bench_inbox(env, data, args, rng, now)
        results["sweep"] = bench_sweep(env, data, now)
    results["load_end"] = _load()
    return results


def summary(r: dict) -> str:
    inbox_ = r["inbox"]
    lines = [
        f"{r['machine']['database']}: {r['data']['instances']:,} open instances, "
        f"{r['data']['users']} users; load {r['load_start']} -> {r['load_end']}",
        f"typical user ({inbox_['typical_user_open_tasks_p50']:.0f} open tasks), "
        f"heavy user ({inbox_['heavy_user_open_tasks']:,}):",
    ]
    for who in ("typical", "heavy"):
        for f in FILTERS:
            st = inbox_[f"{who}:{f}"]
            lines.append(
                f"  {who:>7} {f:>8}: p50 {st['p50_ms']:7.2f} ms  p95 {st['p95_ms']:7.2f} ms"
            )
    sw = r["sweep"]
    lines.append(
        f"sweep: {sw['due_reminders']:,} due of {sw['tasks']:,} tasks: {sw['first_run_ms']} ms, "
        f"{len(sw['statements'])} statements; nothing due p50 {sw['nothing_due']['p50_ms']} ms"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Workflow inbox and reminder sweep at scale")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--instances", type=int, default=None, help="open instances (100,000)")
    ap.add_argument("--users", type=int, default=1000, help="typical users")
    ap.add_argument("--heavy", type=int, default=None, help="open tasks of the heavy user")
    ap.add_argument("--engine-starts", type=int, default=500, help="started through the engine")
    ap.add_argument("--samples", type=int, default=200, help="inbox calls per scenario")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2,000 instances")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args(argv)
    if args.quick:
        args.instances = args.instances or 2000
        args.users = min(args.users, 100)
        args.samples, args.warmup = min(args.samples, 30), min(args.warmup, 5)
        args.engine_starts = min(args.engine_starts, 50)
    args.instances = args.instances or 100_000
    args.heavy = args.heavy if args.heavy is not None else args.instances // 50
    args.engine_starts = min(args.engine_starts, args.instances - args.heavy)
    results = run(args)
    write_results(f"workflows-{args.db}-{args.instances}", results, summary(results))


if __name__ == "__main__":
    sys.exit(main())
