"""The IR of automations (their meaning is checked by cubebase.schema_defs.automations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ir_base import Formula, IRNode, Key, _where, doc


@dataclass
class NotifySpec(IRNode):
    """An in-app notification (and an e-mail when SMTP is set)."""

    to: Formula | None = doc("a formula giving a user or a list of users", None)
    role: Key | None = doc("or: every active user holding this role", None)
    subject: Formula | None = doc(
        "a formula giving the subject (Text); without it, the automation's label", None
    )
    body: Formula | None = doc("a formula giving the text (Text)", None)
    where: dict = _where()


@dataclass
class SendReportSpec(IRNode):
    """Run a report as each receiver (their rules apply) and notify them of it."""

    report: Key = doc("the report's key")
    to: Formula | None = doc("a formula giving a user or a list of users", None)
    role: Key | None = doc("or: every active user holding this role", None)
    where: dict = _where()


@dataclass
class AutomationActionSpec(IRNode):
    """One action: exactly one of update, create, find_or_create, notify,
    start_workflow, send_report."""

    update: dict[str, Formula] | None = doc(
        "change the triggering record: field -> formula over it", None
    )
    create: Key | None = doc("create a record in this table (with `values`)", None)
    find_or_create: Key | None = doc(
        "find a record of this table matching `match`, create it (with `match` and "
        "`values`) when there is none",
        None,
    )
    as_: Key | None = doc(
        "find_or_create/create: later actions see the record as a link field of this name",
        None,
        metadata_key="as",
    )
    match: dict[str, Formula] | None = doc(
        "find_or_create: field -> formula; the record whose fields equal all of them", None
    )
    values: dict[str, Formula] | None = doc(
        "create/find_or_create: field -> formula (find_or_create: used only when creating)",
        None,
    )
    notify: NotifySpec | None = doc("notify users", None)
    start_workflow: Key | None = doc("start this workflow on the triggering record", None)
    send_report: SendReportSpec | None = doc("send a report to users", None)
    where: dict = _where()


@dataclass
class AutomationSpec(IRNode):
    """An automation: on a record event or a schedule, run actions as the system."""

    key: Key = doc("the automation's key")
    label: str | None = doc("the name people see", None)
    table: Key | None = doc(
        "the table whose records trigger it (a schedule without a table runs its actions "
        "once per due time)",
        None,
    )
    on: Literal["create", "update", "change", "delete", "schedule"] = doc(
        "the trigger: a record is created, updated, either (change), deleted; or a schedule",
        kw_only=True,
    )
    schedule: str | None = doc(
        "on: schedule: hourly | daily HH:MM | weekly mon HH:MM | monthly D HH:MM "
        "(workspace time zone)",
        None,
    )
    when: Formula | None = doc(
        "a Boolean formula on the record: record events run when it becomes true (false "
        "or no record before, true after); a schedule sweeps the records where it holds",
        None,
    )
    enabled: bool = doc("false: kept but never run", True)
    actions: list[AutomationActionSpec] = doc("what it does, in order", default_factory=list)
    where: dict = _where()
