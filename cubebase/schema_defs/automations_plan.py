"""Automations in apply and export: the checks that need the app as a whole, the plan
steps (add, change, adopt, delete, in business words), applying them in the apply's
transaction, and the live automations back to the IR.

``cubebase.workflows.models`` is imported inside the functions only: the workflows
package imports schema_defs, never the reverse at import time."""

from __future__ import annotations

import sqlalchemy as sa

from . import ir
from .automations import (
    CompiledAutomation,
    describe,
    table_by_id,
    to_spec,
    validate_automations,
)
from .errors import AppFileError, Problem, Problems


def check_app_automations(res, problems: Problems) -> list[CompiledAutomation]:
    """The `automations:` section against the schema the app would make (called by
    ``validate.resolve``); workflow and report keys are checked by the plan, which
    sees the live ones too."""
    if not res.app.automations:
        return []
    return validate_automations(
        res.app.automations, res.virtual, set(res.roles), res.app.lines, problems=problems
    )


def _report_keys(session, app: ir.AppSpec) -> set[str]:
    from ..platform.models import Report

    keys = set(session.scalars(sa.select(Report.key)))
    for r in app.reports or []:
        key = r.get("key") if isinstance(r, dict) else getattr(r, "key", None)
        if key:
            keys.add(key)
    return keys


def _references(b, c: CompiledAutomation, problems: list[Problem]) -> None:
    """start_workflow and send_report name a workflow / report of the app or the live ones."""
    from ..workflows.models import Workflow

    session = b.ed.session
    workflows = {c.key for c in b.res.workflows} | set(session.scalars(sa.select(Workflow.key)))
    reports = None
    for act, d in zip(c.spec.actions, c.document["actions"], strict=True):
        if d["kind"] == "start_workflow" and d["workflow"] not in workflows:
            file, line, path = act.at("start_workflow")
            problems.append(Problem(file, line, path, f"no workflow `{d['workflow']}`"))
        if d["kind"] == "send_report":
            reports = _report_keys(session, b.app) if reports is None else reports
            if d["report"] not in reports:
                file, line, path = act.send_report.at("report")
                problems.append(Problem(file, line, path, f"no report `{d['report']}`"))


def plan_automations(b) -> None:
    """Add the automation steps to the plan builder ``b`` (plan._Builder): last, after the
    workflows they may start and the starting records (which trigger none of them)."""
    from ..workflows.models import Automation

    session = b.ed.session
    live = {a.key: a for a in session.scalars(sa.select(Automation).order_by(Automation.key))}
    compiled = b.res.__dict__.get("automations") or []
    if not live and not compiled:
        return
    problems: list[Problem] = []
    schema = b.res.virtual
    for c in compiled:
        _references(b, c, problems)
        a = live.get(c.key)
        where = f" on {c.table}" if c.table else ""
        words = describe(c.document, schema, c.table)
        if a is not None and a.app not in (None, b.app.app):
            file, line, path = c.spec.at("key")
            problems.append(
                Problem(file, line, path, f"automation `{c.key}` belongs to the app `{a.app}`")
            )
            continue
        run = lambda ed, spec=c.spec: _apply(ed, b.app, spec)  # noqa: E731
        if a is None:
            b.add("create_automation", f"Add automation `{c.key}`{where}: {words}", run, c.table)
            continue
        # by id: a table renamed by the same apply is the same table
        same_table = (schema.table(c.table).id if c.table else None) == a.table_id
        if a.definition == c.document and same_table:
            if a.app is None:
                b.add(
                    "adopt_automation",
                    f"Automation `{c.key}` now belongs to the app `{b.app.app}`",
                    run,
                    c.table,
                )
            continue
        b.add("change_automation", f"Change automation `{c.key}`{where}: {words}", run, c.table)
    if problems:
        raise AppFileError(problems)
    listed = {c.key for c in compiled}
    for key, a in live.items():
        if a.app == b.app.app and key not in listed:
            b.add(
                "delete_automation",
                f"Delete automation `{key}`",
                lambda ed, aid=a.id: _delete(ed, aid),
            )


def _apply(ed, app: ir.AppSpec, spec: ir.AutomationSpec) -> None:
    """Check the automation again on the schema as changed so far (new tables and fields
    have their ids now) and write it."""
    from ..workflows.automations.engine import install

    compiled = validate_automations([spec], ed.schema, None, app.lines)
    install(ed.platform).save(ed.session, ed.schema, compiled, app.app)


def _delete(ed, automation_id: int) -> None:
    from ..workflows.models import Automation, AutomationRun

    session = ed.session
    session.execute(sa.delete(AutomationRun).where(AutomationRun.automation_id == automation_id))
    session.execute(sa.delete(Automation).where(Automation.id == automation_id))


def live_automations(schema, session, app_key: str | None) -> list[ir.AutomationSpec]:
    """The automations of ``app_key`` (None: every one) back in the IR; one whose table
    is gone is left out (it can no longer run)."""
    from ..workflows.models import Automation

    q = sa.select(Automation).order_by(Automation.key)
    if app_key is not None:
        q = q.where(Automation.app == app_key)
    out = []
    for a in session.scalars(q):
        table = table_by_id(schema, a.table_id) if a.table_id is not None else None
        if a.table_id is not None and table is None:
            continue
        out.append(to_spec(a.definition, schema, table.key if table else None))
    return out
