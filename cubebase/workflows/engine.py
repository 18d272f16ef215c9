"""The workflow engine: starting instances, tasks, completing them, routing.

Rules (docs/workflows.md has them in words):

- An instance starts manually (``start``), when its record is created
  (``on_create``), or when its ``start.when`` formula becomes true after a write
  (both through the records service's ``after_write`` hook). At most one running
  instance per record and workflow: a partial unique index, so two writers
  racing to start one get a ConflictError.
- Entering a step gives each assignee one task (``assignees`` formula on the
  record, in system context, or every active user holding ``role``), with its
  deadline, reminder and escalation times.
- Completing a task is one transaction: the instance row is locked first (an
  UPDATE bumping its version: a row lock on PostgreSQL, the write lock on
  SQLite), then the task is read again and must still be open and at the
  instance's current step and round; its owner (or the owner's delegate for
  today) completes it. A second completion, a step that moved on: ConflictError;
  someone else's task, self-approval where forbidden: Forbidden. Nothing is
  written then.
- Parallel steps: with n tasks and ``needed`` approvals (1 for ``any``, n for
  ``all``, k for ``quorum: k``), the step is approved when ``needed`` tasks are
  approved, and rejected as soon as approval can no longer reach ``needed``.
  The deciding action's routes pick the next step; the other open tasks of
  the step are closed as skipped.
- While an instance runs, the fields its steps make editable or its actions set
  (the workflow's fields) are locked except at the step that lists them as
  editable, and there only for that step's assignees (and their delegates): a
  ``before_write`` hook, so the rule holds for every road into the records
  service, not only for forms. The system (an action's ``set``) is not held.
- An action's ``set`` is applied when that action decides the step, as the
  system through the records service, before routing (``_apply_set``).

The engine is one class, ``WorkflowEngine``, made of parts by concept:
``planning`` (definitions into versions), ``steps`` (starting, tasks, delegation),
``completion`` (completing and cancelling), ``events`` (history, notifications);
this module has the record hooks, ``install`` and the names callers import.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..platform.errors import LockedError
from ..platform.usage import Use
from .completion import Completion
from .definitions import END_STEPS, Compiled
from .events import Events
from .models import Instance, Workflow, WorkflowVersion
from .planning import PlanStep, Versions, plan_workflows
from .states import OPEN, RUNNING, Clock, aware, utcnow
from .steps import Steps

# --- the engine ----------------------------------------------------------------------------


class WorkflowEngine(Versions, Steps, Completion, Events):
    """One per platform (``install``); every call works inside the caller's session."""

    def __init__(self, platform, clock: Clock | None = None, jobs=None):
        self.platform = platform
        self.clock: Clock = clock or utcnow
        self.jobs = jobs
        self._definitions: dict[int, dict[str, Any]] = {}

    # --- hooks -------------------------------------------------------------------------
    def _bound(self, service) -> dict[str, list[tuple[int, str]]]:
        """Workflows per table key (id, start mode): read once per records service."""
        cache = service.__dict__.get("_cb_workflows")
        if cache is None:
            cache = {}
            for wid, tkey, mode in service.session.execute(
                sa.select(Workflow.id, Workflow.table_key, Workflow.start_mode)
            ):
                cache.setdefault(tkey, []).append((wid, mode))
            service.__dict__["_cb_workflows"] = cache
        return cache

    def _running_on(self, service, table, record_id):
        """(instance, definition, the fields the workflow controls) of each instance
        running on the record."""
        session = service.session
        for inst in session.scalars(
            sa.select(Instance).where(
                Instance.table_key == table.key,
                Instance.record_id == record_id,
                Instance.status == RUNNING,
            )
        ):
            d = self.definition(session, inst.version_id)
            controlled = {f for s in d["steps"] for f in s["editable"]}
            # the fields its actions set are the workflow's too: only it changes them
            controlled |= {f for s in d["steps"] for a in s["actions"] for f in a.get("set", ())}
            yield inst, d, controlled

    def held_fields(self, service, table, record_id) -> dict[str, str]:
        """The fields of a record that ``before_write`` would refuse to let the
        service's actor change now, each with why (for forms to show them read-only)."""
        if record_id is None or service.actor.system or table.key not in self._bound(service):
            return {}
        held: dict[str, str] = {}
        for inst, d, controlled in self._running_on(service, table, record_id):
            step = self.step_def(d, inst.step)
            editable = set(step["editable"]) if step else set()
            label = step["label"] if step else inst.step
            for f in controlled - editable:
                held[f] = f"locked by workflow `{d['label']}` at step `{label}`"
            if editable & controlled and not self._holds_task(
                service.session, inst, service.actor.user_id
            ):
                for f in editable & controlled:
                    held[f] = f"only the assignees of step `{label}` of `{d['label']}` change it"
        return held

    def before_write(self, service, table, record_id, old_values, new_values) -> None:
        if record_id is None or service.actor.system or table.key not in self._bound(service):
            return
        session = service.session
        for inst, d, controlled in self._running_on(service, table, record_id):
            changed = set(new_values) & controlled
            if not changed:
                continue
            step = self.step_def(d, inst.step)
            editable = set(step["editable"]) if step else set()
            locked = sorted(changed - editable)
            if locked:
                raise LockedError(
                    f"{', '.join(locked)} cannot be changed now: workflow "
                    f"`{d['label']}` is at step `{step['label'] if step else inst.step}`",
                    [
                        {"field": f, "message": "locked by the workflow's current step"}
                        for f in locked
                    ],
                )
            if not self._holds_task(session, inst, service.actor.user_id):
                raise LockedError(
                    f"{', '.join(sorted(changed))} can be changed now only by the assignees "
                    f"of step `{step['label']}` of workflow `{d['label']}`",
                    [
                        {"field": f, "message": "only the step's assignees may change it"}
                        for f in sorted(changed)
                    ],
                )

    def after_write(self, service, table, record_id, old_values, new_values) -> None:
        bound = self._bound(service).get(table.key)
        if not bound or record_id is None:
            return
        versions = service.__dict__.setdefault("_cb_workflow_versions", {})
        for wid, mode in bound:
            if mode == "manual" or (mode == "on_create" and old_values is not None):
                continue
            wf = service.session.get(Workflow, wid)
            version = versions.get(wid)  # read once per records service, not per row
            if version is None:
                version = versions[wid] = self._current_version(service.session, wf)
            d = version.definition
            if mode == "when":
                system = service.system()
                t = system.table(table.key)
                after = {**(old_values or {}), **new_values, "id": record_id}
                if not self._true(system, t, d["start"]["when"], after):
                    continue
                if old_values is not None:
                    before = {**old_values, "id": record_id}
                    if self._true(system, t, d["start"]["when"], before):
                        continue  # it was already true: it did not *become* true
                # a record just created runs nothing yet
                if old_values is not None and self._running(service.session, wid, record_id):
                    continue
            self._start(service.session, service.actor, wf, version, record_id)


