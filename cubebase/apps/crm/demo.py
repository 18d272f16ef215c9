"""The CRM's demo company: generated, seeded and reproducible.

``load_demo(platform, seed=..., today=...)`` fills an installed CRM that holds no
customers yet with a believable company: 3 regions of 2 areas each, a 3-level
department tree, 41 users in every role, 20,000 customers, 60,000
interactions, 8,000 opportunities, contacts, activities, products, dealer
orders, commission plans (each salesperson and regional manager with theirs), six
months of statements with their credits and clawbacks, consulting projects at every
step of their workflow and customer transfers waiting for approval. The same seed and ``today`` give the same data.

Everything is written through the records service as the system actor
(``bulk_create`` in chunks): the same validation, defaults, stored formulas and
history as any other write path; workflow steps are taken through the workflow
engine as the users whose tasks they are.

The commission records are what the CRM's automations make (docs/crm.md): the
history is written in bulk while they are paused (``automations.paused()``: through
the automations, one credit at a time, the load took minutes), and the deals won in
the last ``LIVE_WIN_DAYS`` days are won after the load through them, as a
salesperson records a win.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ...platform.actor import Actor
from ...platform.users import create_user, find_user_id, load_actor
from . import demo_commissions

DEFAULT_SEED = 2026
DEMO_PASSWORD = "crm-demo-1"  # noqa: S105 - the demo's published sample login
CHUNK = 5000
LIVE_WIN_DAYS = 3  # the wins of these last days go through the automations
DOMAIN = "crm.example"

VOLUMES = {
    "customers": 20_000,
    "interactions": 60_000,
    "opportunities": 8_000,
    "contacts": 6_000,
    "activities": 3_000,
    "orders": 300,
}

REGIONS = {  # top region -> its areas
    "North": ["Beijing", "Shenyang"],
    "East": ["Shanghai", "Hangzhou"],
    "South": ["Guangzhou", "Shenzhen"],
}

PRODUCTS = [  # name, category, price, product-specific commission rate (None: tiers)
    ("Print Suite", "software", 12000, None),
    ("Print Suite Cloud", "subscription", 4800, None),
    ("Ad Manager", "software", 26000, None),
    ("Newsroom CMS", "software", 54000, None),
    ("Kitchen Line 500", "hardware", 3400, None),
    ("Kitchen Line 900", "hardware", 7900, None),
    ("Cold Chain Sensor Kit", "hardware", 1500, "8"),
    ("Field Service App", "subscription", 6000, None),
    ("Implementation Days", "service", 9000, "10"),
    ("Process Audit", "service", 18000, "12"),
    ("Training Package", "service", 4000, "6"),
    ("Support Premium", "subscription", 7200, None),
]

FIRST = "Wei Li Jun Fang Ming Hui Yan Ling Jie Tao Xin Hao Lei Na Qiang Yun Bo Min".split()
LAST = "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin".split()
CORES = (
    "Harbor Pioneer Golden Summit Jade Orient Northstar Crystal Lotus Phoenix Unity Evergreen "
    "Silverline Bright Horizon Dragon Pearl Riverbend Skyline Bamboo Redwood Cedar Maple Sunrise "
    "Tianhe Pudong Xinhua Huaxia Changjiang Yellow River Minjiang"
).split()
KINDS = (
    "Media Printing Appliances Electronics Software Systems Consulting Trading Logistics Foods "
    "Textiles Machinery Publishing Retail Networks"
).split()
SUFFIX = ["Ltd", "Co.", "Group", "Holdings", "Corp.", "Partners"]
STREETS = ["Renmin Road", "Zhongshan Road", "Jiefang Avenue", "Nanjing Road", "Huaihai Road"]
PLACES = ["customer's office", "our office", "phone", "trade fair", "video call", "restaurant"]
RESULTS = [
    "Interested, wants a quote",
    "Needs approval from the board",
    "Not now, call again next quarter",
    "Asked for a demo",
    "Compared us with a competitor",
    "Agreed on the next meeting",
]
NEXT_STEPS = ["Send a quote", "Call back", "Visit with an engineer", "Send references", "None"]
TOPICS = ["renewal", "new product line", "pricing", "a complaint", "the roll-out", "training"]


@dataclass
class DemoStats:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False

    def describe(self) -> str:
        if self.skipped:
            return "The CRM already holds customers: no demo data loaded."
        parts = ", ".join(f"{n:,} {k}" for k, n in self.counts.items())
        return f"Demo data loaded in {self.seconds:.1f} s: {parts}."


@dataclass
class Person:
    id: int
    email: str
    region: int | None = None  # an area for salespeople, a top region for managers
    top: str | None = None


class _Gen:
    def __init__(self, platform, seed: int, today: date):
        self.platform = platform
        self.rng = random.Random(seed)
        self.today = today
        self.stats = DemoStats()
        self.region_ids: dict[str, int] = {}
        self.dept_ids: dict[str, int] = {}
        self.users: dict[str, list[Person]] = {}
        self.by_email: dict[str, Person] = {}

    # --- helpers --------------------------------------------------------------------
    def bulk(self, session, table: str, rows: list[dict]) -> list[int]:
        records = self.platform.records(session, Actor.system_actor())
        ids: list[int] = []
        for start in range(0, len(rows), CHUNK):
            ids += records.bulk_create(table, rows[start : start + CHUNK])
        self.stats.counts[table] = self.stats.counts.get(table, 0) + len(ids)
        return ids

    def person_name(self) -> str:
        return f"{self.rng.choice(LAST)} {self.rng.choice(FIRST)}"

    def day(self, back: int, ahead: int = 0) -> date:
        return self.today + timedelta(days=self.rng.randint(-back, ahead))

    # --- organisation ---------------------------------------------------------------
    def org(self, session) -> None:
        top = self.bulk(session, "regions", [{"name": name} for name in REGIONS])
        self.region_ids.update(zip(REGIONS, top, strict=True))
        areas = [(a, self.region_ids[r]) for r, names in REGIONS.items() for a in names]
        ids = self.bulk(session, "regions", [{"name": a, "parent": p} for a, p in areas])
        self.region_ids.update(zip([a for a, _ in areas], ids, strict=True))

        def depts(rows: list[tuple[str, str | None, str | None]]) -> None:
            made = self.bulk(
                session,
                "departments",
                [
                    {
                        "name": n,
                        "parent": self.dept_ids.get(p) if p else None,
                        "region": self.region_ids.get(r) if r else None,
                    }
                    for n, p, r in rows
                ],
            )
            self.dept_ids.update(zip([n for n, _, _ in rows], made, strict=True))

        depts([("Headquarters", None, None)])
        divisions = ["Sales", "Consulting", "Finance", "Admin Office", "Marketing", "Service"]
        depts([(d, "Headquarters", None) for d in divisions])
        depts(
            [(f"Sales {r}", "Sales", r) for r in REGIONS]
            + [("Consulting Group", "Consulting", None)]
        )

    def add_users(self, session) -> None:
        records = self.platform.records(session, Actor.system_actor())

        def add(email, roles, position, dept, region=None, manager=None, top=None) -> Person:
            uid = create_user(
                self.platform,
                session,
                f"{email}@{DOMAIN}",
                name=self.person_name(),
                roles=roles,
                password=DEMO_PASSWORD,
            )
            values = {"position": position, "department": self.dept_ids[dept]}
            if region:
                values["region"] = self.region_ids[region]
            if manager:
                values["manager"] = manager.id
            records.update("users", uid, values)
            p = Person(uid, f"{email}@{DOMAIN}", self.region_ids.get(region), top)
            for r in roles:
                self.users.setdefault(r, []).append(p)
            self.by_email[email] = p
            return p

        md = add("md", ["director"], "Managing director", "Headquarters")
        sd = add("sales.director", ["director"], "Sales director", "Sales", manager=md)
        for region, areas in REGIONS.items():
            low = region.lower()
            rm = add(f"rm.{low}", ["regional_manager"], "Regional manager", f"Sales {region}",
                     region, sd, region)  # fmt: skip
            for i in range(6):
                area = areas[i % 2]
                add(f"sales.{low}{i + 1}", ["salesperson"], "Account manager", f"Sales {region}",
                    area, rm, region)  # fmt: skip
            add(f"dealer.{low}", ["dealer"], "Dealer", "Sales", region, rm, region)
        for i in (1, 2):
            add(f"finance{i}", ["finance"], "Accountant", "Finance", manager=md)
            add(f"office{i}", ["admin_office"], "Office clerk", "Admin Office", manager=md)
            add(f"marketing{i}", ["marketing"], "Marketing manager", "Marketing", manager=md)
            add(f"service{i}", ["service"], "Service engineer", "Service", manager=md)
        td = add(
            "tech.director", ["technical_director"], "Technical director", "Consulting", manager=md
        )
        leader = add(
            "group.leader", ["group_leader"], "Group leader", "Consulting Group", manager=td
        )
        for i in (1, 2):
            add(f"consultant{i}", ["consultant"], "Consultant", "Consulting Group", manager=leader)
        add("reviewer", ["company_reviewer"], "Company reviewer", "Consulting", manager=td)
        add("process", ["process_reviewer"], "Process reviewer", "Consulting", manager=td)
        add("print", ["print_office"], "Print office", "Admin Office", manager=md)
        self.stats.counts["users"] = len(self.by_email)

    # --- products and customers -------------------------------------------------------
    def products(self, session) -> None:
        rows = [
            {"name": n, "category": c, "price": str(p), "commission_rate": rate}
            for n, c, p, rate in PRODUCTS
        ]
        self.product_ids = self.bulk(session, "products", rows)
        self.product_rate = {
            pid: rate for pid, (_, _, _, rate) in zip(self.product_ids, PRODUCTS, strict=True)
        }
        self.product_price = {
            pid: p for pid, (_, _, p, _) in zip(self.product_ids, PRODUCTS, strict=True)
        }

    def customers(self, session) -> None:
        rng = self.rng
        sales_by_top: dict[str, list[Person]] = {}
        for p in self.users["salesperson"]:
            sales_by_top.setdefault(p.top, []).append(p)
        self.sales_by_top = sales_by_top
        rows, meta = [], []
        for i in range(VOLUMES["customers"]):
            top = rng.choice(list(REGIONS))
            area = rng.choice(REGIONS[top])
            owner = rng.choice(sales_by_top[top]) if rng.random() < 0.8 else None
            if owner:
                stage = rng.choices(
                    ["lead", "potential", "customer", "lost", "inactive"], [25, 25, 35, 8, 7]
                )[0]
            else:
                stage = rng.choices(["lead", "lost", "inactive"], [85, 5, 10])[0]
            full = stage == "customer" or rng.random() < 0.7
            contact = stage in ("potential", "customer") or rng.random() < 0.7
            name = f"{rng.choice(CORES)} {rng.choice(KINDS)} {rng.choice(SUFFIX)}"
            row = {
                "name": f"{name} ({area} {i + 1})" if rng.random() < 0.5 else f"{name} {i + 1}",
                "stage": stage,
                "region": self.region_ids[area],
                "account_manager": owner.id if owner else None,
                "industry": rng.choice(
                    ["media", "appliances", "software", "consulting", "manufacturing", "retail"]
                )
                if contact
                else None,
                "phone": f"+86 {rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
                if contact
                else None,
                "contact_person": self.person_name() if contact else None,
                "email": f"info{i + 1}@customer{i + 1}.example" if rng.random() < 0.8 else None,
                "source": rng.choice(["website", "referral", "fair", "cold call", "campaign"]),
                "potential_value": str(rng.randrange(5, 500) * 1000),
                "annual_revenue": str(rng.randrange(1, 900) * 100_000),
            }
            if full:
                row.update(
                    category=rng.choice(["key account", "regular", "small", "channel"]),
                    fax=f"+86 {rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                    postcode=str(rng.randint(100000, 999999)),
                    mailing_address=f"{rng.randint(1, 999)} {rng.choice(STREETS)}, {area}",
                )
            if stage == "lost":
                row["lost_reason"] = rng.choice(["price", "competitor", "no budget", "no reply"])
            rows.append(row)
            meta.append((owner, top, stage))
        ids = self.bulk(session, "customers", rows)
        self.customer_meta = list(zip(ids, meta, strict=True))
        self.owned = [(cid, o, top, st) for cid, (o, top, st) in self.customer_meta if o]

    def contacts(self, session) -> None:
        rng = self.rng
        rows = []
        for _ in range(VOLUMES["contacts"]):
            cid, _meta = rng.choice(self.customer_meta)
            rows.append(
                {
                    "customer": cid,
                    "name": self.person_name(),
                    "title": rng.choice(["CEO", "Buyer", "IT manager", "Editor", "CFO"]),
                    "phone": f"+86 1{rng.randint(30, 89)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                    "birthday": date(
                        rng.randint(1960, 2000), rng.randint(1, 12), rng.randint(1, 28)
                    ).isoformat(),
                }
            )
        self.bulk(session, "contacts", rows)

    def interactions(self, session) -> None:
        rng = self.rng
        rows = []
        yesterday = self.today - timedelta(days=1)
        for _ in range(VOLUMES["interactions"]):
            cid, (owner, top, _stage) = rng.choice(self.customer_meta)
            who = owner or rng.choice(self.sales_by_top[top])
            day = self.day(365)
            at = datetime(
                day.year, day.month, day.day, rng.randint(8, 18), rng.choice((0, 15, 30, 45))
            )
            closed = day <= yesterday and rng.random() < 0.95
            row = {
                "customer": cid,
                "salesperson": who.id,
                "time": at.isoformat(),
                "kind": rng.choice(["visit", "call", "call", "e-mail", "meeting"]),
                "content": f"Talked about {rng.choice(TOPICS)}.",
                "closed": closed,
            }
            if closed or rng.random() < 0.5:
                row.update(
                    place=rng.choice(PLACES),
                    result=rng.choice(RESULTS),
                    next_step=rng.choice(NEXT_STEPS),
                )
            rows.append(row)
        self.bulk(session, "interactions", rows)

    # --- the funnel and commissions ----------------------------------------------------
    def opportunities(self, session) -> None:
        rng = self.rng
        open_stages = {"prospecting": 10, "qualification": 25, "proposal": 50, "negotiation": 75}
        rows, self.deals, self.to_win = [], [], []
        active = [o for o in self.owned if o[3] in ("potential", "customer", "lost")]
        for i in range(VOLUMES["opportunities"]):
            cid, owner, top, cstage = rng.choice(active)
            stage = rng.choices(
                [*open_stages, "won", "lost", "cancelled"], [14, 12, 14, 13, 30, 15, 2]
            )[0]
            if cstage == "potential" and stage in ("won", "cancelled"):
                stage = "negotiation"
            pid = rng.choice(self.product_ids)
            amount = Decimal(self.product_price[pid] * rng.randint(1, 12))
            row = {
                "name": f"{PRODUCTS[self.product_ids.index(pid)][0]} #{i + 1}",
                "customer": cid,
                "owner": owner.id,
                "product": pid,
                "stage": stage,
                "amount": str(amount),
                "probability": open_stages.get(stage, 100 if stage == "won" else 0),
                "expected_close": self.day(30, 180).isoformat(),
            }
            co = None
            if rng.random() < 0.1:
                co = rng.choice([p for p in self.sales_by_top[top] if p is not owner])
                row.update(co_seller=co.id, owner_share=rng.choice(["50", "60", "70"]))
            if stage in ("won", "lost", "cancelled"):
                closed = self.day(200)
                row["closed_on"] = closed.isoformat()
                row["expected_close"] = closed.isoformat()
                if stage == "cancelled":
                    cancelled = min(self.today, closed + timedelta(days=rng.randint(5, 60)))
                    row["cancelled_on"] = cancelled.isoformat()
                elif stage == "won" and closed > self.today - timedelta(days=LIVE_WIN_DAYS):
                    # won in the last days: written in negotiation, won after the load
                    # through the automations (which credit it), as a salesperson would
                    row.update(stage="negotiation", probability=75, closed_on=None)
                    self.to_win.append((i, closed.isoformat()))
            rows.append(row)
        ids = self.bulk(session, "opportunities", rows)
        self.deals = list(zip(ids, rows, strict=True))
        self.to_win = [(ids[i], day) for i, day in self.to_win]

    # --- plans, orders ------------------------------------------------------------------
    def activities(self, session) -> None:
        rng = self.rng
        rows = []
        for _ in range(VOLUMES["activities"]):
            cid, owner, _top, _st = rng.choice(self.owned)
            day = self.day(30, 30)
            rows.append(
                {
                    "subject": f"{rng.choice(['Visit', 'Call', 'Demo for', 'Meeting with'])} customer {cid}",
                    "kind": rng.choice(["visit", "call", "meeting", "demo"]),
                    "date": day.isoformat(),
                    "customer": cid,
                    "assigned_to": owner.id,
                    "done": day < self.today and rng.random() < 0.8,
                }
            )
        self.bulk(session, "activities", rows)

    def orders(self, session) -> None:
        rng = self.rng
        rows = []
        for _ in range(VOLUMES["orders"]):
            dealer = rng.choice(self.users["dealer"])
            pid = rng.choice(self.product_ids[:8])
            rows.append(
                {
                    "dealer": dealer.id,
                    "end_customer": f"{rng.choice(CORES)} {rng.choice(KINDS)}",
                    "product": pid,
                    "quantity": rng.randint(1, 40),
                    "unit_price": str(self.product_price[pid]),
                    "ordered_on": self.day(120).isoformat(),
                    "status": rng.choice(["new", "confirmed", "shipped", "shipped", "cancelled"]),
                }
            )
        self.bulk(session, "orders", rows)

    # --- workflows in flight -------------------------------------------------------------
    def workflows(self) -> None:
        """Consulting projects at every step (one sent back once), and customer
        transfers waiting for the receiving manager."""
        from ...workflows.engine import install
        from ...workflows.inbox import inbox

        engine = install(self.platform)
        p = self.platform
        leader, cons = self.by_email["group.leader"], self.users["consultant"]
        steps = [  # (actor's email, action, fields, comment) from the start
            (
                "consultant{c}",
                "submit",
                {"report": "On-site findings: processes mapped, 14 issues."},
                None,
            ),
            ("group.leader", "approve", None, None),
            ("reviewer", "approve", None, None),
            ("process", "approve", None, None),
            ("tech.director", "approve", {"score": 78}, None),
        ]
        customers = [cid for cid, _o, _t, st in self.owned[:7] if st]
        for n in range(7):
            with p.session(write=True) as session, session.begin():
                c = cons[n % 2]
                project = p.records(session, Actor.system_actor()).create(
                    "projects",
                    {
                        "name": f"Process audit {n + 1}",
                        "customer": customers[n],
                        "consultant": c.id,
                        "group_leader": leader.id,
                    },
                )
            path = list(steps[: min(n, len(steps))])
            if n == 3:  # sent back once by the group leader
                path[1:1] = [("group.leader", "reject", None, "Add the interview notes")] + path[:1]
            for who, action, fields, comment in path:
                email = who.format(c=1 + n % 2)
                with p.session(write=True) as session, session.begin():
                    actor = load_actor(p, session, find_user_id(p, session, f"{email}@{DOMAIN}"))
                    tasks = [
                        t
                        for t in inbox(p, session, actor)
                        if t["record_id"] == project.id and t["table"] == "projects"
                    ]
                    engine.complete(session, actor, tasks[0]["id"], action, comment, fields)
        self.stats.counts["projects"] = 7
        # three transfers waiting for approval
        with p.session(write=True) as session, session.begin():
            records = p.records(session, Actor.system_actor())
            for top in REGIONS:
                sellers = self.sales_by_top[top]
                cid = next(c for c, o, t, st in self.owned if t == top and o is sellers[0])
                records.update(
                    "customers",
                    cid,
                    {
                        "transfer_to": sellers[1].id,
                        "transfer_reason": "Closer to the customer's site",
                    },
                )

    def run(self) -> DemoStats:
        started = time.perf_counter()
        p = self.platform
        with p.session(write=True) as session, session.begin():
            self.org(session)
            self.add_users(session)
            self.products(session)
            demo_commissions.plans(self, session)
        for step in (
            self.customers,
            self.contacts,
            self.interactions,
            self.opportunities,
            lambda session: demo_commissions.commissions(self, session),
            self.activities,
            self.orders,
        ):
            with p.session(write=True) as session, session.begin():
                step(session)
        from ...workflows.engine import install as install_workflows

        install_workflows(p)  # the instances in flight are started by the engine
        self.workflows()
        self.stats.seconds = time.perf_counter() - started
        return self.stats


def load_demo(platform, *, seed: int = DEFAULT_SEED, today: date | None = None) -> DemoStats:
    """Generate the demo company into an installed CRM without customers."""
    with platform.session() as session:
        records = platform.records(session, Actor.system_actor())
        if records.count("customers") > 0:
            return DemoStats(skipped=True)
    from ...workflows.automations import install as install_automations
    from ...workflows.automations import paused

    install_automations(platform)
    gen = _Gen(platform, seed, today or datetime.now(UTC).date())
    with paused():  # the bulk load writes the credits itself (docs/crm.md)
        stats = gen.run()
    started = time.perf_counter()
    demo_commissions.win_recent_deals(gen)  # ... and the last days' wins go through the automations
    stats.seconds += time.perf_counter() - started
    return stats
