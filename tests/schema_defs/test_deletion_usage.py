"""Deleting a field or a table that an automation, a report or a workflow uses is
refused naming each of them, nothing changed; allowed once they no longer use it; an
app apply that changes them and deletes the field in one go works (the deletions wait
for the definitions), and a plan names a user outside the app before anything runs.
Both databases."""

from __future__ import annotations

import pytest

from cubebase.platform import reports as R
from cubebase.platform.actor import Actor
from cubebase.platform.errors import ConflictError
from cubebase.schema_defs import apply_app, plan_app
from cubebase.schema_defs.loader import load_sources
from cubebase.workflows.automations import install as install_automations
from cubebase.workflows.engine import install as install_workflows

from .test_automations_app import APP, FILES, sources

REPORTS = """
    reports:
      - key: funnel
        label: Funnel
        table: opportunities
        filter: 'closed_on >= DATE(2020, 1, 1) OR ISBLANK(closed_on)'
        group_by: [stage]
      - key: note_list
        label: Notes
        table: notes
        columns: [text]
"""
NOTES = """
    key: notes
    fields:
      - {key: text, type: text}
"""


def files(app: str = APP, reports: str = REPORTS) -> dict[str, str]:
    return {**FILES, "app.yaml": app + reports, "notes.yaml": NOTES}


@pytest.fixture
def sales(platform):
    install_automations(platform)
    install_workflows(platform)
    apply_app(platform, load_sources(sources(files())))
    with platform.session(write=True) as s, s.begin():
        platform.records(s, Actor.system_actor()).create(
            "opportunities", {"name": "Acme", "stage": "open", "owner": 1}
        )
    return platform


def refused(platform, *, table: str, field: str | None = None) -> str:
    with pytest.raises(ConflictError) as exc, platform.schema_editor() as ed:
        if field is None:
            ed.delete_table(table, confirm=True)
        else:
            ed.delete_field(table, field, confirm=True)
    return exc.value.message


def fields(platform, table: str) -> set[str]:
    with platform.session() as s:
        return set(platform.schema(s).table(table).fields)


def test_a_field_used_by_reports_automations_and_workflows_stays(sales):
    message = refused(sales, table="opportunities", field="stage")
    assert message == (
        "Field `opportunities.stage` cannot be deleted: it is used by the report `Funnel` "
        "and the automation `Credit a won deal to its sellers`. Change those first."
    )
    assert "the report `Funnel`" in refused(sales, table="opportunities", field="closed_on")
    message = refused(sales, table="opportunities", field="owner")
    assert "the automation `Credit a won deal to its sellers`" in message
    assert "the workflow `Review`" in message
    # a field an action only sets, in another table
    message = refused(sales, table="commission_credits", field="share")
    assert "the automation `Credit a won deal to its sellers`" in message
    assert "the report `Notes`" in refused(sales, table="notes")
    assert {"stage", "closed_on", "owner"} <= fields(sales, "opportunities")
    assert "share" in fields(sales, "commission_credits")
    with sales.session() as s:
        (rec,) = sales.records(s, Actor.system_actor()).list("opportunities").records
        assert rec.values["stage"] == "open"
        assert sales.schema(s).has_table("notes")


def test_allowed_once_the_definition_no_longer_uses_it(sales):
    with sales.session(write=True) as s, s.begin():
        spec = {"label": "Funnel", "table": "opportunities", "group_by": ["stage"]}
        R.save_report(s, sales.schema(s), R.build(sales.schema(s), "funnel", spec, "sales"))
        R.delete_report(s, "note_list")
    # the report no longer reads closed_on: only the automation is named now
    assert refused(sales, table="opportunities", field="closed_on") == (
        "Field `opportunities.closed_on` cannot be deleted: it is used by the automation "
        "`Credit a won deal to its sellers`. Change those first."
    )
    with sales.schema_editor() as ed:
        ed.delete_field("notes", "text", confirm=True)
        ed.delete_table("notes", confirm=True)
    with sales.session() as s:
        assert not sales.schema(s).has_table("notes")


def test_an_apply_changes_the_definitions_before_deleting_the_field(sales):
    app = (
        APP.replace("        when: 'stage = \"won\"'\n", "")
        .replace(
            "          - update: {closed_on: 'TODAY()'}\n", "          - update: {name: 'name'}\n"
        )
        .replace("DATE(YEAR(closed_on), MONTH(closed_on), 1)", "TODAY()")
    )
    reports = REPORTS.replace(
        "        filter: 'closed_on >= DATE(2020, 1, 1) OR ISBLANK(closed_on)'\n", ""
    ).replace("group_by: [stage]", "group_by: [owner]")
    changed = files(app, reports)
    changed["opportunities.yaml"] = (
        changed["opportunities.yaml"]
        .replace("      - {key: stage, type: select, options: [open, won, lost]}\n", "")
        .replace("      - {key: closed_on, type: date}\n", "")
    )
    plan = plan_app(sales, load_sources(sources(changed)))
    kinds = [s.kind for s in plan.steps]
    assert kinds.index("delete_field") > kinds.index("change_automation")
    assert kinds.index("delete_field") > kinds.index("change_report")
    apply_app(sales, load_sources(sources(changed)), confirm_data_loss=True)
    assert not {"stage", "closed_on"} & fields(sales, "opportunities")


def test_a_plan_names_a_user_outside_the_app(sales):
    with sales.session(write=True) as s, s.begin():
        rep = R.build(
            sales.schema(s),
            "by_stage",
            {"label": "By stage", "table": "opportunities", "group_by": ["stage"]},
        )
        R.save_report(s, sales.schema(s), rep)  # no app
    changed = files(APP.replace("        when: 'stage = \"won\"'\n", ""))
    changed["opportunities.yaml"] = changed["opportunities.yaml"].replace(
        "      - {key: stage, type: select, options: [open, won, lost]}\n", ""
    )
    changed["app.yaml"] = changed["app.yaml"].replace("group_by: [stage]", "group_by: [owner]")
    with pytest.raises(ConflictError) as exc:
        plan_app(sales, load_sources(sources(changed)))
    assert exc.value.message == (
        "Field `opportunities.stage` cannot be deleted: it is used by the report `By stage`. "
        "Change those first."
    )
    with pytest.raises(ConflictError):  # the dry run says the same
        apply_app(sales, load_sources(sources(changed)), dry_run=True, confirm_data_loss=True)
    assert "stage" in fields(sales, "opportunities")
