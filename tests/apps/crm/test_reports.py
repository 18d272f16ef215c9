"""crm.md problem 14: the CRM's reports and dashboards, each person seeing their own
numbers (row rules), as JSON, CSV and the dashboard page (both databases)."""

from __future__ import annotations

import csv
import io


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
