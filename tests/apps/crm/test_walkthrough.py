"""docs/crm.md's "Walkthrough per role", played in headless Chromium (Playwright,
Debian's /usr/bin/chromium) against a live server on SQLite: the acceptance
fixtures' company (conftest.py) plus a few interactions, opportunities,
activities, products, orders and a consulting project in its workflow. Each role
signs in with the login form and does what the walkthrough says it does; the test
asserts what that user sees.

Every step's screenshot (1280x800, the viewport, not the full page) goes to
test-artifacts/crm-walkthrough/ (CUBEBASE_TEST_ARTIFACTS moves it); with
CUBEBASE_DOCS_SCREENSHOTS=1 the same images are written to docs/img/crm/, which
is how the screenshots of docs/crm.md are regenerated:

    CUBEBASE_DOCS_SCREENSHOTS=1 python -m pytest -q -p no:cacheprovider \\
        tests/apps/crm/test_walkthrough.py

Skipped with the reason when Chromium or the playwright package is missing,
unless CUBEBASE_TEST_REQUIRE_SERVICES=1 (CI), where that is a failure. The browser
part runs on SQLite only: the permissions it shows are the records service's,
which the API acceptance tests check on both databases."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.users import find_user_id, set_password

from ...browser import ARGS, ARTIFACTS, CHROMIUM, ROOT, need_browser
from .conftest import build_crm_company, build_platform, email

SHOTS = ARTIFACTS / "crm-walkthrough"
DOCS_SHOTS = ROOT / "docs" / "img" / "crm"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "walk-through-2026"
# the month the activities, interactions and deals are dated in: this one, so that
# the calendar opens on them and "Closing this month" has something to show
MONTH = date.today().replace(day=1)


# --- the company -----------------------------------------------------------------------


def day(n: int) -> str:
    return (MONTH + timedelta(days=n - 1)).isoformat()


def build_walkthrough(platform: Platform) -> None:
    """The fixed company of the acceptance tests plus what a walkthrough shows:
    passwords, two customers with gaps, interactions, deals, a month of activities,
    products and dealer orders."""
    with platform.session(write=True) as s, s.begin():
        records = platform.records(s, Actor.system_actor())
        uid = {}
        for address in ["md", "sales.director", "rm.north", "ann", "bob", "cai", "fiona",
                        "olga", "dan", "dora", "consultant", "leader", "reviewer"]:  # fmt: skip
            uid[address] = find_user_id(platform, s, email(address))
            set_password(s, uid[address], PASSWORD)
        region = {r.values["name"]: r.id for r in records.list("regions", limit=50).records}
        customer = {r.values["name"]: r.id for r in records.list("customers", limit=50).records}
        for name, r, owner, stage, phone in [
            ("Tianjin Logistics", "North", None, "lead", None),
            ("Qingdao Brewery", "Beijing", "ann", "lead", "+86 532 8888 1234"),
            ("Dalian Harbour Supplies", "Shenyang", "bob", "lead", None),
        ]:
            customer[name] = records.create(
                "customers",
                {"name": name, "region": region[r], "stage": stage, "phone": phone,
                 "account_manager": uid.get(owner), "industry": "retail",
                 "potential_value": "250000" if owner is None else None},
            ).id  # fmt: skip
        records.update("customers", customer["Unowned North"], {"potential_value": "180000"})
        records.update("customers", customer["Unowned East"], {"potential_value": "90000"})
        for who, name, hour, kind, closed in [
            ("ann", "Beijing Media", 3, "visit", True),
            ("ann", "North Star Appliances", 8, "call", False),
            ("bob", "Shenyang Print", 9, "visit", False),
            ("cai", "Shanghai Soft", 10, "meeting", True),
        ]:
            values = {
                "customer": customer[name],
                "salesperson": uid[who],
                # the last day of the month before: always in the past, so the
                # open ones are on the admin office's unclosed list whatever the day
                "time": datetime.combine(MONTH - timedelta(days=1), datetime.min.time())
                .replace(hour=hour + 6)
                .isoformat(),
                "kind": kind,
                "content": f"{kind.title()} about next year's order",
            }
            if closed:
                values |= {"place": "Their office", "result": "Interested", "next_step": "Quote"}
                values["closed"] = True
            records.create("interactions", values)
        products = {}
        for name, cat, price, active in [
            ("Cube Server", "hardware", "12000", True),
            ("Cube Cloud", "subscription", "3600", True),
            ("Legacy Box", "hardware", "900", False),
        ]:
            products[name] = records.create(
                "products", {"name": name, "category": cat, "price": price, "active": active}
            ).id
        for name, cust, owner, stage, amount, prob, close in [
            ("Media servers", "Beijing Media", "ann", "negotiation", "120000", 60, 20),
            ("Appliance line cloud", "North Star Appliances", "ann", "proposal", "45000", 30, 25),
            ("Print farm", "Shenyang Print", "bob", "won", "80000", 100, 5),
            ("Media archive", "Beijing Media", "ann", "won", "30000", 100, 2),
            ("Shanghai rollout", "Shanghai Soft", "cai", "qualification", "60000", 20, 28),
        ]:
            values = {"name": name, "customer": customer[cust], "owner": uid[owner],
                      "stage": stage, "amount": amount, "probability": prob,
                      "expected_close": day(close), "product": products["Cube Server"]}  # fmt: skip
            if stage == "won":
                values["closed_on"] = day(close)
            records.create("opportunities", values)
        for who, subject, kind, d, cust in [
            ("ann", "Visit Beijing Media", "visit", 6, "Beijing Media"),
            ("ann", "Call North Star", "call", 13, "North Star Appliances"),
            ("bob", "Demo at Shenyang Print", "demo", 13, "Shenyang Print"),
            ("bob", "Visit Dalian Harbour", "visit", 20, "Dalian Harbour Supplies"),
            ("rm.north", "Team meeting North", "meeting", 22, None),
            ("cai", "Call Shanghai Soft", "call", 14, "Shanghai Soft"),
        ]:
            records.create(
                "activities",
                {"subject": subject, "kind": kind, "date": day(d),
                 "customer": customer.get(cust), "assigned_to": uid[who]},
            )  # fmt: skip
        for who, end, product, qty, price in [
            ("dan", "Harbin Hotel Group", "Cube Server", 2, "11500"),
            ("dan", "Changchun Clinic", "Cube Cloud", 5, "3400"),
            ("dora", "Ningbo Port", "Cube Server", 1, "12000"),
        ]:
            records.create(
                "orders",
                {"dealer": uid[who], "end_customer": end, "product": products[product],
                 "quantity": qty, "unit_price": price},
            )  # fmt: skip


@pytest.fixture
def db_url(tmp_path) -> Iterator[str]:
    """SQLite only: the browser shows what the API tests check on both databases."""
    yield f"sqlite:///{tmp_path / 'cubebase.sqlite'}"


@pytest.fixture
def platform(engine, tmp_path, _templates):
    _templates.copy_into(
        engine, "platform+crm_app+walkthrough", [build_platform, build_crm_company,
                                                  build_walkthrough]
    )  # fmt: skip
    url = engine.url.render_as_string(hide_password=False)
    return Platform(
        Config(database_url=url, data_dir=tmp_path, secret_key="walkthrough"), engine=engine
    )


@pytest.fixture
def live(app) -> Iterator[str]:
    """The CRM's web app served by werkzeug in a thread."""
    need_browser()
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser():
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Walk:
    """One user's browser tab: sign in, go to pages, take the step's screenshot."""

    def __init__(self, browser, base: str, role: str):
        self.base = base
        self.role = role
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.steps = 0

    def sign_in(self, who: str) -> None:
        p = self.page
        p.goto(self.base + "/login")
        p.fill("#email", email(who))
        p.fill("#password", PASSWORD)
        p.click("button[type=submit]")
        p.wait_for_url(self.base + "/")

    def go(self, path: str, wait: str = "main") -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_selector(wait)

    def text(self, selector: str = "main") -> str:
        return self.page.inner_text(selector)

    def column_labels(self, selector: str = "#records") -> list[str]:
        return [t.strip() for t in self.page.locator(f"{selector} thead th").all_inner_texts()]

    def column(self, label: str, selector: str = "#records") -> list[str]:
        """The texts of one column of a grid, by its header."""
        labels = self.column_labels(selector)
        i = next(n for n, t in enumerate(labels) if t.split(" ")[0] == label.split(" ")[0]
                 and t.startswith(label))  # fmt: skip
        cells = self.page.locator(f"{selector} tbody tr td:nth-child({i + 1})")
        return [c.strip() for c in cells.all_inner_texts()]

    def pick_user(self, field: str, user_id: int) -> None:
        """Choose a user in a form: a picker when the role may read users, else
        the user's number (app files decide; docs/crm.md)."""
        box = self.page.locator(f"#f-{field}")
        if box.evaluate("e => e.tagName") == "SELECT":
            box.select_option(value=str(user_id))
        else:
            box.fill(str(user_id))

    def dashboard(self, label: str) -> str:
        """Open the role's dashboard from the navigation (a list when there are
        several, the dashboard itself when there is one); its text."""
        self.page.click("#nav-dashboards")
        self.page.wait_for_selector("#dashboard-title, #dashboard-list")
        if self.page.locator("#dashboard-list").count():
            self.page.click(f"#dashboard-list >> text={label}")
        self.page.wait_for_selector("#charts")
        assert self.text("#dashboard-title") == label
        return self.text("#charts")

    def open_row(self, text: str) -> None:
        """Open the record of the grid's row showing this text (its # link)."""
        self.page.locator("#records tbody tr", has_text=text).first.locator("a").first.click()
        self.page.wait_for_selector("#record-title")

    def shot(self, name: str) -> None:
        """The step's screenshot: the viewport, to the artifacts and, when asked, docs."""
        self.steps += 1
        file = f"{self.role}-{self.steps}-{name}.png"
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / file))
        if os.environ.get("CUBEBASE_DOCS_SCREENSHOTS") == "1":
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHOTS / file, DOCS_SHOTS / file)

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


