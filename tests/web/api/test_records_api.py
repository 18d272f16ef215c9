"""Records endpoints: each happy path and each documented error, on both databases."""

from __future__ import annotations

from tests.web.api.conftest import error_of, make_customer

R = "/api/v1/tables"


def test_tables_and_one_table(client):
    resp = client.get(f"{R}")
    assert resp.status_code == 200
    keys = [t["key"] for t in resp.get_json()["tables"]]
    assert {"users", "customers", "deals", "regions", "tags"} <= set(keys)
    table = client.get(f"{R}/customers").get_json()
    fields = {f["key"]: f for f in table["fields"]}
    assert fields["stage"]["options"] == ["lead", "potential", "customer"]
    assert fields["region"] == {
        "key": "region",
        "label": "Region",
        "type": "link",
        "to": "regions",
        "related_name": "customers",
        "read_only": False,
    }
    assert fields["created_at"]["read_only"] is True
    assert error_of(client.get(f"{R}/nope"))["code"] == "not_found"


def test_create_get_update_delete_restore_history(client):
    created = make_customer(client, name="Acme", stage="lead", email="A@Example.com")
    assert created["version"] == 1
    assert created["fields"]["email"] == "a@example.com"
    rid = created["id"]
    got = client.get(f"{R}/customers/records/{rid}")
    assert got.status_code == 200 and got.get_json() == created

    resp = client.patch(
        f"{R}/customers/records/{rid}", json={"fields": {"stage": "customer"}, "version": 1}
    )
    assert resp.status_code == 200
    assert resp.get_json()["version"] == 2 and resp.get_json()["fields"]["stage"] == "customer"

    # someone changed it first: 409 with the current version
    stale = client.patch(
        f"{R}/customers/records/{rid}", json={"fields": {"name": "X"}, "version": 1}
    )
    assert stale.status_code == 409
    err = error_of(stale)
    assert err["code"] == "conflict" and err["details"][0]["current_version"] == 2

    assert client.delete(f"{R}/customers/records/{rid}?version=1").status_code == 409
    resp = client.delete(f"{R}/customers/records/{rid}?version=2")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert client.get(f"{R}/customers/records/{rid}").status_code == 404
    trash = client.get(f"{R}/customers/records?trashed=true").get_json()["records"]
    assert [r["id"] for r in trash] == [rid] and "deleted_at" in trash[0]

    restored = client.post(f"{R}/customers/records/{rid}/restore")
    assert restored.status_code == 200 and restored.get_json()["version"] == 4
    assert client.post(f"{R}/customers/records/{rid}/restore").status_code == 404

    history = client.get(f"{R}/customers/records/{rid}/history").get_json()["history"]
    assert [h["action"] for h in history] == ["create", "update", "delete", "restore"]
    change = history[1]["changes"][0]
    assert change["field"] == "stage" and change["old"] == "lead" and change["new"] == "customer"
    assert history[0]["by"] == created["fields"]["created_by"]
    assert client.get(f"{R}/customers/records/999/history").status_code == 404


def test_validation_errors_are_422_one_per_field(client):
    resp = client.post(
        f"{R}/customers/records",
        json={"fields": {"stage": "nope", "email": "not-an-email", "id": 5, "ghost": 1}},
    )
    assert resp.status_code == 422
    err = error_of(resp)
    assert err["code"] == "validation_failed"
    by_field = {d["field"]: d["message"] for d in err["details"]}
    assert {"stage", "email", "ghost", "name"} <= set(by_field)
    assert client.get(f"{R}/customers/records").get_json()["records"] == []


def test_unique_value_in_use_is_422(client):
    make_customer(client, email="a@example.com")
    resp = client.post(
        f"{R}/customers/records", json={"fields": {"name": "B", "email": "a@example.com"}}
    )
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["field"] == "email"


def test_list_filter_sort_fields_limit_cursor(client):
    for i, stage in enumerate(["lead", "customer", "lead", "potential", "lead"]):
        make_customer(client, name=f"c{i}", stage=stage)
    resp = client.get(
        f"{R}/customers/records",
        query_string={
            "filter": 'stage = "lead"',
            "sort": "-name",
            "fields": "name,stage",
            "limit": 2,
        },
    )
    assert resp.status_code == 200
    page = resp.get_json()
    assert [r["fields"] for r in page["records"]] == [
        {"name": "c4", "stage": "lead"},
        {"name": "c2", "stage": "lead"},
    ]
    assert page["next_cursor"]
    nxt = client.get(
        f"{R}/customers/records",
        query_string={
            "filter": 'stage = "lead"',
            "sort": "-name",
            "fields": "name,stage",
            "limit": 2,
            "cursor": page["next_cursor"],
        },
    ).get_json()
    assert [r["fields"]["name"] for r in nxt["records"]] == ["c0"]
    assert nxt["next_cursor"] is None
    # a cursor of another sort order, a broken cursor
    other = client.get(
        f"{R}/customers/records", query_string={"sort": "name", "cursor": page["next_cursor"]}
    )
    assert other.status_code == 400
    for bad in ["garbage", "!!!", "eyJ4IjogMX0", "W10", "WyJuYW1lIiwgWzEsMiwzXV0"]:
        resp = client.get(f"{R}/customers/records", query_string={"cursor": bad})
        assert resp.status_code == 400, bad
        assert error_of(resp)["code"] == "bad_request"


