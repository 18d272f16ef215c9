"""Server time of the web app's grid page: a 50-row page of a 1M-row table on
PostgreSQL with permission rules active (issue 8: under 150 ms p50).

    python -m benchmarks.bench_pages                       # PostgreSQL, 1,000,000 customers
    python -m benchmarks.bench_pages --rows 20000 --db sqlite --iterations 30   # a smoke run

The data and rules are bench_permissions' (the generator's customers in a region
tree, 200 salespeople, read rules ``account_manager = USER()``,
``ISUNDER(region, USER().region)`` and ``TRUE``). The Flask app is driven in-process
through its test client, signed in by setting the session's user id, so the time is
the server's: routing, loading the user, the records service's list and capped
count, link labels, the navigation and the template. Nothing of a network or a
browser is in it. Pages timed per role: the grid's first page (default columns,
id order), sorted by name, and the next page after that (keyset cursor).

Results go to benchmarks/results/pages-<db>-<rows>-<stamp>.json.
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime
from typing import Any

from cubebase.web import create_app

from .bench_permissions import (
    _load,
    _stats,
    analyze,
    bench_env,
    build_org,
    load_customers,
)
from .bench_records import write_results

NEXT_RE = re.compile(r'href="\?([^"]*cursor=[^"]*)" rel="next"')


def time_page(client, url: str, n: int) -> tuple[dict[str, float], str]:
    html = ""
    for _ in range(3):  # warm caches (schema, plans, templates)
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get(url)
        xs.append(time.perf_counter() - t0)  # seconds: _stats gives ms
        html = resp.get_data(as_text=True)
    return _stats(xs), html


def bench_user(app, uid: int, n: int) -> dict[str, Any]:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user_id"] = uid
    out: dict[str, Any] = {}
    out["first_page"], html = time_page(client, "/t/customers", n)
    rows = html.count('<tr data-id="') or html.count("<tr")
    out["rows_on_page"] = rows
    out["sorted_by_name"], html = time_page(client, "/t/customers?sort=name", n)
    m = NEXT_RE.search(html)
    if m:
        nxt = "/t/customers?" + m.group(1).replace("&amp;", "&")
        out["next_page_by_name"], _ = time_page(client, nxt, n)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "db": args.db,
        "rows": args.rows,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load(),
    }
    with bench_env(args.db, args.rows, args.keep) as env:
        results["machine"] = env.info
        print(f"== {args.db}: {args.rows:,} customers", flush=True)
        org = build_org(env, args.seed)
        results["load"] = load_customers(env, args.rows, args.chunk, args.seed, org)
        results["analyze_seconds"] = analyze(env)
        app = create_app(env.platform.config, env.platform)
        results["roles"] = {}
        for role, uid in (
            ("salesperson", org["sales"][0]),
            ("regional_manager", org["managers"][0]),
            ("director", org["director"]),
        ):
            r = bench_user(app, uid, args.iterations)
            r["load_average_after"] = _load()
            results["roles"][role] = r
            print(
                f"  {role}: first page p50 {r['first_page']['p50_ms']} ms, by name "
                f"{r['sorted_by_name']['p50_ms']} ms, next page "
                f"{r.get('next_page_by_name', {}).get('p50_ms')} ms "
                f"(p95 {r['first_page']['p95_ms']} / {r['sorted_by_name']['p95_ms']}); "
                f"load {r['load_average_after']}",
                flush=True,
            )
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_results(f"pages-{args.db}-{args.rows}", results)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Grid page server time under row rules")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", action="store_true")
    run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
