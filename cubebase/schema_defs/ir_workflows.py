"""The IR of workflows (their meaning is checked by cubebase.workflows.definitions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ir_base import Formula, IRNode, Key, Rule, _where, doc


@dataclass
class StartSpec(IRNode):
    """How instances start: `manual`, `on_create`, or `{when: FORMULA}` (when it becomes true)."""

    __shorthand__ = "mode"
    mode: Literal["manual", "on_create", "when"] = doc("manual, on_create or when", "when")
    when: Rule | None = doc("start when this becomes true on a record (after a write)", None)
    where: dict = _where()


@dataclass
class RouteSpec(IRNode):
    """One branch of conditional routing: the first route whose `when` holds is taken."""

    to: Key = doc("the next step, or done / rejected / cancelled")
    when: Rule | None = doc("the condition (none: always; write it last)", None)
    where: dict = _where()


@dataclass
class ActionSpec(IRNode):
    """Something an assignee does at a step: submit, approve, reject, return, ..."""

    key: Key = doc("the action's key, sent by the inbox (e.g. approve)")
    label: str | None = doc("the button's text", None)
    outcome: Literal["approve", "reject"] | None = doc(
        "how it counts for parallel approval (default: reject for reject/return, else approve)",
        None,
    )
    to: Key | None = doc("the next step, or done / rejected / cancelled", None)
    routes: list[RouteSpec] = doc("conditional routing instead of `to`", default_factory=list)
    guard: Rule | None = doc("the action is allowed only when this holds on the record", None)
    guard_message: str | None = doc("what the user is told when the guard fails", None)
    comment: Literal["optional", "required"] = doc("whether a comment is required", "optional")
    set: dict[str, Formula] | None = doc(
        "fields the system sets on the record when this action decides the step: "
        "{field: formula over the record}, e.g. {account_manager: transfer_to}",
        None,
    )
    where: dict = _where()

    @property
    def kind(self) -> str:
        if self.outcome:
            return self.outcome
        return "reject" if self.key in ("reject", "return", "send_back") else "approve"


@dataclass
class EscalationSpec(IRNode):
    """What happens when a task is still open some time after its deadline."""

    to: Formula = doc("a formula giving the user (or users) to reassign to or notify")
    after: str = doc("a duration after the deadline (e.g. 1d)", "0m")
    action: Literal["reassign", "notify"] = doc("reassign the task, or notify someone", "notify")
    where: dict = _where()


@dataclass
class StepSpec(IRNode):
    """A step: its assignees get a task each; their actions move the record on."""

    key: Key = doc("the step's key")
    label: str | None = doc("the name people see", None)
    assignees: Formula | None = doc("a formula giving a user or a list of users", None)
    role: Key | None = doc("or: every active user holding this role", None)
    approval: Literal["any", "all"] = doc(
        "with several assignees: one of them decides (any) or all must approve (all)", "any"
    )
    quorum: int | None = doc("k-of-n: this many approvals decide the step", None)
    editable: list[Key] = doc("fields the assignees may change at this step", default_factory=list)
    required: list[Key] = doc("fields that must be filled to approve", default_factory=list)
    deadline: str | None = doc("a duration from the task's start (3d, 4h) or a formula", None)
    reminder: str | None = doc("remind the assignee this long before the deadline", None)
    escalation: EscalationSpec | None = doc("what happens after the deadline", None)
    actions: list[ActionSpec] = doc("what the assignees can do", default_factory=list)
    where: dict = _where()


@dataclass
class WorkflowSpec(IRNode):
    """A workflow bound to a table."""

    key: Key = doc("the workflow's key")
    table: Key = doc("the table whose records move through it")
    label: str | None = doc("the name people see", None)
    start: StartSpec = doc("how instances start", default_factory=lambda: StartSpec("manual"))
    allow_self_approval: bool = doc(
        "may the user who started an instance approve it at a later step", True
    )
    steps: list[StepSpec] = doc(
        "the steps; the first is where an instance starts", default_factory=list
    )
    migrate: dict[str, Key] | None = doc(
        "when a change makes a new version: move the running instances to it, each from "
        "its step to the step named here (old step: new step; a step left out keeps its "
        "key). Without it, running instances finish on the version they started with. "
        "Used once by apply, never exported",
        None,
    )
    where: dict = _where()


@dataclass
class WorkflowFile(IRNode):
    """A workflow file: `workflows:` at its top (in the app folder or its `workflows/`)."""

    workflows: list[WorkflowSpec] = doc("the workflows", default_factory=list)
    where: dict = _where()
