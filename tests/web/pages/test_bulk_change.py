"""Change these records: one field set on every record of the grid's view, after a
confirmation, all or nothing, as the user (both databases)."""

from __future__ import annotations

from cubebase.platform.listing import Condition

from .conftest import system_records
from .test_rights import viewer  # noqa: F401  (a fixture)

VIEW = "q=Bulk&eq.segment=small+business"


def _companies(platform) -> dict[str, str | None]:
    with system_records(platform) as svc:
        rows = svc.list("companies", limit=500).records
        return {r.values["name"]: r.values["segment"] for r in rows}


def _probabilities(platform) -> dict[str, int | None]:
    with system_records(platform) as svc:
        rows = svc.list("deals", limit=500).records
        return {r.values["title"]: r.values["probability"] for r in rows}


def test_filtered_change_updates_every_matching_record(admin, sample):
    with system_records(sample) as svc:
        svc.bulk_create(
            "companies",
            [{"name": f"Bulk {i:02}", "segment": "small business"} for i in range(60)]
            + [{"name": "Bulk other", "segment": "mid-market"}],
        )
    html = admin.get(f"/t/companies?{VIEW}").get_data(as_text=True)
    assert 'id="bulk-change"' in html and "60 records" in html
    url = f"/t/companies/change?{VIEW}"
    page = admin.get(url + "&field=segment")
    assert page.status_code == 200
    assert "60 companies" in page.get_data(as_text=True)

    data = {"field": "segment", "segment": "enterprise"}
    resp = admin.post(url, data, token_from=url + "&field=segment")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Set Segment to enterprise on 60 companies?" in html
    assert _companies(sample)["Bulk 59"] == "small business"  # nothing written yet

    resp = admin.post(url, {**data, "confirm": "1"}, token_from=url + "&field=segment")
    assert resp.status_code == 302
    after = _companies(sample)
    assert all(after[f"Bulk {i:02}"] == "enterprise" for i in range(60))  # past page one
    assert after["Bulk other"] == "mid-market"  # outside the view
    assert after["Initech"] == after["Wonka"] == "small business"
    flash = admin.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Segment set to enterprise on 60 companies." in flash


def test_read_only_role_sees_no_form_and_post_is_refused(viewer, sample):  # noqa: F811
    html = viewer.get("/t/deals").get_data(as_text=True)
    assert 'id="bulk-change"' not in html
    assert viewer.get("/t/deals/change?field=probability").status_code == 403
    before = _probabilities(sample)
    resp = viewer.post(
        "/t/deals/change",
        {"field": "probability", "probability": "50", "confirm": "1"},
        token_from="/t/deals",
    )
    assert resp.status_code == 403
    assert _probabilities(sample) == before


def test_one_refused_record_changes_nothing(sales, sample):
    assert 'id="bulk-change"' in sales.get("/t/deals").get_data(as_text=True)
    before = _probabilities(sample)
    url = "/t/deals/change?filter=amount+%3E+10000"
    data = {"field": "probability", "probability": "50", "confirm": "1"}
    resp = sales.post(url, data, token_from=url + "&field=probability")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403  # Acme renewal is won: sales may no longer change it
    assert "Nothing was changed" in html and "Acme renewal" in html
    assert _probabilities(sample) == before


def test_a_refused_value_changes_nothing(admin, sample):
    before = _probabilities(sample)
    url = "/t/deals/change?eq.stage=lead"
    data = {"field": "probability", "probability": "500", "confirm": "1"}
    resp = admin.post(url, data, token_from=url + "&field=probability")
    assert resp.status_code == 422
    assert "Probability is a percentage from 0 to 100" in resp.get_data(as_text=True)
    assert _probabilities(sample) == before


def test_csrf_is_required(admin, sample):
    before = _probabilities(sample)
    resp = admin.client.post(
        "/t/deals/change?eq.stage=lead",
        data={"field": "probability", "probability": "20", "confirm": "1"},
    )
    assert resp.status_code == 400
    assert _probabilities(sample) == before
    with system_records(sample) as svc:
        assert svc.count("deals", where=Condition("probability", "eq", 20)) == 0
