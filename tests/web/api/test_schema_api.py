"""Schema endpoints for admins: the live schema as the app format's IR, plans and
applies through the schema_defs plan (the same plan as `cubebase schema apply`), the
shortcuts for a field and a table's rules, and every error code; both databases."""

from __future__ import annotations

import shutil

import pytest
import yaml
from click.testing import CliRunner
from openapi_spec_validator import validate

from cubebase.cli import main
from cubebase.platform.users import create_token
from cubebase.schema_defs import AppFileError, load_app
from cubebase.web import create_app
from tests.schema_defs.conftest import SALES, snapshot
from tests.web.api.conftest import Users, error_of

API = "/api/v1"


@pytest.fixture
def sales_app(platform):
    """The sales app of tests/schema_defs installed from its files (tables owned by the
    app), in a Flask app, with the admin's API client."""
    platform.config.secret_key = "test-secret"
    platform.config.api_usage_flush_seconds = 0
    result = CliRunner().invoke(
        main, ["schema", "apply", str(SALES), "--db", platform.config.database_url]
    )
    assert result.exit_code == 0, result.output
    return create_app(platform.config, platform)


@pytest.fixture
def admin_client(sales_app):
    p = sales_app.extensions["cubebase"]
    with p.session() as session, session.begin():
        token = create_token(p, session, "admin@example.com")
    c = sales_app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return c


@pytest.fixture
def sales_files(tmp_path):
    folder = tmp_path / "sales"
    shutil.copytree(SALES, folder)
    return folder


def _cli(platform, *args):
    result = CliRunner().invoke(main, [*args, "--db", platform.config.database_url])
    return result


