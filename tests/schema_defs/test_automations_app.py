"""Automations in app files: every validation message with file, line and key (and the
formula checker's caret), plan steps in words, apply, export round trip, renames, app
ownership; on both databases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from cubebase.platform.actor import Actor
from cubebase.schema_defs import (
    AppFileError,
    app_files,
    apply_app,
    live_app,
    load_app,
    plan_app,
    write_app,
)
from cubebase.schema_defs.export import to_data
from cubebase.schema_defs.loader import Source, load_sources
from cubebase.workflows.automations import install
from cubebase.workflows.models import Automation

APP = """
    app: sales
    roles: [sales, admin_office]
    workflows:
      - key: review
        table: opportunities
        steps:
          - key: check
            assignees: owner
            actions: [{key: ok, to: done}]
    automations:
      - key: credit_won_deals
        label: Credit a won deal to its sellers
        table: opportunities
        on: change
        when: 'stage = "won"'
        actions:
          - update: {closed_on: 'TODAY()'}
          - find_or_create: commission_statements
            as: statement
            match: {salesperson: owner, month: 'DATE(YEAR(closed_on), MONTH(closed_on), 1)'}
          - create: commission_credits
            values: {opportunity: id, salesperson: owner, statement: statement, share: '100'}
          - notify: {to: owner, subject: '"Deal won: " & name'}
          - start_workflow: review
      - key: office_daily
        on: schedule
        schedule: daily 07:00
        actions:
          - notify: {role: admin_office, subject: '"Good morning"'}
"""
OPPORTUNITIES = """
    key: opportunities
    display: name
    fields:
      - {key: name, type: text}
      - {key: stage, type: select, options: [open, won, lost]}
      - {key: owner, type: user}
      - {key: closed_on, type: date}
"""
STATEMENTS = """
    key: commission_statements
    fields:
      - {key: salesperson, type: user}
      - {key: month, type: date}
"""
CREDITS = """
    key: commission_credits
    fields:
      - {key: opportunity, type: link, to: opportunities}
      - {key: salesperson, type: user}
      - {key: statement, type: link, to: commission_statements}
      - {key: share, type: number}
