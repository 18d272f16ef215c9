"""A real rq worker process on real Redis: scheduled reminder jobs, and a worker
killed (SIGKILL) in the middle of a reminder job, then restarted: the reminder
is made exactly once.

rq runs each job in a forked *work horse* that puts itself in its own process
group (``os.setpgrp``), so killing the worker's process group leaves the horse
running: it would finish its job after the kill (this test once saw the reminder
appear "before the restart" that way). ``Worker.kill`` therefore kills every
process carrying the worker's tag in its environment (the worker, its scheduler,
its horses, orphaned or not) and waits until they are gone. The job is known to
be mid-way, not guessed: ``stalling_worker`` stops it right before its commit
and says so in a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cubebase.workflows import jobs
from cubebase.workflows.models import Notification, Task
from tests.conftest import need_redis

from .conftest import build_workflow_schema
from .test_engine import new_project, start, the_task

pytestmark = [pytest.mark.schema.with_args(build_workflow_schema), pytest.mark.redis]


@pytest.fixture
def redis_url():
    return need_redis()


@pytest.fixture
def queue(platform, redis_url):
    from redis import Redis
    from rq import Queue

    q = Queue(jobs.queue_name(platform.config.database_url), connection=Redis.from_url(redis_url))
    yield q
    q.empty()
    for reg in (q.scheduled_job_registry, q.started_job_registry, q.failed_job_registry):
        for job_id in reg.get_job_ids():
            try:
                reg.remove(job_id, delete_job=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """``cubebase worker`` (or ``stalling_worker``) in a process of its own, tagged."""

    def __init__(self, platform, redis_url, tmp_path):
        self.tag = uuid.uuid4().hex
        self.env = {
            **os.environ,
            "CUBEBASE_DATABASE_URL": platform.config.database_url,
            "CUBEBASE_REDIS_URL": redis_url,
            "CUBEBASE_DATA_DIR": str(tmp_path),
            "CUBEBASE_TEST_WORKER_TAG": self.tag,
        }
        self.log = tmp_path / "worker.log"
        self.marker = tmp_path / "stalled.pid"
        self.proc: subprocess.Popen | None = None

    def start(self, *, stalling: bool = False) -> None:
        args = (
            ["-m", "tests.workflows.stalling_worker", str(self.marker)]
            if stalling
            else ["-m", "cubebase", "worker"]
        )
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            cwd=ROOT,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def processes(self) -> list[int]:
        """Every live process started from this worker (by the tag in its environment)."""
        needle = f"CUBEBASE_TEST_WORKER_TAG={self.tag}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:  # gone meanwhile, or not ours
                continue
            if state not in ("Z", "X"):  # a zombie holds no connection
                found.append(int(entry.name))
        return found

    def kill(self, sig=signal.SIGKILL) -> None:
        """Kill the worker, its scheduler and its work horses; return once all are dead."""
        for _ in range(100):
            pids = self.processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if self.proc is not None:
                self.proc.wait(10)  # ours to reap
            time.sleep(0.05)
        assert not self.processes(), "the worker's processes did not die"
        self.proc = None

    def stalled_pid(self) -> int | None:
        """The process of the job stopped just before its commit, once there is one."""
        return int(self.marker.read_text()) if self.marker.exists() else None


@pytest.fixture
def worker(platform, redis_url, tmp_path):
    w = Worker(platform, redis_url, tmp_path)
    yield w
    w.kill()


def reminders(platform) -> int:
    with platform.session() as s:
        return s.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.kind == "reminder")
        )


def wait_for(check, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def due_task(platform, wf, admin, users, clock) -> dict:
    """A consultant's task whose reminder (4 days after its start) is due now."""
    clock.now = datetime.now(UTC) - timedelta(days=4, minutes=1)
    start(platform, wf, admin, "consulting_project", new_project(platform, admin, users))
    return the_task(platform, users["consultant"])


def test_worker_runs_the_scheduled_reminder(
    platform, wf, admin, users, clock, redis_url, queue, worker
):
    wf.jobs.redis_url = redis_url
    task = due_task(platform, wf, admin, users, clock)
    assert f"{queue.name}-remind-{task['id']}" in queue.scheduled_job_registry.get_job_ids()
    worker.start()
    wait_for(lambda: reminders(platform) == 1, what="the reminder")
    job = queue.fetch_job(f"{queue.name}-remind-{task['id']}")
    wait_for(lambda: job.get_status(refresh=True) == "finished", what="the job to finish")
    assert reminders(platform) == 1


def task_row_free(platform, task_id: int) -> bool:
    """Nobody holds the task's row (PostgreSQL: a killed client's transaction ends when
    its server process notices the closed connection, and until then the sweep, which
    skips locked rows, would not see the task)."""
    if platform.dialect != "postgresql":
        return True
    with platform.engine.connect() as conn:
        try:
            conn.exec_driver_sql(
                f"SELECT id FROM cb_wf_tasks WHERE id = {int(task_id)} FOR UPDATE NOWAIT"
            )
            return True
        except sa.exc.OperationalError:
            return False
        finally:
            conn.rollback()


def test_worker_killed_mid_reminder_job_then_restarted_reminds_exactly_once(
    platform, wf, admin, users, clock, redis_url, queue, worker
):
    wf.jobs.redis_url = redis_url
    task = due_task(platform, wf, admin, users, clock)
    worker.start(stalling=True)
    # the first reminder job (the start-up sweep, or the scheduled one) has inserted the
    # reminder, cleared remind_at, and stopped right before its commit
    wait_for(lambda: worker.stalled_pid() is not None, what="the job to reach its commit")
    assert worker.stalled_pid() in worker.processes()
    assert reminders(platform) == 0  # not committed: invisible
    # killing the worker's process group does not reach the horse (its own group): the
    # cause of this test's old flakiness, where the horse committed after the "kill"
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    assert worker.stalled_pid() in worker.processes()
    worker.kill(signal.SIGKILL)  # the job's work horse too, mid-job
    assert reminders(platform) == 0, worker.log.read_text()  # killed before its commit
    with platform.session() as s:
        assert s.get(Task, task["id"]).remind_at is not None  # its update is gone too
    wait_for(lambda: task_row_free(platform, task["id"]), what="the killed transaction to end")
    worker.start()  # its start-up sweep (and rq's retry of the abandoned job) finish the work
    wait_for(lambda: reminders(platform) == 1, what="the reminder after the restart")
    wait_for(lambda: queue.count == 0, what="the queued jobs to run")
    time.sleep(1)  # a copy of the job started last may still be running: it adds nothing
    assert jobs.remind_due(platform, datetime.now(UTC), [task["id"]]) == 0
    assert reminders(platform) == 1
    with platform.session() as s:
        keys = s.scalars(sa.select(Notification.key).where(Notification.kind == "reminder")).all()
    assert keys == [f"reminder:{task['id']}"]
