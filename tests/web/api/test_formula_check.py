"""POST /api/v1/formula/check shares the CLI's function: a type, or errors with positions."""


def test_a_valid_formula_gives_its_type(client):
    resp = client.post("/api/v1/formula/check", json={"table": "users", "formula": "LEN(name) * 2"})
    assert resp.status_code == 200
    assert resp.get_json() == {"type": "Number"}


def test_an_invalid_formula_gives_a_400_with_positions(client):
    resp = client.post(
        "/api/v1/formula/check", json={"table": "users", "formula": 'IF(active, 1, "x"'}
    )
    assert resp.status_code == 400
    body = resp.get_json()["error"]
    assert body["code"] == "formula_error"
    assert body["details"][0]["line"] == 1
    assert "column" in body["details"][0] and "excerpt" in body["details"][0]
    assert "SELECT" not in resp.get_data(as_text=True)


def test_an_unknown_table_is_404(client):
    resp = client.post("/api/v1/formula/check", json={"table": "nope", "formula": "1"})
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_a_malformed_body_is_400(client):
    resp = client.post("/api/v1/formula/check", data="not json", content_type="text/plain")
    assert resp.status_code == 400
    resp = client.post("/api/v1/formula/check", json={"table": 5, "formula": None})
    assert resp.status_code == 400


def test_no_token_is_401_and_a_bad_token_is_401(app):
    c = app.test_client()
    assert c.post("/api/v1/formula/check", json={}).status_code == 401
    resp = c.post(
        "/api/v1/formula/check", json={}, headers={"Authorization": "Bearer cb_not-a-real-token"}
    )
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


def test_injection_in_a_formula_is_just_an_error(client):
    for text in ['"); DROP TABLE t_1; --', "__import__('os')", "{a} ; DELETE"]:
        resp = client.post("/api/v1/formula/check", json={"table": "users", "formula": text})
        assert resp.status_code in (200, 400)
        assert "Traceback" not in resp.get_data(as_text=True)
    assert (
        client.post(
            "/api/v1/formula/check", json={"table": "users", "formula": "LEN(name)"}
        ).status_code
        == 200
    )
