"""Workflows: definitions and versions, instances, tasks, events, delegations,
notifications (cubebase/workflows/models.py)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cb_wf_workflows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("table_key", sa.String(64), nullable=False, index=True),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("start_mode", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "cb_wf_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Integer(),
            sa.ForeignKey("cb_wf_workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("workflow_id", "version", name="uq_cb_wf_versions"),
    )
    op.create_table(
        "cb_wf_instances",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Integer(),
            sa.ForeignKey("cb_wf_workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("cb_wf_versions.id"), nullable=False),
        sa.Column("table_key", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index(
        "uq_cb_wf_instances_running",
        "cb_wf_instances",
        ["workflow_id", "record_id"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_cb_wf_instances_record", "cb_wf_instances", ["table_key", "record_id"])
    op.create_table(
        "cb_wf_tasks",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "instance_id",
            sa.BigInteger(),
            sa.ForeignKey("cb_wf_instances.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("completed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("remind_at", TS, nullable=True),
        sa.Column("escalate_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
    )
    op.create_index("ix_cb_wf_tasks_inbox", "cb_wf_tasks", ["assignee_id", "status", "due_at"])
    op.create_index("ix_cb_wf_tasks_instance", "cb_wf_tasks", ["instance_id", "status"])
    op.create_index("ix_cb_wf_tasks_remind_at", "cb_wf_tasks", ["remind_at"])
    op.create_index("ix_cb_wf_tasks_escalate_at", "cb_wf_tasks", ["escalate_at"])
    op.create_table(
        "cb_wf_events",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "instance_id",
            sa.BigInteger(),
            sa.ForeignKey("cb_wf_instances.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("to_step", sa.String(64), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf_of", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_cb_wf_events_instance", "cb_wf_events", ["instance_id", "id"])
    op.create_table(
        "cb_wf_delegations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), nullable=False, index=True),
        sa.Column("delegate_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "ix_cb_wf_delegations_delegate", "cb_wf_delegations", ["delegate_id", "starts_at"]
    )
    op.create_table(
        "cb_notifications",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("email_status", sa.String(16), nullable=False),
        sa.Column("sent_at", TS, nullable=True),
    )
    op.create_index("ix_cb_notifications_user", "cb_notifications", ["user_id", "read_at"])
    op.create_index("ix_cb_notifications_outbox", "cb_notifications", ["email_status"])


def downgrade() -> None:
    for name in (
        "cb_notifications",
        "cb_wf_delegations",
        "cb_wf_events",
        "cb_wf_tasks",
        "cb_wf_instances",
        "cb_wf_versions",
        "cb_wf_workflows",
    ):
        op.drop_table(name)
