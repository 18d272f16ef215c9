"""End to end in headless Chromium (Playwright, Debian's /usr/bin/chromium) against a
live server: sign in; create a record through the form, seeing a validation error
first; filter a grid by formula; drag a kanban card; export. Screenshots of each
page go to test-artifacts/web/ (gitignored; CUBEBASE_TEST_ARTIFACTS moves it).

Skipped with the reason when Chromium or the playwright package is missing, unless
CUBEBASE_TEST_REQUIRE_SERVICES=1 (CI), where that is a failure."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from cubebase.apps.sample import install_sample_app
from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.web import create_app

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, system_records

CHROMIUM = os.environ.get("CUBEBASE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = (
    Path(
        os.environ.get(
            "CUBEBASE_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "test-artifacts"
        )
    )
    / "web"
)


def _need_browser():
    reason = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ModuleNotFoundError:
        reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if os.environ.get("CUBEBASE_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (required: CUBEBASE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(reason)


@pytest.fixture
def live(tmp_path):
    """The app on SQLite with the sample app, served by werkzeug in a thread."""
    _need_browser()
    from werkzeug.serving import make_server

    config = Config(
        database_url=f"sqlite:///{tmp_path / 'cubebase.sqlite'}",
        data_dir=tmp_path,
        secret_key="browser-test",
    )
    platform = Platform(config)
    init_platform(platform, admin_password=ADMIN_PASSWORD)
    install_sample_app(platform)
    app = create_app(config, platform)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", platform
    finally:
        server.shutdown()
        platform.dispose()


@pytest.fixture
def page(live, request):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str) -> None:
    page.goto(base + "/")
    assert "/login" in page.url
    shot(page, "01-login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert "Wrong e-mail or password" in page.inner_text("main")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    assert "Deals" in page.inner_text("nav")
    shot(page, "02-home")


def test_staff_flow_in_chromium(live, page):
    from playwright.sync_api import expect

    base, platform = live
    sign_in(page, base)

    # create a record through the form: a validation error first, then saved
    page.goto(base + "/t/deals/new")
    page.fill("#f-title", "")
    page.fill("#f-amount", "-10")
    page.click("#save")
    page.wait_for_selector("#f-title >> xpath=.. >> .field-error")
    assert (
        "Amount cannot be negative" in page.inner_text("main")
        or page.locator(".field-error").count() >= 1
    )
    shot(page, "03-form-errors")
    page.fill("#f-title", "Browser deal")
    page.fill("#f-amount", "2500")
    page.select_option("#f-stage", "proposal")
    # the formula field previewed live while typing (no eval: the CSP forbids it)
    expect(page.locator("#pv-summary")).to_have_text("PROPOSAL: Browser deal")
    page.locator("input.link-search").first.fill("Glob")
    expect(page.locator("#f-company option")).to_have_count(2)  # blank + Globex
    page.select_option("#f-company", label="Globex")
    page.fill("#f-close_date", "2026-09-30")
    page.click("#save")
    page.wait_for_selector("#record-title")
    assert page.inner_text("#record-title") == "Browser deal"
    assert "was created" in page.inner_text("main")
    shot(page, "04-record")

    # filter the grid by a formula (an error with its caret first)
    page.goto(base + "/t/deals")
    page.fill("#filter", "amont > 20000")
    page.click("#apply-view")
    assert "^" in page.inner_text("#view-problem pre")
    shot(page, "05-grid-filter-error")
    page.fill("#filter", 'amount > 20000 AND stage <> "won"')
    page.click("#apply-view")
    rows = page.locator("#records tbody tr")
    titles = rows.all_inner_texts()
    assert titles and all("Acme renewal" not in t for t in titles)
    assert any("Globex rollout" in t for t in titles)
    shot(page, "06-grid-filtered")

    # export the filtered view
    with page.expect_download() as info:
        page.click("#export-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert "Globex rollout" in text and "Acme renewal" not in text

    # drag a kanban card to another lane
    page.goto(base + "/t/deals/kanban?by=stage")
    shot(page, "07-kanban")
    with system_records(platform) as svc:
        from cubebase.platform.listing import Condition

        rid = svc.list("deals", where=Condition("title", "eq", "Globex pilot")).records[0].id
    card = page.locator(f"#card-{rid}")
    target = page.locator('.lane[data-value="proposal"] .cards')
    with page.expect_response(lambda r: r.url.endswith(f"/t/deals/{rid}/move")) as moved:
        card.drag_to(target)
    assert moved.value.status == 200
    assert page.locator(f'.lane[data-value="proposal"] #card-{rid}').count() == 1
    with system_records(platform) as svc:
        assert svc.get("deals", rid).values["stage"] == "proposal"
    # a refused move (lost deals are locked) puts the card back and says why
    lost = page.locator('.lane[data-value="lost"] .card').first
    lost_id = lost.get_attribute("id")
    with page.expect_response(lambda r: "/move" in r.url) as refused:
        lost.drag_to(page.locator('.lane[data-value="lead"] .cards'))
    assert refused.value.status == 409
    expect(page.locator("#board-message")).to_be_visible()
    assert page.locator(f'.lane[data-value="lost"] #{lost_id}').count() == 1
    shot(page, "08-kanban-refused")
    assert not page.errors, page.errors
