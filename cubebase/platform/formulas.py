"""The formula language inside the platform.

Formula fields, default values and validation rules are stored with field
references by id (``{#12}``), so renaming a field never breaks them, and shown
with current names. This module checks them when an admin saves them, keeps
them from pointing at deleted fields or at themselves, and gives the records
service what it needs to run them: SQL contexts (formula fields in lists,
filters and sorts) and interpreter contexts (defaults and validation before a
write), with links and aggregates resolved through the records service.

Admin-defined formulas (formula fields, defaults, validations) run in system
context; formulas a user writes (filters, sorts, report definitions) run under
that user's rights through ``SqlContext.row_scope``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import formula as F
from ..formula import ast as A
from ..formula import types as ft
from .actor import Actor
from .errors import ConflictError, CubebaseError, NotFound
from .models import Role
from .usage import Gone, Use, fields_read

if TYPE_CHECKING:
    from .records import RecordsService
    from .schema import Field, Schema, Table

RESULT_TYPES = ("number", "text", "boolean", "date", "datetime")


class InvalidFormula(CubebaseError):
    """A formula an admin or user wrote does not check; details carry positions."""

    code = "formula_error"
    http_status = 400

    def __init__(self, where: str, error: F.FormulaError):
        items = error.to_dicts()
        first = items[0]["message"] if items else "the formula is not valid"
        super().__init__(f"{where}: {first}" if where else first, items)


def check_formula(platform, session: Session, actor: Actor, table_key: str, source: str) -> dict:
    """``{"type": ...}`` or ``{"errors": [...]}``: shared by the CLI and the API."""
    schema = platform.schema(session)
    schema.table(table_key)  # NotFound for an unknown table
    return F.check_result(source, schema.formula_schema(), table_key)


def result_type_name(t: ft.FType) -> str:
    """How a formula field's result type is kept in its settings."""
    if t.kind == "record":
        return f"record:{t.table}"
    if t.kind == "list":
        item = t.item
        return f"list:{item.table}" if item and item.kind == "record" else "list:text"
    return t.kind if t.kind in RESULT_TYPES else "text"


def field_ftype(f: Field) -> ft.FType:
    return f.ftype.formula_type(f)


# --- saving formulas --------------------------------------------------------------


def store(
    schema: Schema,
    table_key: str,
    source: str,
    where: str,
    expected: ft.FType | None = None,
    *,
    field_key: str | None = None,
):
    """Check a formula an admin typed; return (stored text, checked formula)."""
    if not isinstance(source, str) or not source.strip():
        raise CubebaseError(f"{where}: the formula is empty")
    fs = schema.formula_schema()
    try:
        checked = F.check(source, fs, table_key, expected, field_key=field_key)
        return F.to_stored(source, fs, table_key), checked
    except F.FormulaError as exc:
        raise InvalidFormula(where, exc) from None


def display(schema: Schema, table_key: str, stored: str | None) -> str | None:
    """A stored formula with today's field names."""
    if not stored:
        return stored
    try:
        return F.to_display(stored, schema.formula_schema(), table_key)
    except F.FormulaError:
        return stored


def check_no_cycle(schema: Schema, table_key: str, field_key: str) -> None:
    cycle = F.find_cycle(schema.formula_schema(), table_key, field_key)
    if cycle:
        path = " -> ".join(f"{t}.{k}" for t, k in cycle)
        raise ConflictError(f"Formula fields would depend on each other in a circle: {path}")


def formulas_in(schema: Schema) -> list[tuple[str, str, str]]:
    """Every stored formula of the schema as (table key, what, stored text)."""
    from .permission_rules import rule_formulas

    out: list[tuple[str, str, str]] = []
    for t in schema.tables.values():
        for f in t.fields.values():
            if f.type == "formula" and f.config.get("formula"):
                out.append((t.key, f"formula field `{t.key}.{f.key}`", f.config["formula"]))
            if f.default:
                out.append((t.key, f"the default of `{t.key}.{f.key}`", f.default))
        for i, rule in enumerate(t.config.get("validations") or []):
            out.append(
                (
                    t.key,
                    f"validation rule {i + 1} of `{t.key}` ({rule.get('message')})",
                    rule["rule"],
                )
            )
        for what, stored in rule_formulas(t):
            out.append((t.key, what, stored))
    return out


