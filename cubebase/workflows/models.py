"""The workflow engine's platform tables (typed models on the platform's Base,
migrated by Alembic revision 0003).

- ``cb_wf_workflows``: one row per workflow key, bound to a table, pointing at its
  current version; ``cb_wf_versions``: every version's definition (JSON, formulas
  stored by field id). Running instances keep the version they started with.
- ``cb_wf_instances``: a record going through a workflow. At most one *running*
  instance per (workflow, record): a partial unique index.
- ``cb_wf_tasks``: one per assignee and visit of a step. ``remind_at`` and
  ``escalate_at`` are set while a reminder or escalation is pending and cleared
  when it is done or the task closes, so the sweeps are one range scan each.
- ``cb_wf_events``: the history: who did what at which step, for whom, with the
  comment and the field changes.
- ``cb_wf_delegations``: a user's tasks handed to another for a date range.
- ``cb_notifications``: in-app notifications (and the e-mail outbox); ``key`` is
  unique, so a job that runs twice notifies once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..platform.models import Base, JsonDict

BigId = BigInteger().with_variant(Integer, "sqlite")


class Workflow(Base):
    __tablename__ = "cb_wf_workflows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    table_key: Mapped[str] = mapped_column(String(64), index=True)
    app: Mapped[str | None] = mapped_column(String(64))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    start_mode: Mapped[str] = mapped_column(String(16))  # manual on_create when (current version)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WorkflowVersion(Base):
    __tablename__ = "cb_wf_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version", name="uq_cb_wf_versions"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("cb_wf_workflows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[JsonDict]
    created_at: Mapped[datetime]


class Instance(Base):
    __tablename__ = "cb_wf_instances"
    __table_args__ = (
        Index(
            "uq_cb_wf_instances_running",
            "workflow_id",
            "record_id",
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        ),
        Index("ix_cb_wf_instances_record", "table_key", "record_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("cb_wf_workflows.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("cb_wf_versions.id"))
    table_key: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # running done rejected cancelled
    step: Mapped[str | None] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(Integer, default=1)  # visits of steps so far
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every move
    started_by: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Task(Base):
    __tablename__ = "cb_wf_tasks"
    __table_args__ = (
        Index("ix_cb_wf_tasks_inbox", "assignee_id", "status", "due_at"),
        Index("ix_cb_wf_tasks_instance", "instance_id", "status"),
        Index("ix_cb_wf_tasks_remind_at", "remind_at"),
        Index("ix_cb_wf_tasks_escalate_at", "escalate_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("cb_wf_instances.id", ondelete="CASCADE")
    )  # BIGINT on both databases, as migration 0003 made it
    step: Mapped[str] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(Integer)  # the instance's round when the step began
    assignee_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # open done skipped reassigned cancelled
    version: Mapped[int] = mapped_column(Integer, default=1)
    action: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(16))  # approve reject
    comment: Mapped[str | None] = mapped_column(Text)
    completed_by: Mapped[int | None] = mapped_column(Integer)  # the delegate, when one acted
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    remind_at: Mapped[datetime | None]  # pending reminder
    escalate_at: Mapped[datetime | None]  # pending escalation
    completed_at: Mapped[datetime | None]


class Event(Base):
    __tablename__ = "cb_wf_events"
    __table_args__ = (Index("ix_cb_wf_events_instance", "instance_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("cb_wf_instances.id", ondelete="CASCADE")
    )  # BIGINT on both databases, as migration 0003 made it
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    step: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # start, an action key, reassign, migrate...
    to_step: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(Integer)  # who did it
    on_behalf_of: Mapped[int | None] = mapped_column(Integer)  # whose task it was (delegation)
    comment: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[JsonDict] = mapped_column(default=dict)  # field key -> [old, new]
    at: Mapped[datetime]


class Delegation(Base):
    __tablename__ = "cb_wf_delegations"
    __table_args__ = (Index("ix_cb_wf_delegations_delegate", "delegate_id", "starts_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)  # who hands their tasks over
    delegate_id: Mapped[int] = mapped_column(Integer)  # who acts for them
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime]


class Notification(Base):
    __tablename__ = "cb_notifications"
    __table_args__ = (
        Index("ix_cb_notifications_user", "user_id", "read_at"),
        Index("ix_cb_notifications_outbox", "email_status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # e.g. reminder:42 (idempotence)
    user_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))  # assigned reminder escalation returned ...
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    # none: no SMTP configured; pending: to send; sending: claimed; sent
    email_status: Mapped[str] = mapped_column(String(16), default="none")
    sent_at: Mapped[datetime | None]


class Automation(Base):
    """An automation (the app format's `automations:`): a trigger (a record event on
    ``table_id``, or a schedule) and actions run by the system through the records
    service. ``definition`` holds its formulas in stored form (field ids);
    ``next_run_at`` is when a scheduled automation is due next."""

    __tablename__ = "cb_automations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    app: Mapped[str | None] = mapped_column(String(64))
    table_id: Mapped[int | None] = mapped_column(Integer, index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    definition: Mapped[JsonDict] = mapped_column(default=dict)
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    # a scheduled run in progress: who claimed the due time (an UPDATE only one wins)
    claim: Mapped[str | None] = mapped_column(String(36))
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AutomationRun(Base):
    """One run of an automation on one record (``record_id`` 0: none) for one
    ``slot`` (the event or the schedule's due time): unique, so a job that runs twice
    acts once."""

    __tablename__ = "cb_automation_runs"
    __table_args__ = (
        UniqueConstraint("automation_id", "record_id", "slot", name="uq_cb_automation_runs_once"),
        Index("ix_cb_automation_runs_recent", "automation_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    automation_id: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # done failed skipped
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
