"""Grid, record form, record page, trash, kanban and export, on both databases."""

from __future__ import annotations

import csv
import io
import re

from cubebase.platform.listing import Condition

from .conftest import csrf_of, system_records


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'aria-label="Open record (\d+)"', html)]


def _deal_id(platform, title: str) -> int:
    with system_records(platform) as svc:
        return svc.list("deals", where=Condition("title", "eq", title)).records[0].id


# --- grid ------------------------------------------------------------------------------
def test_grid_columns_sort_filter_search(admin):
    html = admin.get("/t/deals?col=title&col=amount&sort=-amount").get_data(as_text=True)
    assert (
        '<th scope="col"><a href="?fields=title%2Camount&amp;sort=amount">Title</a>' in html
        or ">Title</a>" in html
    )
    assert ">Stage</a>" not in html  # only the chosen columns
    assert "Globex rollout" in html.split("Wonka supply chain")[0]  # 88000 before 56000
    html = admin.get("/t/deals?filter=amount > 50000").get_data(as_text=True)
    assert "Globex rollout" in html and "Wonka supply chain" in html
    assert "Acme renewal" not in html
    assert "2 records" in html
    html = admin.get("/t/deals?q=WONKA").get_data(as_text=True)
    assert _ids(html) and "Wonka tasting app" in html and "Acme renewal" not in html


def test_grid_formula_error_shown_inline_with_caret(admin):
    resp = admin.get("/t/deals?filter=amont > 5")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="view-problem"' in html
    assert "amont" in html and "^^^^^" in html  # the caret under the unknown name


def test_grid_bad_sort_is_a_message(admin):
    resp = admin.get("/t/deals?sort=nope")
    assert resp.status_code == 400
    assert "Cannot sort by" in resp.get_data(as_text=True)


def test_grid_sorts_by_several_columns_as_shared_views_do(admin):
    """An app's shared view may sort by "stage,-amount"; each key is checked."""
    resp = admin.get("/t/deals?sort=stage,-amount&fields=title,stage,amount")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    resp = admin.get("/t/deals?sort=stage,nope")
    assert resp.status_code == 400
    assert "Cannot sort by `nope`" in resp.get_data(as_text=True)


