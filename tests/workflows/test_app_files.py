"""Workflows in app files (schema_defs): checked with every other mistake (file, line,
key), planned in words, created and versioned in the apply's transaction (running
instances keep their version or move by `migrate`), exported back, installed with
`cubebase app install`; on both databases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cubebase.cli import main
from cubebase.platform.actor import Actor
from cubebase.platform.users import create_user, load_actor
from cubebase.schema_defs import (
    AppFileError,
    app_files,
    apply_app,
    json_schema,
    live_app,
    load_app,
    plan_app,
    write_app,
)
from cubebase.schema_defs import apps as schema_apps
from cubebase.workflows.engine import install
from cubebase.workflows.inbox import inbox
from cubebase.workflows.models import Instance, Task, Workflow, WorkflowVersion
from tests.schema_defs.conftest import snapshot

APP = """
    app: deals
    roles: [sales, sales_manager, pricing_committee]
    tables:
      - key: users
        fields:
          - {key: boss, type: user}
"""
QUOTES = """
    key: quotes
    display: title
    fields:
      - {key: title, type: text}
      - {key: owner, type: user}
      - {key: discount, type: number, precision: 3}
      - {key: reason, type: text}
    permissions:
      - {role: sales, read: owner = USER(), update: owner = USER(), create: true}
      - {role: sales_manager, read: true, update: true}
      - {role: pricing_committee, read: true}
"""
WORKFLOW = """
    # Discounts above 10% need the owner's boss, above 20% two of the committee too.
    workflows:
      - key: quote_discount
        table: quotes
        label: Quote discount approval
        start: {when: 'discount > 0'}
        allow_self_approval: false
        steps:
          - key: request
            assignees: owner
            editable: [discount, reason]
            required: [reason]
            actions:
              - key: submit
                routes:
                  - {when: 'discount > 0.1', to: manager}
                  - {to: done}
          - key: manager
            label: Manager approval
            assignees: owner.boss
            deadline: 2d
            reminder: 4h
            escalation: {after: 1d, action: notify, to: owner}
            actions:
              - key: approve
                routes:
                  - {when: 'discount > 0.2', to: committee}
                  - {to: done}
              - {key: reject, label: Send back, to: request, comment: required}
          - key: committee
            role: pricing_committee
            quorum: 2
            deadline: 3d
            actions:
              - {key: approve, to: done}
              - {key: reject, to: rejected, comment: required}
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


@pytest.fixture
def app_dir(tmp_path) -> Path:
    return write(
        tmp_path / "apps" / "deals",
        {"app.yaml": APP, "quotes.yaml": QUOTES, "workflows/quote_discount.yaml": WORKFLOW},
    )


@pytest.fixture
def people(platform):
    """A seller (whose boss is the manager) and three committee members."""
    ids = {}
    with platform.session(write=True) as s, s.begin():
        for name in ("seller", "manager", "c1", "c2", "c3"):
            ids[name] = create_user(platform, s, f"{name}@example.com", name=name)
    return ids


def set_up_people(platform, ids) -> dict:
    """Once the app's roles and the users' `boss` exist: roles, the seller's boss."""
    roles = {"seller": ["sales"], "manager": ["sales_manager"]}
    with platform.session(write=True) as s, s.begin():
        system = platform.records(s, Actor.system_actor())
        for name, uid in ids.items():
            values = {"roles": roles.get(name, ["pricing_committee"])}
            if name == "seller":
                values["boss"] = ids["manager"]
            system.update("users", uid, values)
    with platform.session() as s:
        return {k: load_actor(platform, s, v) for k, v in ids.items()}


def quote(platform, actor, discount) -> int:
    with platform.session(write=True) as s, s.begin():
        return (
            platform.records(s, actor)
            .create(
                "quotes",
                {"title": "Q", "owner": actor.user_id, "discount": discount, "reason": "deal"},
            )
            .id
        )


def complete_only_task(platform, engine, actor, action="submit"):
    with platform.session(write=True) as s, s.begin():
        (task,) = inbox(platform, s, actor)
        engine.complete(s, actor, task["id"], action)


