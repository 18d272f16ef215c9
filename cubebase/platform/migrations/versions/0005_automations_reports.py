"""Automations (cb_automations, cb_automation_runs), reports (cb_reports) and
dashboards (cb_dashboards): the app format's `automations:`, `reports:` and
`dashboards:` (models in cubebase/workflows/models.py and
cubebase/platform/models.py)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cb_automations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("table_id", sa.Integer(), nullable=True, index=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("next_run_at", TS, nullable=True, index=True),
        sa.Column("claim", sa.String(36), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "cb_automation_runs",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("automation_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),  # 0: no record
        sa.Column("slot", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint(
            "automation_id", "record_id", "slot", name="uq_cb_automation_runs_once"
        ),
    )
    op.create_index(
        "ix_cb_automation_runs_recent", "cb_automation_runs", ["automation_id", "created_at"]
    )
    op.create_table(
        "cb_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("table_id", sa.Integer(), nullable=False, index=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "cb_dashboards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_cb_automation_runs_recent", table_name="cb_automation_runs")
    for name in ("cb_dashboards", "cb_reports", "cb_automation_runs", "cb_automations"):
        op.drop_table(name)