def formula_users(session: Session, schema: Schema, what: Gone) -> list[Use]:
    """Finder (``hooks.deletion_users``): the formula fields, defaults, validation and
    permission rules that read a field ``what`` removes (those of a deleted table
    itself go with it)."""
    fs = schema.formula_schema()
    users = []
    for table_key, text, stored in formulas_in(schema):
        if what.whole_table and table_key == what.table.key:
            continue
        if fields_read(stored, fs, table_key) & what.ids:
            users.append(Use("formula", table_key, text))
    return users


# --- running formulas -------------------------------------------------------------

# Functions whose SQL depends on the request (SqlContext), not only on the schema.
_CONTEXT_FUNCTIONS = {"TODAY": "today", "NOW": "now", "HAS_ROLE": "roles"}


def context_uses(checked: F.CheckedFormula) -> frozenset[str]:
    """What of the request a formula's SQL reads: "today", "now", "roles", "user"
    (bodies of the formula fields it uses included)."""
    uses = checked._cache.get("context_uses")
    if uses is None:
        found: set[str] = set()
        stack, seen = [checked.root], set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if isinstance(n, A.TUser):
                found.add("user")
            elif isinstance(n, A.TCall) and n.func.name in _CONTEXT_FUNCTIONS:
                found.add(_CONTEXT_FUNCTIONS[n.func.name])
            body = getattr(n, "body", None)
            stack.extend(A.tchildren(n) if body is None else [*A.tchildren(n), body])
        uses = checked._cache["context_uses"] = frozenset(found)
    return uses


def live_rows(user_scope=None):
    """The scope of every other table a formula reads in SQL: records in the trash
    never count (as the interpreter, which reads through the records service,
    never sees them), and a user's own formulas see only what the user may read."""

    def scope(info, alias):
        live = alias.c.deleted_at.is_(None)
        extra = user_scope(info, alias) if user_scope is not None else None
        return live if extra is None else sa.and_(live, extra)

    return scope