@pytest.fixture
def walk(browser, live, request) -> Iterator:
    walks: list[Walk] = []

    def start(role: str) -> Walk:
        w = Walk(browser, live, role)
        walks.append(w)
        return w

    yield start
    for w in walks:
        w.close()


# --- the roles ---------------------------------------------------------------------------
API = "/api/v1/tables"


def api(resp, status: int = 200) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    return resp.get_json()


def task_of(co, who: str, record_id: int) -> dict:
    (task,) = [t for t in api(co.client(who).get("/api/v1/tasks"))["tasks"]
               if t["record_id"] == record_id]  # fmt: skip
    return task


def complete(co, who: str, record_id: int, action: str, fields: dict | None = None) -> None:
    task = task_of(co, who, record_id)
    body = {"action": action, **({"fields": fields} if fields else {})}
    api(co.client(who).post(f"/api/v1/tasks/{task['id']}/complete", json=body))


def test_salesperson_sees_own_customers_and_the_pool_and_claims_one(walk, co):
    w = walk("salesperson")
    w.sign_in("ann")
    w.go("/t/customers", "#records")
    names = w.column("Name")
    assert {"Beijing Media", "North Star Appliances", "Qingdao Brewery"} <= set(names)
    assert {"Unowned North", "Unowned East", "Tianjin Logistics"} <= set(names)
    assert not {"Shenyang Print", "Shanghai Soft", "Dalian Harbour Supplies"} & set(names)
    w.shot("customers")

    # the unowned pool, the most valuable first
    w.page.click("#saved-views >> text=Unowned customers (to claim)")
    w.page.wait_for_selector("#records")
    assert w.column("Name") == ["Tianjin Logistics", "Unowned North", "Unowned East"]
    w.shot("pool")

    # claim one: Account manager from blank to oneself
    w.open_row("Unowned North")
    w.page.click("#edit")
    w.page.wait_for_selector("#record-form")
    w.pick_user("account_manager", co.uid("ann"))
    w.shot("claim")
    w.page.click("#save")
    w.page.wait_for_selector("#record-fields")
    assert "was saved" in w.text("main")
    w.page.click("text=History")
    w.page.wait_for_selector("#history")
    history = w.text("#history")
    assert "Account manager" in history
    assert history.startswith("Version 3 · update") and (
        "· Ann" in history.splitlines()[0] or f"user #{co.uid('ann')}" in history
    )
    w.shot("claim-history")
    w.go("/t/customers?view=pool", "main")
    w.page.click("#saved-views >> text=Unowned customers (to claim)")
    w.page.wait_for_selector("#records")
    assert "Unowned North" not in w.column("Name")

    # the funnel of their own deals, with the forecast
    w.go("/t/opportunities", "#saved-views")
    w.page.click("#saved-views >> text=Funnel")
    w.page.wait_for_selector("#records")
    funnel = dict(zip(w.column("Name"), w.column("Forecast"), strict=True))
    assert funnel.keys() == {"Appliance line cloud", "Media servers"}
    assert funnel["Media servers"].startswith("72") and funnel["Media servers"].endswith("000")
    w.shot("funnel")

    # their plan on the calendar
    w.go(f"/t/activities/calendar?month={MONTH:%Y-%m}", "#calendar")
    plan = w.text("#calendar")
    assert "Visit Beijing Media" in plan and "Call North Star" in plan
    assert "Demo at Shenyang Print" not in plan
    w.shot("calendar")

    # their dashboard: their own funnel and figures, computed as them
    board = w.dashboard("My sales")
    assert "My funnel" in board and "negotiation" in board and "qualification" not in board
    assert "Beijing Media" in board and "Shenyang Print" not in board  # best customers
    w.shot("dashboard")

    # the end of the day: closing the open call needs place, result and next step,
    # and then it is read-only
    w.go("/t/interactions", "#records")
    w.open_row("North Star Appliances")
    w.page.click("#edit")
    w.page.wait_for_selector("#record-form")
    w.page.check("#f-closed")
    w.page.click("#save")
    w.page.wait_for_selector("#form-errors")
    assert "needs its place, result and next step" in w.text("#form-errors")
    w.shot("close-incomplete")
    w.page.fill("#f-place", "By phone")
    w.page.fill("#f-result", "Wants a quote for the cloud line")
    w.page.fill("#f-next_step", "Send the quote")
    w.page.click("#save")
    w.page.wait_for_selector("#record-fields")
    assert "was saved" in w.text("main") and w.page.locator("#edit").count() == 0
    w.shot("closed")

    # a transfer: ask to hand a customer to bob; bob's manager gets the task
    w.go("/t/customers", "#records")
    w.open_row("Qingdao Brewery")
    w.page.click("#edit")
    w.page.wait_for_selector("#record-form")
    w.pick_user("transfer_to", co.uid("bob"))
    w.page.fill("#f-transfer_reason", "Bob visits Qingdao every month")
    w.shot("transfer")
    w.page.click("#save")
    w.page.wait_for_selector("#record-fields")
    assert "was saved" in w.text("main")
    cid = co.ids("customers")["Qingdao Brewery"]
    assert task_of(co, "rm.north", cid)["workflow"] == "customer_transfer"
    w.page.click("#edit")  # while it runs, the account manager and the request are locked
    w.page.wait_for_selector("#record-form")
    # shown read-only with the reason, no input
    assert w.page.locator("#f-transfer_reason").count() == 0
    assert w.page.locator("#f-account_manager").count() == 0
    held = w.text('[data-field="transfer_reason"]')
    assert "Bob visits Qingdao every month" in held and "Customer transfer" in held
    w.shot("transfer-locked")


