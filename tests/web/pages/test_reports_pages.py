"""Reports and dashboards in the web app and the API: lists per role, the report
page (table, chart, CSV, XLSX), tiles computed as the viewer, escaping, CSRF, no 500
on any input (both databases)."""

from __future__ import annotations

import csv
import io
import re

import pytest

from cubebase.platform import reports as R

from .conftest import csrf_of, system_records

ROWS = re.compile(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>")


@pytest.fixture
def board(sample):
    """Rules for the sales role (no lost deals, amounts hidden) and a few reports on a
    dashboard for sales."""
    with sample.schema_editor() as ed:
        ed.set_permissions(
            "deals",
            [{"role": "sales", "read": 'stage <> "lost"', "create": "TRUE", "update": "TRUE"}],
        )
        ed.set_field_permissions("deals", "amount", [{"role": "sales", "read": "FALSE"}])
    with system_records(sample) as svc:
        s = svc.session
        for key, spec in {
            "funnel": {
                "label": "Funnel <script>x</script>",
                "table": "deals",
                "group_by": ["stage"],
                "roles": ["sales"],
            },
            "value": {
                "label": "Value by stage",
                "table": "deals",
                "group_by": ["stage"],
                "measures": ["sum(amount)"],
                "sort": "-sum(amount)",
                "roles": ["sales"],
            },
            "by_month": {
                "table": "deals",
                "group_by": ["close_date:month", "stage"],
                "filter": 'stage = "won"',
            },
            "hot": {
                "label": "Hot deals",
                "table": "deals",
                "filter": "hot",
                "columns": ["title", "company", "stage"],
                "sort": "title",
                "roles": ["sales"],
            },
            "total": {"table": "deals", "measures": ["count"], "roles": ["sales"]},
        }.items():
            R.save_report(s, svc.schema, R.build(svc.schema, key, spec))
        R.save_dashboard(
            s,
            "sales_manager",
            "Sales <b>manager</b>",
            ["sales"],
            [
                {"report": "funnel", "chart": "funnel"},
                {"report": "value", "chart": "bar"},
                {"report": "by_month", "chart": "line"},
                {"report": "hot", "chart": "table"},
                {"report": "total", "chart": "number", "label": "Deals"},
                {"report": "gone", "chart": "bar"},
            ],
        )
    return sample


def test_reports_are_listed_per_role(admin, sales, board):
    page = sales.get("/reports").get_data(as_text=True)
    assert 'id="nav-reports"' in page
    keys = re.findall(r'href="/reports/(\w+)"', page)
    assert sorted(keys) == ["funnel", "hot", "total", "value"]  # by_month: no roles
    assert "Funnel &lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    assert "by_month" in admin.get("/reports").get_data(as_text=True)
    assert sales.get("/reports/by_month").status_code == 404
    assert sales.get("/reports/nope").status_code == 404
    assert sales.get("/reports/%3Cscript%3E").status_code == 404


def test_a_report_page_with_its_chart_and_downloads(admin, sales, board):
    page = admin.get("/reports/funnel").get_data(as_text=True)
    assert 'data-chart-type="bar"' in page and "<svg" in page
    assert dict(ROWS.findall(page))["lost"] == "1"
    page = sales.get("/reports/funnel?chart=pie").get_data(as_text=True)
    assert 'data-chart-type="pie"' in page
    rows = dict(ROWS.findall(page))
    assert "lost" not in rows and rows["lead"] == "3"  # the viewer's rows
    assert sales.get("/reports/funnel?chart=%3Cx%3E").status_code == 200
    resp = sales.get("/reports/funnel/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True).lstrip("\ufeff")
    assert list(csv.reader(io.StringIO(text)))[:2] == [["Stage", "Records"], ["lead", "3"]]
    resp = sales.get("/reports/hot/export.xlsx")
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(resp.get_data())).active
    assert [c.value for c in ws[1]] == ["Title", "Company", "Stage"]
    assert [c.value for c in ws[2]] == ["Acme renewal", "Acme", "won"]
    assert sales.get("/reports/funnel/export.pdf").status_code == 404
    # a grain: a line, months as 2026-03; two groups in the labels
    page = admin.get("/reports/by_month").get_data(as_text=True)
    assert 'data-chart-type="line"' in page and "2026-03 · won" in page
    # two groups on a line: months along the axis, one line per stage (a legend)
    assert page.count('<g class="series">') == 1 and ">2026-01</text>" in page


def test_a_hidden_field_is_refused_not_shown(sales, board):
    page = sales.get("/reports/value")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="view-problem"' in text and "amount" in text
    assert sales.get("/reports/value/export.csv").status_code == 400


def test_a_dashboard_computed_as_the_viewer(admin, sales, board):
    resp = sales.get("/dashboards")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(
        "/dashboards/sales_manager"
    )
    page = sales.get("/dashboards/sales_manager").get_data(as_text=True)
    assert "Sales &lt;b&gt;manager&lt;/b&gt;" in page
    assert re.search(r'id="tile-0"[^>]*>\s*<figure class="chart" data-chart-type="funnel"', page)
    assert 'id="tile-4"' in page and '<p class="big-number">10</p>' in page  # 11, 1 lost
    tile1 = page[page.index('id="tile-1"') : page.index('id="tile-2"')]
    assert 'id="view-problem"' in tile1  # amounts are hidden from sales
    tile5 = page[page.index('id="tile-5"') :]
    assert "There is no report `gone`" in tile5
    assert "Acme renewal" in page  # the hot deals table
    assert "Remove" not in page
    admin_page = admin.get("/dashboards/sales_manager").get_data(as_text=True)
    assert '<p class="big-number">11</p>' in admin_page
    # an admin removes a tile; a non-admin cannot; the form needs its token
    resp = admin.client.post("/dashboards/sales_manager/items/5/delete", data={})
    assert resp.status_code == 400
    resp = admin.client.post(
        "/dashboards/sales_manager/items/5/delete", data={"csrf_token": csrf_of(admin_page)}
    )
    assert resp.status_code == 302
    assert 'id="tile-5"' not in admin.get("/dashboards/sales_manager").get_data(as_text=True)
    token = csrf_of(page)
    resp = sales.client.post("/dashboards/sales_manager/items/0/delete", data={"csrf_token": token})
    assert resp.status_code == 403
    resp = admin.client.post(
        "/dashboards/sales_manager/items/99/delete", data={"csrf_token": csrf_of(admin_page)}
    )
    assert resp.status_code == 404
    assert sales.get("/dashboards/nope").status_code == 404


def test_reports_over_the_api(app, board):
    from cubebase.platform.users import create_token

    platform = app.extensions["cubebase"]
    from cubebase.apps.sample import SALES_EMAIL

    with platform.session() as s, s.begin():
        token = create_token(platform, s, SALES_EMAIL)
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = c.get("/api/v1/reports/funnel").get_json()
    assert body["headers"] == ["Stage", "Records"] and ["lead", "3"] in body["rows"]
    assert not any(r[0] == "lost" for r in body["rows"])
    keys = [r["key"] for r in c.get("/api/v1/reports").get_json()["reports"]]
    assert sorted(keys) == ["funnel", "hot", "total", "value"]
    resp = c.get("/api/v1/reports/funnel?format=csv")
    assert resp.status_code == 200 and "Stage,Records" in resp.get_data(as_text=True)
    resp = c.get("/api/v1/reports/hot?format=xlsx")
    assert resp.status_code == 200 and resp.get_data()[:2] == b"PK"
    assert c.get("/api/v1/reports/by_month").status_code == 404
    assert c.get("/api/v1/reports/funnel?format=pdf").status_code == 400
    assert c.get("/api/v1/reports/funnel?limit=x").status_code == 400
    assert c.get("/api/v1/reports/value").status_code == 400  # amounts are hidden
    assert len(c.get("/api/v1/reports/funnel?limit=1").get_json()["rows"]) == 1


def test_the_viewer_narrows_a_report_with_a_filter(admin, sales, board):
    """A report narrowed to a period (or any filter the viewer writes): the page, its
    downloads and the API answer for the narrowed rows, under the viewer's rules."""
    whole = dict(ROWS.findall(sales.get("/reports/funnel").get_data(as_text=True)))
    page = sales.get('/reports/funnel?filter=stage = "lead"').get_data(as_text=True)
    assert dict(ROWS.findall(page)) == {"lead": whole["lead"]}
    assert 'value="stage = &#34;lead&#34;"' in page  # kept in the form, escaped
    assert "filter=stage" in page  # the downloads carry it
    text = sales.get('/reports/funnel/export.csv?filter=stage = "lead"').get_data(as_text=True)
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:] == [["lead", whole["lead"]]]
    # a mistake is a message on the page, never a 500; a hidden field is refused
    for bad in ["stage = ", "amount > 5", "nope = 1", "(" * 500]:
        resp = sales.get("/reports/funnel", query_string={"filter": bad})
        assert resp.status_code == 200, bad
        assert 'id="view-problem"' in resp.get_data(as_text=True), bad
        assert (
            sales.get("/reports/funnel/export.csv", query_string={"filter": bad}).status_code == 400
        )
    # the narrowing never widens: the lost deals stay out of the salesperson's report
    page = sales.get('/reports/funnel?filter=stage = "lost"').get_data(as_text=True)
    assert "lost" not in dict(ROWS.findall(page))
    assert dict(
        ROWS.findall(admin.get('/reports/funnel?filter=stage = "lost"').get_data(as_text=True))
    ) == {"lost": "1"}


def test_the_api_narrows_a_report(app, board):
    from cubebase.apps.sample import SALES_EMAIL
    from cubebase.platform.users import create_token

    platform = app.extensions["cubebase"]
    with platform.session() as s, s.begin():
        token = create_token(platform, s, SALES_EMAIL)
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = c.get("/api/v1/reports/funnel", query_string={"filter": 'stage = "lead"'}).get_json()
    assert [r[0] for r in body["rows"]] == ["lead"]
    resp = c.get("/api/v1/reports/funnel", query_string={"filter": "stage +"})
    assert resp.status_code == 400 and resp.get_json()["error"]["message"]
    assert c.get("/api/v1/reports/funnel", query_string={"filter": "amount > 1"}).status_code == 400
