"""A real rq worker process on real Redis: scheduled reminder jobs, and a worker
killed (SIGKILL) in the middle of a reminder job, then restarted: the reminder
is made exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cubebase.workflows import jobs
from cubebase.workflows.models import Notification
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


class Worker:
    def __init__(self, platform, redis_url, tmp_path):
        self.env = {
            **os.environ,
            "CUBEBASE_DATABASE_URL": platform.config.database_url,
            "CUBEBASE_REDIS_URL": redis_url,
            "CUBEBASE_DATA_DIR": str(tmp_path),
        }
        self.log = tmp_path / "worker.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cubebase", "worker"],
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the work horse dies with it
        )

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)
        self.proc = None


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


class DatabaseLock:
    """Holds what a reminder job needs to write, so that the job stalls mid-way."""

    def __init__(self, platform):
        self.conn = platform.engine.connect()
        if platform.dialect == "sqlite":
            self.conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
        else:
            self.conn.begin()
            self.conn.exec_driver_sql("LOCK TABLE cb_notifications IN EXCLUSIVE MODE")

    def release(self) -> None:
        self.conn.connection.driver_connection.rollback()
        self.conn.close()


def test_worker_killed_mid_reminder_job_then_restarted_reminds_exactly_once(
    platform, wf, admin, users, clock, redis_url, queue, worker
):
    wf.jobs.redis_url = redis_url
    task = due_task(platform, wf, admin, users, clock)
    lock = DatabaseLock(platform)
    try:
        worker.start()
        # a reminder job (the scheduled one or the start-up sweep) is running, stalled
        wait_for(lambda: queue.started_job_registry.get_job_ids(), what="a job to start")
        time.sleep(0.5)
        worker.kill(signal.SIGKILL)
    finally:
        lock.release()
    # killed before its commit: nothing happened
    assert reminders(platform) == 0, worker.log.read_text()
    worker.start()  # its start-up sweep (and rq's retry of the abandoned job) finish the work
    wait_for(lambda: reminders(platform) == 1, what="the reminder after the restart")
    time.sleep(2)  # let any other queued copy of the job run too
    assert jobs.remind_due(platform, datetime.now(UTC), [task["id"]]) == 0
    assert jobs.run_reminder.__name__ and reminders(platform) == 1
    with platform.session() as s:
        keys = s.scalars(sa.select(Notification.key).where(Notification.kind == "reminder")).all()
    assert keys == [f"reminder:{task['id']}"]
