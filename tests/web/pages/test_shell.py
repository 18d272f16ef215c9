"""Sign-in, sign-out, CSRF, navigation and error pages."""

from __future__ import annotations

from cubebase.platform.users import find_user_id

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Browser, csrf_of, system_records


def test_pages_need_sign_in(app, sample):
    c = app.test_client()
    resp = c.get("/t/deals?sort=title")
    assert resp.status_code == 302
    assert resp.location.startswith("/login?next=")
    assert c.post("/t/deals/new").status_code in (302, 400)


def test_login_wrong_password_then_right(app, sample):
    b = Browser(app.test_client())
    resp = b.login(ADMIN_EMAIL, "wrong-password")
    assert resp.status_code == 401
    assert "Wrong e-mail or password" in resp.get_data(as_text=True)
    resp = b.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert resp.status_code == 302 and resp.location == "/"
    home = b.get("/").get_data(as_text=True)
    assert "Deals" in home and "Companies" in home and ADMIN_EMAIL in home


def test_login_follows_only_local_next(app, sample):
    for target, expected in [
        ("/t/deals", "/t/deals"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
    ]:
        b = Browser(app.test_client())
        token = b.token("/login")
        resp = b.client.post(
            f"/login?next={target}",
            data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
        )
        assert resp.status_code == 302
        assert resp.location == expected


def test_session_cookie_flags(app, sample):
    b = Browser(app.test_client())
    resp = b.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert cookie.startswith("cubebase_session=")


def test_logout_needs_csrf_and_ends_session(admin):
    resp = admin.client.post("/logout")
    assert resp.status_code == 400
    assert "The form expired" in resp.get_data(as_text=True)
    assert admin.get("/").status_code == 200
    resp = admin.post("/logout", token_from="/")
    assert resp.status_code == 302
    assert admin.get("/").status_code == 302


def test_form_posts_need_csrf(admin):
    resp = admin.client.post("/t/deals/new", data={"title": "No token"})
    assert resp.status_code == 400
    assert "Traceback" not in resp.get_data(as_text=True)


def test_api_bearer_tokens_need_no_csrf(app, sample, token):
    c = app.test_client()
    resp = c.post(
        "/api/v1/tables/deals/records",
        json={"fields": {"title": "From the API"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 201, resp.get_json()


def test_deactivated_user_is_signed_out_at_once(app, sales, platform):
    assert sales.get("/t/deals").status_code == 200
    with system_records(platform) as svc:
        uid = find_user_id(platform, svc.session, "sales@example.com")
        svc.update("users", uid, {"active": False})
    resp = sales.get("/t/deals")
    assert resp.status_code == 302 and "/login" in resp.location


def test_removed_role_takes_effect_at_once(app, sales, platform):
    assert sales.get("/t/deals").status_code == 200
    with system_records(platform) as svc:
        uid = find_user_id(platform, svc.session, "sales@example.com")
        svc.update("users", uid, {"roles": []})
    assert sales.get("/t/deals").status_code == 404


def test_navigation_shows_only_readable_tables(admin, sales):
    admin_home = admin.get("/").get_data(as_text=True)
    sales_home = sales.get("/").get_data(as_text=True)
    assert 'href="/t/users"' in admin_home
    assert 'href="/t/users"' not in sales_home
    assert 'href="/t/deals"' in sales_home and 'href="/t/companies"' in sales_home
    assert sales.get("/t/users").status_code == 404


def test_error_pages_are_html_without_traceback(admin):
    for url in ("/t/nope", "/t/deals/999999", "/no/such/page", "/t/deals/999999/edit"):
        resp = admin.get(url)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 404, url
        assert "text/html" in resp.content_type
        assert "Traceback" not in body and "Not found" in body or "404" in body
    resp = admin.client.put("/t/deals")
    assert resp.status_code == 405
    api = admin.get("/api/v1/nope")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_security_headers(admin):
    resp = admin.get("/t/deals")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_login_page_has_csrf_token(app, sample):
    html = app.test_client().get("/login").get_data(as_text=True)
    assert csrf_of(html)
