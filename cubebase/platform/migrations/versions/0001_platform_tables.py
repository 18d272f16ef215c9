"""platform tables

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cb_api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("cb_api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cb_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "cb_credentials",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "cb_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cb_history", schema=None) as batch_op:
        batch_op.create_index("ix_cb_history_record", ["table_id", "record_id", "id"], unique=False)

    op.create_table(
        "cb_roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("app", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "cb_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "cb_tables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("display_field", sa.String(length=64), nullable=True),
        sa.Column("app", sa.String(length=64), nullable=True),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "cb_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("unique", sa.Boolean(), nullable=False),
        sa.Column("default", sa.Text(), nullable=True),
        sa.Column("help", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["table_id"], ["cb_tables.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("table_id", "key", name="uq_cb_fields_table_key"),
    )
    with op.batch_alter_table("cb_fields", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cb_fields_table_id"), ["table_id"], unique=False)

    op.create_table(
        "cb_counters",
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["field_id"], ["cb_fields.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("field_id"),
    )
    state = sa.table("cb_state", sa.column("key", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(state, [{"key": "schema_version", "value": 1}])


def downgrade() -> None:
    op.drop_table("cb_counters")
    with op.batch_alter_table("cb_fields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cb_fields_table_id"))

    op.drop_table("cb_fields")
    op.drop_table("cb_tables")
    op.drop_table("cb_state")
    op.drop_table("cb_roles")
    with op.batch_alter_table("cb_history", schema=None) as batch_op:
        batch_op.drop_index("ix_cb_history_record")

    op.drop_table("cb_history")
    op.drop_table("cb_credentials")
    with op.batch_alter_table("cb_api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cb_api_tokens_user_id"))

    op.drop_table("cb_api_tokens")