"""
FILES = {
    "app.yaml": APP,
    "opportunities.yaml": OPPORTUNITIES,
    "commission_statements.yaml": STATEMENTS,
    "commission_credits.yaml": CREDITS,
}


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def sources(files: dict[str, str]) -> list[Source]:
    return [Source(f"sales/{n}", textwrap.dedent(t).lstrip("\n")) for n, t in files.items()]


def problems(platform, files: dict[str, str]) -> list[str]:
    with pytest.raises(AppFileError) as exc:
        plan_app(platform, load_sources(sources(files)))
    return [str(p) for p in exc.value.problems]


def has(found: list[str], *expected: str) -> None:
    for text in expected:
        assert any(text in p for p in found), f"{text!r} not in:\n" + "\n".join(found)


def with_automation(text: str) -> dict[str, str]:
    app = (
        APP.split("    automations:")[0]
        + "    automations:\n"
        + textwrap.indent(textwrap.dedent(text).lstrip("\n"), "      ")
    )
    return {**FILES, "app.yaml": app}


def test_plan_in_words_apply_and_run(platform, tmp_path):
    app = load_sources(sources(FILES))
    plan = plan_app(platform, app)
    text = plan.describe()
    assert (
        "Add automation `credit_won_deals` on opportunities: when a record is created or "
        'updated and stage = "won" becomes true, set closed_on; find or create a commission '
        "statement (as statement); create a commission credit; notify owner; start workflow "
        "review" in text
    ), text
    assert "Add automation `office_daily`: daily 07:00, notify role admin_office" in text
    apply_app(platform, app)
    install(platform)
    with platform.session(write=True) as s, s.begin():
        system = platform.records(s, Actor.system_actor())
        rid = system.create("opportunities", {"name": "Acme", "stage": "won", "owner": 1}).id
        (credit,) = system.list("commission_credits", limit=10).records
        assert credit.values["opportunity"] == rid and credit.values["share"] == 100
    with platform.session() as s:
        a = s.scalar(sa.select(Automation).where(Automation.key == "office_daily"))
        assert (a.app, a.trigger, a.table_id) == ("sales", "schedule", None)
        assert a.next_run_at is not None
    assert plan_app(platform, app).empty  # applied: nothing more to do


def test_export_round_trip(platform, tmp_path):
    folder = write(tmp_path / "sales", FILES)
    apply_app(platform, load_app(folder))
    with platform.session() as s:
        live = live_app(platform.schema(s), s, "sales")
    files = app_files(live)
    assert "automations:" in files["app.yaml"]
    assert "as: statement" in files["app.yaml"]
    out = tmp_path / "exported"
    write_app(live, out)
    exported = load_app(out)
    assert plan_app(platform, exported).empty  # export then apply: nothing to do
    original = load_app(folder)
    assert [to_data(a) for a in exported.automations] == [to_data(a) for a in original.automations]


def test_changes_renames_and_deletions(platform, tmp_path):
    folder = write(tmp_path / "sales", FILES)
    apply_app(platform, load_app(folder))
    # the stage field is renamed in the files: the automation's formula follows
    files = {
        **FILES,
        "app.yaml": APP.replace("stage = ", "phase = ").replace(
            "key: office_daily", "key: office_daily\n        enabled: false"
        ),
        "opportunities.yaml": OPPORTUNITIES.replace(
            "{key: stage, type: select,", "{key: phase, renamed_from: stage, type: select,"
        ),
    }
    plan = plan_app(platform, load_app(write(folder, files)))
    text = plan.describe()
    assert "Rename field" in text and "credit_won_deals" not in text, text
    assert (
        "Change automation `office_daily`: daily 07:00, notify role admin_office; (disabled)"
        in text
    )
    apply_app(platform, load_app(folder))
    with platform.session() as s:
        live = live_app(platform.schema(s), s, "sales")
        assert live.automations[0].when == 'phase = "won"'
        assert (
            s.scalar(sa.select(Automation.next_run_at).where(Automation.key == "office_daily"))
            is None
        )
    # an automation left out of the files is deleted
    files["app.yaml"] = files["app.yaml"].split("      - key: office_daily")[0]
    plan = plan_app(platform, load_app(write(folder, files)))
    assert "Delete automation `office_daily`" in plan.describe()
    apply_app(platform, load_app(folder))
    with platform.session() as s:
        assert s.scalars(sa.select(Automation.key)).all() == ["credit_won_deals"]


def test_an_automation_of_another_app_is_refused(platform, tmp_path):
    apply_app(platform, load_app(write(tmp_path / "sales", FILES)))
    other = {
        "app.yaml": """
            app: other
            roles: [admin_office]
            automations:
              - key: office_daily
                on: schedule
                schedule: hourly
                actions: [{notify: {role: admin_office}}]
        """
    }
    found = problems(platform, other)
    has(found, "automation `office_daily` belongs to the app `sales`")


@pytest.mark.parametrize(
    ("automation", "expected"),
    [
        (
            "- {key: a, table: opportunitys, on: create, actions: [{update: {name: '1'}}]}",
            "sales/app.yaml:11 automations[0].table: no table `opportunitys` — did you mean "
            "`opportunities`?",
        ),
        (
            "- {key: a, table: opportunities, on: create, when: 'name', actions: [{update: {name: '\"x\"'}}]}",
            "sales/app.yaml:11 automations[0].when: this formula must give a Boolean",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{update: {nme: '\"x\"'}}]}",
            "automations[0].actions[0].update.nme: table `opportunities` has no field `nme` — did "
            "you mean `name`?",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{update: {closed_on: 'name'}}]}",
            "automations[0].actions[0].update.closed_on: this formula must give a Date",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{update: {name: 'nme & 1'}}]}",
            "unknown field `nme` — did you mean `name`?",
        ),
        (
            "- {key: a, table: opportunities, on: schedule, schedule: daily 25:00, "
            "actions: [{update: {name: '\"x\"'}}]}",
            "automations[0].schedule: `daily 25:00` is not a schedule: write hourly, daily HH:MM",
        ),
        (
            "- {key: a, table: opportunities, on: schedule, actions: [{update: {name: '\"x\"'}}]}",
            "`on: schedule` needs `schedule:`",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{create: commission_credits, "
            "as: owner}]}",
            "automations[0].actions[0].as: `as: owner` clashes with field `owner` of `opportunities`",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{notify: {role: boss}}]}",
            "automations[0].actions[0].notify.role: no role `boss`",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{notify: {to: name}}]}",
            "automations[0].actions[0].notify.to: must give a user or a list of users, not Text",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{start_workflow: reviw}]}",
            "automations[0].actions[0].start_workflow: no workflow `reviw`",
        ),
        (
            "- {key: a, on: schedule, schedule: hourly, actions: "
            "[{send_report: {report: nothing, role: sales}}]}",
            "automations[0].actions[0].send_report.report: no report `nothing`",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: "
            "[{update: {name: '\"x\"'}, start_workflow: review}]}",
            "an action needs exactly one of update, create, find_or_create, notify, "
            "start_workflow, send_report (here: update, start_workflow)",
        ),
        (
            "- {key: a, on: create, actions: [{notify: {role: sales}}]}",
            "`on: create` needs `table`",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{create: commission_credits, "
            "values: {share: 'statement'}}]}",
            "unknown field `statement`",
        ),
        (
            "- {key: a, table: opportunities, on: create, actions: [{create: commission_credits, "
            "values: {opportunity: 'owner'}}]}",
            "this formula must give a Record(opportunities), but it gives an User",
        ),
        (
            "- {key: a, table: opportunities, on: sometimes, actions: []}",
            "automations[0].on: `sometimes` is not one of: create, update, change, delete, schedule",
        ),
    ],
)
def test_validation_messages(platform, automation, expected):
    found = problems(platform, with_automation(automation))
    has(found, expected)


def test_a_formula_mistake_shows_the_caret_on_its_line(platform):
    found = problems(
        platform,
        with_automation(
            """
            - key: a
              table: opportunities
              on: update
              when: 'stage = "won" AND'
              actions: [{update: {name: '"x"'}}]
            """
        ),
    )
    (p,) = [p for p in found if "automations[0].when" in p]
    assert p.startswith("sales/app.yaml:14 automations[0].when:"), p
    assert "^" in p


def test_a_renamed_table_keeps_its_automations_without_a_change(platform, tmp_path):
    folder = write(tmp_path / "sales", FILES)
    apply_app(platform, load_app(folder))
    files = {k: v.replace("opportunities", "deals") for k, v in FILES.items()}
    files["opportunities.yaml"] = OPPORTUNITIES.replace(
        "key: opportunities", "key: deals\n    renamed_from: opportunities"
    )
    text = plan_app(platform, load_app(write(folder, files))).describe()
    assert "Rename table" in text and "automation" not in text, text
    apply_app(platform, load_app(folder))
    install(platform)
    with platform.session(write=True) as s, s.begin():
        system = platform.records(s, Actor.system_actor())
        rid = system.create("deals", {"name": "Acme", "stage": "won", "owner": 1}).id
        (credit,) = system.list("commission_credits", limit=10).records
        assert credit.values["opportunity"] == rid