def workflow_row(platform, key="quote_discount") -> tuple[Workflow, list[int]]:
    with platform.session() as s:
        wf = s.scalar(sa.select(Workflow).where(Workflow.key == key))
        versions = s.scalars(
            sa.select(WorkflowVersion.version)
            .where(WorkflowVersion.workflow_id == wf.id)
            .order_by(WorkflowVersion.version)
        ).all()
        return wf, versions


def test_a_workflow_in_an_app_installs_and_runs(platform, app_dir, people, monkeypatch):
    engine = install(platform)
    monkeypatch.setattr(schema_apps, "APPS_DIR", app_dir.parent)
    runner = CliRunner()
    url = platform.config.database_url
    diff = runner.invoke(main, ["schema", "diff", str(app_dir), "--db", url])
    assert diff.exit_code == 0, diff.output
    assert (
        "Create workflow Quote discount approval (`quote_discount`) on `quotes`: 3 steps "
        "(request, manager, committee); starts when its condition becomes true"
    ) in diff.output
    first = runner.invoke(main, ["app", "install", "deals", "--db", url])
    assert first.exit_code == 0, first.output
    assert first.output.rstrip().endswith("App deals installed.")
    wf, versions = workflow_row(platform)
    assert (wf.app, wf.table_key, wf.start_mode, versions) == ("deals", "quotes", "when", [1])
    second = runner.invoke(main, ["app", "install", "deals", "--db", url])
    assert second.output.strip() == "App deals is installed and up to date; nothing to do."
    # the installed workflow runs: a 15% discount goes to the seller's boss
    actors = set_up_people(platform, people)
    quote(platform, actors["seller"], 0.15)
    complete_only_task(platform, engine, actors["seller"])
    with platform.session() as s:
        tasks = inbox(platform, s, actors["manager"])
    assert [t["step"] for t in tasks] == ["manager"]


def test_a_changed_workflow_makes_a_version_running_instances_keep_or_move(
    platform, app_dir, people
):
    engine = install(platform)
    apply_app(platform, load_app(app_dir))
    actors = set_up_people(platform, people)
    quote(platform, actors["seller"], 0.15)
    complete_only_task(platform, engine, actors["seller"])  # now at `manager`
    path = app_dir / "workflows" / "quote_discount.yaml"
    path.write_text(path.read_text().replace("deadline: 2d", "deadline: 3d"))
    plan = plan_app(platform, load_app(app_dir))
    assert [s.text for s in plan.steps] == [
        "Change workflow Quote discount approval (`quote_discount`) on `quotes`: change step "
        "`manager` (new version 2; 1 running instance keeps version 1: 1 at `manager`)"
    ]
    apply_app(platform, plan.app)
    wf, versions = workflow_row(platform)
    assert (wf.current_version, versions) == (2, [1, 2])
    with platform.session() as s:
        inst = s.scalar(sa.select(Instance))
        kept = s.get(WorkflowVersion, inst.version_id).version
    assert (kept, inst.step) == (1, "manager")
    assert plan_app(platform, load_app(app_dir)).empty

    # rename the step and move the running instance there explicitly
    text = path.read_text().replace("key: manager", "key: boss_review")
    text = text.replace("to: manager}", "to: boss_review}")
    path.write_text(
        text.replace(
            "allow_self_approval: false",
            "allow_self_approval: false\n    migrate: {manager: boss_review}",
        )
    )
    plan = plan_app(platform, load_app(app_dir))
    (step,) = plan.steps
    assert step.text.endswith(
        "(new version 3; 1 running instance moves to it: 1 at `manager` -> `boss_review`)"
    ), step.text
    apply_app(platform, plan.app)
    with platform.session() as s:
        inst = s.scalar(sa.select(Instance))
        version = s.get(WorkflowVersion, inst.version_id).version
        open_steps = s.scalars(sa.select(Task.step).where(Task.status == "open")).all()
    assert (version, inst.step, open_steps) == (3, "boss_review", ["boss_review"])

    # a running step the new version lacks, with `migrate` not saying where it goes
    path.write_text(
        path.read_text()
        .replace("key: boss_review", "key: approval")
        .replace("to: boss_review}", "to: approval}")
        .replace("migrate: {manager: boss_review}", "migrate: {}")
    )
    before = snapshot(platform)
    with pytest.raises(AppFileError) as err:
        apply_app(platform, load_app(app_dir))
    (problem,) = err.value.problems
    assert problem.file == "deals/workflows/quote_discount.yaml"
    assert (problem.line, problem.path) == (8, "workflows[0].migrate")
    assert "1 running instance of `quote_discount` is at step `boss_review`" in problem.message
    assert snapshot(platform) == before


