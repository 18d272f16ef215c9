"""Pages offer only what the viewer may do: New record, Import, Edit, Move to trash
and each field's input follow the records service's ``rights``; a save refused
meanwhile (someone else's change, a lock) shows the form again (both databases)."""

from __future__ import annotations

import re

import pytest

from cubebase.platform.users import add_role, create_user
from cubebase.web.pages.charts import svg_of

from .conftest import Browser, csrf_of, system_records
from .test_work import deal_id, review  # noqa: F401  (a fixture)

VIEWER_EMAIL, VIEWER_PASSWORD = "viewer@example.com", "viewer-password-1"
SALES_RULES = [
    {
        "role": "sales",
        "read": "TRUE",
        "create": "TRUE",
        "update": 'stage <> "won"',
        "delete": 'stage = "lead"',
    }
]


@pytest.fixture
def viewer(app, sample) -> Browser:
    """A user whose only role reads companies and deals and changes nothing."""
    with sample.schema_editor() as ed:
        add_role(ed, "viewer")
        ed.set_permissions("deals", [*SALES_RULES, {"role": "viewer", "read": "TRUE"}])
        ed.set_permissions(
            "companies",
            [
                {"role": "sales", "read": "TRUE", "create": "TRUE", "update": "TRUE"},
                {"role": "viewer", "read": "TRUE"},
            ],
        )
    with system_records(sample) as svc:
        create_user(sample, svc.session, VIEWER_EMAIL, roles=["viewer"], password=VIEWER_PASSWORD)
    b = Browser(app.test_client())
    assert b.login(VIEWER_EMAIL, VIEWER_PASSWORD).status_code == 302
    return b


def amount_of(sample, did: int):
    with system_records(sample) as svc:
        return svc.get("deals", did).values["amount"]


def has_input(html: str, key: str) -> bool:
    return re.search(rf'name="{key}"', html) is not None


# --- buttons and URLs by row rules --------------------------------------------------------------
def test_read_only_role_is_offered_no_change(viewer, sample):
    did = deal_id(sample, "Globex rollout")  # a lead: sales may change and delete it
    grid = viewer.get("/t/deals").get_data(as_text=True)
    assert 'id="records"' in grid and "Globex rollout" in grid
    assert 'id="new-record"' not in grid and "/t/deals/import" not in grid
    home = viewer.get("/").get_data(as_text=True)
    assert "/t/deals/new" not in home and "/t/deals" in home
    page = viewer.get(f"/t/deals/{did}").get_data(as_text=True)
    assert 'id="record-fields"' in page and 'id="edit"' not in page and 'id="delete"' not in page
    # the URLs typed by hand: the 403 page in the app's layout, no form
    for url in ("/t/deals/new", f"/t/deals/{did}/edit", "/t/deals/import"):
        resp = viewer.get(url)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 403, url
        assert 'id="record-form"' not in html and "Not allowed" in html
        assert 'href="/t/deals"' in html  # the navigation is there
    assert "You may not add records to Deals" in viewer.get("/t/deals/new").get_data(as_text=True)
    # posting anyway is still refused by the records service
    token = csrf_of(page)
    resp = viewer.client.post(
        f"/t/deals/{did}/edit", data={"csrf_token": token, "title": "x", "amount": "1"}
    )
    assert resp.status_code == 403 and amount_of(sample, did) == 88000
    assert (
        viewer.client.post(f"/t/deals/{did}/delete", data={"csrf_token": token}).status_code == 403
    )
    assert (
        viewer.client.post("/t/deals/new", data={"csrf_token": token, "title": "y"}).status_code
        == 403
    )


def test_role_with_rights_is_offered_what_its_rules_allow(sales, sample):
    grid = sales.get("/t/deals").get_data(as_text=True)
    assert 'id="new-record"' in grid and "/t/deals/import" in grid
    assert "/t/deals/new" in sales.get("/").get_data(as_text=True)
    assert 'id="record-form"' in sales.get("/t/deals/new").get_data(as_text=True)
    assert sales.get("/t/deals/import").status_code == 200
    lead = deal_id(sample, "Globex rollout")
    page = sales.get(f"/t/deals/{lead}").get_data(as_text=True)
    assert 'id="edit"' in page and 'id="delete"' in page
    # a proposal: changed, not deleted (delete: stage = "lead")
    proposal = deal_id(sample, "Acme analytics")
    page = sales.get(f"/t/deals/{proposal}").get_data(as_text=True)
    assert 'id="edit"' in page and 'id="delete"' not in page
    # won: neither (update: stage <> "won"); its edit URL is the 403 page
    won = deal_id(sample, "Acme renewal")
    page = sales.get(f"/t/deals/{won}").get_data(as_text=True)
    assert 'id="edit"' not in page and 'id="delete"' not in page
    resp = sales.get(f"/t/deals/{won}/edit")
    assert resp.status_code == 403 and "You may not change Acme renewal" in resp.get_data(
        as_text=True
    )
    # lost is locked for everyone: the edit URL goes back to the record with the reason
    lost = deal_id(sample, "Acme support plan")
    resp = sales.get(f"/t/deals/{lost}/edit")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/t/deals/{lost}")
    page = sales.get(resp.headers["Location"]).get_data(as_text=True)
    assert "is closed and can no longer be changed" in page and 'id="edit"' not in page


