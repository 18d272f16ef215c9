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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..formula import types as ft
from ..platform.actor import Actor
from ..platform.errors import (
    BadRequest,
    ConflictError,
    FieldProblem,
    Forbidden,
    LockedError,
    NotFound,
    ValidationError,
)
from ..platform.records import FormulaFilter
from .definitions import END_STEPS, Compiled
from .models import (
    Delegation,
    Event,
    Instance,
    Notification,
    Task,
    Workflow,
    WorkflowVersion,
)

Clock = Callable[[], datetime]
OPEN = "open"
RUNNING = "running"


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they are UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


# --- plans: definitions into versions ------------------------------------------------------


@dataclass
class PlanStep:
    """One change of ``apply_plan``: create a workflow, add a version, or nothing."""

    kind: str  # create | new_version | unchanged
    key: str
    compiled: Compiled
    running: dict[str, int] = field(default_factory=dict)  # step -> running instances
    mapping: dict[str, str] | None = None  # old step -> new step for running instances
    app: str | None = None

    def describe(self) -> str:
        if self.kind == "create":
            return f"create workflow `{self.key}` on `{self.compiled.table}`"
        if self.kind == "unchanged":
            return f"workflow `{self.key}`: unchanged"
        n = sum(self.running.values())
        text = f"workflow `{self.key}`: new version"
        if not n:
            return text + " (no running instances)"
        at = ", ".join(f"{s}: {c}" for s, c in sorted(self.running.items()))
        if self.mapping is None:
            return text + f"; {n} running instance(s) keep their version ({at})"
        moves = ", ".join(f"{a} -> {b}" for a, b in sorted(self.mapping.items()))
        return text + f"; {n} running instance(s) ({at}) move to it: {moves}"


def plan_workflows(
    session: Session,
    compiled: list[Compiled],
    mappings: Mapping[str, Mapping[str, str]] | None = None,
    app: str | None = None,
) -> list[PlanStep]:
    """What applying ``compiled`` would do. ``mappings[key]`` moves the running
    instances of a changed workflow to the new version (old step -> new step);
    without one they keep their version. A mapping that leaves a running step out
    or names a step the new version lacks is refused here, before anything applies."""
    mappings = mappings or {}
    out = []
    problems = []
    for c in compiled:
        wf = session.scalar(sa.select(Workflow).where(Workflow.key == c.key))
        if wf is None:
            out.append(PlanStep("create", c.key, c, app=app))
            continue
        current = session.scalar(
            sa.select(WorkflowVersion).where(
                WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.current_version
            )
        )
        if current is not None and current.definition == c.document:
            out.append(PlanStep("unchanged", c.key, c, app=app))
            continue
        running = dict(
            session.execute(
                sa.select(Instance.step, sa.func.count())
                .where(Instance.workflow_id == wf.id, Instance.status == RUNNING)
                .group_by(Instance.step)
            ).all()
        )
        mapping = mappings.get(c.key)
        if mapping is not None:
            new_steps = {s["key"] for s in c.document["steps"]} | set(END_STEPS)
            for old in running:
                target = mapping.get(old, old if old in new_steps else None)
                if target is None:
                    problems.append(
                        FieldProblem(c.key, f"running instances at step `{old}` need a mapping")
                    )
                elif target not in new_steps:
                    problems.append(FieldProblem(c.key, f"mapping to unknown step `{target}`"))
            mapping = {
                old: mapping.get(old, old) for old in running if mapping.get(old, old) in new_steps
            }
        out.append(PlanStep("new_version", c.key, c, running, mapping, app))
    if problems:
        raise ValidationError(problems)
    return out


# --- the engine ----------------------------------------------------------------------------