def workflow_users(session: Session, schema, what) -> list[Use]:
    """Finder (``hooks.deletion_users``): the workflows whose current version, or a
    version running instances still follow, uses a field (or the table) a delete
    removes: their table, the fields their steps edit, require or set, and every field
    their formulas read."""
    from .definitions import fields_used

    running = (
        sa.select(Instance.version_id, sa.func.count())
        .where(Instance.status == "running")
        .group_by(Instance.version_id)
    )
    counts = {vid: n for vid, n in session.execute(running)}
    rows = session.execute(
        sa.select(Workflow, WorkflowVersion)
        .join(WorkflowVersion, WorkflowVersion.workflow_id == Workflow.id)
        .where(
            sa.or_(
                WorkflowVersion.version == Workflow.current_version,
                WorkflowVersion.id.in_(list(counts) or [-1]),
            )
        )
        .order_by(Workflow.key, WorkflowVersion.version)
    )
    out = []
    for wf, v in rows:
        if what.whole_table and wf.table_key == what.table.key:
            used = True
        else:
            ids, keys = fields_used(v.definition, schema, wf.table_key)
            used = bool(ids & what.ids or keys & what.field_keys(wf.table_key))
        if not used:
            continue
        label = v.definition.get("label") or wf.key
        text = f"the workflow `{label}`"
        if v.version != wf.current_version:
            n = counts.get(v.id, 0)
            many = n != 1
            text += (
                f" (version {v.version}, which {n} running instance{'s' if many else ''} "
                f"still follow{'' if many else 's'})"
            )
        out.append(Use("workflow", wf.key, text, wf.app))
    return out


def install(platform, clock: Clock | None = None, *, jobs=None) -> WorkflowEngine:
    """Give ``platform`` a workflow engine and register its record hooks (once).
    Called by the app factory (through the API blueprint) and the CLI."""
    engine = platform.__dict__.get("workflows")
    if engine is not None:
        if clock is not None:
            engine.clock = clock
        return engine
    from .jobs import Jobs

    engine = WorkflowEngine(platform, clock)
    engine.jobs = jobs if jobs is not None else Jobs(platform, engine)
    platform.__dict__["workflows"] = engine
    platform.hooks.before_write.append(engine.before_write)
    platform.hooks.after_write.append(engine.after_write)
    platform.hooks.after_table_rename.append(table_renamed)
    platform.hooks.deletion_users.append(workflow_users)
    return engine


def table_renamed(session: Session, old: str, new: str) -> None:
    """Workflows and their instances follow their table's new key (same transaction)."""
    session.execute(sa.update(Workflow).where(Workflow.table_key == old).values(table_key=new))
    session.execute(sa.update(Instance).where(Instance.table_key == old).values(table_key=new))


def engine_of(platform) -> WorkflowEngine:
    return install(platform)


__all__ = [
    "END_STEPS",
    "OPEN",
    "RUNNING",
    "Clock",
    "Compiled",
    "PlanStep",
    "WorkflowEngine",
    "aware",
    "engine_of",
    "install",
    "plan_workflows",
    "table_renamed",
    "utcnow",
]
