"""The commands (schema diff/apply/export, app install) and bad input: a clear error and
the database untouched."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from cubebase.cli import main
from cubebase.schema_defs import apps

from .conftest import SALES, snapshot


@pytest.fixture
def run(platform):
    url = platform.config.database_url
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, [*args, "--db", url], catch_exceptions=False)

    return invoke


@pytest.fixture
def sales(tmp_path):
    folder = tmp_path / "sales"
    shutil.copytree(SALES, folder)
    return folder


def test_diff_apply_export_round_trip(run, platform, sales, tmp_path):
    diff = run("schema", "diff", str(sales))
    assert diff.exit_code == 0, diff.output
    assert "Create table Customers (`customers`) with 7 fields" in diff.output
    assert "Add 3 starting records to `regions`" in diff.output
    applied = run("schema", "apply", str(sales))
    assert applied.exit_code == 0, applied.output
    assert applied.output.rstrip().endswith("Applied.")
    again = run("schema", "diff", str(sales))
    assert again.output.strip() == "No changes: the database already matches the files."
    out = tmp_path / "exported"
    exported = run("schema", "export", "--app", "sales", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.iterdir()) == [
        "app.yaml",
        "customers.yaml",
        "deals.yaml",
        "regions.yaml",
    ]
    back = run("schema", "diff", str(out))
    assert back.output.strip() == "No changes: the database already matches the files."
    # export twice: the same bytes (stable order)
    first = {p.name: p.read_text() for p in out.iterdir()}
    run("schema", "export", "--app", "sales", "--out", str(out))
    assert {p.name: p.read_text() for p in out.iterdir()} == first
    printed = run("schema", "export")
    assert "# --- customers.yaml" in printed.output


def test_apply_refuses_data_loss_then_confirms(run, platform, sales):
    run("schema", "apply", str(sales))
    (sales / "deals.yaml").unlink()
    text = (sales / "customers.yaml").read_text()
    (sales / "customers.yaml").write_text(
        text.replace('SUMIF(deals.amount, deals.stage = "won")', "0")
    )
    with platform.session(write=True) as s, s.begin():
        from cubebase.platform.actor import Actor

        service = platform.records(s, Actor.system_actor())
        c = service.create("customers", {"name": "A", "phone": "1234567"})
        service.create("deals", {"customer": c.id})
    before = snapshot(platform)
    refused = run("schema", "apply", str(sales))
    assert refused.exit_code == 1
    assert "Delete table Deals (`deals`): 1 record would be lost" in refused.output
    assert "--confirm-data-loss" in refused.output
    assert snapshot(platform) == before
    dry = run("schema", "apply", str(sales), "--dry-run")
    assert dry.exit_code == 0
    assert "Dry run: nothing was changed." in dry.output
    assert snapshot(platform) == before
    done = run("schema", "apply", str(sales), "--confirm-data-loss")
    assert done.exit_code == 0, done.output
    with platform.session() as s:
        assert not platform.schema(s).has_table("deals")


def test_app_install_then_no_op_then_upgrade(run, platform, sales, monkeypatch):
    monkeypatch.setattr(apps, "APPS_DIR", sales.parent)
    first = run("app", "install", "sales")
    assert first.exit_code == 0, first.output
    assert first.output.rstrip().endswith("App sales installed.")
    before = snapshot(platform)
    second = run("app", "install", "sales")
    assert second.output.strip() == "App sales is installed and up to date; nothing to do."
    assert snapshot(platform) == before
    text = (sales / "deals.yaml").read_text()
    (sales / "deals.yaml").write_text(
        text.replace(
            "  - {key: closed, type: boolean}\n",
            "  - {key: closed, type: boolean}\n  - {key: note, type: long_text}\n",
        )
    )
    upgraded = run("app", "install", "sales")
    assert "Add field Note (`note`, long text) to `deals`" in upgraded.output
    missing = run("app", "install", "nothing")
    assert missing.exit_code == 1
    assert "There is no app `nothing` (apps: sales)" in missing.output


def test_app_install_demo_loads_demo_rows(run, platform, sales, monkeypatch):
    monkeypatch.setattr(apps, "APPS_DIR", sales.parent)
    text = (sales / "regions.yaml").read_text()
    (sales / "regions.yaml").write_text(text + "demo:\n  - {name: Africa, parent: World}\n")
    run("app", "install", "sales", "--demo")
    with platform.session() as s:
        from cubebase.platform.actor import Actor

        names = [
            r.values["name"]
            for r in platform.records(s, Actor.system_actor()).list("regions").records
        ]
    assert names == ["World", "Europe", "Asia", "Africa"]


BAD = {
    "malformed YAML": (
        "customers.yaml",
        "key: customers\n  fields: [\n",
        "sales/customers.yaml:2: not valid YAML",
    ),
    "duplicate key": (
        "deals.yaml",
        "key: deals\nfields:\n  - {key: amount, type: number}\nfields: []\n",
        "sales/deals.yaml:4 fields: `fields` is given twice (first on line 2)",
    ),
    "link to an unknown table": (
        "deals.yaml",
        "key: deals\nfields:\n  - {key: customer, type: link, to: clients}\n",
        "sales/deals.yaml:3 fields[0].to: unknown table `clients`",
    ),
    "formula cycle across tables": (
        "deals.yaml",
        "key: deals\nfields:\n  - {key: customer, type: link, to: customers, related_name: deals}\n"
        "  - {key: amount, type: formula, formula: 'customer.won_total'}\n"
        "  - {key: stage, type: text}\n",
        "formula fields refer to each other in a cycle",
    ),
    "permission rule of the wrong type": (
        "deals.yaml",
        "key: deals\nfields:\n  - {key: amount, type: number}\npermissions:\n  - {role: salesperson, read: amount}\n",
        "sales/deals.yaml:5 permissions[0].read: this formula must give a Boolean, but it gives a Number",
    ),
    "permission rule of the wrong kind": (
        "deals.yaml",
        "key: deals\nfields:\n  - {key: amount, type: number}\npermissions:\n  - {role: salesperson, read: 1}\n",
        "sales/deals.yaml:5 permissions[0].read: expected a text or true or false, got the number 1",
    ),
    "seed row that does not fit (fails on the last step)": (
        "regions.yaml",
        "key: regions\ndisplay: name\nfields:\n  - {key: name, type: text, required: true}\n"
        "  - {key: parent, type: link, to: regions, related_name: children}\n"
        "seed:\n  - {name: World}\n  - {name: Europe, parent: Atlantis}\n",
        "sales/regions.yaml:8 seed[1]: ",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_a_clear_error_and_the_database_is_untouched(run, platform, sales, case):
    name, text, expected = BAD[case]
    (sales / name).write_text(text)
    before = snapshot(platform)
    result = run("schema", "apply", str(sales), "--confirm-data-loss")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert expected in result.output, result.output
    assert snapshot(platform) == before


def test_a_50_mb_file(run, platform, sales):
    with open(sales / "huge.yaml", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    before = snapshot(platform)
    result = run("schema", "apply", str(sales))
    assert result.exit_code == 1
    assert (
        "sales/huge.yaml: the file is 52.4 MB; app files are limited to 5 MB each" in result.output
    )
    assert snapshot(platform) == before


def test_seed_dates_and_links_by_name(run, platform, sales):
    (sales / "events.yaml").write_text(
        "key: events\nfields:\n"
        "  - {key: day, type: date}\n"
        "  - {key: region, type: link, to: regions}\n"
        "  - {key: who, type: user}\n"
        "seed:\n  - {day: 2024-05-01, region: Europe, who: admin@example.com}\n"
    )
    result = run("schema", "apply", str(sales))
    assert result.exit_code == 0, result.output
    with platform.session() as s:
        from cubebase.platform.actor import Actor

        rec = platform.records(s, Actor.system_actor()).get("events", 1)
    assert str(rec.values["day"]) == "2024-05-01"
    assert rec.values["region"] == 2 and rec.values["who"] == 1


def test_app_install_demo_runs_the_apps_demo_generator(run, platform, sales, monkeypatch):
    """An app may ship ``demo.py`` with ``load_demo(platform)``: ``--demo`` runs it
    after the files' demo rows; a plain install does not."""
    monkeypatch.setattr(apps, "APPS_DIR", sales.parent)
    (sales / "demo.py").write_text(
        "from cubebase.platform.actor import Actor\n\n\n"
        "def load_demo(platform):\n"
        "    with platform.session(write=True) as s, s.begin():\n"
        "        records = platform.records(s, Actor.system_actor())\n"
        "        if not records.count('regions', where=[]) > 3:\n"
        "            records.create('regions', {'name': 'Generated'})\n"
    )

    def names():
        from cubebase.platform.actor import Actor

        with platform.session() as s:
            rs = platform.records(s, Actor.system_actor())
            return sorted(r.values["name"] for r in rs.list("regions").records)

    assert run("app", "install", "sales").exit_code == 0
    assert "Generated" not in names()
    result = run("app", "install", "sales", "--demo")
    assert result.exit_code == 0, result.output
    assert names().count("Generated") == 1
    run("app", "install", "sales", "--demo")  # the generator sees its data: nothing more
    assert names().count("Generated") == 1