class FormulaRuntime:
    """Compiles and evaluates formulas for one records service (one actor)."""

    def __init__(self, service: RecordsService):
        self.service = service
        self.schema = service.schema
        self.fs = self.schema.formula_schema()
        self._checked = self.schema.formula_cache
        self._user: dict[str, Any] | None = None
        self._roles: frozenset[str] | None = None

    def role_names(self) -> frozenset[str]:
        """The actor's roles by key and by label, so ``HAS_ROLE("Sales Manager")``
        and ``HAS_ROLE("sales_manager")`` both work."""
        if self._roles is None:
            keys = self.service.actor.roles
            # every role's label, read once per schema snapshot (adding a role moves
            # the schema version: it becomes an option of ``users.roles``)
            labels = self._checked.get(("role_labels",))
            if labels is None and keys:
                labels = self._checked[("role_labels",)] = dict(
                    self.service.session.execute(sa.select(Role.key, Role.label)).tuples().all()
                )
            self._roles = frozenset(keys) | frozenset(
                labels[k] for k in keys if labels and k in labels
            )
        return self._roles

    def now(self) -> datetime:
        """NOW() for the statement being built: taken afresh for each, so a
        long-lived service never sees records written after it as in the future; the
        service's ``clock`` when it has one (a scheduled run: its due time), in the
        workspace time zone, so TODAY() is the workspace's date of that instant."""
        clock = self.service.clock
        if clock is None:
            return datetime.now(self.schema.timezone)
        return clock().astimezone(self.schema.timezone)

    def checked(
        self, table_key: str, stored: str, expected: ft.FType | None = None, where: str = ""
    ) -> F.CheckedFormula:
        key = (table_key, stored, str(expected) if expected else None)
        hit = self._checked.get(key)
        if hit is None:
            try:
                hit = F.check(stored, self.fs, table_key, expected)
            except F.FormulaError as exc:
                raise InvalidFormula(where, exc) from None
            self._checked[key] = hit
        return hit

    def sql_context(self, table: Table, alias=None, *, user_scope=None, joins=None) -> F.SqlContext:
        actor = self.service.actor
        return F.SqlContext(
            schema=self.fs,
            table=self.fs.table(table.key),
            alias=alias,
            dialect=self.service.session.get_bind().dialect.name,
            now=(now := self.now()),
            today=now.date(),
            user_id=actor.user_id,
            user_roles=self.role_names(),
            row_scope=live_rows(user_scope),
            joins=joins,
        )

    def field_expr(self, table: Table, f: Field, alias=None, *, joins=None):
        """A formula field as a SQL expression (admin-defined: system context);
        ``joins``: aggregates as grouped joins (see ``SqlContext``), for sorting.

        Built once per schema snapshot and shared by every request: building the
        SQLAlchemy expressions was most of a page's Python cost (about 0.5 ms per
        formula field, see benchmarks/README.md). Formulas reading NOW(), USER() or
        HAS_ROLE are built per request, TODAY() ones once a day.
        """
        checked = self.checked(table.key, f.config["formula"], where=f"Formula field `{f.key}`")
        uses = context_uses(checked)
        if alias is not None or joins is not None or uses - {"today"}:
            return F.compile_value(checked, self.sql_context(table, alias, joins=joins))
        key = ("sql", table.key, f.config["formula"], self.service.session.get_bind().dialect.name)
        ctx = self.sql_context(table)
        day = ctx.today if uses else None
        hit = self._checked.get(key)
        if hit is None or hit[0] != day:
            hit = self._checked[key] = (day, F.compile_value(checked, ctx))
        return hit[1]

    def condition(self, table: Table, source: str, *, user_scope=None, joins=None):
        """A filter formula as a WHERE clause (a user's filter runs under their rights);
        ``joins``: aggregates as grouped joins (see ``SqlContext``)."""
        checked = self.checked(table.key, source, where="Filter")
        ctx = self.sql_context(table, user_scope=user_scope, joins=joins)
        try:
            return F.compile_condition(checked, ctx)
        except F.FormulaError as exc:
            raise InvalidFormula("Filter", exc) from None

    def sort_expr(self, table: Table, source: str):
        checked = self.checked(table.key, source, where="Sort")
        return F.compile_value(checked, self.sql_context(table))

    def eval_context(self) -> F.EvalContext:
        return F.EvalContext(
            resolver=ServiceResolver(self.service),
            user=self.user_record(),
            user_roles=self.role_names(),
            now=(now := self.now()),
            today=now.date(),
        )

    def evaluate(
        self,
        table: Table,
        stored: str,
        record: Mapping[str, Any],
        expected: ft.FType | None = None,
        where: str = "",
    ) -> Any:
        checked = self.checked(table.key, stored, expected, where)
        return F.evaluate(checked, record, self.eval_context())

    def user_record(self) -> dict[str, Any] | None:
        uid = self.service.actor.user_id
        if uid is None:
            return None
        if self._user is None:
            try:
                rec = self.service.system().get("users", uid)
            except NotFound:
                return None
            self._user = {"id": rec.id, **rec.values}
        return self._user


class ServiceResolver:
    """``RecordResolver`` over the records service, so the interpreter reads
    related records through the same road (and rights) as everything else."""

    MAX_DEPTH = 100

    def __init__(self, service: RecordsService):
        self.service = service
        self._cache: dict[tuple[str, int], dict[str, Any] | None] = {}

    def get(self, table: str, record_id: int) -> Mapping[str, Any] | None:
        key = (table, int(record_id))
        if key not in self._cache:
            try:
                rec = self.service.get(table, record_id)
                self._cache[key] = {"id": rec.id, **rec.values}
            except NotFound:
                self._cache[key] = None
        return self._cache[key]

    def related(self, table: str, record_id: int, field_key: str) -> Sequence[Mapping[str, Any]]:
        return [{"id": r.id, **r.values} for r in self.service.related(table, record_id, field_key)]

    def is_under(self, table: str, node_id: int, ancestor_id: int) -> bool:
        info = self.service.schema.formula_schema().table(table)
        parent = info.parent_field if info else None
        seen = set()
        current: int | None = node_id
        while current is not None and current not in seen and len(seen) < self.MAX_DEPTH:
            if current == ancestor_id:
                return True
            seen.add(current)
            rec = self.get(table, current)
            current = rec.get(parent) if rec and parent else None
        return False
