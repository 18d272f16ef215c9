"""Reports: defined in the app format's words, kept by field id, run as the viewer
(row and field rules), as text, CSV and XLSX (both databases)."""

from __future__ import annotations

import csv
import io

import pytest

from cubebase.platform import reports
from cubebase.platform.errors import BadRequest, NotFound
from cubebase.platform.users import add_role, create_user, load_actor


def build_report_rules(platform) -> None:
    with platform.schema_editor() as ed:
        add_role(ed, "sales")
        add_role(ed, "finance")
        ed.update_table("regions", display_field="name")
        ed.set_permissions(
            "customers",
            [{"role": "sales", "read": "owner = USER()"}, {"role": "finance", "read": "TRUE"}],
        )
        ed.set_permissions("deals", [{"role": "sales", "read": "customer.owner = USER()"}])
        ed.set_field_permissions("customers", "stage", [{"role": "finance", "read": "FALSE"}])


pytestmark = pytest.mark.schema.with_args(build_report_rules)


@pytest.fixture
def people(records):
    p = records.platform
    s = records.session
    sales = create_user(p, s, "s@example.com", roles=["sales"])
    finance = create_user(p, s, "f@example.com", roles=["finance"])
    north = records.create("regions", {"name": "North"}).id
    rows = [
        ("Acme", "customer", sales, north),
        ("Globex", "lead", sales, None),
        ("=HYPERLINK(1)", "customer", None, north),
        ("Initech", "potential", None, None),
    ]
    ids = {}
    for name, stage, owner, region in rows:
        ids[name] = records.create(
            "customers", {"name": name, "stage": stage, "owner": owner, "region": region}
        ).id
    for name, amount, stage, closed in [
        ("Acme", "1200.50", "won", "2026-01-10"),
        ("Acme", "300", "won", "2026-02-03"),
        ("Globex", "99.99", "lost", "2026-02-20"),
        ("=HYPERLINK(1)", "5000", "won", "2026-02-21"),
    ]:
        records.create(
            "deals", {"customer": ids[name], "amount": amount, "stage": stage, "closed_on": closed}
        )
    records.session.commit()
    return {"sales": sales, "finance": finance, **ids}


def as_user(records, uid):
    return records.platform.records(
        records.session, load_actor(records.platform, records.session, uid)
    )


def save(records, key, **spec):
    rep = reports.build(records.schema, key, spec)
    reports.save_report(records.session, records.schema, rep)
    records.session.commit()


def test_a_summary_report_as_text_csv_and_xlsx(records, people):
    save(
        records,
        "value_by_customer",
        label="Customer value",
        table="deals",
        filter='stage = "won"',
        group_by=["customer"],
        measures=["count", "sum(amount)", "avg(amount)"],
        sort="-sum(amount)",
    )
    rep = reports.get_report(records, "value_by_customer")
    result = reports.run_report(records, rep)
    assert result.headers == ["Customer", "Records", "Sum of Amount", "Average of Amount"]
    assert result.rows == [
        ["=HYPERLINK(1)", "1", "5,000.00", "5,000.00"],
        ["Acme", "2", "1,500.50", "750.25"],
    ]
    text = result.to_csv()
    assert list(csv.reader(io.StringIO(text))) == [
        ["Customer", "Records", "Sum of Amount", "Average of Amount"],
        ["'=HYPERLINK(1)", "1", "5000", "5000"],
        ["Acme", "2", "1500.5", "750.25"],
    ]
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(result.to_xlsx())).active
    cells = [[c.value for c in row] for row in ws.iter_rows()]
    assert cells[0] == ["Customer", "Records", "Sum of Amount", "Average of Amount"]
    assert cells[1][0] == "'=HYPERLINK(1)" and cells[1][1] == 1 and float(cells[2][2]) == 1500.5
    assert ws.title == "Customer value"
    assert len(reports.run_report(records, rep, limit=1).rows) == 1


def test_two_groups_and_a_month_grain(records, people):
    save(records, "by_month", table="deals", group_by=["closed_on:month", "stage"])
    result = reports.run_report(records, reports.get_report(records, "by_month"))
    assert result.headers == ["Closed on (month)", "Stage", "Records"]
    assert result.rows == [
        ["2026-01", "won", "1"],
        ["2026-02", "won", "2"],
        ["2026-02", "lost", "1"],
    ]
    assert result.groups == 2


