"""Background jobs: reminders, escalations and notification e-mails.

The database is the truth, jobs only act on it:

- A task with a reminder keeps ``remind_at`` until the reminder is made, one with
  an escalation keeps ``escalate_at``. ``remind_due`` makes every due reminder in
  one transaction: ONE indexed query finds the due tasks (``remind_at <= now``,
  a range scan of ``ix_cb_wf_tasks_remind_at``), their notifications go in with
  a unique key ``reminder:<task id>`` (a second run, or a concurrent one, adds
  nothing), and ``remind_at`` is cleared for them. The query (``due_reminders``)
  brings each task's instance along: four statements in all, however many
  reminders are due. Killed before its commit, a
  job has done nothing and its retry (or the next sweep) does it all; killed
  after, everything is done and the retry finds nothing due.
- Escalations (``escalate_due``) work the same way, one task per transaction
  under the instance's lock, keyed ``escalation:<task id>``.
- E-mails leave from an outbox: a notification made while SMTP is configured is
  ``pending``; ``deliver_mail`` claims rows one by one (pending -> sending),
  sends, and marks them sent. A claim older than ``STALE_CLAIM`` (the worker died
  while sending) goes back to pending: e-mail is at least once, notifications
  exactly once.

With ``CUBEBASE_REDIS_URL`` set, tasks get rq jobs at their ``remind_at`` and
``escalate_at`` (rq's own scheduling: ``enqueue_at``, run by ``cubebase worker``,
which runs the scheduler too), retried with backoff (``Retry``), and a periodic
sweep job re-schedules itself (``enqueue_in``) as the safety net. Without it, the
same functions run in-process: ``InProcessScheduler`` is a small thread that
sweeps every ``interval`` seconds (``cubebase demo``/``serve`` start it), and
``sweep`` can be called on demand (tests call it with a controlled clock).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..platform.actor import Actor
from .models import Instance, Notification, Task

log = logging.getLogger(__name__)

RETRY_INTERVALS = [5, 30, 120, 600, 1800]  # seconds between attempts: backoff
SWEEP_EVERY = 60  # seconds, the rq sweep's period
STALE_CLAIM = timedelta(minutes=15)
SWEEP_BATCH = 5000


def queue_name(database_url: str) -> str:
    """One rq queue per database, so several installations (or test databases) can
    share a Redis without running each other's jobs."""
    return "cubebase-" + hashlib.sha256(database_url.encode()).hexdigest()[:12]


def notification_text(engine, session, kind, task, comment, subject=None) -> tuple[str, str]:
    if task is None:
        return subject or kind, comment or ""
    inst = session.get(Instance, task.instance_id)
    d = engine.definition(session, inst.version_id)
    step = engine.step_def(d, task.step) or {"label": task.step}
    what = f"{d['label']}: {step['label']} ({inst.table_key} #{inst.record_id})"
    due = f", due {task.due_at:%Y-%m-%d %H:%M} UTC" if task.due_at else ""
    text = {
        "assigned": (f"New task: {what}", f"You have a new task: {what}{due}."),
        "reminder": (f"Reminder: {what}", f"Your task {what} is still open{due}."),
        "escalation": (f"Overdue: {what}", f"The task {what} is overdue{due}."),
        "returned": (f"Returned: {what}", f"{what} was sent back to you."),
    }.get(kind, (subject or kind, ""))
    body = text[1] + (f"\n\nComment: {comment}" if comment else "")
    return subject or text[0], body


# --- the work (the same with or without rq) ----------------------------------------------