def test_regional_manager_sees_the_region_and_the_teams_plan_and_accepts_a_transfer(walk, co):
    cid = co.ids("customers")["North Star Appliances"]
    api(co.ann.patch(f"{API}/customers/records/{cid}",
                     json={"fields": {"transfer_to": co.uid("bob"),
                                      "transfer_reason": "Bob covers appliances now"}}))  # fmt: skip
    w = walk("regional-manager")
    w.sign_in("rm.north")
    w.go("/t/customers", "#records")
    names = set(w.column("Name"))
    assert {"Beijing Media", "North Star Appliances", "Shenyang Print", "Unowned North",
            "Tianjin Logistics", "Dalian Harbour Supplies"} <= names  # fmt: skip
    assert not {"Shanghai Soft", "Unowned East"} & names
    w.shot("customers")

    w.go(f"/t/activities/calendar?month={MONTH:%Y-%m}", "#calendar")
    plan = w.text("#calendar")
    for subject in ("Visit Beijing Media", "Demo at Shenyang Print", "Team meeting North"):
        assert subject in plan
    assert "Call Shanghai Soft" not in plan
    w.shot("team-calendar")

    # the transfer ann asked for waits in the inbox; accepting hands the customer over
    w.page.click("#nav-tasks")
    w.page.wait_for_selector("#task-list")
    assert "North Star Appliances" in w.text("#task-list")
    w.shot("inbox")
    w.page.click("#task-list a")
    w.page.wait_for_selector("#task-form")
    w.shot("transfer-task")
    w.page.click("#action-approve")
    w.page.wait_for_selector("#no-tasks")
    customer = api(co.bob.get(f"{API}/customers/records/{cid}"))["fields"]
    assert customer["account_manager"] == co.uid("bob") and customer["transfer_to"] is None

    board = w.dashboard("Region")
    assert "negotiation" in board and "qualification" not in board  # not the East's deal
    w.shot("dashboard")


