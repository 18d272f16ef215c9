"""Saved views: a user's own, and shared views admins define (the table's `views`,
the same as app files), on both databases."""

from __future__ import annotations

import re

from cubebase.schema_defs.export import live_app

from .conftest import system_records

VIEW_LINK = re.compile(r'<a href="/t/deals\?([^"]*)" class="view-link">([^<]*)</a>')


def _links(html: str) -> dict[str, str]:
    return {label: query for query, label in VIEW_LINK.findall(html)}


def test_a_user_saves_opens_and_deletes_their_own_view(sales, admin):
    state = "fields=title%2Camount&sort=-amount&filter=amount+%3E+50000&q=wonka&cursor=xyz"
    r = sales.post("/t/deals/views", {"label": "Big Wonka", "state": state}, token_from="/t/deals")
    assert r.status_code == 302
    assert "cursor" not in r.headers["Location"]  # paging is not part of a view
    html = sales.get("/t/deals").get_data(as_text=True)
    query = _links(html)["Big Wonka"]
    assert "sort=-amount" in query and "q=wonka" in query and "cursor" not in query
    opened = sales.get(f"/t/deals?{query.replace('&amp;', '&')}").get_data(as_text=True)
    assert "Wonka supply chain" in opened and "Acme renewal" not in opened
    assert "Big Wonka" not in admin.get("/t/deals").get_data(as_text=True)  # only theirs
    view_id = re.search(r"/t/deals/views/(\d+)/delete", html).group(1)
    assert admin.post(f"/t/deals/views/{view_id}/delete", token_from="/t/deals").status_code == 404
    r = sales.post(f"/t/deals/views/{view_id}/delete", token_from="/t/deals")
    assert r.status_code == 302
    assert "Big Wonka" not in _links(sales.get("/t/deals").get_data(as_text=True))


def test_admins_share_views_that_everyone_sees_and_apps_export(admin, sales, platform):
    state = "fields=title%2Cstage&filter=amount+%3E+50000&sort=title"
    r = admin.post(
        "/t/deals/views",
        {"label": "Big deals", "state": state, "shared": "y"},
        token_from="/t/deals",
    )
    assert r.status_code == 302
    assert "Big deals" in _links(sales.get("/t/deals").get_data(as_text=True))
    with system_records(platform) as svc:
        (view,) = svc.table("deals").config["views"]
        assert view["key"] == "big_deals" and view["fields"] == ["title", "stage"]
        exported = live_app(svc.schema, svc.session, None)
        deals = next(t for t in exported.tables if t.key == "deals")
        assert deals.views[0].filter == "amount > 50000" and deals.views[0].sort == "title"
    # salespeople cannot share, nor delete shared views
    r = sales.post(
        "/t/deals/views", {"label": "x", "state": "", "shared": "y"}, token_from="/t/deals"
    )
    assert r.status_code == 403
    assert (
        sales.post("/t/deals/shared-views/big_deals/delete", token_from="/t/deals").status_code
        == 403
    )
    assert (
        admin.post("/t/deals/shared-views/big_deals/delete", token_from="/t/deals").status_code
        == 302
    )
    assert "Big deals" not in _links(admin.get("/t/deals").get_data(as_text=True))


def test_a_shared_view_with_a_wrong_filter_is_refused_and_names_are_escaped(admin):
    r = admin.post(
        "/t/deals/views",
        {"label": "bad", "state": "filter=amout+%3E+1", "shared": "y"},
        token_from="/t/deals",
    )
    assert r.status_code in (400, 422) or "amout" in r.get_data(as_text=True)
    admin.post(
        "/t/deals/views", {"label": "<script>x</script>", "state": ""}, token_from="/t/deals"
    )
    html = admin.get("/t/deals").get_data(as_text=True)
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    r = admin.post("/t/deals/views", {"label": "", "state": ""}, token_from="/t/deals")
    assert r.status_code == 302  # back to the grid with a message, nothing saved


def test_the_navigation_lists_the_views_of_the_table_on_screen(sales):
    sales.post(
        "/t/deals/views", {"label": "Mine first", "state": "sort=title"}, token_from="/t/deals"
    )
    html = sales.get("/t/deals").get_data(as_text=True)
    nav = html.split('aria-label="Tables"')[1].split("</nav>")[0]
    assert 'aria-label="Views of Deals"' in nav and ">Mine first</a>" in nav