def test_a_salesperson_sees_only_their_rows_and_roles_decide_who_finds_it(records, people):
    save(records, "funnel", table="customers", group_by=["stage"], roles=["sales"])
    admin = reports.run_report(records, reports.get_report(records, "funnel"))
    assert [r[0] for r in admin.rows] == ["lead", "potential", "customer"]  # option order
    sales = as_user(records, people["sales"])
    result = reports.run_report(sales, reports.get_report(sales, "funnel"))
    assert result.rows == [["lead", "1"], ["customer", "1"]]  # Acme and Globex are theirs
    assert [r.key for r in reports.visible_reports(sales)] == ["funnel"]
    finance = as_user(records, people["finance"])
    assert reports.visible_reports(finance) == []
    with pytest.raises(NotFound):
        reports.get_report(finance, "funnel")
    with pytest.raises(NotFound):
        reports.get_report(sales, "nope")


def test_finance_cannot_group_or_list_a_field_hidden_from_them(records, people):
    save(records, "stages", table="customers", group_by=["stage"], roles=["finance"])
    save(records, "people", table="customers", columns=["name", "stage"], roles=["finance"])
    finance = as_user(records, people["finance"])
    for key in ("stages", "people"):
        with pytest.raises(BadRequest) as err:
            reports.run_report(finance, reports.get_report(finance, key))
        assert "stage" in err.value.message


def test_a_list_report_shows_link_names_and_follows_renames(records, people):
    save(
        records,
        "incomplete",
        label="Customers without an owner",
        table="customers",
        filter="ISBLANK(owner)",
        columns=["name", "region", "stage"],
        sort="name",
        roles=["sales"],
    )
    result = reports.run_report(records, reports.get_report(records, "incomplete"))
    assert result.headers == ["Name", "Region", "Stage"]
    assert result.rows == [["=HYPERLINK(1)", "North", "customer"], ["Initech", "", "potential"]]
    assert "'=HYPERLINK(1)" in result.to_csv()
    sales = as_user(records, people["sales"])
    assert reports.run_report(sales, reports.get_report(sales, "incomplete")).rows == []
    with records.platform.schema_editor() as ed:
        ed.update_field("customers", "owner", key="manager")
        ed.update_table("customers", new_key="clients")
    records.session.rollback()
    again = records.platform.records(records.session, records.actor)
    rep = reports.get_report(again, "incomplete")
    assert rep.spec()["filter"] == "ISBLANK(manager)" and rep.table.key == "clients"
    assert len(reports.run_report(again, rep).rows) == 2


@pytest.mark.parametrize(
    "spec,key,text",
    [
        ({"table": "nope", "columns": ["name"]}, "table", "unknown table"),
        ({"table": "deals", "measures": ["sum(stage)"]}, "measures", "numbers only"),
        ({"table": "deals", "group_by": ["amount:month"]}, "group_by", "dates only"),
        ({"table": "deals", "group_by": ["closed_on:decade"]}, "group_by", "unknown grain"),
        ({"table": "deals", "filter": "amount + 1", "columns": ["amount"]}, "filter", "The filter"),
        ({"table": "deals", "filter": "amount >", "columns": ["amount"]}, "filter", "The filter"),
        ({"table": "deals", "columns": ["amount"], "measures": ["count"]}, "columns", "not both"),
        ({"table": "deals", "group_by": ["stage"], "sort": "amount"}, "sort", "count"),
        ({"table": "deals", "measures": ["median(amount)"]}, "measures", "not a measure"),
        ({"table": "deals", "columns": ["nope"]}, "columns", "unknown field"),
        ({"table": "deals", "columns": ["amount"], "limit": 0}, "limit", "limit"),
    ],
)
def test_wrong_definitions_name_their_key(records, spec, key, text):
    with pytest.raises(reports.ReportProblem) as err:
        reports.build(records.schema, "r", spec)
    assert err.value.key == key and text in err.value.message
