"""Completing a task (one transaction: lock, checks, the assignee's fields, the
action's ``set``, the decision and the route) and cancelling an instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..platform.actor import Actor
from ..platform.errors import (
    BadRequest,
    ConflictError,
    FieldProblem,
    Forbidden,
    NotFound,
    ValidationError,
)
from .definitions import END_STEPS
from .models import Event, Instance, Task
from .states import OPEN


class Completion:
    """Completing and cancelling (a part of ``WorkflowEngine``)."""

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