def test_director_sees_the_departments_customers(walk, co):
    w = walk("director")
    w.sign_in("sales.director")
    w.go("/t/customers", "#records")
    names = set(w.column("Name"))
    assert {"Beijing Media", "Shenyang Print", "Shanghai Soft", "Qingdao Brewery"} <= names
    assert not {"Unowned North", "Unowned East", "Tianjin Logistics"} & names  # no owner
    w.shot("customers")
    w.go("/t/opportunities", "#records")
    assert set(w.column("Name")) == {"Media servers", "Appliance line cloud", "Print farm",
                                     "Media archive", "Shanghai rollout"}  # fmt: skip
    w.shot("opportunities")
    board = w.dashboard("Director")
    assert "qualification" in board and "negotiation" in board  # both regions
    w.shot("dashboard")


def test_finance_sees_amounts_but_no_contact_details(walk, co):
    w = walk("finance")
    w.sign_in("fiona")
    w.go("/t/customers", "#records")
    labels = w.column_labels()
    assert "Name" in labels[1] and not {"Phone", "Fax", "Contact person"} & set(labels)
    assert "+86" not in w.text("main")
    w.shot("customers")
    w.page.click("#saved-views >> text=Customer value ranking")
    w.page.wait_for_selector("#records")
    assert w.column("Name") == ["Shenyang Print", "Beijing Media"]
    assert w.column("Won total") == ["80000", "30000"]
    w.shot("value-ranking")
    w.go("/t/opportunities?fields=name,customer,stage,amount,probability,forecast", "#records")
    assert w.column("Amount") == ["120,000.00", "45,000.00", "80,000.00", "30,000.00",
                                  "60,000.00"]  # fmt: skip
    w.shot("opportunities")
    assert "Commission" in w.dashboard("Finance")
    w.shot("dashboard")


