"""The actions an automation runs: one small class per kind, in a registry.

Adding an action kind is one class here (``run``), one key in the IR
(``ir.AutomationActionSpec``) and its check in ``cubebase.schema_defs.automations``.
Every action works through the records service as the system actor, inside the
transaction of whatever triggered it; an action's refusal is a CubebaseError that
the engine names the automation in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa

from ... import formula as F
from ...platform.actor import Actor
from ...platform.errors import BadRequest, FieldProblem, NotFound, ValidationError
from ...platform.fieldtypes import ConversionError
from ...schema_defs.automations import NO_TABLE, AutomationView, field_by_id, table_by_id
from ..models import Instance, Notification, Workflow
from ..states import add_once, role_holders


@dataclass
class Context:
    """What an automation's actions share: the system's records service, the trigger
    table (None without one), the record as formulas see it ({key: value, "id": id,
    and the ``as`` names}), and the run's identity (for idempotent notifications)."""

    engine: Any
    system: Any  # RecordsService of the system actor
    automation: Any  # engine.Loaded
    table: Any | None
    record: dict[str, Any]
    slot: str
    names: list[tuple[str, str]] = field(default_factory=list)  # `as` names so far
    # a scheduled run whose first action is an update reading nothing of the record
    # has only its id until that update reads it (engine ``_reads_record_first``)
    unread: bool = False

    @property
    def record_id(self) -> int:
        return self.record.get("id") or 0

    def read(self, rec) -> None:
        """The record as read (or as a write left it), keeping the ``as`` names."""
        extra = {n: self.record.get(n) for n, _ in self.names}
        self.record = {"id": rec.id, **rec.values, **extra}
        self.unread = False

    def checked(self, stored: str, names: list[tuple[str, str]] | None = None):
        """A formula of the automation, checked once per schema snapshot."""
        names = self.names if names is None else names
        key = self.table.key if self.table is not None else None
        cache = self.system.schema.formula_cache
        ck = ("automation", key, tuple(names), stored)
        checked = cache.get(ck)
        if checked is None:
            view = AutomationView(self.system.schema.formula_schema(), key, names)
            checked = cache[ck] = F.check(stored, view, key or NO_TABLE)
        return checked

    def evaluate(self, stored: str | None, *, names: list[tuple[str, str]] | None = None) -> Any:
        """A formula of the automation over ``record``."""
        if stored is None:
            return None
        try:
            checked = self.checked(stored, names)
            return F.evaluate(checked, self.record, self.system.formulas.eval_context())
        except F.FormulaError as exc:  # a field deleted since, a formula too deep
            raise BadRequest(f"a formula could not be computed: {exc.message}") from None

    def values(self, table, pairs) -> dict[str, Any]:
        """``[[field id, stored formula], ...]`` evaluated into the records service's input."""
        out = {}
        for fid, stored in pairs:
            f = field_by_id(table, fid)
            if f is None:
                continue  # the field was deleted since; the plan said so
            out[f.key] = as_input(self.evaluate(stored))
        return out

    def users(self, to: str | None, role: str | None) -> list[int]:
        """The receivers: a formula's users, or the active holders of a role."""
        if role is not None:
            return role_holders(self.system, role)
        value = self.evaluate(to)
        values = value if isinstance(value, list) else [value]
        out: list[int] = []
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and v not in out:
                out.append(v)
        return out

    def notify(self, user_id: int, index: int, kind: str, subject: str, body: str) -> None:
        """One notification; a scheduled run's key makes it once per (run, action, user)."""
        a = self.automation
        if self.slot.startswith("v") or self.slot.startswith("deleted"):
            key = f"auto:{a.id}:{uuid.uuid4().hex}:{user_id}"  # each event notifies
        else:
            key = f"auto:{a.id}:{self.record_id}:{self.slot}:{index}:{user_id}"
        session = self.system.session
        made = add_once(
            session,
            Notification(
                key=key[:200],
                user_id=user_id,
                kind=kind,
                task_id=None,
                subject=subject[:300],
                body=body,
                created_at=self.engine.clock(),
                email_status="pending" if self.engine.platform.config.smtp.get("host") else "none",
            ),
        )
        if made:
            self.engine.mail_after_commit(session)


