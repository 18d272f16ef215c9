"""``cubebase worker`` whose reminder jobs stop just before their commit.

Run as ``python -m tests.workflows.stalling_worker MARKER``. It is the real worker
(rq, its scheduler, the jobs of cubebase.workflows.jobs), with two SQLAlchemy
engine events added: a connection that has inserted into ``cb_notifications``
(a reminder job's bulk insert) does not commit but writes its process id to
MARKER and waits there for good. That is the worst moment for a worker to be
killed: the job has read the due tasks, inserted the reminders and cleared
``remind_at``, and has not committed. The test kills it there (knowing, not
guessing, that it is there) and checks that nothing was done.
"""

from __future__ import annotations

import os
import sys
import time

import sqlalchemy as sa
from sqlalchemy import event

MARKER = sys.argv[1]
WROTE = "cb_test_wrote_notifications"


@event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _seen(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("INSERT INTO CB_NOTIFICATIONS"):
        conn.info[WROTE] = True


@event.listens_for(sa.engine.Engine, "commit")
def _stall(conn):
    if conn.info.pop(WROTE, False):
        with open(MARKER + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(MARKER + ".tmp", MARKER)  # whole, or not there
        while True:
            time.sleep(60)


@event.listens_for(sa.engine.Engine, "rollback")
def _forget(conn):
    conn.info.pop(WROTE, None)


if __name__ == "__main__":
    from cubebase.cli import main

    sys.argv = ["cubebase", "worker"]
    main()
