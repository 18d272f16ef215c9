"""End to end in headless Chromium (Playwright, Debian's /usr/bin/chromium) against a
live server: sign in; create a record through the form, seeing a validation error
first; filter a grid by formula; drag a kanban card; export; complete a workflow
task; import a CSV with one bad row, fixed in the preview; open a dashboard. Screenshots of each
page go to test-artifacts/web/ (gitignored; CUBEBASE_TEST_ARTIFACTS moves it).

Skipped with the reason when Chromium or the playwright package is missing, unless
CUBEBASE_TEST_REQUIRE_SERVICES=1 (CI), where that is a failure."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cubebase.apps.sample import install_sample_app
from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.web import create_app

from ...browser import ARGS, CHROMIUM, need_browser
from ...browser import ARTIFACTS as BROWSER_ARTIFACTS
from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, system_records

ARTIFACTS = BROWSER_ARTIFACTS / "web"


@pytest.fixture
def live(tmp_path):
    """The app on SQLite with the sample app, served by werkzeug in a thread."""
    need_browser()
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


def test_task_import_and_dashboard_in_chromium(live, page):
    """As the sample salesperson: complete a workflow task, import a CSV whose bad
    row is fixed in the preview, open the sales dashboard."""
    from playwright.sync_api import expect

    from cubebase.apps.sample import SALES_EMAIL, SALES_PASSWORD
    from cubebase.platform.actor import Actor
    from cubebase.workflows.definitions import load_workflows_text, validate_workflows
    from cubebase.workflows.engine import install

    from .test_work import WORKFLOW

    base, platform = live
    engine = install(platform)
    with platform.session(write=True) as s, s.begin():
        loaded = load_workflows_text(WORKFLOW)
        engine.deploy(s, validate_workflows(loaded.workflows, platform.schema(s), {"sales"}))
    with system_records(platform) as svc:
        from cubebase.platform.listing import Condition

        deal = svc.list("deals", where=Condition("title", "eq", "Hooli integration")).records[0]
        svc.update("deals", deal.id, {"probability": None})
        stage = svc.table("deals").fields["stage"]
        config = dict(svc.table("deals").config)
    with platform.session(write=True) as s, s.begin():
        engine.start(s, Actor.system_actor(), "deal_review", deal.id)
    config["charts"] = [
        {
            "key": "pipeline",
            "label": "Pipeline by stage",
            "type": "funnel",
            "by": stage.id,
            "agg": "count",
            "of": None,
            "filter": None,
            "dashboards": ["sales"],
        }
    ]
    with platform.schema_editor() as ed:
        from cubebase.platform.schema_changes import RULE_KEYS

        ed.update_table("deals", config={k: v for k, v in config.items() if k not in RULE_KEYS})

    page.goto(base + "/login")
    page.fill("#email", SALES_EMAIL)
    page.fill("#password", SALES_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")

    # the task: the inbox, the step's field, approve
    page.click("#nav-tasks")
    page.wait_for_selector("#task-list")
    shot(page, "09-tasks")
    page.click("#task-list a")
    page.wait_for_selector("#task-form")
    page.click("#action-approve")  # the required field is empty: refused beside it
    page.wait_for_selector(".field-error")
    page.fill("#f-probability", "35")
    shot(page, "10-task")
    page.click("#action-approve")
    page.wait_for_url(base + "/tasks")
    assert "Sales review: Approve" in page.inner_text("main")  # the flash
    assert page.locator("#no-tasks").count() == 1
    with system_records(platform) as svc:
        assert svc.get("deals", deal.id).values["probability"] == 35

    # import a CSV with one bad row, fixed in the preview
    page.goto(base + "/t/companies/import")
    csv_data = b"Name,Segment,E-mail\nStark,enterprise,tony@stark.example\nWayne,huge,b@w.example\n"
    page.set_input_files(
        "#file", files=[{"name": "firms.csv", "mimeType": "text/csv", "buffer": csv_data}]
    )
    page.click("#upload")
    page.wait_for_selector("#mapping")
    page.click("#save-mapping")
    page.wait_for_selector("#problems")
    shot(page, "11-import-problems")
    bad = page.locator('tr[data-row="3"] input[name="cell.1.1"]')
    bad.fill("enterprise")
    page.click("#fix")
    page.wait_for_selector("#commit")
    page.click("#commit")
    expect(page.locator("#import-done")).to_be_visible(timeout=20_000)  # htmx polling
    shot(page, "12-import-done")
    with system_records(platform) as svc:
        names = {r.values["name"] for r in svc.list("companies", limit=100).records}
    assert {"Stark", "Wayne"} <= names

    # the dashboard of the sales role (the only one: opened directly)
    page.click("#nav-dashboards")
    page.wait_for_selector("#charts svg")
    assert "Pipeline by stage" in page.inner_text("#charts")
    shot(page, "13-dashboard")
    assert not page.errors, page.errors