def as_input(value: Any) -> Any:
    """A formula's value as the records service takes it: numbers, dates and texts as
    they are, a record as its id, a list as a list."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [as_input(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class Action:
    """One kind of action; ``run`` does it for one record (or none)."""

    kind: ClassVar[str]

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        raise NotImplementedError


ACTIONS: dict[str, Action] = {}


def action(cls: type[Action]) -> type[Action]:
    ACTIONS[cls.kind] = cls()
    return cls


@action
class Update(Action):
    """Change the triggering record; later actions see it as the update left it (the
    record the update returns: no second read)."""

    kind = "update"

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        values = ctx.values(ctx.table, d["values"])
        if values:
            ctx.read(ctx.system.update(ctx.table.key, ctx.record_id, values))
        elif ctx.unread:  # nothing to set (its fields were deleted since): read it now
            ctx.read(ctx.system.get(ctx.table.key, ctx.record_id))


def _target(ctx: Context, d: dict[str, Any]):
    target = table_by_id(ctx.system.schema, d["table_id"])
    if target is None:
        raise NotFound("the table it writes to no longer exists")
    return target


def _remember(ctx: Context, d: dict[str, Any], target, record_id: int) -> None:
    if d.get("as"):
        ctx.names.append((d["as"], target.key))
        ctx.record[d["as"]] = record_id


@action
class Create(Action):
    """Create a record in another (or the same) table."""

    kind = "create"

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        target = _target(ctx, d)
        rec = ctx.system.create(target.key, ctx.values(target, d["values"]))
        _remember(ctx, d, target, rec.id)


@action
class FindOrCreate(Action):
    """The record whose fields equal ``match``, created (with ``values``) when absent."""

    kind = "find_or_create"

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        target = _target(ctx, d)
        match = ctx.values(target, d["match"])
        conds = []
        for key, value in match.items():
            f = target.fields[key]
            if value is None:
                conds.append(lambda t, f=f: t.column(f).is_(None))
            else:
                try:
                    db = f.ftype.to_db(f, f.ftype.to_python(f, value))
                except ConversionError as exc:
                    raise ValidationError([FieldProblem(key, str(exc))]) from None
                conds.append(lambda t, f=f, db=db: t.column(f) == db)
        page = ctx.system.list(target.key, where=conds, sort="id", limit=1, fields=[])
        if page.records:
            rid = page.records[0].id
        else:
            rid = ctx.system.create(target.key, {**match, **ctx.values(target, d["values"])}).id
        _remember(ctx, d, target, rid)


@action
class Notify(Action):
    """An in-app notification to users (e-mailed from the outbox when SMTP is set)."""

    kind = "notify"

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        subject = ctx.evaluate(d["subject"]) if d["subject"] else ctx.automation.label
        body = ctx.evaluate(d["body"]) if d["body"] else ""
        for uid in ctx.users(d["to"], d["role"]):
            ctx.notify(uid, index, "automation", str(subject or ""), str(body or ""))


@action
class StartWorkflow(Action):
    """Start a workflow on the triggering record (nothing when one already runs there)."""

    kind = "start_workflow"

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        from ..engine import install

        session = ctx.system.session
        wf = session.scalar(sa.select(Workflow).where(Workflow.key == d["workflow"]))
        if wf is None:
            raise NotFound(f"No workflow `{d['workflow']}`")
        running = session.scalar(
            sa.select(Instance.id).where(
                Instance.workflow_id == wf.id,
                Instance.record_id == ctx.record_id,
                Instance.status == "running",
            )
        )
        if running is None:
            install(ctx.engine.platform).start(
                session, Actor.system_actor(), d["workflow"], ctx.record_id
            )


@action
class SendReport(Action):
    """Run a report as each receiver (their row and field rules apply) and notify them:
    the row count and a link to ``/reports/KEY``; with SMTP set, the e-mail carries the
    CSV too. A receiver who may not run it is told so; the others still get theirs."""

    kind = "send_report"
    MAX_CSV_ROWS = 1000

    def run(self, ctx: Context, d: dict[str, Any], index: int) -> None:
        from ...platform.errors import CubebaseError
        from ...platform.reports import get_report, run_report
        from ...platform.users import load_actor

        key = d["report"]
        smtp = bool(ctx.engine.platform.config.smtp.get("host"))
        session = ctx.system.session
        for uid in ctx.users(d["to"], d["role"]):
            actor = load_actor(ctx.engine.platform, session, uid)
            if actor is None:
                continue  # inactive or gone
            service = ctx.engine.platform.records(session, actor)
            service.clock = ctx.system.clock  # a scheduled run's TODAY(): its due time
            try:
                with session.begin_nested():
                    report = get_report(service, key)
                    result = run_report(service, report, self.MAX_CSV_ROWS if smtp else None)
            except CubebaseError as exc:
                body = f"The report `{key}` could not be run for you: {exc.message}"
                ctx.notify(uid, index, "report", f"Report {key}: not sent", body)
                continue
            n = len(result.rows)
            count = f"{'more than ' if result.more else ''}{n} row{'s' if n != 1 else ''}"
            body = f"{report.label}: {count}. Open it: /reports/{key}"
            if smtp:
                body += "\n\n" + result.to_csv()
            ctx.notify(uid, index, "report", f"Report: {report.label} ({count})", body)
