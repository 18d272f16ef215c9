"""The demo's commission records (``demo.py`` calls these with its generator).

They are what the CRM's automations make (docs/crm.md "Automations"): the history
is written in bulk while the automations are paused, and the last days' wins go
through them after the load.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ...platform.actor import Actor

if TYPE_CHECKING:
    from .demo import _Gen


def plans(gen: _Gen, session: Session) -> None:
    """The plans, and each salesperson's and regional manager's plan on their user
    (the automations read it when they open a statement)."""
    plans = gen.bulk(
        session,
        "commission_plans",
        [
            {"name": "Standard", "tier1_limit": "50000", "tier1_rate": "3",
             "tier2_limit": "150000", "tier2_rate": "5", "tier3_rate": "7"},
            {"name": "Regional manager", "tier1_limit": "50000", "tier1_rate": "3",
             "tier2_limit": "150000", "tier2_rate": "5", "tier3_rate": "7",
             "manager_override": "2"},
        ],
    )  # fmt: skip
    gen.plan_ids = plans
    records = gen.platform.records(session, Actor.system_actor())
    for role, plan in (("salesperson", plans[0]), ("regional_manager", plans[1])):
        for p in gen.users[role]:
            records.update("users", p.id, {"commission_plan": plan})


def commissions(gen: _Gen, session: Session) -> None:
    """Six months of statements (the manager's linked), the credits of the deals won
    in them and the clawbacks of the cancelled ones: what the CRM's automations
    make (credit_won_deal, credit_won_deal_co_seller, link_manager_statement,
    claw_back_cancelled_deals), written in bulk while they are paused."""
    plans = gen.plan_ids
    first = gen.today.replace(day=1)
    months = []
    for back in range(6):
        y, m = first.year, first.month - back
        while m < 1:
            y, m = y - 1, m + 12
        months.append(date(y, m, 1))
    managers = gen.users["regional_manager"]
    rm_rows = [
        {"salesperson": p.id, "month": m.isoformat(), "plan": plans[1]}
        for p in managers
        for m in months
    ]
    rm_ids = gen.bulk(session, "commission_statements", rm_rows)
    rm_of = {(r["salesperson"], r["month"]): sid for r, sid in zip(rm_rows, rm_ids, strict=True)}
    top_manager = {p.top: p.id for p in managers}
    sp_rows = [
        {
            "salesperson": p.id,
            "month": m.isoformat(),
            "plan": plans[0],
            "manager_statement": rm_of[(top_manager[p.top], m.isoformat())],
        }
        for p in gen.users["salesperson"]
        for m in months
    ]
    sp_ids = gen.bulk(session, "commission_statements", sp_rows)
    statement = {
        (r["salesperson"], r["month"]): sid for r, sid in zip(sp_rows, sp_ids, strict=True)
    }
    statement.update(rm_of)
    credits = []
    for oid, d in gen.deals:
        if d["stage"] not in ("won", "cancelled"):
            continue
        won = date.fromisoformat(d["closed_on"]).replace(day=1).isoformat()
        back = None
        if d["stage"] == "cancelled":
            back = date.fromisoformat(d["cancelled_on"]).replace(day=1).isoformat()
        share = Decimal(d.get("owner_share", "100"))
        sellers = [(d["owner"], share)]
        if d.get("co_seller"):
            sellers.append((d["co_seller"], Decimal(100) - share))
        for who, part in sellers:
            sid = statement.get((who, won))
            if sid is None:
                continue  # won before the statements start
            credits.append(
                {
                    "opportunity": oid,
                    "salesperson": who,
                    "share": str(part),
                    "statement": sid,
                    "clawback_statement": statement.get((who, back)) if back else None,
                }
            )
    gen.bulk(session, "commission_credits", credits)
    # earlier months are paid, last month approved, this month a draft
    records = gen.platform.records(session, Actor.system_actor())
    for rows, ids in ((rm_rows, rm_ids), (sp_rows, sp_ids)):
        for r, sid in zip(rows, ids, strict=True):
            month = date.fromisoformat(r["month"])
            if month < months[1]:
                records.update("commission_statements", sid, {"status": "paid"})
            elif month == months[1]:
                records.update("commission_statements", sid, {"status": "approved"})


def win_recent_deals(gen: _Gen) -> None:
    """The last days' wins, as salespeople record them: each update runs the CRM's
    automations, which credit the deal on its sellers' statements."""
    with gen.platform.session(write=True) as session, session.begin():
        records = gen.platform.records(session, Actor.system_actor())
        for oid, closed_on in gen.to_win:
            records.update(
                "opportunities",
                oid,
                {"stage": "won", "closed_on": closed_on, "probability": 100},
            )
        gen.stats.counts["commission_credits"] = records.count("commission_credits")
