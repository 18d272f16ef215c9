"""Alembic environment for the platform's own tables.

Run through ``cubebase.platform.migrate.upgrade``, which hands over the
connection in ``config.attributes["connection"]``; user tables are not
managed here (their DDL runs through ``schema_changes``).
"""

from alembic import context

import cubebase.workflows.models  # noqa: F401 - the workflow tables (0003) join Base.metadata
from cubebase.platform.models import Base

# Every package with platform tables on ``Base`` is imported here, so that
# ``alembic revision --autogenerate`` compares all of them (a model it does not see
# would be proposed for dropping). The platform itself never imports the workflows
# package: only this script, which runs inside Alembic, does.

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