class WorkflowEngine:
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

    def before_write(self, service, table, record_id, old_values, new_values) -> None:
        if record_id is None or service.actor.system or table.key not in self._bound(service):
            return
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

    # --- definitions -------------------------------------------------------------------
    def definition(self, session: Session, version_id: int) -> dict[str, Any]:
        d = self._definitions.get(version_id)
        if d is None:
            d = self._definitions[version_id] = session.get(WorkflowVersion, version_id).definition
        return d

    @staticmethod
    def step_def(d: Mapping[str, Any], key: str | None) -> dict[str, Any] | None:
        return next((s for s in d["steps"] if s["key"] == key), None)

    @staticmethod
    def _current_version(session: Session, wf: Workflow) -> WorkflowVersion:
        return session.scalar(
            sa.select(WorkflowVersion).where(
                WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.current_version
            )
        )

    def apply_plan(
        self, session: Session, plan: list[PlanStep], actor: Actor | None = None
    ) -> None:
        """Apply a plan from ``plan_workflows`` in the caller's transaction."""
        now = self.clock()
        for p in plan:
            doc = p.compiled.document
            if p.kind == "unchanged":
                continue
            if p.kind == "create":
                wf = Workflow(
                    key=p.key,
                    table_key=p.compiled.table,
                    app=p.app,
                    current_version=1,
                    start_mode=doc["start"]["mode"],
                    created_at=now,
                    updated_at=now,
                )
                session.add(wf)
                session.flush()
                session.add(
                    WorkflowVersion(workflow_id=wf.id, version=1, definition=doc, created_at=now)
                )
                continue
            wf = session.scalar(sa.select(Workflow).where(Workflow.key == p.key))
            wf.current_version += 1
            wf.table_key = p.compiled.table
            wf.start_mode = doc["start"]["mode"]
            wf.updated_at = now
            version = WorkflowVersion(
                workflow_id=wf.id, version=wf.current_version, definition=doc, created_at=now
            )
            session.add(version)
            session.flush()
            if p.mapping is not None:
                self._migrate(session, wf, version, p.mapping, actor, now)
        session.flush()

    def deploy(
        self,
        session: Session,
        compiled: list[Compiled],
        mappings: Mapping[str, Mapping[str, str]] | None = None,
        app: str | None = None,
    ) -> list[PlanStep]:
        plan = plan_workflows(session, compiled, mappings, app)
        self.apply_plan(session, plan)
        return plan

    def _migrate(self, session, wf, version, mapping, actor, now) -> None:
        """Move running instances to ``version``: each to its mapped step (new tasks
        when the step changes or its tasks are gone; open tasks of a kept step stay)."""
        d = version.definition
        for inst in session.scalars(
            sa.select(Instance).where(Instance.workflow_id == wf.id, Instance.status == RUNNING)
        ).all():
            target = mapping.get(inst.step, inst.step)
            self._event(
                session,
                inst,
                None,
                "migrate",
                target,
                actor,
                None,
                None,
                {"version": [None, version.version]},
                now,
            )
            self._lock_instance(session, inst.id)
            inst.version_id = version.id
            if target == inst.step and self.step_def(d, target) is not None:
                continue
            self._close_open_tasks(session, inst, "cancelled", now)
            self._enter(session, inst, d, target, actor, now)

    # --- starting ----------------------------------------------------------------------
    def start(self, session: Session, actor: Actor, workflow_key: str, record_id: int) -> Instance:
        """Start ``workflow_key`` on a record the actor can read (manually)."""
        wf = session.scalar(sa.select(Workflow).where(Workflow.key == workflow_key))
        if wf is None:
            raise NotFound(f"No workflow `{workflow_key}`")
        service = self.platform.records(session, actor)
        service.get(wf.table_key, record_id)  # NotFound outside the actor's rights
        if self._running(session, wf.id, record_id) is not None:
            raise ConflictError(f"Workflow `{workflow_key}` is already running on this record")
        with session.begin_nested():
            return self._start(session, actor, wf, self._current_version(session, wf), record_id)

    def _start(self, session, actor, wf, version, record_id) -> Instance:
        now = self.clock()
        inst = Instance(
            workflow_id=wf.id,
            version_id=version.id,
            table_key=wf.table_key,
            record_id=record_id,
            status=RUNNING,
            step=None,
            round=0,
            version=1,
            started_by=actor.user_id,
            started_at=now,
        )
        try:
            with session.begin_nested():
                session.add(inst)
                session.flush()
        except IntegrityError:
            raise ConflictError("This workflow is already running on this record") from None
        self._event(session, inst, None, "start", None, actor, None, None, {}, now)
        first = version.definition["steps"][0]["key"]
        self._enter(session, inst, version.definition, first, actor, now)
        return inst

    @staticmethod
    def _running(session, workflow_id, record_id) -> Instance | None:
        return session.scalar(
            sa.select(Instance).where(
                Instance.workflow_id == workflow_id,
                Instance.record_id == record_id,
                Instance.status == RUNNING,
            )
        )

    # --- steps and tasks ---------------------------------------------------------------
    def _record(self, session, inst: Instance) -> dict[str, Any]:
        system = self.platform.records(session, Actor.system_actor())
        rec = system.get(inst.table_key, inst.record_id)
        return {"id": rec.id, **rec.values}

    def _true(self, service, table, stored: str | None, record) -> bool:
        if stored is None:
            return True
        return service.formulas.evaluate(table, stored, record, ft.BOOLEAN, "Workflow") is True

    def _enter(self, session, inst: Instance, d, step_key: str, actor, now) -> None:
        """Move ``inst`` to ``step_key``: finish it at an end, else create the tasks."""
        inst.round += 1
        if step_key in END_STEPS:
            inst.status = step_key if step_key != "done" else "done"
            inst.step = None
            inst.finished_at = now
            session.flush()
            return
        inst.step = step_key
        step = self.step_def(d, step_key)
        system = self.platform.records(session, Actor.system_actor())
        table = system.table(inst.table_key)
        record = self._record(session, inst)
        users = self.assignees(system, table, step, record)
        if not users:
            raise ConflictError(
                f"Step `{step['label']}` has nobody to give the task to "
                f"({'role ' + step['role'] if step['role'] else 'its assignees formula is blank'})"
            )
        due = self._deadline(system, table, step, record, now)
        for uid in users:
            task = Task(
                instance_id=inst.id,
                step=step_key,
                round=inst.round,
                assignee_id=uid,
                status=OPEN,
                version=1,
                created_at=now,
                due_at=due,
                remind_at=due - timedelta(seconds=step["reminder"])
                if due is not None and step["reminder"] is not None
                else None,
                escalate_at=due + timedelta(seconds=step["escalation"]["after"])
                if due is not None and step["escalation"]
                else None,
            )
            session.add(task)
            session.flush()
            self.notify(session, uid, "assigned", task, f"assigned:{task.id}", now)
            self._after_commit(session, ("task", task.id, task.remind_at, task.escalate_at))

    def assignees(self, system, table, step, record) -> list[int]:
        if step["role"]:
            page = system.list(
                "users",
                where=FormulaFilter(f'"{step["role"]}" IN roles AND active'),
                sort="id",
                limit=500,
                fields=["email"],
            )
            return [r.id for r in page.records]
        if step.get("assignees") is None:
            return []
        return self._users(system, table, step["assignees"], record)

    @staticmethod
    def _users(system, table, stored, record) -> list[int]:
        value = system.formulas.evaluate(table, stored, record, where="Workflow assignees")
        values = value if isinstance(value, list) else [value]
        out: list[int] = []
        for v in values:
            if isinstance(v, int) and v not in out:
                out.append(v)
        return out

    def _deadline(self, system, table, step, record, now) -> datetime | None:
        if step["deadline"] is not None:
            return now + timedelta(seconds=step["deadline"])
        if step["deadline_formula"]:
            v = system.formulas.evaluate(table, step["deadline_formula"], record, where="Deadline")
            if isinstance(v, datetime):
                return aware(v)
            if isinstance(v, date):  # the end of that day, in the workspace's time zone
                tz = system.schema.timezone
                return datetime.combine(v + timedelta(days=1), time(), tz).astimezone(UTC)
        return None

    def _close_open_tasks(self, session, inst, status, now, *, step=None) -> None:
        cond = [Task.instance_id == inst.id, Task.status == OPEN]
        if step is not None:
            cond.append(Task.step == step)
        session.execute(
            sa.update(Task)
            .where(*cond)
            .values(
                status=status,
                version=Task.version + 1,
                completed_at=now,
                remind_at=None,
                escalate_at=None,
            )
        )

    @staticmethod
    def _lock_instance(session, instance_id) -> tuple | None:
        """Lock the running instance (UPDATE bumping its version): its completions,
        escalations and migrations then run one after the other."""
        return session.execute(
            sa.update(Instance)
            .where(Instance.id == instance_id, Instance.status == RUNNING)
            .values(version=Instance.version + 1)
            .returning(Instance.version, Instance.step, Instance.round)
        ).first()

    def _holds_task(self, session, inst: Instance, user_id: int | None) -> bool:
        if user_id is None:
            return False
        owners = [user_id, *self.delegators(session, user_id)]
        return (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(Task)
                .where(
                    Task.instance_id == inst.id,
                    Task.status == OPEN,
                    Task.step == inst.step,
                    Task.assignee_id.in_(owners),
                )
            )
            > 0
        )

    # --- delegation --------------------------------------------------------------------
    def delegate(
        self,
        session: Session,
        actor: Actor,
        to_user: int,
        starts: datetime,
        ends: datetime,
        *,
        for_user: int | None = None,
    ) -> Delegation:
        """Hand the actor's tasks (admins: ``for_user``'s) to ``to_user`` from ``starts``
        to ``ends``; the history then says "approved by B for A"."""
        owner = for_user if for_user is not None else actor.user_id
        if owner is None:
            raise BadRequest("Only a user can delegate their tasks")
        if owner != actor.user_id and not actor.is_admin:
            raise Forbidden("Only administrators may delegate someone else's tasks")
        if to_user == owner:
            raise BadRequest("Delegate to someone else")
        if ends <= starts:
            raise BadRequest("A delegation ends after it starts")
        self.platform.records(session, Actor.system_actor()).get("users", to_user)
        d = Delegation(
            user_id=owner,
            delegate_id=to_user,
            starts_at=starts,
            ends_at=ends,
            created_at=self.clock(),
        )
        session.add(d)
        session.flush()
        return d

    def delegators(self, session: Session, user_id: int, at: datetime | None = None) -> list[int]:
        """Users whose tasks ``user_id`` may complete now (their delegate)."""
        at = at or self.clock()
        return list(
            session.scalars(
                sa.select(Delegation.user_id).where(
                    Delegation.delegate_id == user_id,
                    Delegation.starts_at <= at,
                    Delegation.ends_at > at,
                )
            )
        )

    # --- completing --------------------------------------------------------------------
    def complete(
        self,
        session: Session,
        actor: Actor,
        task_id: Any,
        action: str,
        comment: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Task:
        """Complete a task with ``action``: one transaction (a savepoint in the caller's);
        on any error nothing of it is written."""
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            raise NotFound("No such task")
        if not isinstance(action, str) or not action:
            raise BadRequest("Give the action, e.g. approve")
        if comment is not None and not isinstance(comment, str):
            raise BadRequest("The comment must be text")
        comment = (comment or "").strip() or None
        if fields is not None and not isinstance(fields, Mapping):
            raise BadRequest("fields must be an object of field: value")
        with session.begin_nested():
            return self._complete(session, actor, task_id, action, comment, dict(fields or {}))

    def _complete(self, session, actor, task_id, action_key, comment, fields) -> Task:
        now = self.clock()
        task = session.get(Task, task_id, populate_existing=True)
        if task is None or actor.user_id is None:
            raise NotFound("No such task")
        on_behalf = None
        if task.assignee_id != actor.user_id:
            if task.assignee_id in self.delegators(session, actor.user_id, now):
                on_behalf = task.assignee_id
            else:
                raise Forbidden("This task is someone else's")
        locked = self._lock_instance(session, task.instance_id)
        # read again after the lock: another completion may have committed meanwhile
        task = session.get(Task, task_id, populate_existing=True)
        inst = session.get(Instance, task.instance_id, populate_existing=True)
        if task.status != OPEN:
            raise ConflictError(
                f"This task was already {'completed' if task.status == 'done' else task.status}"
            )
        if locked is None or task.step != inst.step or task.round != inst.round:
            raise ConflictError("The workflow has moved on from this task's step")
        d = self.definition(session, inst.version_id)
        step = self.step_def(d, task.step)
        action = next((a for a in step["actions"] if a["key"] == action_key), None)
        if action is None:
            keys = ", ".join(a["key"] for a in step["actions"])
            raise BadRequest(
                f"Step `{step['label']}` has no action `{action_key}` (it has: {keys})"
            )
        if action["comment"] == "required" and not comment:
            raise ValidationError(
                [FieldProblem("comment", f"is required to {action['label'].lower()}")]
            )
        if (
            not d["allow_self_approval"]
            and action["kind"] == "approve"
            and step is not d["steps"][0]
            and inst.started_by is not None
            and inst.started_by in (actor.user_id, on_behalf)
        ):
            raise Forbidden("You started this workflow; someone else must approve it")
        service = self.platform.records(session, actor)
        table = service.table(inst.table_key)
        not_editable = sorted(set(fields) - set(step["editable"]))
        if not_editable:
            raise ValidationError(
                [
                    FieldProblem(f, f"cannot be changed at step `{step['label']}`")
                    for f in not_editable
                ]
            )
        changes: dict[str, list] = {}
        if fields:
            before = service.get(inst.table_key, inst.record_id)
            after = service.update(inst.table_key, inst.record_id, fields)
            for k in fields:
                if before.values.get(k) != after.values.get(k):
                    f = table.fields[k]
                    changes[k] = [
                        f.ftype.to_json(f, before.values.get(k))
                        if before.values.get(k) is not None
                        else None,
                        f.ftype.to_json(f, after.values.get(k))
                        if after.values.get(k) is not None
                        else None,
                    ]
        record = self._record(session, inst)
        if action["guard"] and not self._true(service, table, action["guard"], record):
            raise Forbidden(action["guard_message"] or f"`{action['label']}` is not allowed now")
        if action["kind"] == "approve" and step["required"]:
            missing = [
                FieldProblem(k, f"is required to {action['label'].lower()}")
                for k in step["required"]
                if table.fields[k].ftype.is_blank(record.get(k))
            ]
            if missing:
                raise ValidationError(missing)
        done = session.execute(
            sa.update(Task)
            .where(Task.id == task.id, Task.status == OPEN, Task.version == task.version)
            .values(
                status="done",
                version=Task.version + 1,
                action=action["key"],
                outcome=action["kind"],
                comment=comment,
                completed_by=actor.user_id,
                completed_at=now,
                remind_at=None,
                escalate_at=None,
            )
        )
        if done.rowcount != 1:
            raise ConflictError("This task was already completed")
        decided = self._decision(session, inst, step, action)
        if decided and action.get("set"):
            changes.update(self._apply_set(session, inst, action, record))
            record = self._record(session, inst)  # routes see what the action set
        self._event(
            session,
            inst,
            task.id,
            action["key"],
            None,
            actor,
            on_behalf,
            comment,
            changes,
            now,
            step=task.step,
        )
        if decided:
            system = self.platform.records(session, Actor.system_actor())
            target = self._route(service, table, action, record)
            if target is None:
                raise ConflictError(f"No route of `{action['label']}` applies to this record")
            self._close_open_tasks(session, inst, "skipped", now, step=task.step)
            event = session.scalars(
                sa.select(Event).where(Event.instance_id == inst.id).order_by(Event.id.desc())
            ).first()
            event.to_step = target
            del system
            self._enter(session, inst, d, target, actor, now)
            if action["kind"] == "reject" and target not in END_STEPS:
                for t in session.scalars(
                    sa.select(Task).where(Task.instance_id == inst.id, Task.status == OPEN)
                ):
                    self.notify(
                        session,
                        t.assignee_id,
                        "returned",
                        t,
                        f"returned:{t.id}",
                        now,
                        comment=comment,
                    )
        session.flush()
        session.refresh(task)
        return task

    def _apply_set(self, session, inst: Instance, action, record) -> dict[str, list]:
        """The action's ``set``: every formula evaluated on the record as it is now (so
        ``{a: b, b: BLANK()}`` moves b into a), then one update as the system through the
        records service: validations and the lock rule apply, the record's history has
        the change, and a refusal fails the whole action with the reason."""
        system = self.platform.records(session, Actor.system_actor())
        table = system.table(inst.table_key)
        values = {
            k: system.formulas.evaluate(table, stored, record, where=f"Workflow action `{k}`")
            for k, stored in action["set"].items()
        }
        try:
            after = system.update(inst.table_key, inst.record_id, values)
        except (ValidationError, ConflictError, Forbidden, BadRequest) as exc:
            exc.message = f"`{action['label']}` could not update the record: {exc.message}"
            exc.args = (exc.message,)
            raise
        changes: dict[str, list] = {}
        for k in values:
            old, new = record.get(k), after.values.get(k)
            if old != new:
                f = table.fields[k]
                changes[k] = [
                    None if old is None else f.ftype.to_json(f, old),
                    None if new is None else f.ftype.to_json(f, new),
                ]
        return changes

    def _decision(self, session, inst, step, action) -> bool:
        rows = session.execute(
            sa.select(Task.status, Task.outcome).where(
                Task.instance_id == inst.id,
                Task.step == step["key"],
                Task.round == inst.round,
                Task.status.in_((OPEN, "done")),
            )
        ).all()
        n = len(rows)
        approved = sum(1 for s, o in rows if s == "done" and o == "approve")
        rejected = sum(1 for s, o in rows if s == "done" and o == "reject")
        if step["approval"] == "all":
            needed = n
        else:
            needed = min(step["quorum"] or 1, n)
        if action["kind"] == "approve":
            return approved >= needed
        return rejected > n - needed

    def _route(self, service, table, action, record) -> str | None:
        for r in action["routes"]:
            if r["when"] is None or self._true(service, table, r["when"], record):
                return r["to"]
        return None

    # --- cancelling ---------------------------------------------------------------------
    def cancel(self, session: Session, actor: Actor, instance_id: int, comment: str | None = None):
        if not actor.is_admin:
            inst = session.get(Instance, instance_id)
            if inst is None or inst.started_by != actor.user_id:
                raise Forbidden("Only who started a workflow, or an administrator, may cancel it")
        with session.begin_nested():
            if self._lock_instance(session, instance_id) is None:
                raise ConflictError("The workflow is not running")
            inst = session.get(Instance, instance_id, populate_existing=True)
            now = self.clock()
            self._close_open_tasks(session, inst, "cancelled", now)
            self._event(
                session,
                inst,
                None,
                "cancel",
                "cancelled",
                actor,
                None,
                comment,
                {},
                now,
                step=inst.step,
            )
            inst.status, inst.step, inst.finished_at = "cancelled", None, now
            session.flush()

    # --- history, notifications ---------------------------------------------------------
    def _event(
        self,
        session,
        inst,
        task_id,
        action,
        to_step,
        actor,
        on_behalf,
        comment,
        changes,
        now,
        *,
        step=None,
    ) -> None:
        session.add(
            Event(
                instance_id=inst.id,
                task_id=task_id,
                step=step if step is not None else inst.step,
                action=action,
                to_step=to_step,
                actor_id=actor.user_id if actor is not None else None,
                on_behalf_of=on_behalf,
                comment=comment,
                changes=changes,
                at=now,
            )
        )

    def history(self, session: Session, instance_id: int) -> list[dict[str, Any]]:
        """The instance's events, oldest first, each with a sentence."""
        events = session.scalars(
            sa.select(Event).where(Event.instance_id == instance_id).order_by(Event.id)
        ).all()
        ids = {e.actor_id for e in events} | {e.on_behalf_of for e in events}
        names = self._names(session, {i for i in ids if i is not None})
        out = []
        for e in events:
            who = names.get(e.actor_id, "the system") if e.actor_id else "the system"
            verb = {
                "approve": "approved",
                "reject": "rejected",
                "submit": "submitted",
                "start": "started",
                "cancel": "cancelled",
                "return": "returned",
                "reassign": "reassigned",
                "escalate": "escalated",
                "migrate": "moved to a new version",
            }.get(e.action, e.action)
            text = f"{verb} by {who}"
            if e.on_behalf_of:
                text += f" for {names.get(e.on_behalf_of, e.on_behalf_of)}"
            out.append(
                {
                    "id": e.id,
                    "step": e.step,
                    "action": e.action,
                    "to_step": e.to_step,
                    "actor_id": e.actor_id,
                    "on_behalf_of": e.on_behalf_of,
                    "comment": e.comment,
                    "changes": e.changes,
                    "at": aware(e.at).isoformat(),
                    "text": text,
                }
            )
        return out

    def _names(self, session, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        system = self.platform.records(session, Actor.system_actor())
        page = system.list(
            "users",
            where=lambda t: t.sql.c.id.in_(sorted(ids)),
            limit=500,
            fields=["name", "email"],
        )
        return {r.id: r.values.get("name") or r.values.get("email") for r in page.records}

    def notify(self, session, user_id, kind, task, key, now, *, comment=None, subject=None):
        """An in-app notification (and an e-mail when SMTP is set); ``key`` is unique, so
        the same notification is never made twice."""
        from .jobs import notification_text

        subject, body = notification_text(self, session, kind, task, comment, subject)
        try:
            with session.begin_nested():
                session.add(
                    Notification(
                        key=key,
                        user_id=user_id,
                        kind=kind,
                        task_id=task.id if task is not None else None,
                        subject=subject,
                        body=body,
                        created_at=now,
                        email_status="pending" if self.platform.config.smtp.get("host") else "none",
                    )
                )
                session.flush()
        except IntegrityError:
            return False
        self._after_commit(session, ("mail",))
        return True

    def _after_commit(self, session: Session, item: tuple) -> None:
        """Jobs to schedule once the transaction commits (never before the data is there)."""
        if self.jobs is None:
            return
        pending = session.info.get("cb_wf_jobs")
        if pending is None:
            pending = session.info["cb_wf_jobs"] = []
            jobs = self.jobs

            def committed(sess):
                items = sess.info.pop("cb_wf_jobs", [])
                if items:
                    jobs.after_commit(items)

            def rolled_back(sess):
                sess.info.pop("cb_wf_jobs", None)

            sa.event.listen(session, "after_commit", committed, once=True)
            sa.event.listen(session, "after_rollback", rolled_back, once=True)
        pending.append(item)


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
    return engine


def table_renamed(session: Session, old: str, new: str) -> None:
    """Workflows and their instances follow their table's new key (same transaction)."""
    session.execute(sa.update(Workflow).where(Workflow.table_key == old).values(table_key=new))
    session.execute(sa.update(Instance).where(Instance.table_key == old).values(table_key=new))


def engine_of(platform) -> WorkflowEngine:
    return install(platform)