def _insert_ignore(session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(Notification)
    session.execute(ins.on_conflict_do_nothing(index_elements=["key"]), rows)


def due_reminders(
    now: datetime, task_ids: Iterable[int] | None = None, dialect: str = "sqlite"
) -> sa.Select:
    """The reminder sweep's one query: the due open tasks (a range scan of
    ``ix_cb_wf_tasks_remind_at``) with their instances (primary-key lookups), so that
    making the reminders reads nothing more per task. PostgreSQL locks the tasks and
    skips those another sweep holds."""
    q = (
        sa.select(Task, Instance)
        .join(Instance, Instance.id == Task.instance_id)
        .where(Task.remind_at <= now, Task.status == "open")
        .order_by(Task.remind_at)
        .limit(SWEEP_BATCH)
    )
    if task_ids is not None:
        q = q.where(Task.id.in_(list(task_ids)))
    if dialect == "postgresql":
        q = q.with_for_update(skip_locked=True, of=Task)
    return q


def remind_due(platform, now: datetime, task_ids: Iterable[int] | None = None) -> int:
    """Make every due reminder (or those of ``task_ids``); returns how many were new."""
    from .engine import install

    engine = install(platform)
    smtp = bool(platform.config.smtp.get("host"))
    with platform.session(write=True) as session, session.begin():
        q = due_reminders(now, task_ids, session.get_bind().dialect.name)
        # the instances come in the same rows: notification_text finds them in the
        # session's identity map instead of asking the database once per task (the
        # map holds objects weakly: ``found`` keeps them alive)
        found = session.execute(q).all()
        tasks = [task for task, _inst in found]
        if not tasks:
            return 0
        rows = []
        for t in tasks:
            subject, body = notification_text(engine, session, "reminder", t, None)
            rows.append(
                {
                    "key": f"reminder:{t.id}",
                    "user_id": t.assignee_id,
                    "kind": "reminder",
                    "task_id": t.id,
                    "subject": subject,
                    "body": body,
                    "created_at": now,
                    "email_status": "pending" if smtp else "none",
                }
            )
        before = session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.key.in_([r["key"] for r in rows]))
        )
        _insert_ignore(session, rows)
        session.execute(
            sa.update(Task)
            .where(Task.id.in_([t.id for t in tasks]), Task.remind_at <= now)
            .values(remind_at=None)
            .execution_options(synchronize_session=False)
        )
        made = len(rows) - before
    if smtp and made:
        engine.jobs.after_commit([("mail",)])
    return made


def escalate_due(platform, now: datetime, task_ids: Iterable[int] | None = None) -> int:
    """Escalate every overdue task (or those of ``task_ids``): reassign it or notify."""
    from .engine import OPEN, install

    engine = install(platform)
    with platform.session() as session:
        q = sa.select(Task.id).where(Task.escalate_at <= now).order_by(Task.escalate_at)
        if task_ids is not None:
            q = q.where(Task.id.in_(list(task_ids)))
        ids = session.scalars(q.limit(SWEEP_BATCH)).all()
    done = 0
    system = Actor.system_actor()
    for tid in ids:
        with platform.session(write=True) as session, session.begin():
            task = session.get(Task, tid)
            if task is None or task.escalate_at is None or task.status != OPEN:
                continue
            if engine._lock_instance(session, task.instance_id) is None:
                continue
            task = session.get(Task, tid, populate_existing=True)
            if task.escalate_at is None or task.status != OPEN:
                continue  # someone else escalated or completed it meanwhile
            inst = session.get(Instance, task.instance_id, populate_existing=True)
            d = engine.definition(session, inst.version_id)
            step = engine.step_def(d, task.step)
            esc = step["escalation"]
            task.escalate_at = None
            service = platform.records(session, system)
            table = service.table(inst.table_key)
            record = engine._record(session, inst)
            users = engine._users(service, table, esc["to"], record) if esc["to"] else []
            if esc["action"] == "reassign" and users:
                new_user = users[0]
                task.status = "reassigned"
                task.remind_at = None
                task.completed_at = now
                task.version += 1
                new = Task(
                    instance_id=inst.id,
                    step=task.step,
                    round=task.round,
                    assignee_id=new_user,
                    status=OPEN,
                    version=1,
                    created_at=now,
                    due_at=task.due_at,
                )
                session.add(new)
                session.flush()
                engine._event(
                    session,
                    inst,
                    task.id,
                    "reassign",
                    None,
                    system,
                    None,
                    None,
                    {"assignee": [task.assignee_id, new_user]},
                    now,
                    step=task.step,
                )
                engine.notify(
                    session, new_user, "assigned", new, f"escalation:{task.id}", now, subject=None
                )
            else:
                for uid in users or [task.assignee_id]:
                    engine.notify(
                        session, uid, "escalation", task, f"escalation:{task.id}:{uid}", now
                    )
                engine._event(
                    session,
                    inst,
                    task.id,
                    "escalate",
                    None,
                    system,
                    None,
                    None,
                    {},
                    now,
                    step=task.step,
                )
            done += 1
    return done