def test_bad_list_parameters_are_400(client):
    for qs in [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"limit": "99999999999999999999999"},
        {"sort": "ghost"},
        {"sort": "tags"},
        {"fields": "name,ghost"},
        {"expand": "name"},
        {"expand": "ghost"},
        {"trashed": "maybe"},
    ]:
        resp = client.get(f"{R}/customers/records", query_string=qs)
        assert resp.status_code == 400, (qs, resp.get_json())
        assert error_of(resp)["code"] == "bad_request"
    resp = client.get(f"{R}/customers/records?limit=1&limit=2")
    assert resp.status_code == 400


def test_filter_errors_carry_positions(client):
    resp = client.get(f"{R}/customers/records", query_string={"filter": 'stage = "lead" AND'})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "formula_error"
    assert {"line", "column"} <= set(err["details"][0])
    resp = client.get(f"{R}/customers/records", query_string={"filter": "ghost > 1"})
    assert resp.status_code == 400 and error_of(resp)["details"]
    resp = client.get(f"{R}/customers/records", query_string={"filter": "1 + 1"})
    assert resp.status_code == 400  # a filter must be true or false


def test_expand_links_and_many_links(client):
    region = client.post(f"{R}/regions/records", json={"fields": {"name": "North"}}).get_json()
    t1 = client.post(f"{R}/tags/records", json={"fields": {"name": "vip"}}).get_json()
    t2 = client.post(f"{R}/tags/records", json={"fields": {"name": "new"}}).get_json()
    customer = make_customer(client, region=region["id"], tags=[t2["id"], t1["id"]])
    assert customer["fields"]["tags"] == sorted([t1["id"], t2["id"]])
    deal = client.post(
        f"{R}/deals/records", json={"fields": {"customer": customer["id"], "amount": 1234.5}}
    ).get_json()
    assert deal["fields"]["amount"] == "1234.50" and deal["fields"]["number"] == 1

    page = client.get(f"{R}/deals/records?expand=customer").get_json()
    linked = page["records"][0]["fields"]["customer"]
    assert linked["id"] == customer["id"] and linked["fields"]["name"] == "Acme"
    one = client.get(f"{R}/customers/records/{customer['id']}?expand=region,tags").get_json()
    assert one["fields"]["region"]["fields"]["name"] == "North"
    assert [t["fields"]["name"] for t in one["fields"]["tags"]] == ["vip", "new"]
    # expand adds the field to a narrowed field list
    narrow = client.get(f"{R}/deals/records?fields=amount&expand=customer").get_json()
    assert set(narrow["records"][0]["fields"]) == {"amount", "customer"}


def test_unknown_tables_and_records_are_404(client):
    for path in [
        f"{R}/ghost/records",
        f"{R}/customers/records/1",
        f"{R}/customers/records/abc",
        f"{R}/customers/records/-1",
        f"{R}/customers/records/0",
        f"{R}/customers/records/99999999999999999999999999",
        f"{R}/customers/records/1e3",
        f"{R}/customers/records/1/history",
    ]:
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert error_of(resp)["code"] == "not_found"
    assert client.patch(f"{R}/customers/records/7", json={"fields": {}}).status_code == 404
    assert client.delete(f"{R}/customers/records/7").status_code == 404
    assert client.post(f"{R}/ghost/records", json={"fields": {}}).status_code == 404


def test_malformed_bodies_are_400(client):
    url = f"{R}/customers/records"
    cases = [
        dict(data="not json", content_type="application/json"),
        dict(data="{", content_type="application/json"),
        dict(data=b"\xff\xfe", content_type="application/json"),
        dict(data='{"fields": {"name": "x"}}', content_type="text/plain"),
        dict(json=[1, 2]),
        dict(json="text"),
        dict(json=None),
        dict(json={"name": "flat values"}),
        dict(json={"fields": ["a"]}),
        dict(json={"fields": {"name": "x"}, "extra": 1}),
        dict(data="[" * 100_000 + "]" * 100_000, content_type="application/json"),
    ]
    for kw in cases:
        resp = client.post(url, **kw)
        assert resp.status_code == 400, (kw.get("json"), resp.get_json())
        assert error_of(resp)["code"] == "bad_request"
    make_customer(client)
    for body in [
        {"fields": {"name": "y"}, "version": "1"},
        {"fields": {"name": "y"}, "version": True},
        {"fields": {"name": "y"}, "version": 10**30},
    ]:
        resp = client.patch(f"{url}/1", json=body)
        assert resp.status_code == 400, body


