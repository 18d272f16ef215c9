"""API token use per hour (cb_api_token_use)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cb_api_token_use",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("token_id", "hour"),
    )
    with op.batch_alter_table("cb_api_token_use", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cb_api_token_use_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cb_api_token_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cb_api_token_use_user_id"))
    op.drop_table("cb_api_token_use")
