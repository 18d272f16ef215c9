"""Hostile values are shown escaped on every page, and exports never run them."""

from __future__ import annotations

import csv
import io

import pytest

from .conftest import csrf_of, system_records

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'
FORMULA_HTML = '"<b onmouseover=alert(3)>" & title & "</b>"'
CSV_ATTACKS = ['=HYPERLINK("http://evil")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


@pytest.fixture
def hostile(sample, platform):
    with platform.schema_editor() as ed:
        ed.add_field("deals", {"key": "shout", "type": "formula", "formula": FORMULA_HTML})
    with system_records(platform) as svc:
        company = svc.create("companies", {"name": ATTR, "notes": SCRIPT, "segment": "enterprise"})
        deal = svc.create(
            "deals",
            {"title": SCRIPT, "company": company.id, "stage": "lead", "tags": ["urgent"]},
        )
        svc.update("deals", deal.id, {"title": SCRIPT + ATTR})
        gone = svc.create("deals", {"title": ATTR + " trashed", "company": company.id})
        svc.delete("deals", gone.id)
        svc.bulk_create("deals", [{"title": t} for t in CSV_ATTACKS])
    return {"company": company.id, "deal": deal.id}


def _pages(hostile) -> list[str]:
    d, c = hostile["deal"], hostile["company"]
    return [
        "/",
        "/t/deals?col=title&col=company&col=shout",
        "/t/deals?group=stage&col=title&col=shout",
        "/t/deals?q=script&col=title&col=shout",
        "/t/deals/kanban",
        f"/t/deals/{d}",
        f"/t/deals/{d}?tab=history",
        f"/t/deals/{d}/edit",
        "/t/deals/new",
        "/t/deals/trash",
        f"/t/companies/{c}",
        f"/t/companies/{c}/edit",
        "/t/companies",
        "/t/deals/link-options/company?__search=img",
    ]


def _assert_escaped(html: str, url: str) -> None:
    assert "<script>alert" not in html, url
    assert "<img src=x" not in html, url
    assert "<b onmouseover" not in html, url
    assert "Traceback" not in html, url


def test_every_page_escapes(admin, hostile):
    seen_payload = 0
    for url in _pages(hostile):
        resp = admin.get(url)
        assert resp.status_code == 200, url
        html = resp.get_data(as_text=True)
        _assert_escaped(html, url)
        if "&lt;script&gt;" in html or "&lt;img src=x" in html or "&lt;b onmouseover" in html:
            seen_payload += 1
    assert seen_payload >= len(_pages(hostile)) - 2  # the values are there, escaped


def test_formula_output_escaped_in_preview(admin, hostile):
    token = csrf_of(admin.get("/t/deals/new").get_data(as_text=True))
    resp = admin.client.post(
        "/t/deals/preview", data={"title": SCRIPT}, headers={"X-CSRFToken": token}
    )
    html = resp.get_data(as_text=True)
    _assert_escaped(html, "preview")
    assert "&lt;b onmouseover=alert(3)&gt;&lt;script&gt;" in html


def test_filter_error_excerpt_escaped(admin, hostile):
    html = admin.get("/t/deals?filter=<script>alert(1)</script>").get_data(as_text=True)
    _assert_escaped(html, "filter")
    assert 'id="view-problem"' in html


def test_csv_export_escapes_formulas(admin, hostile):
    resp = admin.get("/t/deals/export.csv?col=title&col=company&col=shout&sort=id")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    cells = [c for r in rows[1:] for c in r]
    for attack in CSV_ATTACKS:
        assert "'" + attack in cells
        assert attack not in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert SCRIPT + ATTR in cells  # text stays as it is (a CSV is not HTML)


def test_xlsx_export_has_no_formulas(admin, hostile):
    from openpyxl import load_workbook

    resp = admin.get("/t/deals/export.xlsx?col=title&col=company&col=shout&sort=id")
    ws = load_workbook(io.BytesIO(resp.get_data())).active
    values = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in values)
    texts = [c.value for c in values if isinstance(c.value, str)]
    for attack in CSV_ATTACKS:
        assert "'" + attack in texts
    assert not any(t.startswith(("=", "+", "-", "@")) for t in texts)
