"""The CRM's stories, played through the REST API as the people in them, on
SQLite and PostgreSQL (crm.md problems 2, 3, 4, 10, 12, 13)."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta
from decimal import Decimal

from .conftest import CUSTOMERS

API = "/api/v1/tables"


def rec(resp, status=200) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    return resp.get_json()


def err(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    return resp.get_json()["error"]


def tasks(client) -> list[dict]:
    return rec(client.get("/api/v1/tasks"))["tasks"]


def complete(client, task_id, action, comment=None, fields=None, status=200):
    body = {"action": action}
    if comment:
        body["comment"] = comment
    if fields:
        body["fields"] = fields
    return client.post(f"/api/v1/tasks/{task_id}/complete", json=body), status


# --- problem 2: one owner ---------------------------------------------------------------


def test_two_salespeople_claim_the_same_customer_at_the_same_moment(co):
    cid = co.ids("customers")["Unowned North"]
    ann, bob = co.ann, co.bob
    # both see it in the pool, at the same version
    seen = [rec(c.get(f"{API}/customers/records/{cid}")) for c in (ann, bob)]
    assert {s["version"] for s in seen} == {seen[0]["version"]}
    barrier = threading.Barrier(2)
    answers: dict[str, object] = {}

    def claim(who: str, client) -> None:
        body = {"fields": {"account_manager": co.uid(who)}, "version": seen[0]["version"]}
        barrier.wait()
        answers[who] = client.patch(f"{API}/customers/records/{cid}", json=body)

    threads = [threading.Thread(target=claim, args=(w, c)) for w, c in (("ann", ann), ("bob", bob))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers.values())
    # the loser's claim is refused: 409 when both read the record before either wrote
    # (PostgreSQL), 404 when the writes queue (SQLite): the customer has left the pool
    assert codes in ([200, 404], [200, 409]), {w: r.get_json() for w, r in answers.items()}
    winner = next(w for w, r in answers.items() if r.status_code == 200)
    loser = "bob" if winner == "ann" else "ann"
    assert answers[loser].get_json()["error"]["code"] in ("conflict", "not_found")
    owner = rec(co.admin.get(f"{API}/customers/records/{cid}"))["fields"]["account_manager"]
    assert owner == co.uid(winner)
    # the loser tries again with the fresh version: the customer is no longer theirs to see
    again = {"fields": {"account_manager": co.uid(loser)}}
    err(co.client(loser).patch(f"{API}/customers/records/{cid}", json=again), 404)
    # the claim is audited: who took it, when
    history = rec(co.admin.get(f"{API}/customers/records/{cid}/history"))["history"]
    claims = [h for h in history if any(c["field"] == "account_manager" for c in h["changes"])]
    assert len(claims) == 1 and claims[0]["at"]
    assert claims[0]["by"] == co.uid(winner) or claims[0]["by"].get("id") == co.uid(winner)


def test_a_salesperson_cannot_take_or_hand_over_an_owned_customer(co):
    ids = co.ids("customers")
    # bob cannot see ann's customer, so cannot take it
    err(co.bob.patch(f"{API}/customers/records/{ids['Beijing Media']}",
                     json={"fields": {"account_manager": co.uid("bob")}}), 404)  # fmt: skip
    # ann cannot give hers to bob directly: that is what the transfer workflow is for
    e = err(co.ann.patch(f"{API}/customers/records/{ids['North Star Appliances']}",
                         json={"fields": {"account_manager": co.uid("bob")}}), 403)  # fmt: skip
    assert "out of your reach" in e["message"]


def test_transfer_needs_the_receiving_managers_approval(co):
    cid = co.ids("customers")["Beijing Media"]
    note = rec(
        co.ann.post(
            f"{API}/interactions/records",
            json={
                "fields": {
                    "customer": cid,
                    "salesperson": co.uid("ann"),
                    "time": "2026-03-02T10:00:00",
                    "content": "Intro",
                }
            },  # fmt: skip
        ),
        201,
    )
    # ann asks to hand the customer to bob; bob's manager (rm.north) decides
    rec(co.ann.patch(f"{API}/customers/records/{cid}",
                     json={"fields": {"transfer_to": co.uid("bob"), "transfer_reason": "Moved"}}))  # fmt: skip
    assert tasks(co.bob) == [] and tasks(co.ann) == []
    (task,) = tasks(co.rm_north)
    assert task["workflow"] == "customer_transfer" and task["record_id"] == cid
    # while the transfer runs, nobody else changes the account manager or the request
    assert err(co.admin.patch(f"{API}/customers/records/{cid}",
                              json={"fields": {"account_manager": co.uid("cai")}}), 409)["code"] == "locked"  # fmt: skip
    assert err(co.ann.patch(f"{API}/customers/records/{cid}",
                            json={"fields": {"transfer_to": co.uid("cai")}}), 409)["code"] == "locked"  # fmt: skip
    # accepting is one click: the workflow hands the customer over (as the system)
    resp, _ = complete(co.rm_north, task["id"], "approve")
    assert resp.status_code == 200, resp.get_json()
    customer = rec(co.bob.get(f"{API}/customers/records/{cid}"))
    assert customer["fields"]["account_manager"] == co.uid("bob")
    assert customer["fields"]["transfer_to"] is None
    assert customer["fields"]["transfer_reason"] is None
    err(co.ann.get(f"{API}/customers/records/{cid}"), 404)
    # the customer's history has the change; the workflow's history says who accepted
    history = rec(co.admin.get(f"{API}/customers/records/{cid}/history"))["history"]
    moved = [h for h in history if any(c["field"] == "account_manager" for c in h["changes"])][-1]
    change = next(c for c in moved["changes"] if c["field"] == "account_manager")
    assert (change["old"], change["new"]) == (co.uid("ann"), co.uid("bob"))
    from cubebase.workflows.engine import engine_of
    from cubebase.workflows.models import Instance

    with co.platform.session() as s:
        (inst,) = s.query(Instance).filter_by(record_id=cid, table_key="customers").all()
        assert inst.status == "done"
        event = engine_of(co.platform).history(s, inst.id)[-1]
    assert event["actor_id"] == co.uid("rm.north") and event["action"] == "approve"
    assert event["changes"]["account_manager"] == [co.uid("ann"), co.uid("bob")]
    # the communication history went with the customer
    notes = co.all("bob", "interactions", '&filter=customer.name = "Beijing Media"')
    assert [n["id"] for n in notes] == [note["id"]]


def test_a_manager_reassigns_a_departed_salespersons_customers_in_one_call(co):
    ann, bob = co.uid("ann"), co.uid("bob")
    mine = [c for c in co.all("rm.north", "customers") if c["fields"]["account_manager"] == ann]
    assert {c["fields"]["name"] for c in mine} == {"Beijing Media", "North Star Appliances"}
    cid = mine[0]["id"]
    rec(co.ann.post(f"{API}/interactions/records",
                    json={"fields": {"customer": cid, "salesperson": ann, "time": "2026-03-02T10:00:00", "content": "x"}}), 201)  # fmt: skip
    body = {
        "records": [
            {"id": c["id"], "version": c["version"], "fields": {"account_manager": bob}}
            for c in mine
        ]
    }
    done = rec(co.rm_north.post(f"{API}/customers/records/bulk", json=body))
    assert [r["fields"]["account_manager"] for r in done["records"]] == [bob, bob]
    assert [c for c in co.all("ann", "customers") if c["fields"]["account_manager"]] == []
    assert {c["id"] for c in co.all("bob", "customers")} >= {c["id"] for c in mine}
    name = mine[0]["fields"]["name"]
    assert len(co.all("bob", "interactions", f'&filter=customer.name = "{name}"')) == 1
    # a regional manager cannot reach customers of another region in the same call
    east = co.ids("customers")["Shanghai Soft"]
    body = {"records": [{"id": mine[0]["id"], "fields": {"account_manager": ann}},
                        {"id": east, "fields": {"account_manager": bob}}]}  # fmt: skip
    assert co.rm_north.post(f"{API}/customers/records/bulk", json=body).status_code == 404
    # all or nothing: the first item was not written either
    assert (
        rec(co.bob.get(f"{API}/customers/records/{mine[0]['id']}"))["fields"]["account_manager"]
        == bob
    )


# --- problem 3: honest records --------------------------------------------------------------


def test_a_closed_interaction_refuses_every_write_path(co):
    cid = co.ids("customers")["Beijing Media"]
    fields = {
        "customer": cid,
        "salesperson": co.uid("ann"),
        "time": "2026-03-02T10:00:00",
        "place": "customer's office",
        "content": "Quarterly visit",
        "result": "Wants a quote",
        "next_step": "Send the quote",
    }
    note = rec(co.ann.post(f"{API}/interactions/records", json={"fields": fields}), 201)
    nid = note["id"]
    # a review is requested: the manager gets a task that may change the result
    note = rec(co.ann.patch(f"{API}/interactions/records/{nid}",
                            json={"fields": {"review_requested": True}}))  # fmt: skip
    (review,) = tasks(co.rm_north)
    # closing needs its fields, then it is the record's last change
    note = rec(co.ann.patch(f"{API}/interactions/records/{nid}", json={"fields": {"closed": True}}))
    url = f"{API}/interactions/records/{nid}"
    for client in (co.ann, co.rm_north, co.admin):
        assert (
            err(client.patch(url, json={"fields": {"result": "changed"}}), 409)["code"] == "locked"
        )
        assert err(client.delete(url), 409)["code"] == "locked"
    e = err(co.ann.patch(url, json={"fields": {"closed": False}, "version": note["version"]}), 409)
    assert e["code"] == "locked"
    bulk = {"records": [{"id": nid, "fields": {"next_step": "changed"}}]}
    assert (
        err(co.admin.post(f"{API}/interactions/records/bulk", json=bulk), 409)["code"] == "locked"
    )
    resp, _ = complete(co.rm_north, review["id"], "approve", fields={"result": "Reviewed"})
    assert err(resp, 409)["code"] == "locked"
    after = rec(co.admin.get(url))
    assert after["version"] == note["version"] and after["fields"]["result"] == "Wants a quote"


def test_an_interaction_cannot_be_closed_incomplete(co):
    cid = co.ids("customers")["Beijing Media"]
    fields = {"customer": cid, "salesperson": co.uid("ann"), "time": "2026-03-02T10:00:00",
              "content": "Call", "closed": True}  # fmt: skip
    e = err(co.ann.post(f"{API}/interactions/records", json={"fields": fields}), 422)
    assert "place, result and next step" in str(e["details"])


def test_required_fields_per_lifecycle_stage_and_the_stage_history(co):
    created = rec(co.ann.post(f"{API}/customers/records",
                              json={"fields": {"name": "Fresh Lead", "account_manager": co.uid("ann"),
                                               "region": co.ids("regions")["Beijing"]}}), 201)  # fmt: skip
    url = f"{API}/customers/records/{created['id']}"
    assert created["fields"]["stage"] == "lead"
    e = err(co.ann.patch(url, json={"fields": {"stage": "potential"}}), 422)
    assert "phone number, a contact person and an industry" in str(e["details"])
    rec(co.ann.patch(url, json={"fields": {"stage": "potential", "phone": "+86 10 1234 5678",
                                           "contact_person": "Mr Wu", "industry": "media"}}))  # fmt: skip
    e = err(co.ann.patch(url, json={"fields": {"stage": "customer"}}), 422)
    assert "fax number, a postcode and a mailing address" in str(e["details"])
    rec(co.ann.patch(url, json={"fields": {"stage": "customer", "category": "regular",
                                           "fax": "+86 10 1234 5679", "postcode": "100001",
                                           "mailing_address": "1 Renmin Road"}}))  # fmt: skip
    e = err(co.rm_north.patch(url, json={"fields": {"stage": "lost"}}), 422)
    assert "why the customer was lost" in str(e["details"])
    rec(co.rm_north.patch(url, json={"fields": {"stage": "lost", "lost_reason": "price"}}))
    history = rec(co.olga.get(f"{url}/history"))["history"]
    moves = [
        (h["by"], c["old"], c["new"], h["at"])
        for h in history
        for c in h["changes"]
        if c["field"] == "stage" and h["action"] == "update"
    ]
    by = [m[0] if not isinstance(m[0], dict) else m[0].get("id") for m in moves]
    assert [(m[1], m[2]) for m in moves] == [
        ("lead", "potential"),
        ("potential", "customer"),
        ("customer", "lost"),
    ]
    assert by == [co.uid("ann"), co.uid("ann"), co.uid("rm.north")]
    assert all(m[3] for m in moves)
    # the admin office's daily list: incomplete customers and unclosed records
    rec(co.ann.post(f"{API}/customers/records", json={"fields": {"name": "Half Done"}}), 201)
    incomplete = co.all("olga", "customers", "&filter=incomplete")
    assert "Half Done" in {c["fields"]["name"] for c in incomplete}
    # the admin office reads everything and changes nothing
    err(co.olga.patch(url, json={"fields": {"name": "x"}}), 403)
    err(co.olga.post(f"{API}/customers/records", json={"fields": {"name": "x"}}), 403)


# --- problem 12: org structure as data --------------------------------------------------------


def test_a_regional_manager_sees_exactly_the_regions_subtree(co):
    names = {c["fields"]["name"] for c in co.all("rm.north", "customers")}
    assert names == {
        n for n, region, _o, _s in CUSTOMERS if region in ("North", "Beijing", "Shenyang")
    }
    names = {c["fields"]["name"] for c in co.all("rm.east", "customers")}
    assert names == {"Shanghai Soft", "Unowned East"}
    east = co.ids("customers")["Shanghai Soft"]
    err(co.rm_north.get(f"{API}/customers/records/{east}"), 404)
    # a salesperson: own customers and the unowned pool of every region
    names = {c["fields"]["name"] for c in co.all("ann", "customers")}
    assert names == {"Beijing Media", "North Star Appliances", "Unowned North", "Unowned East"}
    # the sales director sees the Sales subtree's customers, the managing director all owned
    names = {c["fields"]["name"] for c in co.all("sales.director", "customers")}
    assert names == {n for n, _r, o, _s in CUSTOMERS if o}
    assert {c["fields"]["name"] for c in co.all("md", "customers")} == names


def test_finance_never_receives_a_phone_number(co):
    phones = {c["fields"]["phone"] for c in co.all("admin", "customers")}
    assert len(phones) == len(CUSTOMERS)
    hidden = ("phone", "fax", "email", "contact_person", "postcode", "mailing_address")
    listed = co.fiona.get(f"{API}/customers/records?limit=100")
    assert len(listed.get_json()["records"]) == len(CUSTOMERS)
    cid = co.ids("customers")["Beijing Media"]
    one = co.fiona.get(f"{API}/customers/records/{cid}")
    history = co.fiona.get(f"{API}/customers/records/{cid}/history")
    opp = rec(co.ann.post(f"{API}/opportunities/records",
                          json={"fields": {"name": "Deal", "customer": cid, "owner": co.uid("ann"), "amount": "1000"}}), 201)  # fmt: skip
    expanded = co.fiona.get(f"{API}/opportunities/records/{opp['id']}?expand=customer")
    assert expanded.get_json()["fields"]["amount"] == "1000.00", expanded.get_json()
    described = co.fiona.get(f"{API}/customers")
    browser, _csrf = co.browser("fiona")
    exports = [browser.get(f"/t/customers/export.{kind}") for kind in ("csv", "xlsx")]
    for resp in (listed, one, history, expanded, *exports):
        assert resp.status_code == 200, resp.status_code
        body = resp.get_data()
        for phone in phones:
            assert phone.encode() not in body
    for record in (*listed.get_json()["records"], one.get_json()):
        assert not set(hidden) & set(record["fields"])
        assert "won_total" in record["fields"]
    assert "phone" not in {f["key"] for f in described.get_json()["fields"]}
    rows = list(csv.reader(io.StringIO(exports[0].get_data(as_text=True))))
    assert len(rows) == len(CUSTOMERS) + 1 and not any("Phone" == h for h in rows[0])
    # nor can finance probe for one with a filter
    assert (
        co.fiona.get(f'{API}/customers/records?filter=STARTSWITH(phone, "+86")').status_code == 400
    )


def test_a_dealer_sees_only_its_own_orders(co):
    pid = rec(co.fiona.post(f"{API}/products/records",
                            json={"fields": {"name": "Kit", "price": "100"}}), 201)["id"]  # fmt: skip
    for who in ("dan", "dora"):
        rec(co.client(who).post(f"{API}/orders/records",
                                json={"fields": {"dealer": co.uid(who), "product": pid, "quantity": 2, "unit_price": "100"}}), 201)  # fmt: skip
    for who in ("dan", "dora"):
        mine = co.all(who, "orders")
        assert [o["fields"]["dealer"] for o in mine] == [co.uid(who)]
        assert Decimal(mine[0]["fields"]["total"]) == 200
    err(co.dan.get(f"{API}/customers/records"), 404)
    assert len(co.all("fiona", "orders")) == 2


# --- problem 10: commission -------------------------------------------------------------------


def run_scheduled(co, hours: int = 1) -> None:
    """The scheduler's sweep, with the clock ``hours`` ahead (every due automation runs)."""
    from cubebase.workflows.automations import install
    from cubebase.workflows.automations.engine import utcnow

    install(co.platform).run_due(utcnow() + timedelta(hours=hours, minutes=1))


