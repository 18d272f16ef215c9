"""The API's page of 50 as it is served: gunicorn and HTTP, measured with wrk, for the
customers with 20 formula fields, their twin without them and the twin with the same
20 values as ordinary fields (the data of ``bench_formulas.py``).

    python -m benchmarks.bench_formulas_served                      # PostgreSQL, 100k / 1M
    python -m benchmarks.bench_formulas_served --customers 10000 --duration 3 --rounds 1

One gunicorn sync worker serves; wrk keeps one connection, so a request's latency is
its whole cost on the server (routing, the caller's token, the transaction, the page,
JSON, HTTP) with nothing queued behind another. Each table's requests walk the same
pages (the first from the start and from the middle of the table, by cursor); the
tables take turns, ``--rounds`` times, and the medians are compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cubebase.platform.listing import encode_cursor
from cubebase.platform.users import create_token

from .bench_api import Server, get_json, parse_wrk
from .bench_formulas import FORMULA_FIELDS, PAGE, load
from .bench_records import _load, _pct, bench_env, write_results

HERE = Path(__file__).resolve().parent
TABLES = {"formulas": "customers", "twin": "customers_plain", "wide": "customers_wide"}


def page_paths(table_key: str, ids: list[int], pages: int) -> list[str]:
    """URLs of ``pages`` pages of 50: half from the start, half from the middle (fewer
    when the table has not that many)."""
    pages = max(1, min(pages, len(ids) // PAGE - 1))
    half = pages - pages // 2
    mid = len(ids) // 2 - 1
    afters = [None] + [ids[i * PAGE - 1] for i in range(1, half)]
    afters += [ids[mid + i * PAGE] for i in range(pages // 2)]
    base = f"/api/v1/tables/{table_key}/records?limit={PAGE}"
    return [base if a is None else f"{base}&cursor={encode_cursor('', [a])}" for a in afters]


def lua_script(paths: list[str]) -> str:
    path = Path(tempfile.mkstemp(prefix="bench-served-", suffix=".lua")[1])
    quoted = ",".join(f'"{p}"' for p in paths)
    path.write_text(
        f"local paths = {{{quoted}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return str(path)


def wrk(port: int, token: str, script: str, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-s", script]
    cmd += ["-H", f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/"]
    load_before = os.getloadavg()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {**parse_wrk(out), "load_before": [round(x, 2) for x in load_before]}


def run(args: argparse.Namespace) -> dict:
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load(),
        "duration_s": args.duration,
        "rounds": args.rounds,
    }
    with bench_env("postgresql", args.customers, False, name="served") as env:
        results["machine"] = env.info
        results["data"] = load(env, args.customers, args.deals, args.seed)
        p = env.platform
        with p.session(write=True) as s, s.begin():
            token = create_token(p, s, "admin@example.com", label="bench")
        with p.session() as s:
            t = p.schema(s).table("customers").sql
            ids = list(s.scalars(sa.select(t.c.id).order_by(t.c.id)))
        scripts = {
            side: lua_script(page_paths(key, ids, args.pages)) for side, key in TABLES.items()
        }
        env_vars = {
            "CUBEBASE_DATABASE_URL": p.config.database_url,
            "CUBEBASE_API_RATE_LIMIT": "0",
            "CUBEBASE_SECRET_KEY": "bench-secret",
            "CUBEBASE_DATA_DIR": str(HERE / "data"),
        }
        p.engine.dispose()
        server = Server("cubebase", "cubebase.web:create_app()", args.port, env_vars, workers=1)
        runs: dict[str, list[dict]] = {side: [] for side in TABLES}
        try:
            first = page_paths("customers", ids, 1)[0]
            server.wait(first, token)
            docs = {
                side: get_json(args.port, page_paths(key, ids, 1)[0], token)["records"]
                for side, key in TABLES.items()
            }
            for a, b, c in zip(docs["formulas"], docs["twin"], docs["wide"], strict=True):
                if not (a["id"] == b["id"] == c["id"]) or len(a["fields"]) != len(
                    b["fields"]
                ) + len(FORMULA_FIELDS):
                    raise AssertionError("the three tables answer different pages")
            for rnd in range(args.rounds):
                order = list(TABLES)
                order = order[rnd % 3 :] + order[: rnd % 3]
                for side in order:
                    wrk(args.port, token, scripts[side], args.warmup)
                    r = wrk(args.port, token, scripts[side], args.duration)
                    if r["non_2xx"]:
                        raise AssertionError(f"{side}: {r['non_2xx']} failed requests")
                    runs[side].append(r)
                    print(
                        f"round {rnd + 1} {side:8} {r['rps']:8.1f} req/s  p50 "
                        f"{r.get('p50_ms')} ms  p99 {r.get('p99_ms')} ms  load "
                        f"{r['load_before'][0]}",
                        flush=True,
                    )
        finally:
            server.stop()
            for script in scripts.values():
                Path(script).unlink(missing_ok=True)
    summary: dict[str, Any] = {}
    for side in TABLES:
        summary[side] = {
            "rps": _pct([r["rps"] for r in runs[side]], 50),
            "p50_ms": _pct([r["p50_ms"] for r in runs[side]], 50),
        }
    for side in ("formulas", "wide"):
        summary[f"{side}_cost_vs_twin"] = round(summary["twin"]["rps"] / summary[side]["rps"], 3)
        summary[f"{side}_p50_vs_twin"] = round(
            summary[side]["p50_ms"] / summary["twin"]["p50_ms"], 3
        )
    results["summary"], results["runs"] = summary, runs
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def summary_text(results: dict) -> str:
    s = results["summary"]
    lines = [
        f"### API page of {PAGE} served by gunicorn (1 worker, wrk -c1), "
        f"{results['data']['customers']:,} customers, {results['data']['deals']:,} deals",
        "",
        "| table | req/s (median) | p50 ms | cost / twin (1/req/s) | p50 / twin |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for side in TABLES:
        cost = "1" if side == "twin" else f"{s[f'{side}_cost_vs_twin']:.2f}"
        p50 = "1" if side == "twin" else f"{s[f'{side}_p50_vs_twin']:.2f}"
        lines.append(
            f"| {side} | {s[side]['rps']:.1f} | {s[side]['p50_ms']:.2f} | {cost} | {p50} |"
        )
    lines += ["", f"load average at start {results['load_average_at_start']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--deals", type=int, default=None, help="deals (10 per customer)")
    ap.add_argument("--pages", type=int, default=100, help="pages each table's walk cycles")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--port", type=int, default=18480)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    args.deals = args.deals or args.customers * 10
    t0 = time.perf_counter()
    results = run(args)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_results(f"formulas-served-{args.customers}", results, summary_text(results))


if __name__ == "__main__":
    sys.exit(main())