def test_admin_is_offered_everything_but_locked_records(admin, sample):
    won = deal_id(sample, "Acme renewal")
    page = admin.get(f"/t/deals/{won}").get_data(as_text=True)
    assert 'id="edit"' in page and 'id="delete"' in page
    lost = deal_id(sample, "Acme support plan")
    page = admin.get(f"/t/deals/{lost}").get_data(as_text=True)
    assert 'id="edit"' not in page and 'id="delete"' not in page
    assert admin.get(f"/t/deals/{lost}/edit").status_code == 302


def test_rights_of_the_records_service(sample):
    from cubebase.platform.actor import Actor

    with sample.session() as s:
        svc = sample.records(s, Actor.system_actor())
        rights = svc.rights("deals")
        assert rights.create and "amount" in rights.writable and "summary" not in rights.writable
        lost = svc.rights("deals", deal_id(sample, "Acme support plan"))
        assert lost.locked and not lost.update and not lost.delete and not lost.writable


# --- fields the viewer cannot write --------------------------------------------------------------
def test_field_without_write_right_is_shown_read_only_and_ignored(sales, admin, sample):
    with sample.schema_editor() as ed:
        ed.set_permissions("deals", SALES_RULES)
        ed.set_field_permissions("deals", "amount", [{"role": "sales", "write": "FALSE"}])
    did = deal_id(sample, "Globex rollout")
    url = f"/t/deals/{did}/edit"
    html = sales.get(url).get_data(as_text=True)
    assert 'id="record-form"' in html and not has_input(html, "amount")
    assert has_input(html, "title") and "88,000.00" in html
    # a posted amount is ignored; the rest is saved
    resp = sales.post(url, {"title": "Globex rollout 2", "stage": "lead", "amount": "1"})
    assert resp.status_code == 302 and amount_of(sample, did) == 88000
    # the new-record form: no input either (a constant FALSE write rule)
    assert not has_input(sales.get("/t/deals/new").get_data(as_text=True), "amount")
    # the admin is not limited by field rules
    assert has_input(admin.get(url).get_data(as_text=True), "amount")


def test_field_held_by_a_running_workflow_is_read_only(admin, sales, sample, review):  # noqa: F811
    url = f"/t/deals/{review['deal']}/edit"
    # the admin holds no task of the step: probability is the workflow's now
    html = admin.get(url).get_data(as_text=True)
    assert not has_input(html, "probability") and "Deal review" in html
    assert has_input(html, "title")
    resp = admin.post(url, {"title": "Globex pilot", "stage": "qualified", "probability": "50"})
    assert resp.status_code == 302
    with system_records(sample) as svc:
        assert svc.get("deals", review["deal"]).values["probability"] is None
    # the salesperson is the step's assignee: the field is theirs to fill
    assert has_input(sales.get(url).get_data(as_text=True), "probability")


# --- saves refused meanwhile ----------------------------------------------------------------------
def test_conflict_shows_the_form_again_with_a_reload_link(sales, sample):
    did = deal_id(sample, "Globex rollout")
    url = f"/t/deals/{did}/edit"
    token = csrf_of(sales.get(url).get_data(as_text=True))
    with system_records(sample) as svc:
        version = svc.get("deals", did).version
        svc.update("deals", did, {"amount": 90000})
    resp = sales.client.post(
        url,
        data={
            "csrf_token": token,
            "version": str(version),
            "title": "My typed title",
            "stage": "lead",
            "amount": "91000",
        },
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert 'id="record-form"' in html and 'id="form-errors"' in html and 'id="conflict"' in html
    assert 'id="reload"' in html and f'href="/t/deals/{did}/edit"' in html
    assert 'value="My typed title"' in html and 'value="91000"' in html
    assert amount_of(sample, did) == 90000


def test_record_locked_meanwhile_shows_the_form_again(sales, sample):
    did = deal_id(sample, "Globex rollout")
    url = f"/t/deals/{did}/edit"
    token = csrf_of(sales.get(url).get_data(as_text=True))
    with system_records(sample) as svc:
        svc.update("deals", did, {"stage": "lost"})
    resp = sales.client.post(
        url, data={"csrf_token": token, "title": "My typed title", "stage": "lead"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'id="record-form"' in html
    assert "is closed and can no longer be changed" in html and 'id="form-errors"' in html
    assert 'value="My typed title"' in html
    with system_records(sample) as svc:
        assert svc.get("deals", did).values["title"] == "Globex rollout"


def test_save_out_of_reach_keeps_the_input(sales, sample):
    """A change the rules refuse as a whole (the deal moved to won, which sales may
    not update): the message above the form, the typed values kept."""
    did = deal_id(sample, "Globex rollout")
    url = f"/t/deals/{did}/edit"
    resp = sales.post(url, {"title": "Typed", "stage": "won"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and 'id="record-form"' in html
    assert "out of your reach" in html and 'value="Typed"' in html


# --- the funnel's percentages ---------------------------------------------------------------------
def test_funnel_percentages_are_shares_of_the_whole():
    steps = svg_of("funnel", [("lead", 1.0), ("won", 2.0), ("lost", 1.0)])["steps"]
    assert [s["pct"] for s in steps] == ["25%", "50%", "25%"]
    assert [s["pct"] for s in svg_of("funnel", [("a", 0.0), ("b", 0.0)])["steps"]] == ["", ""]


@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_funnel_chart_page_never_shows_over_100_percent(request, sample, who):
    b = request.getfixturevalue(who)
    html = b.get("/t/deals/chart?type=funnel&by=stage&agg=count").get_data(as_text=True)
    # 11 deals: 3 leads, 2 qualified, 3 proposals, 2 won, 1 lost
    assert "won · 2 (18%)" in html and "lead · 3 (27%)" in html
    assert all(int(p) <= 100 for p in re.findall(r"\((\d+)%\)", html))