def test_wrong_types_and_huge_numbers_are_422(client):
    customer = make_customer(client)
    cases = [
        {"name": 5},
        {"name": ["x"]},
        {"name": "x" * 2000},
        {"stage": {"a": 1}},
        {"region": "abc"},
        {"region": 10**40},
        {"region": -3},
        {"tags": "1,2"},
        {"tags": [10**30]},
        {"owner": 9999},
    ]
    for fields in cases:
        resp = client.patch(f"{R}/customers/records/{customer['id']}", json={"fields": fields})
        assert resp.status_code == 422, (fields, resp.get_json())
    for amount in [10**40, "1e400", -(10**30), "NaN", float("inf"), True, [1], "12abc"]:
        resp = client.post(
            f"{R}/deals/records", json={"fields": {"customer": customer["id"], "amount": amount}}
        )
        assert resp.status_code == 422, (amount, resp.get_json())
    # JSON's own giants: a 5,000-digit literal and 1e999 (infinity)
    raw = '{"fields": {"customer": %d, "amount": %s}}'
    for literal in ["9" * 5000, "1e999", "-1e999"]:
        resp = client.post(
            f"{R}/deals/records",
            data=raw % (customer["id"], literal),
            content_type="application/json",
        )
        assert resp.status_code in (400, 422), literal
        error_of(resp)


def test_bulk_creates_and_updates_all_or_nothing(client):
    a = make_customer(client, name="a")
    resp = client.post(
        f"{R}/customers/records/bulk",
        json={
            "records": [
                {"fields": {"name": "b", "stage": "lead"}},
                {"id": a["id"], "version": 1, "fields": {"stage": "customer"}},
                {"fields": {"name": "c"}},
            ]
        },
    )
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()["records"]
    assert [r["fields"]["name"] for r in out] == ["b", "a", "c"]
    assert out[1]["version"] == 2 and out[1]["fields"]["stage"] == "customer"

    # one bad row among many: nothing is written, every problem has its row
    before = client.get(f"{R}/customers/records?limit=1000").get_json()["records"]
    resp = client.post(
        f"{R}/customers/records/bulk",
        json={
            "records": [
                {"fields": {"name": "ok"}},
                {"fields": {"stage": "bogus"}},
                {"id": a["id"], "fields": {"email": "nope"}},
                {"fields": {"name": "fine"}},
            ]
        },
    )
    assert resp.status_code == 422
    err = error_of(resp)
    rows = {(d["row"], d["field"]) for d in err["details"]}
    assert {(1, "name"), (1, "stage"), (2, "email")} <= rows
    assert client.get(f"{R}/customers/records?limit=1000").get_json()["records"] == before

    # a stale version in a bulk update: 409 with the row and the current version
    resp = client.post(
        f"{R}/customers/records/bulk",
        json={
            "records": [
                {"fields": {"name": "d"}},
                {"id": a["id"], "version": 1, "fields": {"name": "z"}},
            ]
        },
    )
    assert resp.status_code == 409
    detail = error_of(resp)["details"][0]
    assert detail["row"] == 1 and detail["current_version"] == 2
    assert client.get(f"{R}/customers/records?limit=1000").get_json()["records"] == before


def test_bulk_limits_and_shapes(client, app):
    url = f"{R}/customers/records/bulk"
    limit = app.extensions["cubebase"].config.max_bulk_rows
    big = {"records": [{"fields": {"name": f"n{i}"}} for i in range(limit)]}
    resp = client.post(url, json=big)
    assert resp.status_code == 200 and len(resp.get_json()["records"]) == limit
    assert len({r["id"] for r in resp.get_json()["records"]}) == limit
    too_many = {"records": [{"fields": {"name": "n"}}] * (limit + 1)}
    assert client.post(url, json=too_many).status_code == 400
    for body in [
        {},
        {"records": {}},
        {"records": [1]},
        {"records": [{"name": "flat"}]},
        {"records": [{"fields": {}, "junk": 1}]},
        {"records": [{"fields": {"name": "x"}, "version": 1}]},
        {"records": [{"id": 1, "fields": {}, "version": "x"}]},
        {"records": [], "more": 1},
    ]:
        resp = client.post(url, json=body)
        assert resp.status_code == 400, body
        error_of(resp)
    assert client.post(url, json={"records": []}).get_json() == {"records": []}
    resp = client.post(url, json={"records": [{"id": 10**9, "fields": {"name": "x"}}]})
    assert resp.status_code == 404 and error_of(resp)["details"][0]["row"] == 0
