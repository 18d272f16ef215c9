"""The app format's `reports:` and `dashboards:`: validation messages with file, line,
key and caret; plan, apply, export and apply again (an empty plan); both databases."""

from __future__ import annotations

import textwrap

import pytest
import sqlalchemy as sa
import yaml

from cubebase.platform import reports as R
from cubebase.platform.models import Dashboard, Report
from cubebase.schema_defs import apply_app, live_app, load_app, plan_app, write_app
from cubebase.schema_defs.export import to_data
from cubebase.schema_defs.loader import Source, load_sources

from .test_validation import has, meaning_of

APP = "app: shop\nroles: [clerk, {key: finance, label: Finance}]\n"
DEALS = """
    key: deals
    display: title
    fields:
      - {key: title, type: text}
      - {key: amount, type: currency}
      - {key: stage, type: select, options: [new, won, lost]}
      - {key: closed_on, type: date}
      - {key: signed_at, type: datetime}
      - {key: owner, type: user}
"""
REPORTS = """
reports:
  - key: won_by_month
    label: Won sales by salesperson and month
    table: deals
    filter: 'stage = "won"'
    group_by: [owner, closed_on:month]
    measures: [count, sum(amount), avg(amount)]
    sort: '-sum(amount)'
    limit: 100
    roles: [clerk]
  - key: funnel
    table: deals
    group_by: [stage]
  - key: open_deals
    label: Open deals
    table: deals
    filter: 'stage = "new"'
    columns: [title, owner, amount]
    sort: title
dashboards:
  - key: sales_manager
    label: Sales manager
    roles: [clerk]
    items:
      - {report: funnel, chart: funnel}
      - {report: won_by_month, chart: line}
      - {report: open_deals, chart: table, label: Still open}
"""


def test_mistakes_name_file_line_key_and_caret(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": APP
            + """
reports:
  - {key: a, table: deals, measures: [sum(title)]}
  - {key: b, table: deals, group_by: [amount:month]}
  - {key: c, table: deals, filter: 'amount + 1', columns: [title]}
  - {key: d, table: dealz, columns: [title]}
  - {key: e, table: deals, columns: [title], roles: [boss]}
  - {key: f, table: deals, columns: [nope]}
  - {key: g, table: deals, filter: 'amonut > 1', columns: [title]}
  - {key: a, table: deals, columns: [title]}
dashboards:
  - key: board
    items:
      - {report: f, chart: bar}
      - {report: nope, chart: table}
""",
            "deals.yaml": DEALS,
        },
    )
    has(
        found,
        "shop/app.yaml:5 reports[0].measures: cannot take the sum of `title`",
        "shop/app.yaml:6 reports[1].group_by: cannot group `amount` by month",
        "shop/app.yaml:7 reports[2].filter: this formula must give a Boolean",
        "shop/app.yaml:8 reports[3].table: unknown table `dealz` — did you mean `deals`?",
        "shop/app.yaml:9 reports[4].roles[0]: unknown role `boss`",
        "shop/app.yaml:10 reports[5].columns: unknown field `nope`",
        "shop/app.yaml:11 reports[6].filter: unknown field `amonut` — did you mean `amount`?",
        "shop/app.yaml:12 reports[7].key: report `a` is defined twice",
    )
    assert any("amonut" in p and "^" in p for p in found), found  # the checker's caret


def test_a_chart_on_a_list_report_and_an_unknown_report(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": APP
            + """
reports:
  - {key: people, table: deals, columns: [title]}
dashboards:
  - key: board
    items:
      - {report: people, chart: bar}
      - {report: nope, chart: table}
""",
            "deals.yaml": DEALS,
        },
    )
    has(found, "items[0].chart: `people` is a list report")
    sources = [
        Source(
            "shop/app.yaml", APP + "dashboards:\n  - {key: b, items: [{report: x, chart: pie3d}]}\n"
        )
    ]
    from cubebase.schema_defs import AppFileError

    with pytest.raises(AppFileError) as exc:
        load_sources(sources)
    assert "`pie3d` is not one of: bar, line, pie, funnel, table, number" in str(exc.value)
    # an unknown report is found by the plan (it sees the live reports too)
    found = meaning_of(
        platform,
        {
            "app.yaml": APP
            + "dashboards:\n  - key: board\n    items:\n      - {report: nope, chart: table}\n",
            "deals.yaml": DEALS,
        },
    )
    has(found, "unknown report `nope`")