def test_grid_keyset_paging_next_and_previous(admin, platform):
    with system_records(platform) as svc:
        svc.bulk_create("deals", [{"title": f"Bulk {i:03d}"} for i in range(60)])
    first = admin.get("/t/deals?sort=title").get_data(as_text=True)
    ids1 = _ids(first)
    assert len(ids1) == 50
    nxt = re.search(r'href="\?([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = admin.get("/t/deals?" + nxt).get_data(as_text=True)
    ids2 = _ids(second)
    assert len(ids2) == 21 and not set(ids1) & set(ids2)
    assert 'rel="next"' not in second
    prev = re.search(r'href="\?([^"]*)" rel="prev"', second).group(1).replace("&amp;", "&")
    assert _ids(admin.get("/t/deals?" + prev).get_data(as_text=True)) == ids1


def test_grid_group_by_select_with_counts(admin):
    html = admin.get("/t/deals?group=stage").get_data(as_text=True)
    counts = dict(re.findall(r'<h2>(\w+) <span class="count">(\d+)</span>', html))
    assert counts == {"lead": "3", "qualified": "2", "proposal": "3", "won": "2", "lost": "1"}


# --- record form ---------------------------------------------------------------------
def test_new_form_widgets(admin):
    html = admin.get("/t/deals/new").get_data(as_text=True)
    assert 'type="date"' in html and 'name="close_date"' in html
    assert '<select id="f-stage" name="stage"' in html
    assert re.search(
        r'<select[^>]*multiple[^>]*name="tags"|<select[^>]*name="tags"[^>]*multiple', html
    )
    assert 'type="checkbox"' in html and 'name="hot"' in html
    assert 'type="number"' in html and 'name="amount"' in html
    assert 'data-link-picker="companies"' in html and ">Acme</option>" in html
    assert 'class="required"' in html  # title is required
    assert "Expected revenue in euros" in html  # help text
    assert 'id="pv-summary"' in html  # formula field: read-only preview
    assert 'name="summary"' not in html


def test_create_shows_errors_beside_fields_then_saves(admin, platform):
    resp = admin.post("/t/deals/new", {"title": "", "amount": "abc"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    title_block = html.split('data-field="title"')[1].split("data-field=")[0]
    assert "field-error" in title_block
    amount_block = html.split('data-field="amount"')[1].split("data-field=")[0]
    assert "abc" in amount_block and "field-error" in amount_block
    resp = admin.post("/t/deals/new", {"title": "Neg", "amount": "-5"})
    assert resp.status_code == 422
    assert "Amount cannot be negative" in resp.get_data(as_text=True)
    acme = _company(platform, "Acme")
    resp = admin.post(
        "/t/deals/new",
        {
            "title": "Brand new",
            "amount": "1200.50",
            "stage": "qualified",
            "company": str(acme),
            "tags": ["upsell", "urgent"],
            "hot": "y",
            "close_date": "2026-05-01",
            "probability": "40",
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    rid = _deal_id(platform, "Brand new")
    with system_records(platform) as svc:
        r = svc.get("deals", rid)
    assert str(r.values["amount"]) == "1200.50" and r.values["company"] == acme
    assert r.values["tags"] == ["upsell", "urgent"] and r.values["hot"] is True
    page = admin.get(resp.location).get_data(as_text=True)
    assert "was created" in page and "QUALIFIED: Brand new" in page


def _company(platform, name: str) -> int:
    with system_records(platform) as svc:
        return svc.list("companies", where=Condition("name", "eq", name)).records[0].id


def test_live_formula_preview(admin):
    token = csrf_of(admin.get("/t/deals/new").get_data(as_text=True))
    resp = admin.client.post(
        "/t/deals/preview",
        data={"title": "Typing", "stage": "won"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert resp.status_code == 200
    assert 'id="pv-summary" hx-swap-oob="true">WON: Typing<' in resp.get_data(as_text=True)


def test_link_picker_search(admin):
    html = admin.get("/t/deals/link-options/company?__search=glob").get_data(as_text=True)
    assert ">Globex</option>" in html and "Acme" not in html
    assert admin.get("/t/deals/link-options/title").status_code == 404


def test_edit_and_optimistic_lock_conflict(admin, platform):
    rid = _deal_id(platform, "Globex pilot")
    form = admin.get(f"/t/deals/{rid}/edit").get_data(as_text=True)
    token = csrf_of(form)
    assert 'value="Globex pilot"' in form
    with system_records(platform) as svc:  # someone else saves first
        svc.update("deals", rid, {"amount": 15000, "probability": 35})
    resp = admin.client.post(
        f"/t/deals/{rid}/edit",
        data={"csrf_token": token, "version": "1", "title": "Globex pilot 2", "stage": "qualified"},
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert 'id="conflict"' in html and "Probability (%)" in html and "15000" in html
    assert 'value="Globex pilot 2"' in html  # the user's input is kept
    assert 'name="version" type="hidden" value="2"' in html
    resp = admin.client.post(
        f"/t/deals/{rid}/edit",
        data={"csrf_token": token, "version": "2", "title": "Globex pilot 2", "stage": "qualified"},
    )
    assert resp.status_code == 302
    with system_records(platform) as svc:
        assert svc.get("deals", rid).values["title"] == "Globex pilot 2"


def test_locked_record_cannot_be_edited(admin, platform):
    rid = _deal_id(platform, "Acme support plan")  # lost: locked
    page = admin.get(f"/t/deals/{rid}").get_data(as_text=True)
    assert 'id="edit"' not in page
    # the edit URL goes back to the record with the reason, no form
    opened = admin.get(f"/t/deals/{rid}/edit")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/t/deals/{rid}")
    assert "can no longer be changed" in admin.get(f"/t/deals/{rid}").get_data(as_text=True)
    token = csrf_of(page)
    resp = admin.client.post(
        f"/t/deals/{rid}/edit", data={"csrf_token": token, "version": "1", "title": "x"}
    )
    assert resp.status_code == 409


# --- record page, history, trash ------------------------------------------------------
def test_record_page_related_and_history(admin, platform):
    acme = _company(platform, "Acme")
    html = admin.get(f"/t/companies/{acme}").get_data(as_text=True)
    assert "Deals" in html and "Acme analytics" in html and "Acme renewal" in html
    assert 'rel="noopener noreferrer nofollow">https://acme.example' in html
    rid = _deal_id(platform, "Hooli integration")
    with system_records(platform) as svc:
        svc.update("deals", rid, {"stage": "proposal"})
    html = admin.get(f"/t/deals/{rid}?tab=history").get_data(as_text=True)
    assert "Version 2" in html and "qualified" in html and "proposal" in html


def test_delete_trash_restore(admin, platform):
    rid = _deal_id(platform, "Wonka tasting app")
    page = admin.get(f"/t/deals/{rid}").get_data(as_text=True)
    resp = admin.client.post(f"/t/deals/{rid}/delete", data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 302
    assert admin.get(f"/t/deals/{rid}").status_code == 404
    trash = admin.get("/t/deals/trash").get_data(as_text=True)
    assert "Wonka tasting app" in trash
    resp = admin.client.post(f"/t/deals/{rid}/restore", data={"csrf_token": csrf_of(trash)})
    assert resp.status_code == 302
    assert admin.get(f"/t/deals/{rid}").status_code == 200


def test_sales_cannot_delete_a_won_deal(sales, platform):
    rid = _deal_id(platform, "Acme renewal")
    page = sales.get(f"/t/deals/{rid}").get_data(as_text=True)
    resp = sales.client.post(f"/t/deals/{rid}/delete", data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 403
    assert "Traceback" not in resp.get_data(as_text=True)


# --- kanban ----------------------------------------------------------------------------
def test_kanban_columns_and_moves(admin, platform):
    html = admin.get("/t/deals/kanban?by=stage").get_data(as_text=True)
    assert html.count('class="lane"') == 5 and 'id="card-' in html
    token = csrf_of(html)
    rid = _deal_id(platform, "Globex rollout")
    resp = admin.client.post(
        f"/t/deals/{rid}/move",
        data={"csrf_token": token, "field": "stage", "value": "qualified", "version": "1"},
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 200 and resp.get_json()["ok"] is True
    with system_records(platform) as svc:
        assert svc.get("deals", rid).values["stage"] == "qualified"
    locked = _deal_id(platform, "Acme support plan")
    resp = admin.client.post(
        f"/t/deals/{locked}/move",
        data={"csrf_token": token, "field": "stage", "value": "lead"},
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 409 and resp.get_json()["ok"] is False
    assert resp.get_json()["message"]
    # without JavaScript: a redirect back with the message
    resp = admin.client.post(
        f"/t/deals/{locked}/move",
        data={"csrf_token": token, "field": "stage", "value": "lead"},
    )
    assert resp.status_code == 302
    assert "flash-error" in admin.get(resp.location).get_data(as_text=True)


def test_kanban_refused_by_rule_for_sales(sales, platform):
    token = csrf_of(sales.get("/t/deals/kanban").get_data(as_text=True))
    won = _deal_id(platform, "Umbrella training")  # sales may not change won deals
    resp = sales.client.post(
        f"/t/deals/{won}/move",
        data={"csrf_token": token, "field": "stage", "value": "lead"},
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 403 and "may not" in resp.get_json()["message"]


# --- export ----------------------------------------------------------------------------
def test_export_csv_is_the_view(admin):
    resp = admin.get(
        "/t/deals/export.csv?col=title&col=amount&col=company&sort=-amount&filter=amount > 40000"
    )
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Title", "Amount", "Company"]
    assert [r[0] for r in rows[1:]] == ["Globex rollout", "Wonka supply chain", "Acme analytics"]
    assert rows[1][2] == "Globex"


def test_export_xlsx(admin):
    from openpyxl import load_workbook

    resp = admin.get("/t/deals/export.xlsx?col=title&col=amount&sort=title")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.get_data())).active
    assert [c.value for c in ws[1]] == ["Title", "Amount"]
    assert ws.cell(2, 1).value == "Acme analytics" and float(ws.cell(2, 2).value) == 42500


def test_export_applies_permissions(app, sales, platform):
    with platform.schema_editor() as ed:
        ed.set_field_permissions("deals", "amount", [{"role": "sales", "read": False}])
    resp = sales.get("/t/deals/export.csv?col=title&col=amount")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Title"]
    assert "Amount" not in sales.get("/t/deals").get_data(as_text=True)


def test_view_links_encode_every_argument_as_urlencode_does():
    from urllib.parse import urlencode

    from cubebase.web.pages.views import ViewState

    view = ViewState(table=None, columns=[], sort="-amount", filter='stage = "won" & x', q="a b")
    view.eq = {"region": "", "stage": "won"}
    for changes in (
        {},
        {"sort": "name"},
        {"cursor": "abc=", "back": ["", "x/y", "z"]},
        {"back": []},
        {"page": 1},
        {"page": True},
        {"page": 0},
        {"page": False},
        {"tags": {"b", "a"}},
        {"q": "广州 & co"},
    ):
        for _ in range(2):  # the second time from the cache
            assert view.query(**changes) == urlencode(view.args(**changes), doseq=True)
