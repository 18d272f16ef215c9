"""The workflow tables and Alembic: one head, and autogenerate (through the real
``env.py``) finds nothing to change after ``upgrade``, on both databases."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from alembic.script import ScriptDirectory

from cubebase.platform.migrate import alembic_config

# A fresh interpreter that never imports cubebase.workflows itself: only env.py can
# put the workflow tables into the metadata autogenerate compares.
CHECK = textwrap.dedent(
    """
    import sys
    from alembic import command
    from cubebase.platform.db import make_engine
    from cubebase.platform.migrate import alembic_config, upgrade

    engine = make_engine(sys.argv[1])
    assert "cubebase.workflows.models" not in sys.modules
    upgrade(engine)  # runs env.py
    with engine.connect() as conn:
        command.check(alembic_config(conn))  # raises when autogenerate finds changes
    assert "cubebase.workflows.models" in sys.modules
    print("no changes")
    """
)


def test_one_migration_head():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_autogenerate_sees_the_workflow_tables_and_finds_nothing_to_change(db_url):
    done = subprocess.run(
        [sys.executable, "-c", CHECK, db_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "no changes", done.stdout
