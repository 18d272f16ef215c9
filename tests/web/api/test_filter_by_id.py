"""Naming records by id in an API filter (``owner = 6``, ``id IN (...)``): an id only
filters the caller's readable rows, it never reveals a row the row rules hide."""

from __future__ import annotations

from tests.web.api.conftest import error_of
from tests.web.api.test_api_permissions import world  # noqa: F401  (fixture)

R = "/api/v1/tables"


def _ids(client, formula: str) -> list[int]:
    resp = client.get(f"{R}/customers/records", query_string={"filter": formula})
    assert resp.status_code == 200, resp.get_json()
    return sorted(r["id"] for r in resp.get_json()["records"])


def _owners(client, w: dict) -> tuple[int, int]:
    mine = client.get(f"{R}/customers/records/{w['mine']}").get_json()
    theirs = client.get(f"{R}/customers/records/{w['theirs']}").get_json()
    return mine["fields"]["owner"], theirs["fields"]["owner"]


def test_a_salesperson_filters_by_id_only_among_their_rows(world, client):  # noqa: F811
    ann = world["ann"]
    ann_id, bob_id = _owners(client, world)
    mine, theirs = world["mine"], world["theirs"]
    assert _ids(client, f"owner = {bob_id}") == [theirs]  # the admin sees Bob's customer
    assert _ids(ann, f"owner = {bob_id}") == []  # Ann does not, even by naming Bob
    assert _ids(ann, f"owner = {ann_id}") == [mine]
    assert _ids(ann, f"owner IN ({ann_id}, {bob_id})") == [mine]
    assert _ids(ann, f"owner != {bob_id}") == [mine]
    assert _ids(ann, f"id = {theirs}") == []
    assert _ids(ann, f"id IN ({mine}, {theirs})") == [mine]
    assert _ids(ann, f"ID(owner) = {ann_id} AND owner.id = {ann_id}") == [mine]


def test_a_wrong_id_comparison_is_a_clear_400(world):  # noqa: F811
    ann = world["ann"]
    for formula, words in [
        ("owner < 3", "can only be compared with = and !="),
        ("owner = 2.5", "is not a record id"),
        ('owner = "Bob"', "cannot compare User and Text"),
    ]:
        resp = ann.get(f"{R}/customers/records", query_string={"filter": formula})
        assert resp.status_code == 400, formula
        assert words in error_of(resp)["message"] + str(error_of(resp)["details"]), formula
