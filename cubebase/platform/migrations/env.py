"""Alembic environment for the platform's own tables.

Run through ``cubebase.platform.migrate.upgrade``, which hands over the
connection in ``config.attributes["connection"]``; user tables are not
managed here (their DDL runs through ``schema_changes``).
"""

from alembic import context

from cubebase.platform.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    version_table="cb_alembic_version",
    include_name=lambda name, type_, parent: type_ != "table" or name.startswith("cb_"),
)
with context.begin_transaction():
    context.run_migrations()
