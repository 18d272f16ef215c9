"""Auth, sessions with CSRF, path tricks, injection attempts, limits and the token log."""

from __future__ import annotations

import sqlalchemy as sa

from cubebase.platform.models import ApiToken, ApiTokenUse
from cubebase.platform.users import find_user_id, revoke_tokens
from cubebase.web import create_app
from tests.conftest import need_redis
from tests.web.api.conftest import error_of, make_customer

R = "/api/v1/tables"


def _set_user(app, email: str, **fields) -> None:
    platform = app.extensions["cubebase"]
    from cubebase.platform.actor import Actor

    with platform.session(write=True) as session, session.begin():
        uid = find_user_id(platform, session, email)
        platform.records(session, Actor.system_actor()).update("users", uid, fields)


def test_every_endpoint_needs_a_caller(app):
    c = app.test_client()
    for method, path in [
        ("GET", "/api/v1/openapi.json"),
        ("GET", f"{R}"),
        ("GET", f"{R}/customers"),
        ("GET", f"{R}/customers/records"),
        ("POST", f"{R}/customers/records"),
        ("GET", f"{R}/customers/records/1"),
        ("PATCH", f"{R}/customers/records/1"),
        ("DELETE", f"{R}/customers/records/1"),
        ("POST", f"{R}/customers/records/1/restore"),
        ("GET", f"{R}/customers/records/1/history"),
        ("POST", f"{R}/customers/records/bulk"),
        ("POST", "/api/v1/formula/check"),
    ]:
        resp = c.open(path, method=method, json={})
        assert resp.status_code == 401, (method, path)
        assert error_of(resp)["code"] == "unauthorized"
    for header in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "bearer cb_nope",
        "Token x",
        "Bearer " + "a" * 5000,
    ]:
        resp = c.get(f"{R}", headers={"Authorization": header})
        assert resp.status_code == 401, header


def test_path_and_query_string_tricks(app, token):
    c = app.test_client()
    for path in [
        f"{R}/x/records?/openapi.json",
        f"{R}/customers/records?x=/api/v1/openapi.json",
        "/api/v1/tables/../openapi.json",
        "/api/v1/openapi.json/../tables",
        "/api/v1/tables/%2e%2e/openapi.json",
        "/api/v1/tables/customers/records/1;/openapi.json",
        "/api/v1/openapi.json?",
        "/api/v1/openapi.json#",
        "/api/v1/Openapi.json",
        "/api/v1/tables/customers/records/%00",
    ]:
        resp = c.get(path)
        assert resp.status_code in (401, 404), path
        error_of(resp)
    # doubled slashes redirect to the one canonical path, which needs a caller too
    resp = c.get("/api/v1//tables")
    assert resp.status_code == 308 and resp.headers["Location"].endswith("/api/v1/tables")
    assert c.get(resp.headers["Location"]).status_code == 401
    # with a token, the query string never changes which endpoint answers
    auth = {"Authorization": f"Bearer {token}"}
    resp = c.get(f"{R}/x/records?/openapi.json", headers=auth)
    assert resp.status_code == 404 and "openapi" not in resp.get_json()


def test_a_deactivated_or_removed_user_is_401_at_once(app, users):
    c = users.client("sam@example.com")
    assert c.get(f"{R}").status_code == 200
    _set_user(app, "sam@example.com", active=False)
    resp = c.get(f"{R}")
    assert resp.status_code == 401 and error_of(resp)["code"] == "unauthorized"
    _set_user(app, "sam@example.com", active=True)
    assert c.get(f"{R}").status_code == 200
    platform = app.extensions["cubebase"]
    with platform.session() as session, session.begin():
        revoke_tokens(session, find_user_id(platform, session, "sam@example.com"))
    assert c.get(f"{R}").status_code == 401


def test_a_removed_role_takes_effect_on_the_next_request(app, users):
    platform = app.extensions["cubebase"]
    users.role("sales")
    with platform.schema_editor() as editor:
        editor.set_permissions("customers", [{"role": "sales", "read": "TRUE"}])
    c = users.client("sue@example.com", roles=["sales"])
    assert c.get(f"{R}/customers/records").status_code == 200
    _set_user(app, "sue@example.com", roles=[])
    assert c.get(f"{R}/customers/records").status_code == 404


def test_browser_session_reads_and_writes_with_csrf(app, users):
    c, csrf = users.browser()
    assert c.get(f"{R}/customers/records").status_code == 200
    body = {"fields": {"name": "Acme"}}
    resp = c.post(f"{R}/customers/records", json=body)
    assert resp.status_code == 403 and error_of(resp)["code"] == "csrf_failed"
    resp = c.post(f"{R}/customers/records", json=body, headers={"X-CSRFToken": "forged"})
    assert resp.status_code == 403
    other, other_csrf = users.browser()
    resp = c.post(f"{R}/customers/records", json=body, headers={"X-CSRFToken": other_csrf})
    assert resp.status_code == 403  # a token of another session
    assert c.get(f"{R}/customers/records").get_json()["records"] == []
    resp = c.post(f"{R}/customers/records", json=body, headers={"X-CSRFToken": csrf})
    assert resp.status_code == 201
    rid = resp.get_json()["id"]
    assert c.delete(f"{R}/customers/records/{rid}").status_code == 403
    assert (
        c.delete(f"{R}/customers/records/{rid}", headers={"X-CSRFToken": csrf}).status_code == 204
    )