def deliver_mail(platform, now: datetime | None = None, limit: int = 200) -> int:
    """Send pending notification e-mails (when SMTP is configured)."""
    smtp = platform.config.smtp
    if not smtp.get("host"):
        return 0
    now = now or datetime.now(UTC)
    sent = 0
    with platform.session(write=True) as session, session.begin():
        session.execute(  # claims of workers that died while sending
            sa.update(Notification)
            .where(Notification.email_status == "sending", Notification.sent_at < now - STALE_CLAIM)
            .values(email_status="pending")
        )
    with platform.session() as session:
        ids = session.scalars(
            sa.select(Notification.id)
            .where(Notification.email_status == "pending")
            .order_by(Notification.id)
            .limit(limit)
        ).all()
    for nid in ids:
        with platform.session(write=True) as session, session.begin():
            claimed = session.execute(
                sa.update(Notification)
                .where(Notification.id == nid, Notification.email_status == "pending")
                .values(email_status="sending", sent_at=now)
            ).rowcount
        if claimed != 1:
            continue
        with platform.session() as session:
            n = session.get(Notification, nid)
            to = platform.records(session, Actor.system_actor()).get("users", n.user_id)
            address = to.values.get("email")
            subject, body = n.subject, n.body
        _send(smtp, address, subject, body)
        with platform.session(write=True) as session, session.begin():
            session.execute(
                sa.update(Notification)
                .where(Notification.id == nid)
                .values(email_status="sent", sent_at=datetime.now(UTC))
            )
        sent += 1
    return sent


def _send(smtp: dict, to: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = smtp.get("from", "cubebase@localhost")
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    port = int(smtp.get("port", 25))
    cls = smtplib.SMTP_SSL if smtp.get("ssl") in ("1", "true") else smtplib.SMTP
    with cls(smtp["host"], port, timeout=float(smtp.get("timeout", 30))) as s:
        if smtp.get("starttls") in ("1", "true"):
            s.starttls()
        if smtp.get("user"):
            s.login(smtp["user"], smtp.get("password", ""))
        s.send_message(msg)


def sweep(platform, now: datetime | None = None) -> dict[str, int]:
    """Everything due at ``now``: reminders, escalations, scheduled automations, e-mails
    (on demand, by the in-process scheduler, or by the rq sweep job)."""
    from .automations import run_due

    now = now or datetime.now(UTC)
    return {
        "reminders": remind_due(platform, now),
        "escalations": escalate_due(platform, now),
        "automations": run_due(platform, now),
        "mail": deliver_mail(platform, now),
    }


# --- scheduling ----------------------------------------------------------------------------


class Jobs:
    """Where the engine's jobs go: rq when the platform has a Redis URL, else in-process."""

    def __init__(self, platform, engine):
        self.platform = platform
        self.engine = engine
        self.redis_url = platform.config.redis_url
        self._queue = None
        self.scheduler: InProcessScheduler | None = None

    def queue(self):
        if self._queue is None:
            from redis import Redis
            from rq import Queue

            self._queue = Queue(
                queue_name(self.platform.config.database_url),
                connection=Redis.from_url(self.redis_url),
            )
        return self._queue

    def after_commit(self, items: list[tuple]) -> None:
        try:
            self._schedule(items)
        except Exception:  # noqa: BLE001 - the sweep is the safety net
            log.exception("could not schedule workflow jobs; the sweep will do them")

    def _schedule(self, items: list[tuple]) -> None:
        mail = any(i[0] == "mail" for i in items)
        if not self.redis_url:
            if self.scheduler is not None:
                self.scheduler.wake()
            return
        from rq import Retry

        q = self.queue()
        for item in items:
            if item[0] != "task":
                continue
            _, task_id, remind_at, escalate_at = item
            if remind_at is not None:
                q.enqueue_at(
                    aware(remind_at),
                    run_reminder,
                    task_id,
                    job_id=f"{q.name}-remind-{task_id}",
                    retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                )
            if escalate_at is not None:
                q.enqueue_at(
                    aware(escalate_at),
                    run_escalation,
                    task_id,
                    job_id=f"{q.name}-escalate-{task_id}",
                    retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                )
        if mail and self.platform.config.smtp.get("host"):
            q.enqueue(run_mail, retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS))


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


