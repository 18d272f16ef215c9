"""crm.md problem 14: the CRM's reports and dashboards, each person seeing their own
numbers (row rules), as JSON, CSV and the dashboard page (both databases)."""

from __future__ import annotations

import csv
import io
import re


def _deal(co, who: str, customer: str, amount: str, closed_on: str, stage: str = "won"):
    cid = co.ids("customers")[customer]
    fields = {
        "name": f"{customer} {amount}",
        "customer": cid,
        "owner": co.uid(who),
        "amount": amount,
        "stage": stage,
        "closed_on": closed_on,
        "probability": 100 if stage == "won" else 50,
    }
    resp = co.admin.post("/api/v1/tables/opportunities/records", json={"fields": fields})
    assert resp.status_code == 201, resp.get_json()


def test_sales_reports_show_each_person_their_own_numbers(co):
    _deal(co, "ann", "Beijing Media", "1000", "2026-03-05")
    _deal(co, "ann", "North Star Appliances", "250", "2026-03-28")
    _deal(co, "bob", "Shenyang Print", "500", "2026-04-02")
    _deal(co, "cai", "Shanghai Soft", "2000", "2026-04-09")
    _deal(co, "cai", "Shanghai Soft", "700", "2026-05-01", stage="proposal")

    body = co.rm_north.get("/api/v1/reports/sales_by_person_month").get_json()
    assert body["headers"] == ["Owner", "Closed on (month)", "Records", "Sum of Amount"]
    rows = [r[1:] for r in body["rows"]]
    assert sorted(rows) == [["2026-03", "2", "1,250.00"], ["2026-04", "1", "500.00"]]
    body = co.md.get("/api/v1/reports/sales_by_person_month").get_json()
    assert len(body["rows"]) == 3 and body["rows"][0][3] == "2,000.00"  # -sum(amount)

    # a salesperson's funnel counts their own deals; the monthly report is not theirs
    funnel = {r[0]: r[1] for r in co.ann.get("/api/v1/reports/funnel").get_json()["rows"]}
    assert funnel == {"won": "2"}
    assert co.ann.get("/api/v1/reports/sales_by_person_month").status_code == 404
    assert co.fiona.get("/api/v1/reports/funnel").status_code == 404

    # the customer value ranking as CSV, for the sales director
    text = co.sales_director.get("/api/v1/reports/customer_value?format=csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:2] == ["Name", "Account manager"]
    assert [r[0] for r in rows[1:]] == [
        "Shanghai Soft",
        "Beijing Media",
        "Shenyang Print",
        "North Star Appliances",
    ]

    # the regional manager's morning dashboard
    c, _ = co.browser("rm.north")
    page = c.get("/dashboards/regional_manager").get_data(as_text=True)
    assert 'data-chart-type="funnel"' in page and "Beijing Media" in page
    assert "Shanghai Soft" not in page


DASHBOARDS = {  # who opens which dashboard, and how many tiles it has
    "ann": ("salesperson", 5),
    "rm.north": ("regional_manager", 5),
    "md": ("director", 5),
    "fiona": ("finance", 2),
    "olga": ("admin_office", 3),
}


def test_each_roles_dashboard_opens_with_the_viewers_own_numbers(co):
    _deal(co, "ann", "Beijing Media", "1000", "2026-03-05")
    _deal(co, "ann", "North Star Appliances", "250", "2026-03-28")
    _deal(co, "bob", "Shenyang Print", "500", "2026-04-02")
    _deal(co, "cai", "Shanghai Soft", "2000", "2026-04-09")
    for who, (key, tiles) in DASHBOARDS.items():
        c, _ = co.browser(who)
        resp = c.get("/dashboards")  # one dashboard: it opens directly
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/dashboards/{key}")
        page = c.get(f"/dashboards/{key}").get_data(as_text=True)
        assert page.count('class="chart-card"') == tiles, who
        assert 'role="alert"' not in page, (who, page[page.find('role="alert"') - 300 :][:800])

    # a salesperson's dashboard: her won sales by month, her commission, nobody else's
    c, _ = co.browser("ann")
    page = c.get("/dashboards/salesperson").get_data(as_text=True)
    assert "Ann 2026-03 1,250" in " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "Beijing Media" in page
    assert "Bob" not in page and "Cai" not in page and "Shanghai Soft" not in page
    months = co.ann.get("/api/v1/reports/sales_by_month").get_json()["rows"]
    assert months == [["2026-03", "2", "1,250.00"]]
    commission = co.ann.get("/api/v1/reports/commission_by_person").get_json()["rows"]
    assert [r[:3] for r in commission] == [["Ann", "2026-03", "1,250"]]
    # the regional manager's: the region's people, not the other region's
    c, _ = co.browser("rm.north")
    page = c.get("/dashboards/regional_manager").get_data(as_text=True)
    assert "Ann" in page and "Bob" in page and "Cai" not in page
    # finance: every statement (the credits came from the automations)
    rows = co.fiona.get("/api/v1/reports/commission_by_person").get_json()["rows"]
    assert sorted(r[0] for r in rows) == ["Ann", "Bob", "Cai"]


def test_crm_roles_read_their_colleagues(co):
    """Pickers and filters through user fields work for CRM roles (the users rules of
    app.yaml); a dealer reads only its region's people, without their roles."""
    names = {u["fields"]["name"] for u in co.all("ann", "users")}
    assert {"Ann", "Bob", "Cai", "Rm.North", "Md"} <= names
    ann = {u["fields"]["email"]: u["fields"] for u in co.all("ann", "users")}
    assert ann["bob@crm.test"]["manager"] == co.uid("rm.north")
    # a filter through the account manager's e-mail, as the regional manager
    query = '&filter=account_manager.email = "ann@crm.test"'
    got = sorted(c["fields"]["name"] for c in co.all("rm.north", "customers", query))
    assert got == ["Beijing Media", "North Star Appliances"]
    # the salesperson's own view of the team's deals by co-seller e-mail works too
    assert co.all("ann", "customers", query) and not co.all(
        "ann", "customers", '&filter=account_manager.email = "cai@crm.test"'
    )
    # a colleague who left is no longer offered
    resp = co.admin.patch(f"/api/v1/tables/users/records/{co.uid('bob')}",
                          json={"fields": {"active": False}})  # fmt: skip
    assert resp.status_code == 200, resp.get_json()
    assert "bob@crm.test" not in {u["fields"]["email"] for u in co.all("ann", "users")}
    dealer = {u["fields"]["email"] for u in co.all("dan", "users")}
    assert dealer == {"rm.north@crm.test", "ann@crm.test", "dan@crm.test"}
    assert all("roles" not in u["fields"] for u in co.all("dan", "users"))