def test_a_commission_statement_equals_the_hand_calculation(co):
    """Plan: 3% up to 50,000, 5% up to 150,000, 7% above; the manager's plan adds a
    2% override on the team's net commission. March for ann:
      big deal 170,000 (tiered) + split deal 50,000 at 60% = 30,000 (tiered)
      tiered 200,000: 50,000 x 3% + 100,000 x 5% + 50,000 x 7% = 1,500 + 5,000 + 3,500 = 10,000
      product deal 9,000 at the product's own 10% = 900
      clawback: a February deal of 40,000, cancelled in March, earned February's
      effective rate 1,200 / 40,000 = 3% -> 1,200
      net 10,000 + 900 - 1,200 = 9,700
    bob's March: 40% of the split deal = 20,000 x 3% = 600.
    rm.north's March: override 2% x (9,700 + 600) = 206.
    Nobody writes a credit or a statement: the CRM's automations do, as deals are won
    (and the hourly sweep, as the scheduler runs it, for the clawback)."""
    cid = co.ids("customers")["Beijing Media"]
    ann, bob, rm = co.uid("ann"), co.uid("bob"), co.uid("rm.north")
    F = co.fiona

    def post(table, fields, client=F):
        return rec(client.post(f"{API}/{table}/records", json={"fields": fields}), 201)["id"]

    tiers = {"tier1_limit": "50000", "tier1_rate": "3", "tier2_limit": "150000",
             "tier2_rate": "5", "tier3_rate": "7"}  # fmt: skip
    standard = post("commission_plans", {"name": "Standard", **tiers})
    manager = post("commission_plans", {"name": "Manager", **tiers, "manager_override": "2"})
    service = post("products", {"name": "Audit", "category": "service", "commission_rate": "10"})
    for who, plan in ((ann, standard), (bob, standard), (rm, manager)):
        rec(
            co.admin.patch(f"{API}/users/records/{who}", json={"fields": {"commission_plan": plan}})
        )

    def deal(name, amount, closed, **extra):
        oid = post(
            "opportunities",
            {"name": name, "customer": cid, "owner": ann, "amount": amount, **extra},
            co.ann,
        )
        rec(co.ann.patch(f"{API}/opportunities/records/{oid}",
                         json={"fields": {"stage": "won", "closed_on": closed, "probability": 100}}))  # fmt: skip
        return oid

    big = deal("Big", "170000", "2026-03-10")
    split = deal("Split", "50000", "2026-03-12", co_seller=bob, owner_share="60")
    product = deal("Product", "9000", "2026-03-15", product=service)
    old = deal("Old", "40000", "2026-02-20")

    statements = {
        (s["fields"]["salesperson"], s["fields"]["month"]): s for s in co.all("fiona", "commission_statements")
    }  # fmt: skip
    assert sorted(statements) == sorted(
        [(ann, "2026-02-01"), (ann, "2026-03-01"), (bob, "2026-03-01"), (rm, "2026-02-01"),
         (rm, "2026-03-01")]
    )  # fmt: skip
    ann_feb, ann_mar = statements[(ann, "2026-02-01")]["id"], statements[(ann, "2026-03-01")]["id"]
    bob_mar, rm_mar = statements[(bob, "2026-03-01")]["id"], statements[(rm, "2026-03-01")]["id"]
    assert statements[(ann, "2026-03-01")]["fields"]["plan"] == standard
    assert statements[(ann, "2026-03-01")]["fields"]["manager_statement"] == rm_mar
    assert statements[(bob, "2026-03-01")]["fields"]["manager_statement"] == rm_mar
    credits = sorted(
        (c["fields"]["opportunity"], c["fields"]["salesperson"], Decimal(c["fields"]["share"]),
         c["fields"]["statement"])
        for c in co.all("fiona", "commission_credits")
    )  # fmt: skip
    assert credits == sorted([
        (big, ann, Decimal(100), ann_mar), (split, ann, Decimal(60), ann_mar),
        (split, bob, Decimal(40), bob_mar), (product, ann, Decimal(100), ann_mar),
        (old, ann, Decimal(100), ann_feb),
    ])  # fmt: skip
    # won again after a step back: still one credit per seller (the unique index)
    rec(
        co.ann.patch(
            f"{API}/opportunities/records/{big}", json={"fields": {"stage": "negotiation"}}
        )
    )
    rec(co.ann.patch(f"{API}/opportunities/records/{big}", json={"fields": {"stage": "won"}}))
    assert len(co.all("fiona", "commission_credits")) == 5
    # a credit on someone else's statement is refused
    bad = F.post(f"{API}/commission_credits/records",
                 json={"fields": {"opportunity": big, "salesperson": bob, "statement": ann_feb}})  # fmt: skip
    assert bad.status_code == 422

    def figures(sid, client=F):
        f = rec(client.get(f"{API}/commission_statements/records/{sid}"))["fields"]
        keys = ("won_amount", "tiered_amount", "tier_commission", "product_commission",
                "clawback", "net_commission", "override", "total")  # fmt: skip
        return {k: Decimal(f[k]) for k in keys}

    # the February deal is cancelled in March: the hourly sweep claws it back on March's
    rec(co.ann.patch(f"{API}/opportunities/records/{old}",
                     json={"fields": {"stage": "cancelled", "cancelled_on": "2026-03-20"}}))  # fmt: skip
    assert figures(ann_mar)["clawback"] == Decimal("0")
    run_scheduled(co)
    assert figures(ann_mar, co.ann) == {
        "won_amount": Decimal("209000"),
        "tiered_amount": Decimal("200000"),
        "tier_commission": Decimal("10000"),
        "product_commission": Decimal("900"),
        "clawback": Decimal("1200"),
        "net_commission": Decimal("9700"),
        "override": Decimal("0"),
        "total": Decimal("9700"),
    }
    assert figures(ann_feb)["total"] == Decimal("1200")  # what February paid stays
    assert figures(bob_mar)["total"] == Decimal("600")
    assert figures(rm_mar)["override"] == Decimal("206")
    assert figures(rm_mar)["total"] == Decimal("206")
    run_scheduled(co, hours=2)  # the next sweep finds nothing more to claw back
    assert figures(ann_mar)["clawback"] == Decimal("1200")
    # live: a corrected amount flows through to the statements at once
    rec(co.ann.patch(f"{API}/opportunities/records/{big}", json={"fields": {"amount": "160000"}}))
    assert figures(ann_mar)["tier_commission"] == Decimal("9300")  # 1,500 + 5,000 + 40,000 x 7%
    assert figures(rm_mar)["override"] == Decimal("192")  # 2% x (9,000 + 600)
    # auditable: the change is in the deal's history; salespeople read only their own
    history = rec(co.ann.get(f"{API}/opportunities/records/{big}/history"))["history"]
    assert any(c["field"] == "amount" for h in history for c in h["changes"])
    err(co.bob.get(f"{API}/commission_statements/records/{ann_mar}"), 404)
    err(co.ann.patch(f"{API}/commission_statements/records/{ann_mar}",
                     json={"fields": {"status": "paid"}}), 403)  # fmt: skip