class InProcessScheduler:
    """Without Redis: a daemon thread sweeping every ``interval`` seconds (and when
    woken after a commit that made notifications to mail)."""

    def __init__(self, platform, interval: float = 30.0):
        self.platform = platform
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> InProcessScheduler:
        self._thread = threading.Thread(target=self._run, name="cubebase-jobs", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sweep(self.platform)
            except Exception:  # noqa: BLE001 - keep sweeping; the error is logged
                log.exception("workflow sweep failed")
            self._wake.wait(self.interval)
            self._wake.clear()


def start_in_process(platform, interval: float = 30.0) -> InProcessScheduler | None:
    """Start the in-process scheduler when there is no Redis (``cubebase demo``)."""
    from .engine import install

    engine = install(platform)
    if platform.config.redis_url:
        return None
    if engine.jobs.scheduler is None:
        engine.jobs.scheduler = InProcessScheduler(platform, interval).start()
    return engine.jobs.scheduler


# --- any background job -------------------------------------------------------------------


def submit(platform, func, *args: Any, job_id: str | None = None) -> None:
    """Run ``func(platform, *args)`` in the background, by the same mechanism as the
    workflow jobs: an rq job on this database's queue when ``CUBEBASE_REDIS_URL`` is
    set (run by ``cubebase worker``, which builds its own platform), else a daemon
    thread in this process. ``func`` must be a module-level function (rq stores its
    import path; the arguments must be JSON-like). Not retried: a job that must run
    exactly once (an import) keeps its own state and is started again by a person."""
    path = f"{func.__module__}:{func.__qualname__}"
    if platform.config.redis_url:
        from redis import Redis
        from rq import Queue

        queue = Queue(
            queue_name(platform.config.database_url),
            connection=Redis.from_url(platform.config.redis_url),
        )
        queue.enqueue(run_job, path, *args, job_id=job_id)
        return
    thread = threading.Thread(
        target=_run_here, args=(platform, path, args), name=f"cubebase-job-{job_id}", daemon=True
    )
    thread.start()


def _resolve(path: str):
    import importlib

    module, _, name = path.partition(":")
    if not module.startswith("cubebase."):
        raise ValueError(f"not a Cubebase job: {path}")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _run_here(platform, path: str, args: tuple) -> None:
    try:
        _resolve(path)(platform, *args)
    except Exception:  # noqa: BLE001 - a thread has no caller to tell; the job keeps its state
        log.exception("background job %s failed", path)


def run_job(path: str, *args: Any) -> Any:
    """The rq entry point of ``submit``: the function, with the worker's platform."""
    return _resolve(path)(worker_platform(), *args)


# --- rq entry points (run in the worker; configuration from the environment) -------------

_worker_platform = None
_worker_config = None  # set by ``run_worker``; jobs run in forked work horses


def worker_platform():
    """The platform of a job: built in the process running it (rq forks a work horse
    per job, and a database connection must not cross a fork)."""
    global _worker_platform
    if _worker_platform is None:
        from ..platform.config import Config
        from ..platform.core import Platform
        from .engine import install

        _worker_platform = Platform(_worker_config or Config.from_env())
        install(_worker_platform)
        from .automations import install as install_automations

        install_automations(_worker_platform)
    return _worker_platform


def run_reminder(task_id: int) -> int:
    return remind_due(worker_platform(), datetime.now(UTC), [task_id])


def run_escalation(task_id: int) -> int:
    return escalate_due(worker_platform(), datetime.now(UTC), [task_id])


def run_mail() -> int:
    return deliver_mail(worker_platform())


def run_sweep(reschedule: bool = True) -> dict[str, int]:
    """The rq safety net: sweep, then come back in ``SWEEP_EVERY`` seconds."""
    platform = worker_platform()
    try:
        return sweep(platform)
    finally:
        if reschedule and platform.config.redis_url:
            engine = platform.__dict__["workflows"]
            q = engine.jobs.queue()
            q.enqueue_in(timedelta(seconds=SWEEP_EVERY), run_sweep, job_id=f"{q.name}-sweep")


def run_worker(platform, *, burst: bool = False) -> None:
    """``cubebase worker``: an rq worker on this database's queue, with its scheduler;
    it enqueues a sweep first, which then re-schedules itself."""
    from redis import Redis
    from rq import Queue, Worker

    if not platform.config.redis_url:
        from ..platform.errors import ConfigError

        raise ConfigError(
            "CUBEBASE_REDIS_URL is not set: without Redis, jobs run inside `cubebase serve`"
        )
    global _worker_config
    _worker_config = platform.config
    platform.dispose()
    conn = Redis.from_url(platform.config.redis_url)
    q = Queue(queue_name(platform.config.database_url), connection=conn)
    q.enqueue(run_sweep, job_id=f"{q.name}-sweep")
    Worker([q], connection=conn).work(with_scheduler=True, burst=burst)
