"""Plans and versions: compiled workflow definitions into versions (``plan_workflows``,
``apply_plan``, ``deploy``), and running instances moved to a new version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..platform.actor import Actor
from ..platform.errors import FieldProblem, ValidationError
from .definitions import END_STEPS, Compiled
from .models import Instance, Workflow, WorkflowVersion
from .states import RUNNING


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


class Versions:
    """The engine's definitions and versions (a part of ``WorkflowEngine``)."""

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
