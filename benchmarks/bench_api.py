"""The REST API under gunicorn against a minimal hand-written Flask + SQLAlchemy app.

    python -m benchmarks.bench_api                       # 100,000 customers, PostgreSQL
    python -m benchmarks.bench_api --rows 20000 --duration 5 --rounds 1   # a smoke run
    python -m benchmarks.bench_api --profile             # also cProfile one Cubebase worker

Data: the organisation of ``bench_permissions.py`` (regions, 200 salespeople, ...) and
N customers made through the platform (``RecordsService.bulk_create``), each with an
``account_manager``. ``customers`` has the row rule ``salesperson: read:
account_manager = USER()``; the caller is a salesperson with an API token (about
N/200 customers are theirs).

Both sides run under gunicorn with 2 sync workers on loopback, one after the other,
measured with ``wrk`` (1 thread, ``--connections`` connections, ``--duration``
seconds, after a warm-up), alternating sides for ``--rounds`` rounds:

- **get**: ``GET /api/v1/tables/customers/records/{id}``, cycling over the
  salesperson's records (a wrk Lua script);
- **list**: ``GET /api/v1/tables/customers/records`` (the first 50 by id).

The baseline (``baseline_app`` below) is what a developer writes by hand for the same
answers: the bearer token looked up by its SHA-256 (one query joining the user, who
must be active), then one Core ``SELECT`` of the same columns with ``account_manager =
:user`` on the same physical table, values turned into the same JSON (decimals as
strings, dates ISO, ``next_cursor``). Before measuring, both sides' answers are
compared: the same records, field for field.

Results: ``benchmarks/results/api-<rows>-<time>.json`` with requests/s, latency
percentiles, non-2xx counts and the load averages around every measurement.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.platform.users import create_token

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TABLE = "customers"
PAGE = 50
SCENARIOS = ("get", "list")


# --- the baseline: a minimal hand-written Flask + SQLAlchemy app ----------------------------
def baseline_app():
    """GET one customer and a page of 50, for the token's user, as a developer would write
    them without Cubebase: Core SQL on the same tables. The physical table and column
    names are read once at start-up (they are Cubebase's ``t_<id>``/``f_<id>``)."""
    from flask import Flask, abort, jsonify, request

    url = os.environ["BENCH_DATABASE_URL"]
    engine = sa.create_engine(url, pool_size=5, pool_pre_ping=False)
    layout = json.loads(os.environ["BENCH_LAYOUT"])
    md = sa.MetaData()
    t = sa.Table(layout["table"], md, autoload_with=engine)
    users = sa.Table(layout["users"], md, autoload_with=engine)
    tokens = sa.Table("cb_api_tokens", md, autoload_with=engine)
    keys = [k for k, _ in layout["fields"]]
    cols = [t.c[c] for _, c in layout["fields"]]
    owner = t.c[layout["owner"]]
    select = sa.select(t.c.id, t.c.version, *cols).where(t.c.deleted_at.is_(None))
    who = (
        sa.select(tokens.c.user_id)
        .join(users, users.c.id == tokens.c.user_id)
        .where(
            tokens.c.token_hash == sa.bindparam("h"),
            tokens.c.revoked_at.is_(None),
            users.c[layout["active"]].is_(True),
            users.c.deleted_at.is_(None),
        )
    )
    app = Flask(__name__)

    def value(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(v, date):
            return v.isoformat()
        return v

    def doc(row) -> dict:
        return {
            "id": row[0],
            "version": row[1],
            "fields": {k: value(v) for k, v in zip(keys, row[2:], strict=True)},
        }

    def user_id(conn) -> int:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            abort(401)
        digest = hashlib.sha256(header[7:].encode()).hexdigest()
        uid = conn.execute(who, {"h": digest}).scalar()
        if uid is None:
            abort(401)
        return uid

    @app.get("/api/v1/tables/customers/records/<int:record_id>")
    def get_one(record_id: int):
        with engine.connect() as conn:
            uid = user_id(conn)
            row = conn.execute(select.where(t.c.id == record_id, owner == uid)).first()
        if row is None:
            abort(404)
        return jsonify(doc(row))

    @app.get("/api/v1/tables/customers/records")
    def list_page():
        after = request.args.get("cursor")
        stmt = select.order_by(t.c.id).limit(PAGE + 1)
        if after:
            stmt = stmt.where(t.c.id > int(base64.urlsafe_b64decode(after)))
        with engine.connect() as conn:
            uid = user_id(conn)
            rows = conn.execute(stmt.where(owner == uid)).all()
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        cursor = base64.urlsafe_b64encode(str(rows[-1][0]).encode()).decode() if more else None
        return jsonify({"records": [doc(r) for r in rows], "next_cursor": cursor})

    return app


def profiled_app():
    """The Cubebase app with cProfile around each request's handling (one worker); the
    stats are written every 200 requests to ``BENCH_PROFILE``."""
    from cubebase.web import create_app

    app = create_app()
    inner = app.wsgi_app
    prof = cProfile.Profile()
    count = [0]
    out = os.environ["BENCH_PROFILE"]

    def wsgi(environ, start_response):
        prof.enable()
        try:
            return list(inner(environ, start_response))
        finally:
            prof.disable()
            count[0] += 1
            if count[0] % 200 == 0:
                prof.dump_stats(out)

    app.wsgi_app = wsgi
    return app


# --- set-up --------------------------------------------------------------------------------
def build(env, rows: int, seed: int) -> dict[str, Any]:
    from .bench_permissions import build_org, customer_chunks

    p = env.platform
    org = build_org(env, seed)
    system = Actor.system_actor()
    t0 = time.perf_counter()
    for chunk in customer_chunks(rows, 10_000, seed, org):
        with p.session(write=True) as s, s.begin():
            p.records(s, system).bulk_create(TABLE, chunk)
    inserted = time.perf_counter() - t0
    with p.session() as s:
        schema = p.schema(s)
        table = schema.table(TABLE)
        users = schema.table("users")
        am = table.field("account_manager")
        seller = org["sales"][0]
        ids = list(
            s.scalars(
                sa.select(table.sql.c.id)
                .where(table.column(am) == seller, table.sql.c.deleted_at.is_(None))
                .order_by(table.sql.c.id)
            )
        )
        email = s.scalar(
            sa.select(users.column(users.field("email"))).where(users.sql.c.id == seller)
        )
        fields = [(f.key, table.column(f).name) for f in table.data_fields()]
        layout = {
            "table": table.sql.name,
            "users": users.sql.name,
            "active": users.column(users.field("active")).name,
            "owner": table.column(am).name,
            "fields": fields,
        }
    with p.session(write=True) as s, s.begin():
        token = create_token(p, s, email, label="bench")
    with p.engine.begin() as conn:
        if p.dialect == "postgresql":
            conn.execute(sa.text("ANALYZE"))
    return {
        "token": token,
        "ids": ids,
        "email": email,
        "layout": layout,
        "insert_seconds": round(inserted, 1),
    }


# --- servers and the load tool --------------------------------------------------------------
class Server:
    def __init__(self, name: str, app: str, port: int, env: dict[str, str], workers: int = 2):
        self.name, self.port = name, port
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
            app,
        ]
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-api-{name}-", suffix=".log")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=self.log
        )

    def wait(self, path: str, token: str) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{Path(self.log.name).read_text()}")
            try:
                get_json(self.port, path, token)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not start:\n{Path(self.log.name).read_text()}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def errors(self) -> str:
        return Path(self.log.name).read_text()[-3000:]