def _schema(client, **params) -> dict:
    resp = client.get(f"{API}/schema", query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _table(client, key: str) -> dict:
    return _schema(client, table=key)


def _platform(client):
    return client.application.extensions["cubebase"]


# --- reading ------------------------------------------------------------------------------
def test_the_live_schema_is_what_export_writes(admin_client, sales_app):
    body = _schema(admin_client, app="sales")
    assert body["app"] == "sales"
    tables = {t["key"]: t for t in body["tables"]}
    assert set(tables) == {"users", "customers", "deals", "regions"}
    customers = tables["customers"]
    assert customers["permissions"][0] == {
        "role": "salesperson",
        "read": "account_manager = USER()",
        "update": "account_manager = USER()",
        "create": True,
    }
    assert tables["deals"]["lock"] == "closed"
    # the same data as the exported files
    out = _cli(_platform(admin_client), "schema", "export", "--app", "sales")
    files = {}
    for chunk in out.output.split("# --- ")[1:]:
        name, _, text = chunk.partition("\n")
        files[name] = yaml.safe_load(text)
    assert files["customers.yaml"] == customers
    assert files["app.yaml"]["roles"] == body["roles"]
    # one table
    assert _table(admin_client, "customers") == customers
    # everything (no ?app): named after the tables' app
    assert _schema(admin_client)["app"] == "sales"


def test_an_export_plans_and_applies_to_nothing(admin_client):
    body = _schema(admin_client, app="sales")
    before = snapshot(_platform(admin_client))
    plan = admin_client.post(f"{API}/schema/plan", json=body).get_json()
    assert plan["empty"] is True and plan["steps"] == [] and plan["applied"] is False
    assert plan["summary"].startswith("No changes")
    applied = admin_client.post(f"{API}/schema/apply", json=body).get_json()
    assert applied["applied"] is False and applied["steps"] == []
    table = admin_client.post(f"{API}/schema/plan", json=_table(admin_client, "deals"))
    assert table.get_json()["empty"] is True
    assert snapshot(_platform(admin_client)) == before


def test_unowned_tables_are_planned_on_their_own(client):
    """The tables of tests/platform's CRM belong to no app: a table body changes that
    table and nothing else."""
    customers = _table(client, "customers")
    customers["fields"].append({"key": "fax", "type": "phone"})
    resp = client.post(f"{API}/schema/apply", json=customers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [s["kind"] for s in body["steps"]] == ["add_field"]
    assert body["applied"] is True
    assert any(f["key"] == "fax" for f in _table(client, "customers")["fields"])
    assert {t["key"] for t in _schema(client)["tables"]} >= {"customers", "deals", "tags"}


# --- plans ------------------------------------------------------------------------------------
def test_a_plan_changes_nothing_and_says_what_apply_would_do(admin_client):
    p = _platform(admin_client)
    before = snapshot(p)
    customers = _table(admin_client, "customers")
    customers["fields"].append({"key": "fax", "type": "phone", "label": "Fax"})
    customers["fields"] = [f for f in customers["fields"] if f["key"] != "email"]
    resp = admin_client.post(f"{API}/schema/plan", json=customers)
    assert resp.status_code == 200, resp.get_json()
    plan = resp.get_json()
    assert plan["app"] == "sales"
    kinds = [(s["kind"], s["table"], s["field"]) for s in plan["steps"]]
    assert ("add_field", "customers", None) in kinds
    assert kinds[-1][0] == "delete_field"
    assert "Add field Fax (`fax`, phone) to `customers`" in plan["summary"]
    assert plan["data_loss"] == 0
    assert snapshot(p) == before


def test_a_dry_run_counts_on_the_live_data(admin_client, sales_app):
    users = Users(sales_app)
    ana = users.add("ana@example.com", ["salesperson"])
    for name in ("A", "B", "C"):
        resp = admin_client.post(
            f"{API}/tables/customers/records",
            json={"fields": {"name": name, "phone": "+44 20 7946 0000", "account_manager": ana}},
        )
        assert resp.status_code == 201, resp.get_json()
    before = snapshot(_platform(admin_client))
    customers = _table(admin_client, "customers")
    customers["validations"].append({"rule": 'name = "A"', "message": "Only A"})
    customers["permissions"][0]["read"] = 'name = "A"'
    resp = admin_client.post(f"{API}/schema/plan?dry_run=true", json=customers)
    assert resp.status_code == 200, resp.get_json()
    dry = resp.get_json()["dry_run"]
    assert dry["failing_rules"] == [{"table": "customers", "rule": 'name = "A"', "records": 2}]
    assert dry["read_access"] == [
        {"user": "ana@example.com", "table": "customers", "lost": 2, "gained": 0}
    ]
    assert "user ana@example.com would lose read access to 2 customers" in dry["report"]
    assert snapshot(_platform(admin_client)) == before
    # apply?dry_run=true: the same answer, nothing applied
    again = admin_client.post(f"{API}/schema/apply?dry_run=true", json=customers).get_json()
    assert again["dry_run"] == resp.get_json()["dry_run"] and again["applied"] is False
    assert snapshot(_platform(admin_client)) == before


def test_the_api_and_schema_apply_make_the_same_plan(admin_client, sales_files):
    """The same change, as files for `cubebase schema apply` and as JSON for the API."""
    p = _platform(admin_client)
    (sales_files / "customers.yaml").write_text(
        (sales_files / "customers.yaml")
        .read_text()
        .replace(
            "  - {key: account_manager, type: user, related_name: accounts}\n",
            "  - {key: account_manager, type: user, related_name: accounts}\n"
            "  - {key: fax, type: phone}\n",
        )
        .replace("lead, potential, customer, lost, inactive", "lead, potential, customer, lost")
        .replace("create: true}", "create: true, delete: 'stage = \"lead\"'}")
    )
    (sales_files / "deals.yaml").write_text(
        (sales_files / "deals.yaml").read_text().replace("lock: closed", "lock: NOT closed")
    )
    app = load_app(sales_files)
    from cubebase.schema_defs.export import to_data

    body = to_data(app)
    cli = _cli(p, "schema", "apply", str(sales_files), "--dry-run")
    assert cli.exit_code == 0, cli.output
    api = admin_client.post(f"{API}/schema/plan?dry_run=true", json=body).get_json()
    assert (
        cli.output.rstrip().removesuffix("Dry run: nothing was changed.").rstrip()
        == api["summary"].rstrip()
    )
    plain = admin_client.post(f"{API}/schema/plan", json=body).get_json()
    diff = _cli(p, "schema", "diff", str(sales_files))
    assert diff.output.rstrip() == plain["summary"]
    assert [s["kind"] for s in plain["steps"]] == [
        "add_field",
        "change_field",
        "set_permissions",
        "set_lock",
        "reorder_fields",
    ]
    # one table of the app through the API: the same steps for that table
    customers = next(t for t in body["tables"] if t["key"] == "customers")
    one = admin_client.post(f"{API}/schema/plan", json=customers).get_json()
    assert [s for s in plain["steps"] if s["table"] == "customers"] == one["steps"]
    # applied through the API, the files then match the database
    resp = admin_client.post(f"{API}/schema/apply", json=body)
    assert resp.status_code == 200 and resp.get_json()["applied"] is True
    assert _cli(p, "schema", "diff", str(sales_files)).output.startswith("No changes")


# --- apply: data loss, all or nothing ---------------------------------------------------------
def test_data_loss_is_refused_unless_confirmed(admin_client):
    for i in range(2):
        made = admin_client.post(
            f"{API}/tables/customers/records",
            json={"fields": {"name": "A", "phone": "+44 20 7946 0000", "email": f"{i}@x.org"}},
        )
        assert made.status_code == 201, made.get_json()
    customers = _table(admin_client, "customers")
    customers["fields"] = [f for f in customers["fields"] if f["key"] != "email"]
    before = snapshot(_platform(admin_client))
    plan = admin_client.post(f"{API}/schema/plan", json=customers).get_json()
    (step,) = plan["steps"]
    assert step["kind"] == "delete_field" and step["field"] is None
    assert step["text"] == "Delete field `customers.email` (email)"
    assert step["loses"] == 2 and step["loss"] == "2 values would be lost"
    assert plan["data_loss"] == 2
    resp = admin_client.post(f"{API}/schema/apply", json=customers)
    assert resp.status_code == 409
    err = error_of(resp)
    assert err["code"] == "data_loss" and "confirm_data_loss=true" in err["message"]
    assert err["details"] == [{"step": step["text"], "lost": 2}]
    assert snapshot(_platform(admin_client)) == before
    # a dry run needs no confirmation and changes nothing
    dry = admin_client.post(f"{API}/schema/apply?dry_run=true", json=customers).get_json()
    assert dry["dry_run"]["report"] == [f"{step['text']}: 2 values would be lost"]
    assert snapshot(_platform(admin_client)) == before
    resp = admin_client.post(f"{API}/schema/apply?confirm_data_loss=true", json=customers)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["applied"] is True
    assert "email" not in {f["key"] for f in _table(admin_client, "customers")["fields"]}


def test_a_failing_step_rolls_everything_back(admin_client):
    for _ in range(2):
        admin_client.post(
            f"{API}/tables/customers/records",
            json={"fields": {"name": "Same", "phone": "+44 20 7946 0000"}},
        )
    before = snapshot(_platform(admin_client))
    customers = _table(admin_client, "customers")
    customers["fields"].append({"key": "fax", "type": "phone"})
    for f in customers["fields"]:
        if f["key"] == "name":
            f["unique"] = True  # two records share a name
    resp = admin_client.post(f"{API}/schema/apply", json=customers)
    assert 400 <= resp.status_code < 500
    err = error_of(resp)
    assert "`customers.name`" in err["message"]
    assert snapshot(_platform(admin_client)) == before


def test_a_bad_seed_row_is_reported_by_key_and_nothing_is_applied(admin_client):
    before = snapshot(_platform(admin_client))
    body = {
        "key": "places",
        "display": "name",
        "fields": [
            {"key": "name", "type": "text"},
            {"key": "region", "type": "link", "to": "regions"},
        ],
        "seed": [{"name": "Here", "region": "Atlantis"}],
    }
    resp = admin_client.post(f"{API}/schema/apply?app=sales", json=body)
    assert resp.status_code == 422
    err = error_of(resp)
    assert err["code"] == "invalid_schema"
    assert err["details"] == [
        {"key": "seed[0]", "message": "no record of `regions` has name `Atlantis`"}
    ]
    assert snapshot(_platform(admin_client)) == before


# --- mistakes: the files' messages, with key paths ---------------------------------------------
def test_problems_carry_the_files_messages_with_key_paths(admin_client, tmp_path):
    customers = _table(admin_client, "customers")
    customers["fields"].append({"key": "fax", "type": "phone", "requird": True})
    customers["permissions"][1]["read"] = "ISUNDER(regoin, USER().region)"
    customers["views"][0]["sort"] = 5
    resp = admin_client.post(f"{API}/schema/apply", json=customers)
    assert resp.status_code == 422
    err = error_of(resp)
    assert err["code"] == "invalid_schema"
    # the same table as a file: the same problems, with file and line instead
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "app.yaml").write_text("app: sales\n")
    (folder / "customers.yaml").write_text(yaml.safe_dump(customers, sort_keys=False))
    with pytest.raises(AppFileError) as files:
        load_app(folder)
    assert [(d["key"], d["message"]) for d in err["details"]] == [
        (p.path, p.message) for p in files.value.problems
    ]
    keys = {d["key"]: d["message"] for d in err["details"]}
    assert keys["fields[7].requird"].startswith("unknown key `requird` — did you mean `required`?")
    assert keys["views[0].sort"] == "expected a text, got the number 5 (write it in quotes: '5')"
    # meaning: checked against the live schema, the formula's caret in `excerpt`
    customers["fields"][-1].pop("requird")
    customers["views"][0]["sort"] = "name"
    resp = admin_client.post(f"{API}/schema/plan", json=customers)
    assert resp.status_code == 422
    (problem,) = error_of(resp)["details"]
    assert problem["key"] == "permissions[1].read"
    assert problem["message"] == "unknown field `regoin` — did you mean `region`?"
    assert "^^^^^^" in problem["excerpt"]


def test_shape_errors(admin_client):
    post = admin_client.post
    resp = post(f"{API}/schema/plan", data="{", content_type="application/json")
    assert resp.status_code == 400 and error_of(resp)["code"] == "bad_request"
    resp = post(f"{API}/schema/plan", json=[1, 2])
    assert resp.status_code == 400
    resp = post(f"{API}/schema/plan", json={"label": "x"})
    assert resp.status_code == 422 and error_of(resp)["code"] == "invalid_schema"
    # a new table needs the app it joins
    resp = post(f"{API}/schema/plan", json={"key": "places", "fields": []})
    assert resp.status_code == 400 and "?app=" in error_of(resp)["message"]
    resp = post(f"{API}/schema/plan?app=sales", json={"key": "places"})
    assert resp.status_code == 200
    assert resp.get_json()["steps"][0]["text"] == "Create table Places (`places`) with 0 fields"
    resp = post(f"{API}/schema/plan?app=Bad-Key", json={"key": "places"})
    assert resp.status_code == 400
    resp = post(f"{API}/schema/plan?app=other", json={"app": "sales"})
    assert resp.status_code == 400
    resp = post(f"{API}/schema/plan?dry_run=maybe", json={"app": "sales"})
    assert resp.status_code == 400
    resp = admin_client.get(f"{API}/schema?table=nope")
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    resp = admin_client.get(f"{API}/schema?app=x&app=y")
    assert resp.status_code == 400
    # another app's table
    resp = post(f"{API}/schema/plan?app=other", json={"key": "customers"})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["message"].startswith(
        "table `customers` belongs to the app `sales`"
    )


# --- shortcuts ---------------------------------------------------------------------------------
def test_add_a_field(admin_client):
    url = f"{API}/schema/tables/customers/fields"
    resp = admin_client.post(f"{url}?dry_run=true", json={"key": "fax", "type": "phone"})
    assert resp.status_code == 200, resp.get_json()
    assert [s["kind"] for s in resp.get_json()["steps"]] == ["add_field"]
    assert "fax" not in {f["key"] for f in _table(admin_client, "customers")["fields"]}
    resp = admin_client.post(url, json={"key": "fax", "type": "phone", "label": "Fax line"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["applied"] is True
    assert body["steps"][0]["text"] == "Add field Fax line (`fax`, phone) to `customers`"
    assert _table(admin_client, "customers")["fields"][-1] == {
        "key": "fax",
        "type": "phone",
        "label": "Fax line",
    }
    # the records API and its document know it at once
    doc = admin_client.get(f"{API}/openapi.json").get_json()
    fields = doc["components"]["schemas"]["customers.record"]["properties"]["fields"]
    assert "fax" in fields["properties"]
    # mistakes: paths inside the field; an existing key; an unknown table
    resp = admin_client.post(url, json={"key": "score", "type": "formula", "formula": "amout * 2"})
    assert resp.status_code == 422
    (problem,) = error_of(resp)["details"]
    assert problem["key"] == "formula"
    assert problem["message"].startswith("unknown field `amout`")
    resp = admin_client.post(url, json={"key": "x", "type": "select"})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["key"] == ""
    resp = admin_client.post(url, json={"key": "fax", "type": "phone"})
    assert resp.status_code == 409 and error_of(resp)["code"] == "conflict"
    resp = admin_client.post(f"{API}/schema/tables/nope/fields", json={"key": "a", "type": "text"})
    assert resp.status_code == 404
    resp = admin_client.post(f"{API}/schema/tables/users/fields", json={"key": "a", "type": "text"})
    assert resp.status_code == 404


def test_set_a_tables_rules(admin_client, sales_app):
    url = f"{API}/schema/tables/deals"
    resp = admin_client.patch(
        url,
        json={
            "lock": 'stage = "won"',
            "validations": [{"rule": "amount >= 0", "message": "No negative deals"}],
            "permissions": [{"role": "salesperson", "read": True, "create": True}],
        },
    )
    assert resp.status_code == 200, resp.get_json()
    kinds = [s["kind"] for s in resp.get_json()["steps"]]
    assert kinds == ["set_validations", "set_lock", "set_permissions"]
    deals = _table(admin_client, "deals")
    assert deals["lock"] == 'stage = "won"'
    assert deals["permissions"] == [{"role": "salesperson", "read": True, "create": True}]
    # the rules act on the records API at once
    users = Users(sales_app)
    ana = users.client("ana@example.com", ["salesperson"])
    assert ana.get(f"{API}/tables/deals/records").status_code == 200
    resp = admin_client.patch(url, json={"lock": None, "permissions": None})
    assert [s["kind"] for s in resp.get_json()["steps"]] == ["set_lock", "set_permissions"]
    assert ana.get(f"{API}/tables/deals/records").status_code == 404
    # mistakes
    resp = admin_client.patch(url, json={"lock": "amount"})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["key"] == "lock"
    resp = admin_client.patch(url, json={"fields": [], "seed": []})
    assert resp.status_code == 422
    assert [d["key"] for d in error_of(resp)["details"]] == ["fields", "seed"]
    resp = admin_client.patch(url, json={"permissions": [{"role": "nobody", "read": True}]})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["key"] == "permissions[0].role"


# --- who may ------------------------------------------------------------------------------------
def test_only_admins(sales_app, admin_client):
    users = Users(sales_app)
    ana = users.client("ana@example.com", ["salesperson"])
    calls = [
        ("get", f"{API}/schema", None),
        ("post", f"{API}/schema/plan", {"app": "sales"}),
        ("post", f"{API}/schema/apply", {"app": "sales"}),
        ("post", f"{API}/schema/tables/deals/fields", {"key": "a", "type": "text"}),
        ("patch", f"{API}/schema/tables/deals", {"lock": None}),
    ]
    before = snapshot(_platform(admin_client))
    for method, url, body in calls:
        resp = getattr(ana, method)(url, json=body)
        assert resp.status_code == 403, (url, resp.get_json())
        assert error_of(resp)["code"] == "forbidden"
        anonymous = getattr(sales_app.test_client(), method)(url, json=body)
        assert anonymous.status_code == 401
    assert snapshot(_platform(admin_client)) == before
    # a browser session needs its CSRF token for schema writes too
    browser, csrf = users.browser()
    assert browser.post(f"{API}/schema/plan", json={"app": "sales"}).status_code == 403
    ok = browser.post(f"{API}/schema/plan", json={"app": "sales"}, headers={"X-CSRFToken": csrf})
    assert ok.status_code == 200
    # the schema endpoints are in the admins' document only
    doc = admin_client.get(f"{API}/openapi.json").get_json()
    validate(doc)
    assert {"/schema", "/schema/plan", "/schema/apply"} <= set(doc["paths"])
    assert "/schema/tables/{table}/fields" in doc["paths"]
    theirs = ana.get(f"{API}/openapi.json").get_json()
    assert not any(p.startswith("/schema") for p in theirs["paths"])