def test_a_deal_won_without_a_commission_plan_still_gets_its_credit(co):
    """Winning is never blocked by the commission set-up: the statement has no plan
    (and earns nothing) until finance sets one."""
    cid = co.ids("customers")["Shanghai Soft"]
    cai = co.uid("cai")
    oid = rec(co.cai.post(f"{API}/opportunities/records", json={"fields": {
        "name": "Licence", "customer": cid, "owner": cai, "amount": "1000", "stage": "won",
        "closed_on": "2026-04-02", "probability": 100}}), 201)["id"]  # fmt: skip
    [credit] = co.all("fiona", "commission_credits")
    assert credit["fields"]["opportunity"] == oid and credit["fields"]["salesperson"] == cai
    [statement] = co.all("cai", "commission_statements")
    assert statement["fields"]["month"] == "2026-04-01" and statement["fields"]["plan"] is None
    assert Decimal(statement["fields"]["won_amount"]) == Decimal(1000)
    assert statement["fields"]["total"] is None  # no plan: no commission yet
    plan = rec(co.fiona.post(f"{API}/commission_plans/records", json={"fields": {
        "name": "Flat", "tier1_limit": "50000", "tier1_rate": "3", "tier2_limit": "150000",
        "tier2_rate": "3", "tier3_rate": "3"}}), 201)["id"]  # fmt: skip
    sid = statement["id"]
    rec(
        co.fiona.patch(
            f"{API}/commission_statements/records/{sid}", json={"fields": {"plan": plan}}
        )
    )
    total = rec(co.cai.get(f"{API}/commission_statements/records/{sid}"))["fields"]["total"]
    assert Decimal(total) == Decimal(30)