def test_export_round_trips(platform, app_dir, tmp_path):
    apply_app(platform, load_app(app_dir))
    with platform.session() as s:
        app = live_app(platform.schema(s), s, "deals")
    files = app_files(app)
    assert sorted(files) == ["app.yaml", "quotes.yaml", "workflows/quote_discount.yaml"]
    out = tmp_path / "exported"
    write_app(app, out)
    exported = load_app(out)
    assert plan_app(platform, exported).empty  # export then apply: nothing to do
    # the same meaning as the files written by hand, and the same bytes twice
    original = load_app(app_dir).workflows[0]
    from cubebase.schema_defs.export import to_data

    assert to_data(exported.workflows[0]) == to_data(original)
    write_app(app, out)
    assert {p.name: p.read_text() for p in out.rglob("*.yaml")} == {
        Path(n).name: t for n, t in files.items()
    }
    text = files["workflows/quote_discount.yaml"]
    assert text.startswith("workflows:\n- key: quote_discount\n  table: quotes\n"), text
    assert "  - {key: reject, label: Send back, to: request, comment: required}" in text


def test_deleting_a_workflow_with_history_needs_confirmation(platform, app_dir, people):
    engine = install(platform)
    apply_app(platform, load_app(app_dir))
    actors = set_up_people(platform, people)
    quote(platform, actors["seller"], 0.05)
    (app_dir / "workflows" / "quote_discount.yaml").unlink()
    plan = plan_app(platform, load_app(app_dir))
    (step,) = plan.steps
    assert step.text == "Delete workflow `quote_discount` on `quotes`"
    assert step.loss == "the history of 1 instance would be lost (1 still running)"
    from cubebase.platform.schema_changes import DataLossError

    with pytest.raises(DataLossError):
        apply_app(platform, plan.app)
    apply_app(platform, plan.app, confirm_data_loss=True)
    with platform.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Instance)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Workflow)) == 0
    del engine


def test_dry_run_of_a_workflow_change_changes_nothing(platform, app_dir):
    apply_app(platform, load_app(app_dir))
    path = app_dir / "workflows" / "quote_discount.yaml"
    path.write_text(path.read_text().replace("quorum: 2", "quorum: 3"))
    before = snapshot(platform)
    result = apply_app(platform, load_app(app_dir), dry_run=True)
    assert [s.kind for s in result.plan.steps] == ["change_workflow"]
    assert snapshot(platform) == before
    assert workflow_row(platform)[1] == [1]