def _write(folder, files: dict[str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def test_plan_apply_export_round_trip(platform, tmp_path):
    folder = _write(tmp_path / "shop", {"app.yaml": APP + REPORTS, "deals.yaml": DEALS})
    plan = plan_app(platform, load_app(folder))
    text = plan.describe()
    assert "Create report Won sales by salesperson and month (`won_by_month`): count, " in text
    assert "sum(amount), avg(amount) of `deals` by owner and closed_on:month where" in text
    assert (
        "Create report Open deals (`open_deals`): a list of `deals` (title, owner, amount)" in text
    )
    assert "Create dashboard Sales manager (`sales_manager`): 3 items; for clerk" in text
    assert apply_app(platform, load_app(folder)).applied
    assert plan_app(platform, load_app(folder)).empty

    with platform.session() as s:
        exported = live_app(platform.schema(s), s, "shop")
        rows = {r.key: r for r in s.scalars(sa.select(Report))}
    assert {k: r.app for k, r in rows.items()} == {
        "won_by_month": "shop",
        "funnel": "shop",
        "open_deals": "shop",
    }
    data = to_data(exported)
    assert data["reports"][0] == {
        "key": "won_by_month",
        "label": "Won sales by salesperson and month",
        "table": "deals",
        "filter": 'stage = "won"',
        "group_by": ["owner", "closed_on:month"],
        "measures": ["count", "sum(amount)", "avg(amount)"],
        "sort": "-sum(amount)",
        "limit": 100,
        "roles": ["clerk"],
    }
    assert data["reports"][1] == {"key": "funnel", "table": "deals", "group_by": ["stage"]}
    assert data["dashboards"][0]["items"][2] == {
        "report": "open_deals",
        "label": "Still open",  # chart: table is the default
    }
    out = tmp_path / "exported"
    write_app(exported, out)
    assert "won_by_month" in (out / "app.yaml").read_text()
    assert plan_app(platform, load_app(out)).empty

    # a renamed field: the stored report follows it, the file then says the new name
    changed = (
        (APP + REPORTS)
        .replace("(amount)", "(value)")
        .replace("[title, owner, amount]", "[title, owner, value]")
    )
    deals = DEALS.replace(
        "{key: amount, type: currency}", "{key: value, type: currency, renamed_from: amount}"
    )
    _write(folder, {"app.yaml": changed, "deals.yaml": deals})
    plan = plan_app(platform, load_app(folder))
    assert any(s.kind == "change_report" for s in plan.steps)
    apply_app(platform, load_app(folder))
    assert plan_app(platform, load_app(folder)).empty

    # removed from the file: deleted (the dashboard's item first)
    data = yaml.safe_load(changed)
    data["reports"] = [r for r in data["reports"] if r["key"] != "open_deals"]
    data["dashboards"][0]["items"] = data["dashboards"][0]["items"][:2]
    (folder / "app.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    plan = plan_app(platform, load_app(folder))
    text = plan.describe()
    assert "Delete report Open deals (`open_deals`)" in text
    assert "Change dashboard Sales manager (`sales_manager`): 2 items" in text
    apply_app(platform, load_app(folder))
    with platform.session() as s:
        assert sorted(s.scalars(sa.select(Report.key))) == ["funnel", "won_by_month"]
        board = s.scalar(sa.select(Dashboard))
        assert [i["report"] for i in board.definition["items"]] == ["funnel", "won_by_month"]


def test_a_report_of_another_app_is_refused(platform, tmp_path):
    with platform.session(write=True) as s, s.begin():
        schema = platform.schema(s)
    with platform.schema_editor() as ed:
        ed.create_table("notes", "Notes", fields=[{"key": "title", "type": "text"}])
    with platform.session(write=True) as s, s.begin():
        schema = platform.schema(s)
        rep = R.build(schema, "funnel", {"table": "notes", "columns": ["title"]}, app="other")
        R.save_report(s, schema, rep)
    folder = _write(tmp_path / "shop", {"app.yaml": APP + REPORTS, "deals.yaml": DEALS})
    with pytest.raises(Exception) as exc:
        plan_app(platform, load_app(folder))
    assert "report `funnel` belongs to the app `other`" in str(exc.value)


def test_a_sort_by_a_grouped_field_without_its_grain_is_the_group(platform, tmp_path):
    """`sort: '-closed_on'` with `group_by: [closed_on:month]` means the group: applied,
    it plans no change on the next diff (it planned a sort change every time), and the
    export writes the one spelling `-closed_on:month`; so do `+`, spaces in a measure
    and spaces in a list's sort."""
    reports = """
reports:
  - {key: by_month, table: deals, group_by: [owner, closed_on:month], sort: '-closed_on'}
  - {key: by_stage, table: deals, group_by: [stage], measures: [sum(amount)],
     sort: '+sum( amount )'}
  - {key: open_deals, table: deals, columns: [title, amount], sort: '-amount, +title'}
"""
    folder = _write(tmp_path / "shop", {"app.yaml": APP + reports, "deals.yaml": DEALS})
    assert apply_app(platform, load_app(folder)).applied
    plan = plan_app(platform, load_app(folder))
    assert plan.empty, plan.describe()
    with platform.session() as s:
        data = to_data(live_app(platform.schema(s), s, "shop"))
    assert {r["key"]: r["sort"] for r in data["reports"]} == {
        "by_month": "-closed_on:month",
        "by_stage": "sum(amount)",
        "open_deals": "-amount,title",
    }
    with platform.session() as s:  # and it still sorts by the month, newest first
        schema = platform.schema(s)
        rep = R.build(schema, "x", {"table": "deals", "group_by": ["closed_on:month"],
                                    "sort": "-closed_on"})  # fmt: skip
        assert rep.sort == "-closed_on:month"
