"""The plan's workflow steps (a hook of ``plan._Builder``): create, version (keeping or
migrating running instances), adopt or delete the app's workflows, last, once every
table, field and starting record is in place. cubebase.workflows is imported inside
these functions only (it imports schema_defs; docs/app-format.md, "Workflows").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..platform.schema_changes import SchemaEditor
from . import ir
from .errors import AppFileError, Problem

if TYPE_CHECKING:
    from .plan import _Builder


def plan_app_workflows(b: _Builder) -> None:
    """Create, version (keeping or migrating running instances), adopt or delete the
    app's workflows: last, once every table, field and starting record is in place
    (so starting records do not start workflows the same apply creates)."""
    from ..workflows.models import Workflow  # late: see validate._check_workflows

    session = b.ed.session
    live = {wf.key: wf for wf in session.scalars(sa.select(Workflow).order_by(Workflow.key))}
    if not live and not b.res.workflows:
        return
    problems: list[Problem] = []
    for c in b.res.workflows:
        _plan_workflow(b, c, live.get(c.key), problems)
    if problems:
        raise AppFileError(problems)
    listed = {c.key for c in b.res.workflows}
    for key, wf in live.items():
        if wf.app == b.app.app and key not in listed:
            _plan_delete_workflow(b, wf)


def _plan_workflow(b: _Builder, c, wf, problems: list[Problem]) -> None:
    from ..workflows.definitions import END_STEPS

    spec = c.spec
    label = c.document["label"]
    what = f"workflow {label} (`{c.key}`) on `{c.table}`"
    if wf is not None and wf.app not in (None, b.app.app):
        file, line, path = spec.at("key")
        problems.append(
            Problem(file, line, path, f"workflow `{c.key}` belongs to the app `{wf.app}`")
        )
        return
    if wf is None:
        steps = [s["key"] for s in c.document["steps"]]
        b.add(
            "create_workflow",
            f"Create {what}: {len(steps)} step{'s' if len(steps) != 1 else ''} "
            f"({', '.join(steps)}); {_start_words(c.document['start'])}",
            lambda ed, spec=spec: _apply_workflow(ed, b.app, spec, None),
            c.table,
        )
        return
    current = _current_definition(b.ed.session, wf)
    if current == c.document:
        if wf.app is None:
            b.add(
                "adopt_workflow",
                f"Workflow `{c.key}` now belongs to the app `{b.app.app}`",
                lambda ed, key=c.key: _adopt_workflow(ed, key, b.app.app),
                c.table,
            )
        return
    running = _running_by_step(b.ed.session, wf.id)
    n = sum(running.values())
    new = wf.current_version + 1
    changes = _definition_changes(current or {"steps": []}, c.document)
    text = f"Change {what}: {changes} (new version {new}; "
    mapping = None
    if not n:
        text += "no running instances)"
    elif spec.migrate is None:
        text += (
            f"{_n(n, 'running instance')} {'keeps' if n == 1 else 'keep'} version "
            f"{wf.current_version}: {_at(running)})"
        )
    else:
        new_steps = {s["key"] for s in c.document["steps"]} | set(END_STEPS)
        mapping = {}
        moves = []
        for old, count in sorted(running.items()):
            target = spec.migrate.get(old, old)
            if target not in new_steps:
                file, line, path = spec.at("migrate")
                problems.append(
                    Problem(
                        file,
                        line,
                        path,
                        f"{_n(count, 'running instance')} of `{c.key}` "
                        f"{'is' if count == 1 else 'are'} at step `{old}`, which the new "
                        f"version does not have: map it under `migrate` (`{old}: STEP`)",
                    )
                )
                continue
            mapping[old] = target
            moves.append(
                f"{count} at `{old}` -> `{target}`" if target != old else f"{count} stay at `{old}`"
            )
        text += (
            f"{_n(n, 'running instance')} {'moves' if n == 1 else 'move'} to it: "
            f"{', '.join(moves)})"
        )
    b.add(
        "change_workflow",
        text,
        lambda ed, spec=spec, mapping=mapping: _apply_workflow(ed, b.app, spec, mapping),
        c.table,
    )


def _plan_delete_workflow(b: _Builder, wf) -> None:
    from ..workflows.models import Instance

    session = b.ed.session
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Instance).where(Instance.workflow_id == wf.id)
    )
    running = sum(_running_by_step(session, wf.id).values())
    step = b.add(
        "delete_workflow",
        f"Delete workflow `{wf.key}` on `{wf.table_key}`",
        lambda ed, wid=wf.id: _delete_workflow(ed, wid),
        wf.table_key,
    )
    if total:
        step.loses = total
        step.loss = f"the history of {_n(total, 'instance')} would be lost" + (
            f" ({running} still running)" if running else ""
        )


def _current_definition(session, wf) -> dict | None:
    from ..workflows.models import WorkflowVersion

    return session.scalar(
        sa.select(WorkflowVersion.definition).where(
            WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.current_version
        )
    )


def _running_by_step(session, workflow_id: int) -> dict[str, int]:
    from ..workflows.models import Instance

    return dict(
        session.execute(
            sa.select(Instance.step, sa.func.count())
            .where(Instance.workflow_id == workflow_id, Instance.status == "running")
            .group_by(Instance.step)
        ).all()
    )


def _apply_workflow(ed: SchemaEditor, app: ir.AppSpec, spec, mapping) -> None:
    """Check the workflow again on the schema as changed so far (its formulas are stored
    by the ids the new fields got) and create it or add its new version, migrating the
    running instances when ``mapping`` is given."""
    from ..workflows.definitions import validate_workflows
    from ..workflows.engine import install, plan_workflows

    compiled = validate_workflows([spec], ed.schema, None, app.lines)
    engine = install(ed.platform)
    _forget_definitions_on_rollback(ed.session, engine)
    mappings = {spec.key: mapping} if mapping is not None else None
    engine.apply_plan(ed.session, plan_workflows(ed.session, compiled, mappings, app.app))


def _forget_definitions_on_rollback(session, engine) -> None:
    """A dry run (or a failed apply) rolls back versions the engine may have cached by id;
    SQLite hands those ids out again."""
    if session.info.get("cb_wf_forget"):
        return
    session.info["cb_wf_forget"] = True
    sa.event.listen(session, "after_rollback", lambda s: engine._definitions.clear(), once=True)


def _adopt_workflow(ed: SchemaEditor, key: str, app_key: str) -> None:
    from ..workflows.models import Workflow

    ed.session.execute(sa.update(Workflow).where(Workflow.key == key).values(app=app_key))


def _delete_workflow(ed: SchemaEditor, workflow_id: int) -> None:
    """The workflow, its versions, instances, tasks and history (explicitly, child rows
    first: SQLite runs the editor without foreign-key cascades)."""
    from ..workflows.models import Event, Instance, Task, Workflow, WorkflowVersion

    session = ed.session
    instances = sa.select(Instance.id).where(Instance.workflow_id == workflow_id)
    session.execute(sa.delete(Task).where(Task.instance_id.in_(instances)))
    session.execute(sa.delete(Event).where(Event.instance_id.in_(instances)))
    session.execute(sa.delete(Instance).where(Instance.workflow_id == workflow_id))
    session.execute(sa.delete(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id))
    session.execute(sa.delete(Workflow).where(Workflow.id == workflow_id))


def _start_words(start: dict) -> str:
    if start["mode"] == "on_create":
        return "starts when a record is created"
    if start["mode"] == "when":
        return "starts when its condition becomes true"
    return "started by hand"


def _definition_changes(old: dict, new: dict) -> str:
    """What changed between two versions, in words."""
    before = {s["key"]: s for s in old["steps"]}
    after = {s["key"]: s for s in new["steps"]}
    parts = []
    added = [k for k in after if k not in before]
    removed = [k for k in before if k not in after]
    changed = [k for k in after if k in before and after[k] != before[k]]
    if added:
        parts.append("add step " + ", ".join(f"`{k}`" for k in added))
    if removed:
        parts.append("remove step " + ", ".join(f"`{k}`" for k in removed))
    if changed:
        parts.append("change step " + ", ".join(f"`{k}`" for k in changed))
    if [k for k in after if k in before] != [k for k in before if k in after]:
        parts.append("reorder the steps")
    rest = {k: v for k, v in new.items() if k != "steps"}
    if rest != {k: v for k, v in old.items() if k != "steps"}:
        names = [k for k in rest if rest[k] != old.get(k)]
        parts.append("change " + ", ".join(f"`{k}`" for k in names))
    return "; ".join(parts) or "change the definition"


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _at(running: dict[str, int]) -> str:
    return ", ".join(f"{c} at `{s}`" for s, c in sorted(running.items()))