def test_workflow_mistakes_are_reported_with_every_other_one(platform, app_dir):
    (app_dir / "quotes.yaml").write_text(
        (app_dir / "quotes.yaml").read_text().replace("{role: sales_manager,", "{role: sales_mgr,")
    )
    bad = WORKFLOW.replace("editable: [discount, reason]", "editable: [discount, reasn]")
    bad = bad.replace("{when: 'discount > 0.1', to: manager}", "{when: 'discount > ', to: manager}")
    bad = bad.replace("role: pricing_committee", "role: pricing_comittee")
    bad = bad.replace("{key: approve, to: done}", "{key: approve, to: finished}")
    write(app_dir, {"workflows/quote_discount.yaml": bad})
    with pytest.raises(AppFileError) as err:
        apply_app(platform, load_app(app_dir))
    got = [(p.file, p.line, p.path, p.message.split(" — ")[0]) for p in err.value.problems]
    wf_file = "deals/workflows/quote_discount.yaml"
    assert got == [
        ("deals/quotes.yaml", 10, "permissions[1].role", "unknown role `sales_mgr`"),
        (wf_file, 11, "workflows[0].steps[0].editable", "table `quotes` has no field `reasn`"),
        (wf_file, 16, "workflows[0].steps[0].actions[0].routes[0].when", got[2][3]),
        (wf_file, 31, "workflows[0].steps[2].role", "no role `pricing_comittee`"),
        (
            wf_file,
            35,
            "workflows[0].steps[2].actions[0].to",
            "no step `finished` (steps: request, manager, committee; or done, rejected, cancelled)",
        ),
    ]
    assert "did you mean `reason`?" in err.value.problems[1].message
    assert err.value.problems[2].excerpt  # the formula checker's caret
    # mistakes of form too: an unknown key, in a workflow inside the app file
    write(app_dir, {"workflows/quote_discount.yaml": WORKFLOW})
    write(
        app_dir,
        {"app.yaml": APP + "    workflows:\n      - {key: other, table: quotes, stps: []}\n"},
    )
    with pytest.raises(AppFileError) as err:
        load_app(app_dir)
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("deals/app.yaml", 8, "workflows[0].stps")
    assert problem.message.startswith("unknown key `stps` — did you mean `steps`?")


def test_a_workflow_key_twice_and_of_another_app(platform, app_dir, tmp_path):
    write(app_dir, {"workflows/again.yaml": WORKFLOW})
    with pytest.raises(AppFileError) as err:
        apply_app(platform, load_app(app_dir))
    (problem,) = err.value.problems
    # files are read in name order: again.yaml first, the second definition is refused
    assert (problem.file, problem.line) == ("deals/workflows/quote_discount.yaml", 3)
    assert problem.message == "workflow `quote_discount` is defined twice"
    (app_dir / "workflows" / "again.yaml").unlink()
    apply_app(platform, load_app(app_dir))
    other = write(
        tmp_path / "other",
        {"app.yaml": "app: other\n", "workflows/q.yaml": WORKFLOW},
    )
    with pytest.raises(AppFileError) as err:
        apply_app(platform, load_app(other))
    assert [str(p) for p in err.value.problems] == [
        "other/workflows/q.yaml:3 workflows[0].key: workflow `quote_discount` belongs to "
        "the app `deals`"
    ]


def test_workflow_files_are_valid_under_the_json_schema(app_dir):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    validator = jsonschema.Draft202012Validator(json_schema())
    fixtures = Path(__file__).parent / "fixtures"
    for path in [*fixtures.glob("*.yaml"), app_dir / "workflows" / "quote_discount.yaml"]:
        data = yaml.safe_load(path.read_text())
        assert not list(validator.iter_errors(data)), path.name
    bad = yaml.safe_load(textwrap.dedent(WORKFLOW).replace("quorum: 2", "quorum: two"))
    assert list(validator.iter_errors(bad))
    assert list(
        validator.iter_errors({"workflows": [{"key": "w", "table": "t", "migrate": {"a": 1}}]})
    )


def test_an_action_that_sets_fields_applies_exports_and_round_trips(platform, tmp_path):
    handover = """
        workflows:
          - key: handover
            table: quotes
            start: {mode: manual}
            steps:
              - key: decide
                role: pricing_committee
                actions:
                  - key: approve
                    set: {owner: owner.boss, reason: '"handed over"'}
                    to: done
    """
    folder = write(
        tmp_path / "apps" / "deals",
        {"app.yaml": APP, "quotes.yaml": QUOTES, "workflows/handover.yaml": handover},
    )
    apply_app(platform, load_app(folder))
    with platform.session() as s:
        app = live_app(platform.schema(s), s, "deals")
    text = app_files(app)["workflows/handover.yaml"]
    exported_set = "      set:\n        owner: owner.boss\n        reason: '\"handed over\"'\n"
    assert exported_set in text, text
    out = tmp_path / "exported"
    write_app(app, out)
    assert plan_app(platform, load_app(out)).empty  # export then apply: nothing to do