def test_admin_office_reads_the_daily_lists_and_changes_nothing(walk, co):
    w = walk("admin-office")
    w.sign_in("olga")
    w.go("/t/customers", "#saved-views")
    w.page.click("#saved-views >> text=Incomplete customers (daily list)")
    w.page.wait_for_selector("#records")
    assert set(w.column("Name")) == {"Tianjin Logistics", "Qingdao Brewery",
                                     "Dalian Harbour Supplies"}  # fmt: skip
    w.shot("incomplete-customers")
    w.open_row("Qingdao Brewery")
    assert w.page.locator("#edit").count() == 0
    assert w.page.locator("#delete").count() == 0  # nor "Move to trash"
    w.shot("read-only-record")
    cid = co.ids("customers")["Qingdao Brewery"]
    # the edit form's URL typed by hand: a page saying so, no form; nothing changes
    with w.page.expect_response(lambda r: r.url.endswith("/edit")) as opened:
        w.page.goto(f"{w.base}/t/customers/{cid}/edit")
    assert opened.value.status == 403
    assert w.page.locator("#record-form").count() == 0
    assert "You may not change" in w.text("main")
    assert api(co.admin.get(f"{API}/customers/records/{cid}"))["fields"]["phone"] == (
        "+86 532 8888 1234"
    )
    w.go("/t/interactions", "#saved-views")
    w.page.click("#saved-views >> text=Unclosed records (daily list)")
    w.page.wait_for_selector("#records")
    assert len(w.column("Customer")) == 2  # ann's call and bob's visit
    w.shot("unclosed-interactions")
    assert "Qingdao Brewery" in w.dashboard("Admin office")
    w.shot("dashboard")


def test_dealer_sees_only_its_orders(walk, co):
    w = walk("dealer")
    w.sign_in("dan")
    w.go("/t/orders", "#records")
    assert set(w.column("End customer")) == {"Harbin Hotel Group", "Changchun Clinic"}
    w.shot("orders")
    w.go("/t/products", "#records")
    assert set(w.column("Name")) == {"Cube Server", "Cube Cloud"}  # not the inactive one
    w.shot("products")


def test_consulting_reviewer_completes_a_task_in_the_inbox(walk, co):
    project = api(co.leader.post(f"{API}/projects/records", json={"fields": {
        "name": "Process audit Beijing Media", "consultant": co.uid("consultant"),
        "group_leader": co.uid("leader")}}), 201)["id"]  # fmt: skip
    complete(co, "consultant", project, "submit", {"report": "Findings with interview notes"})
    complete(co, "leader", project, "approve")
    w = walk("consulting")
    w.sign_in("reviewer")
    w.page.click("#nav-tasks")
    w.page.wait_for_selector("#task-list")
    assert "Company review" in w.text("#task-list")
    assert "Process audit Beijing Media" in w.text("#task-list")
    w.shot("inbox")
    w.page.click("#task-list a")
    w.page.wait_for_selector("#task-form")
    assert "Findings with interview notes" in w.text("#record-fields")
    w.shot("review-task")
    w.page.click("#action-approve")
    w.page.wait_for_selector("#no-tasks")
    assert task_of(co, "process", project)["step"] == "process_review"