# --- problem 5: funnel --------------------------------------------------------------------------


def test_forecast_is_amount_times_probability(co):
    cid = co.ids("customers")["Beijing Media"]
    for amount, p in (("10000", 50), ("4000", 25)):
        rec(co.ann.post(f"{API}/opportunities/records",
                        json={"fields": {"name": "D", "customer": cid, "owner": co.uid("ann"), "amount": amount, "probability": p}}), 201)  # fmt: skip
    deals = co.all("ann", "opportunities")
    assert sorted(Decimal(d["fields"]["forecast"]) for d in deals) == [Decimal(1000), Decimal(5000)]
    customer = rec(co.ann.get(f"{API}/customers/records/{cid}"))["fields"]
    assert Decimal(customer["forecast"]) == Decimal(6000)
    assert Decimal(customer["pipeline"]) == Decimal(14000)


# --- problem 13: the project workflow ---------------------------------------------------------------


def test_the_project_workflow_runs_from_report_to_printing_with_one_rejection(co):
    project = rec(
        co.leader.post(
            f"{API}/projects/records",
            json={
                "fields": {
                    "name": "Process audit",
                    "consultant": co.uid("consultant"),
                    "group_leader": co.uid("leader"),
                }
            },  # fmt: skip
        ),
        201,
    )

    def step(who, action, comment=None, fields=None, expect=200):
        mine = [t for t in tasks(co.client(who)) if t["record_id"] == project["id"]]
        assert len(mine) == 1, (who, mine)
        resp, _ = complete(co.client(who), mine[0]["id"], action, comment, fields)
        assert resp.status_code == expect, resp.get_json()
        return mine[0]

    task = step("consultant", "submit", expect=422)  # the report is required
    assert task["step"] == "onsite_report" and task["due_at"]
    step("consultant", "submit", fields={"report": "Draft findings"})
    step("leader", "reject", expect=422)  # a rejection needs its comment
    step("leader", "reject", comment="Add the interview notes")
    step("consultant", "submit", fields={"report": "Findings with interview notes"})
    step("leader", "approve")
    step("reviewer", "approve")
    step("process", "approve")
    step("techdir", "approve", fields={"score": 55}, expect=403)  # under 60: not released
    step("techdir", "approve", fields={"score": 78})
    step("print", "printed")
    assert all(tasks(co.client(w)) == [] for w in ("consultant", "leader", "techdir", "print"))
    done = rec(co.admin.get(f"{API}/projects/records/{project['id']}"))["fields"]
    assert done["score"] == 78 and done["report"] == "Findings with interview notes"