def test_session_of_an_inactive_or_unknown_user_is_401(app, users):
    users.add("kim@example.com")
    c, _ = users.browser("kim@example.com")
    _set_user(app, "kim@example.com", active=False)
    assert c.get(f"{R}").status_code == 401
    c2 = app.test_client()
    for bad in [999999, "1", True, None, 2**70, [1]]:
        with c2.session_transaction() as sess:
            sess["user_id"] = bad
        resp = c2.get(f"{R}")
        assert resp.status_code == 401, bad


def test_a_bearer_call_needs_no_csrf_even_with_a_session_cookie(app, users, token):
    c, _ = users.browser()
    resp = c.post(
        f"{R}/customers/records",
        json={"fields": {"name": "x"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 201
    # a bad bearer token is not rescued by the session
    resp = c.get(f"{R}", headers={"Authorization": "Bearer cb_wrong"})
    assert resp.status_code == 401


def test_injection_in_filter_sort_and_fields(client):
    make_customer(client, name="Acme")
    url = f"{R}/customers/records"
    attempts = [
        {"filter": "1=1; DROP TABLE cb_history; --"},
        {"filter": "name = '' OR 1=1 --"},
        {"filter": '" OR ""="'},
        {"filter": "{#1} = 1"},
        {"filter": "__import__('os').system('true')"},
        {"filter": "name = (SELECT password_hash FROM cb_credentials)"},
        {"sort": "name; DROP TABLE t_1"},
        {"sort": "(SELECT 1)"},
        {"sort": "name DESC NULLS FIRST"},
        {"sort": "-" * 50},
        {"fields": "name,(select 1)"},
        {"fields": "id; drop table t_1"},
        {"fields": "__class__"},
        {"expand": "customer;drop"},
        {"cursor": "' OR 1=1 --"},
    ]
    for qs in attempts:
        resp = client.get(url, query_string=qs)
        assert resp.status_code in (200, 400), (qs, resp.status_code)
        text = resp.get_data(as_text=True)
        assert "Traceback" not in text and "SELECT" not in text.upper().replace("(SELECT", "")
    rows = client.get(url).get_json()["records"]
    assert [r["fields"]["name"] for r in rows] == ["Acme"]
    assert client.get(f"{R}/users/records").status_code == 200  # nothing was dropped


def test_body_size_limit_is_413_json(app, crm, token):
    crm.config.max_request_bytes = 2000
    small = create_app(crm.config, crm)
    c = small.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    resp = c.post(f"{R}/customers/records", json={"fields": {"name": "x" * 5000}})
    assert resp.status_code == 413
    assert error_of(resp)["code"] == "too_large"
    resp = c.post(f"{R}/customers/records/bulk", data=b"x" * 3000, content_type="application/json")
    assert resp.status_code == 413


def test_http_errors_are_json_under_api_only(client, app):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    resp = client.put(f"{R}/customers/records")
    assert resp.status_code == 405 and error_of(resp)["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]
    resp = client.get("/not-api")
    assert resp.status_code == 404 and not resp.is_json


def test_rate_limit_in_process(crm, token):
    crm.config.api_rate_limit = 3
    crm.config.api_rate_window = 60
    c = create_app(crm.config, crm).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for i in range(3):
        resp = c.get(f"{R}")
        assert resp.status_code == 200
        assert resp.headers["X-RateLimit-Remaining"] == str(2 - i)
    resp = c.get(f"{R}")
    assert resp.status_code == 429
    assert error_of(resp)["code"] == "rate_limited"
    assert 0 < int(resp.headers["Retry-After"]) <= 61


def test_rate_limit_shared_through_redis(crm, token):
    url = need_redis()
    crm.config.redis_url = url
    crm.config.api_rate_limit = 4
    # two "workers": separate apps (separate processes would share Redis just the same)
    a = create_app(crm.config, crm).test_client()
    b = create_app(crm.config, crm).test_client()
    for c in (a, b):
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    statuses = [c.get(f"{R}").status_code for c in (a, b, a, b, a, b)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_redis_down_lets_requests_through(crm, token):
    crm.config.redis_url = "redis://127.0.0.1:1/0"
    crm.config.api_rate_limit = 1
    c = create_app(crm.config, crm).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    assert [c.get(f"{R}").status_code for _ in range(3)] == [200, 200, 200]


def test_token_use_is_logged_per_hour(app, client, users):
    make_customer(client)
    client.get(f"{R}/customers/records")
    client.get(f"{R}/ghost")
    platform = app.extensions["cubebase"]
    with platform.session() as session:
        rows = session.scalars(sa.select(ApiTokenUse)).all()
        assert len(rows) == 1
        use = rows[0]
        assert (use.requests, use.writes, use.refused) == (3, 1, 1)
        assert use.last_ip == "127.0.0.1"
        token = session.get(ApiToken, use.token_id)
        assert token.last_used_at is not None
        assert use.user_id == find_user_id(platform, session, "admin@example.com")
    # browser sessions are not token use
    c, _ = users.browser()
    c.get(f"{R}")
    with platform.session() as session:
        assert session.scalar(sa.select(sa.func.sum(ApiTokenUse.requests))) == 3
