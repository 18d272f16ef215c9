"""The cost of keeping stored formulas current: one commission credit written.

    python -m benchmarks.bench_refresh --db sqlite
    python -m benchmarks.bench_refresh --db postgresql

The CRM installed from its app files (no demo, no automations deployed), a
regional manager and ``--team`` salespeople with a statement each for one month
(the team's statements linked to the manager's, for the override), ``--deals``
won deals per salesperson. Then, one write per transaction as a request makes
it: credits created (each refreshes its statement's chain of stored figures:
won_amount ... net_commission, the manager's override and total) and credits
updated (``share``). Every SQL statement is counted by a cursor listener, and
the ones run inside ``Refresh.before``/``after`` (materialized.py) apart, with
their time. Printed: per write, statements (all / refresh / UPDATEs), ms
(whole write / refresh) and the load average. The statements' results are
checked against the interpreter's figures at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from cubebase.apps.crm import install_crm
from cubebase.platform import materialized
from cubebase.platform.actor import Actor
from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.db import make_engine
from cubebase.platform.users import create_user

PG_URL = os.environ.get("CUBEBASE_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


class Counter:
    """Statements and their time, in total and inside a refresh."""

    def __init__(self, engine: sa.Engine):
        self.inside = 0
        self.reset()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self.total = self.refresh = self.updates = 0
        self.refresh_s = 0.0
        self.log: list[str] = []

    def _before(self, conn, cursor, statement, params, context, executemany):
        self.total += 1
        if self.inside:
            self.refresh += 1
            self.log.append(statement)
            if statement.lstrip().upper().startswith("UPDATE"):
                self.updates += 1

    def _after(self, *args):
        pass

    @contextmanager
    def refreshing(self):
        self.inside += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.refresh_s += time.perf_counter() - t0
            self.inside -= 1


def instrument(counter: Counter) -> None:
    before, after = materialized.Refresh.before, materialized.Refresh.after

    def timed_before(self):
        with counter.refreshing():
            return before(self)

    def timed_after(self):
        with counter.refreshing():
            return after(self)

    materialized.Refresh.before = timed_before
    materialized.Refresh.after = timed_after


def setup(platform: Platform, team: int, deals: int) -> dict:
    from cubebase.workflows.automations import paused

    init_platform(platform, admin_password="bench-password-1")
    install_crm(platform)
    month = date(2026, 3, 1)
    with paused(), platform.session(write=True) as s, s.begin():
        records = platform.records(s, Actor.system_actor())
        plan = records.create(
            "commission_plans",
            {"name": "Standard", "tier1_limit": "50000", "tier1_rate": "3",
             "tier2_limit": "150000", "tier2_rate": "5", "tier3_rate": "7",
             "manager_override": "2"},
        ).id  # fmt: skip
        region = records.create("regions", {"name": "North"}).id
        customer = records.create("customers", {"name": "Acme", "region": region}).id
        product = records.create("products", {"name": "Gold", "commission_rate": "4"}).id
        rm = create_user(platform, s, "rm@bench.test", name="Rm", roles=["regional_manager"])
        rm_st = records.create(
            "commission_statements", {"salesperson": rm, "month": month, "plan": plan}
        ).id
        sellers, opps = [], []
        for i in range(team):
            u = create_user(platform, s, f"s{i}@bench.test", name=f"S{i}", roles=["salesperson"])
            st = records.create(
                "commission_statements",
                {"salesperson": u, "month": month, "plan": plan, "manager_statement": rm_st},
            ).id
            sellers.append((u, st))
            for k in range(deals):
                opps.append(
                    (
                        u,
                        st,
                        records.create(
                            "opportunities",
                            {"name": f"D{i}.{k}", "customer": customer, "owner": u,
                             "stage": "won", "amount": str(10000 + 1000 * k),
                             "closed_on": date(2026, 3, 1 + k % 28),
                             "product": product if k % 3 == 0 else None},
                        ).id,
                    )
                )  # fmt: skip
    return {"rm_statement": rm_st, "opps": opps}


def run(db: str, team: int, deals: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_refresh_"))
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'bench.sqlite'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = (
            sa.engine.make_url(PG_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    engine = make_engine(url)
    try:
        platform = Platform(
            Config(database_url=url, data_dir=tmp, secret_key="bench"), engine=engine
        )
        data = setup(platform, team, deals)
        counter = Counter(engine)
        instrument(counter)
        results: dict[str, dict] = {}
        created: list[int] = []
        for phase in ("create", "update"):
            rows = []
            for n, (u, st, opp) in enumerate(data["opps"]):
                counter.reset()
                t0 = time.perf_counter()
                with platform.session(write=True) as s, s.begin():
                    records = platform.records(s, Actor.system_actor())
                    if phase == "create":
                        created.append(
                            records.create(
                                "commission_credits",
                                {"opportunity": opp, "salesperson": u, "statement": st},
                            ).id
                        )
                    else:
                        records.update("commission_credits", created[n], {"share": "50"})
                ms = (time.perf_counter() - t0) * 1000
                rows.append(
                    (ms, counter.refresh_s * 1000, counter.total, counter.refresh, counter.updates)
                )
                last_log = counter.log
            rows = rows[2:]  # warm-up: caches filled by the first writes
            results[phase] = {
                "ms": statistics.median(r[0] for r in rows),
                "refresh_ms": statistics.median(r[1] for r in rows),
                "statements": statistics.median(r[2] for r in rows),
                "refresh_statements": statistics.median(r[3] for r in rows),
                "updates": statistics.median(r[4] for r in rows),
                "log": last_log,
            }
        check(platform, data["rm_statement"])
        return results
    finally:
        engine.dispose()
        if schema:
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def check(platform: Platform, rm_statement: int) -> None:
    """The stored figures are what the written credits give (so the refresh missed
    nothing): each statement's won amount and deal count, its total, the override."""
    from decimal import Decimal

    with platform.session() as s:
        records = platform.records(s, Actor.system_actor())
        credits = [r.values for r in records.list("commission_credits", limit=1000).records]
        statements = {
            r.id: r.values for r in records.list("commission_statements", limit=100).records
        }
    for sid, st in statements.items():
        mine = [c for c in credits if c["statement"] == sid]
        assert st["won_amount"] == sum((c["amount"] for c in mine), Decimal(0)), st
        assert st["deals"] == len(mine), st
        assert st["total"] == st["net_commission"] + st["override"], st
    team = sum(
        (
            st["net_commission"]
            for st in statements.values()
            if st["manager_statement"] == rm_statement
        ),
        Decimal(0),
    )
    assert statements[rm_statement]["override"] == round(team * 2 / 100, 2), statements[
        rm_statement
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--team", type=int, default=4)
    ap.add_argument("--deals", type=int, default=8)
    ap.add_argument("--log", action="store_true", help="print the refresh's SQL of the last write")
    args = ap.parse_args()
    res = run(args.db, args.team, args.deals)
    load = os.getloadavg()
    for phase, r in res.items():
        print(
            f"{args.db} credit {phase}: {r['ms']:.1f} ms/write (refresh {r['refresh_ms']:.1f} ms), "
            f"{r['statements']:.0f} statements (refresh {r['refresh_statements']:.0f}, "
            f"UPDATEs {r['updates']:.0f})"
        )
        if args.log:
            for stmt in r["log"]:
                print("   ", " ".join(stmt.split())[:4000])
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
