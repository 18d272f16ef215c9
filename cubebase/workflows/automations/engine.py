"""The automation engine: record events in the write's transaction, schedules from
the jobs scheduler.

- **Record events** reach the engine through the records service's ``after_write``
  and ``after_delete`` hooks (registered by ``install``). The automations of a
  table are read once per schema snapshot; ``when`` is evaluated in memory with the
  interpreter, so a bulk create costs no query per row unless an automation
  matches. A matching automation runs its actions as the system actor in the same
  transaction: an action's refusal fails the write, naming the automation, and
  nothing of it is kept. Automations triggering automations are allowed
  ``MAX_DEPTH`` levels deep.
- **Schedules**: ``run_due`` finds the automations whose ``next_run_at`` has come,
  claims each due time with an UPDATE only one process wins (a claim older than
  ``STALE_CLAIM`` is taken over: its process died), sweeps the records where ``when``
  holds (one SELECT of their ids, its WHERE the records service's), runs the actions
  per record in its own transaction with a unique ``cb_automation_runs`` row
  (automation, record, due time), so a record is acted on once per due time however
  often the job runs, and finally sets the next due time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ... import formula as F
from ...formula import types as ft
from ...platform.actor import Actor
from ...platform.errors import BadRequest, ConflictError, CubebaseError, NotFound
from ...platform.records import FormulaFilter
from ...platform.schema import bump_schema_version
from ...platform.usage import Use
from ...schema_defs.automations import table_by_id, uses
from ...schema_defs.schedules import parse_schedule
from ..models import Automation, AutomationRun
from ..states import Clock, add_once, aware, utcnow
from .actions import ACTIONS, Context

MAX_DEPTH = 5  # automations triggering automations
STALE_CLAIM = timedelta(minutes=15)
_BOUND = ("automations", "record events")  # in Schema.formula_cache: see ``_bound``
_SAVED = "cb_automations_saved"  # session.info: the transaction that changed automations


@dataclass
class Loaded:
    """An automation as the hooks need it, read once per records service."""

    id: int
    key: str
    table_id: int | None
    document: dict[str, Any]

    @property
    def label(self) -> str:
        return self.document["label"]

    @property
    def on(self) -> str:
        return self.document["on"]

    @property
    def when(self) -> str | None:
        return self.document["when"]


@dataclass
class RunResult:
    """What a scheduled run did."""

    key: str
    slot: str
    done: int = 0
    failed: int = 0
    skipped: int = 0  # already done for this due time
    messages: list[str] = field(default_factory=list)


_PAUSED: ContextVar[bool] = ContextVar("cubebase_automations_paused", default=False)


@contextmanager
def paused() -> Iterator[None]:
    """Record events written inside run no automation (this thread or task only;
    schedules are not affected). For a data load that writes itself what the
    automations would make (a demo generator, a migration of history), so nothing is
    made twice and the load stays a bulk load."""
    token = _PAUSED.set(True)
    try:
        yield
    finally:
        _PAUSED.reset(token)


class AutomationEngine:
    """One per platform (``install``)."""

    def __init__(self, platform, clock: Clock | None = None):
        self.platform = platform
        self.clock: Clock = clock or utcnow

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.platform.config.timezone or "UTC")

    # --- record events -----------------------------------------------------------------
    def _bound(self, service) -> dict[int, list[Loaded]]:
        """The enabled automations of record events by table id, read once per schema
        snapshot (``Schema.formula_cache``, as checked formulas and list statements
        are) rather than once per records service: a scheduled run makes a service per
        record, so they were read again for every record. ``save`` advances the schema
        version, so a change is a new snapshot; the transaction that made it reads them
        itself until it commits (its changes are nobody else's yet)."""
        session = service.session
        saved = session.info.get(_SAVED)
        if saved is not None and saved is session.get_transaction():
            return self._read_bound(session)
        cache = service.schema.formula_cache
        bound = cache.get(_BOUND)
        if bound is None:
            bound = cache[_BOUND] = self._read_bound(session)
        return bound

    @staticmethod
    def _read_bound(session: Session) -> dict[int, list[Loaded]]:
        bound: dict[int, list[Loaded]] = {}
        rows = session.execute(
            sa.select(Automation.id, Automation.key, Automation.table_id, Automation.definition)
            .where(Automation.enabled.is_(True), Automation.trigger != "schedule")
            .order_by(Automation.key)
        )
        for aid, key, tid, d in rows:
            bound.setdefault(tid, []).append(Loaded(aid, key, tid, d))
        return bound

    def _holds(self, system, table, a: Loaded, record: dict[str, Any]) -> bool:
        """``when`` on the record in memory (no query unless it reads a link)."""
        where = f"Automation `{a.label}`: `when`"  # e.g. a field it uses was deleted since
        return system.formulas.evaluate(table, a.when, record, ft.BOOLEAN, where) is True

    def after_write(self, service, table, record_id, old_values, new_values) -> None:
        if _PAUSED.get():
            return
        autos = self._bound(service).get(table.id)
        if not autos or record_id is None:
            return
        event = "create" if old_values is None else "update"
        system = service.system()
        after = before = None
        for a in autos:
            if a.on not in (event, "change"):
                continue
            if a.when is not None:
                if after is None:
                    after = {**(old_values or {}), **new_values, "id": record_id}
                if not self._holds(system, table, a, after):
                    continue
                if old_values is not None:
                    if before is None:
                        before = {**old_values, "id": record_id}
                    if self._holds(system, table, a, before):
                        continue  # it was already true: it did not *become* true
            self._on_event(service, table, a, record_id, deleted=False)

    def after_delete(self, service, table, record_id, values) -> None:
        if _PAUSED.get():
            return
        autos = self._bound(service).get(table.id)
        if not autos:
            return
        system = service.system()
        for a in autos:
            if a.on != "delete":
                continue
            if a.when is not None and not self._holds(
                system, table, a, {**values, "id": record_id}
            ):
                continue
            self._on_event(service, table, a, record_id, deleted=True)

    def _on_event(self, service, table, a: Loaded, record_id: int, *, deleted: bool) -> None:
        session = service.session
        stack = session.info.setdefault("cb_automation_stack", [])
        if len(stack) >= MAX_DEPTH:
            chain = " -> ".join([*stack, a.key])
            raise ConflictError(
                f"Automations triggered each other more than {MAX_DEPTH} levels deep "
                f"({chain}); nothing was saved. Give one of them a `when` that stops the chain"
            )
        stack.append(a.key)
        try:
            system = service.system()  # one per write: its automations are read once
            rec = system.get(table.key, record_id, trashed=deleted)
            slot = f"deleted:v{rec.version}" if deleted else f"v{rec.version}"
            if not self._claim_run(session, a.id, record_id, slot):
                return
            ctx = Context(self, system, a, table, {"id": rec.id, **rec.values}, slot)
            self._run_actions(ctx)
        finally:
            stack.pop()

    @staticmethod
    def _claim_run(session: Session, automation_id: int, record_id: int, slot: str) -> bool:
        """The run's row; False when this (automation, record, slot) already ran."""
        return add_once(
            session,
            AutomationRun(
                automation_id=automation_id,
                record_id=record_id,
                slot=slot,
                status="done",
                created_at=utcnow(),
            ),
        )

    def _run_actions(self, ctx: Context) -> None:
        """Every action in order; a refusal names the automation and undoes them all."""
        try:
            for i, d in enumerate(ctx.automation.document["actions"]):
                ACTIONS[d["kind"]].run(ctx, d, i)
        except CubebaseError as exc:
            label = ctx.automation.label
            prefix = f"Automation `{label}`: "
            if not exc.message.startswith(prefix):
                exc.message = prefix + exc.message
                exc.args = (exc.message,)
            raise

    # --- definitions -------------------------------------------------------------------
    def save(self, session: Session, schema, compiled: list, app: str | None = None) -> None:
        """Create or change automations (``CompiledAutomation`` checked against
        ``schema``) in the caller's transaction; a new or changed schedule gets its next
        due time, an unchanged one keeps it. The schema version advances with them: the
        automations of record events are kept per schema snapshot (``_bound``)."""
        now = self.clock()
        bump_schema_version(session)
        session.info[_SAVED] = session.get_transaction()
        for c in compiled:
            doc = c.document
            a = session.scalar(sa.select(Automation).where(Automation.key == c.key))
            if a is None:
                a = Automation(key=c.key, created_at=now, definition={}, trigger=doc["on"])
                session.add(a)
            old: dict[str, Any] = a.definition or {}
            a.app = app
            a.table_id = schema.table(c.table).id if c.table else None
            a.trigger = doc["on"]
            a.enabled = doc["enabled"]
            if (old.get("schedule"), old.get("enabled")) != (doc["schedule"], doc["enabled"]):
                a.next_run_at = self.next_run(doc, now)
                a.claim = None
                a.claimed_at = None
            a.definition = doc
            a.updated_at = now
        session.flush()

    # --- schedules ---------------------------------------------------------------------
    def next_run(self, document: dict[str, Any], after: datetime) -> datetime | None:
        sched = parse_schedule(document.get("schedule"))
        if sched is None or not document.get("enabled", True):
            return None
        return sched.next_after(after, self.tz)

    def run_due(self, now: datetime | None = None) -> list[RunResult]:
        """Every scheduled automation whose due time has come (the jobs' sweep)."""
        now = now or self.clock()
        with self.platform.session() as s:
            due = s.execute(
                sa.select(Automation.id, Automation.next_run_at)
                .where(
                    Automation.trigger == "schedule",
                    Automation.enabled.is_(True),
                    Automation.next_run_at <= now,
                )
                .order_by(Automation.next_run_at, Automation.id)
            ).all()
        out = []
        for aid, due_at in due:
            result = self._run_claimed(aid, aware(due_at), now)
            if result is not None:
                out.append(result)
        return out

    def _run_claimed(self, aid: int, due_at: datetime, now: datetime) -> RunResult | None:
        token = uuid.uuid4().hex
        with self.platform.session(write=True) as s, s.begin():
            won = s.execute(
                sa.update(Automation)
                .where(
                    Automation.id == aid,
                    Automation.next_run_at == due_at,
                    sa.or_(Automation.claim.is_(None), Automation.claimed_at < now - STALE_CLAIM),
                )
                .values(claim=token, claimed_at=now)
            ).rowcount
        if won != 1:
            return None  # another process has it (or it was done meanwhile)
        result = self.sweep(aid, due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"), due_at)
        with self.platform.session(write=True) as s, s.begin():
            auto = s.get(Automation, aid)
            if auto is not None and auto.claim == token:
                auto.next_run_at = self.next_run(auto.definition, max(now, due_at))
                auto.claim = None
                auto.claimed_at = None
        return result

    def run_now(self, key: str) -> RunResult:
        """``cubebase automation run KEY``: the sweep now, once per record for this minute;
        the schedule's next due time stays."""
        with self.platform.session() as s:
            a = s.scalar(sa.select(Automation).where(Automation.key == key))
        if a is None:
            raise NotFound(f"No automation `{key}`")
        if a.trigger != "schedule":
            raise BadRequest(
                f"Automation `{key}` runs on record events ({a.trigger}); only scheduled "
                "automations run by hand"
            )
        aid = a.id
        now = self.clock()
        return self.sweep(aid, "now:" + now.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"), now)

    def sweep(self, aid: int, slot: str, at: datetime | None = None) -> RunResult:
        """The records where ``when`` holds (or once, without a table), each acted on in
        its own transaction unless this slot already did it. TODAY() and NOW() in
        ``when`` and in the actions are ``at`` (the due time; default: the engine's
        clock) in the workspace time zone, however late the run starts."""
        at = aware(at) if at is not None else self.clock()
        with self.platform.session() as s:
            auto = s.get(Automation, aid)
            a = Loaded(auto.id, auto.key, auto.table_id, auto.definition)
            system = self.records(s, at)
            table = table_by_id(system.schema, a.table_id) if a.table_id else None
            if a.table_id is not None and table is None:
                return RunResult(a.key, slot, messages=["its table no longer exists"])
            ids = [0] if table is None else self._matching(system, table, a.when)
        result = RunResult(a.key, slot)
        for rid in ids:
            self._run_one(a, rid, slot, result, at)
        return result

    def records(self, session: Session, at: datetime):
        """The system's records service whose TODAY() and NOW() are ``at``."""
        service = self.platform.records(session, Actor.system_actor())
        service.clock = lambda: at
        return service

    @staticmethod
    def _matching(system, table, when: str | None) -> list[int]:
        """The ids of the live records where ``when`` holds, in id order, from the
        records service in one SELECT (the live rows the system may read, ``when``
        checked and compiled as a filter, TODAY() its clock)."""
        return system.ids(table.key, where=[FormulaFilter(when)] if when else None)

    def _run_one(self, a: Loaded, rid: int, slot: str, result: RunResult, at: datetime) -> None:
        with self.platform.session(write=True) as s, s.begin():
            if not self._claim_run(s, a.id, rid, slot):
                result.skipped += 1
                return
            system = self.records(s, at)
            try:
                with s.begin_nested():
                    table = table_by_id(system.schema, a.table_id) if a.table_id else None
                    ctx = Context(self, system, a, table, {}, slot)
                    if table is not None:
                        ctx.record = {"id": rid}
                        ctx.unread = not self._reads_record_first(ctx)
                        if not ctx.unread:
                            ctx.read(system.get(table.key, rid))
                    s.info.setdefault("cb_automation_stack", []).append(a.key)
                    try:
                        self._run_actions(ctx)
                    except NotFound:
                        if ctx.unread:  # the update found no record: gone since the sweep,
                            system.get(table.key, rid)  # refused as a read first refuses it
                        raise
                    finally:
                        s.info["cb_automation_stack"].pop()
                result.done += 1
            except CubebaseError as exc:
                s.execute(
                    sa.update(AutomationRun)
                    .where(
                        AutomationRun.automation_id == a.id,
                        AutomationRun.record_id == rid,
                        AutomationRun.slot == slot,
                    )
                    .values(status="failed", message=exc.message)
                )
                result.failed += 1
                result.messages.append(f"record {rid}: {exc.message}")

    @staticmethod
    def _reads_record_first(ctx: Context) -> bool:
        """Whether a scheduled run reads its record before the actions. Not when the
        first action is an update whose formulas read nothing of it (``update:
        {renewal_notice: 'TODAY()'}``): the update reads the record itself (a record
        gone since is refused there, with the same message) and hands it back for the
        later actions (``Context.read``), so it is read once, not twice, before its
        UPDATE. Worked out once per schema snapshot."""
        actions = ctx.automation.document["actions"]
        if not actions or actions[0]["kind"] != "update":
            return True
        formulas = tuple(stored for _fid, stored in actions[0]["values"])
        key = ("automation reads its record", ctx.automation.id, formulas)
        cache = ctx.system.schema.formula_cache
        reads = cache.get(key)
        if reads is None:
            try:
                reads = any(F.dependencies(ctx.checked(f)) for f in formulas if f is not None)
            except F.FormulaError:
                reads = True  # read it first; the action reports the formula as before
            cache[key] = reads
        return reads

    def overview(self) -> list[str]:
        """One line per automation: key, trigger, table, next due time, last run."""
        lines = []
        with self.platform.session() as s:
            schema = self.platform.schema(s)
            last = dict(
                s.execute(
                    sa.select(
                        AutomationRun.automation_id, sa.func.max(AutomationRun.created_at)
                    ).group_by(AutomationRun.automation_id)
                ).all()
            )
            for a in s.scalars(sa.select(Automation).order_by(Automation.key)):
                table = table_by_id(schema, a.table_id) if a.table_id else None
                on = a.definition.get("schedule") or a.trigger
                text = f"{a.key}  on {on}" + (f" of {table.key}" if table else "")
                if not a.enabled:
                    text += "  (disabled)"
                elif a.next_run_at is not None:
                    text += f"  next {aware(a.next_run_at).astimezone(self.tz):%Y-%m-%d %H:%M %Z}"
                if a.id in last:
                    text += f"  last run {aware(last[a.id]):%Y-%m-%d %H:%M} UTC"
                lines.append(text)
        return lines

    # --- mail --------------------------------------------------------------------------
    def mail_after_commit(self, session: Session) -> None:
        """E-mail goes out once the notification is committed (the workflow engine's
        jobs: rq or in-process)."""
        wf = self.platform.__dict__.get("workflows")
        hook = getattr(wf, "_after_commit", None)
        if hook is not None:
            hook(session, ("mail",))


def automation_users(session: Session, schema, what) -> list[Use]:
    """Finder (``hooks.deletion_users``): the automations, enabled or not, whose stored
    definition uses a field (or a table) a delete removes, so the delete is refused
    rather than making the writes that trigger them fail later."""
    out = []
    rows = session.execute(
        sa.select(
            Automation.key, Automation.app, Automation.table_id, Automation.definition
        ).order_by(Automation.key)
    )
    for key, app, table_id, document in rows:
        fields, tables = uses(document, schema, table_id)
        if fields & what.ids or (what.whole_table and what.table.id in tables):
            label = document.get("label") or key
            out.append(Use("automation", key, f"the automation `{label}`", app))
    return out


def install(platform, clock: Clock | None = None) -> AutomationEngine:
    """Give ``platform`` an automation engine and register its record hooks (once)."""
    engine = platform.__dict__.get("automations")
    if engine is not None:
        if clock is not None:
            engine.clock = clock
        return engine
    engine = AutomationEngine(platform, clock)
    platform.__dict__["automations"] = engine
    platform.hooks.after_write.append(engine.after_write)
    platform.hooks.after_delete.append(engine.after_delete)
    platform.hooks.deletion_users.append(automation_users)
    return engine


def run_due(platform, now: datetime | None = None) -> int:
    """The jobs' entry: run what is due; the number of records acted on."""
    return sum(r.done for r in install(platform).run_due(now))