def get_json(port: int, path: str, token: str) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def lua_script(ids: list[int]) -> str:
    path = Path(tempfile.mkstemp(prefix="bench-api-", suffix=".lua")[1])
    path.write_text(
        "local ids = {" + ",".join(map(str, ids)) + "}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #ids + 1\n"
        '  return wrk.format("GET", "/api/v1/tables/customers/records/" .. ids[i])\n'
        "end\n"
    )
    return str(path)


def wrk(
    port: int, scenario: str, token: str, script: str, seconds: int, connections: int
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/tables/customers/records"
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if scenario == "get":
        cmd += ["-s", script]
    load_before = os.getloadavg()
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    load_after = os.getloadavg()
    return {
        **parse_wrk(out),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, the request count, failures and latency percentiles of wrk's
    ``--latency`` report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            lat[f"p{pct}_ms"] = round(float(m.group(1)) * scale, 3)
    return {
        "rps": rps,
        "requests": total,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else None,
        **lat,
    }


def compare(ours: Any, theirs: Any, what: str) -> None:
    if isinstance(ours, dict) and "records" in ours:
        ours, theirs = ours["records"], theirs["records"]
    if ours != theirs:
        a = ours[0] if isinstance(ours, list) else ours
        b = theirs[0] if isinstance(theirs, list) else theirs
        diff = {
            k: (a["fields"].get(k), b["fields"].get(k))
            for k in set(a["fields"]) | set(b["fields"])
            if a["fields"].get(k) != b["fields"].get(k)
        }
        raise SystemExit(f"the two sides answer {what} differently: {diff}")


# --- the run -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    from .bench_permissions import bench_env
    from .bench_records import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--port", type=int, default=18400)
    ap.add_argument("--profile", action="store_true", help="cProfile one Cubebase worker")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with bench_env("postgresql", args.rows, args.keep) as env:
        url = env.platform.config.database_url
        print(f"building {args.rows:,} customers ...", flush=True)
        data = build(env, args.rows, args.seed)
        token, ids = data["token"], data["ids"]
        print(f"  {data['insert_seconds']} s; the salesperson owns {len(ids)} customers")
        info = machine_info(env.platform)
        env.platform.engine.dispose()
        script = lua_script(ids)
        common = {"CUBEBASE_DATABASE_URL": url, "CUBEBASE_API_RATE_LIMIT": "0"}
        common["CUBEBASE_SECRET_KEY"] = "bench-secret"
        common["CUBEBASE_DATA_DIR"] = str(HERE / "data")
        common.pop("CUBEBASE_REDIS_URL", None)
        servers = {
            "cubebase": ("cubebase.web:create_app()", args.port, common),
            "baseline": (
                "benchmarks.bench_api:baseline_app()",
                args.port + 1,
                {"BENCH_DATABASE_URL": url, "BENCH_LAYOUT": json.dumps(data["layout"])},
            ),
        }
        one = f"/api/v1/tables/customers/records/{ids[len(ids) // 2]}"
        page = "/api/v1/tables/customers/records"
        answers = {}
        results: dict[str, Any] = {s: {"cubebase": [], "baseline": []} for s in SCENARIOS}
        try:
            for rnd in range(args.rounds):
                order = ["baseline", "cubebase"] if rnd % 2 == 0 else ["cubebase", "baseline"]
                for side in order:
                    app, port, extra = servers[side]
                    server = Server(side, app, port, extra)
                    try:
                        server.wait(one, token)
                        answers[side] = (get_json(port, one, token), get_json(port, page, token))
                        for scenario in SCENARIOS:
                            wrk(port, scenario, token, script, args.warmup, args.connections)
                            r = wrk(port, scenario, token, script, args.duration, args.connections)
                            results[scenario][side].append(r)
                            print(
                                f"round {rnd + 1} {scenario:4} {side:8} {r['rps']:8.1f} req/s  "
                                f"p50 {r.get('p50_ms')} ms  p99 {r.get('p99_ms')} ms  "
                                f"non-2xx {r['non_2xx']}  load {r['load_before'][0]}",
                                flush=True,
                            )
                            if r["non_2xx"]:
                                print(server.errors())
                    finally:
                        server.stop()
                if rnd == 0:
                    compare(answers["cubebase"][0], answers["baseline"][0], "GET one")
                    compare(answers["cubebase"][1], answers["baseline"][1], "the list")
            profile = None
            if args.profile:
                profile = run_profile(env, common, args, token, script, stamp)
        finally:
            Path(script).unlink(missing_ok=True)
    summary = {}
    for scenario in SCENARIOS:
        ours = sorted(r["rps"] for r in results[scenario]["cubebase"])
        theirs = sorted(r["rps"] for r in results[scenario]["baseline"])
        med_o, med_t = ours[len(ours) // 2], theirs[len(theirs) // 2]
        summary[scenario] = {
            "cubebase_rps": med_o,
            "baseline_rps": med_t,
            "ratio": round(med_o / med_t, 3),
            "target_met": med_o / med_t >= 0.7,
        }
    out = {
        "benchmark": "api",
        "when": stamp,
        "rows": args.rows,
        "salesperson_records": len(ids),
        "duration_s": args.duration,
        "connections": args.connections,
        "workers": 2,
        "machine": info,
        "summary": summary,
        "runs": results,
        "profile": profile,
    }
    path = RESULTS / f"api-{args.rows}-{stamp}.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"results: {path}")


def run_profile(env, common, args, token, script, stamp) -> dict[str, Any]:
    """One Cubebase worker under cProfile, both scenarios; the top functions."""
    out: dict[str, Any] = {}
    for scenario in SCENARIOS:
        stats_path = RESULTS / f"api-profile-{scenario}-{stamp}.pstats"
        server = Server(
            "profile",
            "benchmarks.bench_api:profiled_app()",
            args.port + 2,
            {**common, "BENCH_PROFILE": str(stats_path)},
            workers=1,
        )
        try:
            server.wait("/api/v1/tables/customers/records", token)
            r = wrk(args.port + 2, scenario, token, script, 10, 2)
        finally:
            server.stop()
        text_path = stats_path.with_suffix(".txt")
        with text_path.open("w") as f:
            st = pstats.Stats(str(stats_path), stream=f)
            st.sort_stats("cumulative").print_stats(60)
            st.sort_stats("tottime").print_stats(40)
        out[scenario] = {"rps_profiled": r["rps"], "stats": str(text_path)}
        print(f"profile {scenario}: {text_path}")
    return out


if __name__ == "__main__":
    main()
