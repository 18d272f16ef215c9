"""Starting instances, entering steps (tasks, assignees, deadlines), the instance
lock, and delegation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..formula import types as ft
from ..platform.actor import Actor
from ..platform.errors import BadRequest, ConflictError, Forbidden, NotFound
from .definitions import END_STEPS
from .models import Delegation, Instance, Task, Workflow
from .states import OPEN, RUNNING, add_once, aware, role_holders


class Steps:
    """Starting, steps and tasks, delegation (a part of ``WorkflowEngine``)."""

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
        if not add_once(session, inst):
            raise ConflictError("This workflow is already running on this record")
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
            return role_holders(system, step["role"])
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
