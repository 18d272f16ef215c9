"""Who may do what, for one actor: row rules, field rules and the lock rule.

The records service asks this class on every path; nothing else decides.

- **Read** rules compile to one WHERE condition per table (the OR of the actor's
  roles' rules), added to every list, get, count, search, history and related
  list. A record outside it does not exist for the actor (404).
- **Writes** are checked by the interpreter on the record (the formula spec's
  "interpreter for a write"): an update needs a role whose ``update`` rule holds
  on the record before the change, and after the change the record must still be
  readable and updatable by the actor, so nobody moves a record out of their own
  reach; a create needs a role whose ``create`` rule holds on the new record and
  a role whose ``read`` rule does; a delete or restore needs a ``delete`` rule.
- **Field rules** narrow a role's view of a field: a field is readable on a
  record when one of the actor's roles grants the record (its read rule) and
  either has no rule for the field or its field ``read`` rule holds there. A
  field hidden on every record is left out of the SELECT; one hidden on some
  records gets a flag column (SQL ``CASE``) and is removed from those records.
  Writing a field needs the same with the field's ``write`` rule (missing:
  its ``read`` rule). ``users.roles`` and ``users.active`` only admins change.
- The **lock** rule binds everyone, admins and the platform itself included.
- Admins (and the platform's own system actor) are not limited by row and field
  rules. Rules are admin-defined: they read other tables in system context, with
  the actor's own ``USER()`` and roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import formula as F
from ..formula import ast as A
from ..formula import types as ft
from .errors import BadRequest, Forbidden, LockedError
from .formulas import ServiceResolver, context_uses, display
from .permission_rules import ROW_ACTIONS, field_rules, lock_rule, row_rules
from .schema import USERS

if TYPE_CHECKING:
    from .records import RecordsService
    from .schema import Field, Table

ADMIN_ONLY_USER_FIELDS = frozenset({"roles", "active"})
_TRUE, _FALSE = "TRUE", "FALSE"  # a rule that is a constant, after checking


class Access:
    """The rights of the records service's actor (one per service, so per request)."""

    def __init__(self, service: RecordsService):
        self.service = service
        self.actor = service.actor
        self.unlimited = service.actor.is_admin
        self._sql: dict[tuple, Any] = {}
        self._fields: dict[int, tuple[frozenset[str], dict[str, Any]]] = {}
        self._eval: F.EvalContext | None = None

    # --- which rules apply --------------------------------------------------------
    def rules(self, table: Table) -> list[dict[str, str]]:
        """The row rules of the actor's roles on ``table``."""
        roles = self.actor.roles
        return [r for r in row_rules(table) if r["role"] in roles]

    def _checked(self, table: Table, stored: str, what: str) -> F.CheckedFormula:
        return self.service.formulas.checked(table.key, stored, ft.BOOLEAN, where=what)

    def _const(self, table: Table, stored: str | None, what: str) -> str | None:
        """TRUE/FALSE when a rule is a constant, else None (it depends on the record)."""
        if stored is None:
            return _TRUE
        root = self._checked(table, stored, what).root
        if isinstance(root, A.TLit):
            return _TRUE if root.value is True else _FALSE
        return None

    def template_key(self, table: Table) -> tuple | None:
        """What a statement template built under these rights depends on besides the
        user id (a bound parameter): the role set, and the day for rules reading
        TODAY(). None when a rule reads NOW() (built per request)."""
        roles = frozenset(self.actor.roles)
        if self.unlimited:
            return ("all", roles)
        # what the rules read, once per schema snapshot, table and role set (every
        # list and get asks)
        key = ("rule_uses", table.id, roles)
        uses = self.service.schema.formula_cache.get(key)
        if uses is None:
            uses = frozenset()
            for stored in self._rule_sources(table):
                uses |= context_uses(self._checked(table, stored, "Permission rule"))
            self.service.schema.formula_cache[key] = uses
        if "now" in uses:
            return None
        day = self.service.formulas.now().date() if "today" in uses else None
        return (roles, day)

    def _rule_sources(self, table: Table):
        for rule in self.rules(table):
            for action in ROW_ACTIONS:
                if rule.get(action):
                    yield rule[action]
        roles = self.actor.roles
        for f in table.fields.values():
            for rule in field_rules(f):
                if rule["role"] in roles:
                    yield from (rule[a] for a in ("read", "write") if rule.get(a))

    # --- SQL ----------------------------------------------------------------------
    def condition(self, table: Table, action: str = "read", alias=None) -> Any:
        """The actor's ``action`` rule on ``table`` as a WHERE condition over ``alias``
        (None: every row). Without a rule for any of the actor's roles: FALSE."""
        if self.unlimited:
            return None
        key = (table.id, action)
        if alias is None and key in self._sql:
            return self._sql[key]
        parts = []
        result: Any = sa.false()
        for rule in self.rules(table):
            stored = rule.get(action)
            if not stored:
                continue
            what = f"The {action} rule of `{table.key}` for {rule['role']}"
            const = self._const(table, stored, what)
            if const == _TRUE:
                result = None
                break
            if const == _FALSE:
                continue
            parts.append(self._compile(table, stored, what, alias))
        else:
            if parts:
                result = parts[0] if len(parts) == 1 else sa.or_(*parts)
        if alias is None:
            self._sql[key] = result
        return result

    def _compile(self, table: Table, stored: str, what: str, alias=None) -> Any:
        checked = self._checked(table, stored, what)
        return F.compile_condition(checked, self.service.formulas.sql_context(table, alias))

    def row_scope(self, info: F.TableInfo, alias) -> Any:
        """For formulas a user writes (filters, sorts, reports): every other table they
        read is limited to the rows the user may read."""
        if self.unlimited:
            return None
        table = self.service.schema.table(info.key)
        cond = self.condition(table, "read", alias)
        return sa.false() if cond is False else cond

    def hidden_fields(self, table: Table) -> tuple[frozenset[str], dict[str, Any]]:
        """(keys hidden on every record, {key: SQL condition under which it is shown})."""
        if self.unlimited:
            return frozenset(), {}
        hit = self._fields.get(table.id)
        if hit is not None:
            return hit
        always: set[str] = set()
        sometimes: dict[str, Any] = {}
        for f in table.fields.values():
            if not field_rules(f):
                continue
            terms = self._field_terms(table, f, "read")
            if terms is None:
                continue
            if not terms:
                always.add(f.key)
                continue
            if len(terms) == 1:
                row, field_rule = terms[0]
                # the row rule already holds for every record the actor reads
                parts = [field_rule] if field_rule is not None else []
            else:
                parts = [sa.and_(*[p for p in term if p is not None]) for term in terms]
            if not parts:
                continue
            sometimes[f.key] = parts[0] if len(parts) == 1 else sa.or_(*parts)
        hit = self._fields[table.id] = (frozenset(always), sometimes)
        return hit

    def _field_terms(self, table: Table, f: Field, action: str) -> list | None:
        """Per granting role, (row condition, field condition) in SQL, constants folded:
        None when the field is readable wherever the record is; [] when never."""
        by_role = {r["role"]: r for r in field_rules(f)}
        terms = []
        for rule in self.rules(table):
            row_src = rule.get("read")
            if not row_src:
                continue
            what = f"The read rule of `{table.key}` for {rule['role']}"
            row_const = self._const(table, row_src, what)
            if row_const == _FALSE:
                continue
            fsrc = _field_source(by_role.get(rule["role"]), action)
            fwhat = f"The {action} rule of `{table.key}.{f.key}` for {rule['role']}"
            fconst = self._const(table, fsrc, fwhat)
            if fconst == _FALSE:
                continue
            row = None if row_const == _TRUE else self._compile(table, row_src, what)
            fcond = None if fconst == _TRUE else self._compile(table, fsrc, fwhat)
            if row is None and fcond is None:
                return None
            terms.append((row, fcond))
        return terms

    def may_read(self, table: Table) -> bool:
        """True when a read rule of the actor's roles on ``table`` can hold (not FALSE):
        the table is listed for them; otherwise it is as if it did not exist."""
        return self.unlimited or any(
            r.get("read")
            and self._const(table, r["read"], f"The read rule of `{table.key}`") != _FALSE
            for r in self.rules(table)
        )

    def readable_tables(self) -> list[Table]:
        return [t for t in self.service.schema.tables.values() if self.may_read(t)]

    def readable_fields(self, table: Table) -> list[Field]:
        """The table's fields less those hidden from the actor on every record."""
        hidden, _ = self.hidden_fields(table)
        return [f for f in table.fields.values() if f.key not in hidden]

    def check_user_formula(self, table: Table, checked: F.CheckedFormula, what: str) -> None:
        """A filter or sort the actor wrote may read only fields the actor can read on
        every record (so no formula can probe a hidden value)."""
        if self.unlimited:
            return
        for table_key, field_key in _fields_read(checked):
            other = self.service.schema.table(table_key)
            always, sometimes = self.hidden_fields(other)
            if field_key in always or field_key in sometimes:
                raise BadRequest(
                    f"{what}: you cannot filter or sort by `{table_key}.{field_key}`",
                    [{"field": field_key}],
                )

    def check_field_readable(
        self, table: Table, field_key: str, what: str, use: str = "filter or sort by"
    ) -> None:
        """A field a filter, sort or aggregate names must be readable on every record."""
        always, sometimes = self.hidden_fields(table)
        if field_key in always or field_key in sometimes:
            raise BadRequest(f"{what}: you cannot {use} `{field_key}`")

    # --- the interpreter, one record ------------------------------------------------
    def eval_context(self) -> F.EvalContext:
        """Admin-defined formulas (rules, defaults, validations) see other tables in
        system context, with the actor's USER() and roles; NOW() is taken afresh."""
        runtime = self.service.formulas
        now = runtime.now()
        if self._eval is None:
            self._eval = F.EvalContext(
                resolver=ServiceResolver(self.service.system()),
                user=runtime.user_record(),
                user_roles=runtime.role_names(),
            )
        return F.EvalContext(
            resolver=self._eval.resolver,
            user=self._eval.user,
            user_roles=self._eval.user_roles,
            now=now,
            today=now.date(),
        )

    def holds(self, table: Table, stored: str, record: Mapping[str, Any], what: str) -> bool:
        checked = self._checked(table, stored, what)
        return F.evaluate(checked, record, self.eval_context()) is True

    def granting_roles(self, table: Table, action: str, record: Mapping[str, Any]) -> list[str]:
        """The actor's roles whose ``action`` rule holds on ``record``."""
        out = []
        for rule in self.rules(table):
            stored = rule.get(action)
            what = f"The {action} rule of `{table.key}` for {rule['role']}"
            if stored and self.holds(table, stored, record, what):
                out.append(rule["role"])
        return out

    def allows(self, table: Table, action: str, record: Mapping[str, Any]) -> bool:
        return self.unlimited or bool(self.granting_roles(table, action, record))

    def field_allows(
        self, table: Table, f: Field, action: str, record: Mapping[str, Any], row_action: str
    ) -> bool:
        """``action`` (read/write) of field ``f`` on ``record``, for a role that also
        grants ``row_action`` on the record."""
        if self.unlimited:
            return True
        if table.key == USERS and action == "write" and f.key in ADMIN_ONLY_USER_FIELDS:
            return False
        by_role = {r["role"]: r for r in field_rules(f)}
        for role in self.granting_roles(table, row_action, record):
            src = _field_source(by_role.get(role), action)
            what = f"The {action} rule of `{table.key}.{f.key}` for {role}"
            if src is None or self.holds(table, src, record, what):
                return True
        return False

    def locked(self, table: Table, record: Mapping[str, Any]) -> bool:
        stored = lock_rule(table)
        if not stored:
            return False
        checked = self.service.formulas.checked(table.key, stored, ft.BOOLEAN, where="Lock rule")
        return F.evaluate(checked, record, self.eval_context()) is True

    # --- the checks the records service makes -------------------------------------
    def check_not_locked(self, table: Table, record: Mapping[str, Any]) -> None:
        if self.locked(table, record):
            raise LockedError(
                f"This {singular(table)} is closed and can no longer be changed",
                [{"lock": display(self.service.schema, table.key, lock_rule(table))}],
            )

    def check_create(self, table: Table, records: list[dict[str, Any]], given: list[set]) -> None:
        """Each new record: a role may create it, the actor could read it, and every
        field the caller set is writable there. Problems are per row in bulk."""
        if self.unlimited:
            return
        if not any(r.get("create") for r in self.rules(table)):
            raise Forbidden(f"You may not add {table.label.lower()}")
        problems = []
        for i, (record, keys) in enumerate(zip(records, given, strict=True)):
            problem = None
            if not self.allows(table, "create", record):
                problem = f"you may not add this {singular(table)}"
            elif not self.allows(table, "read", record):
                problem = f"you could not see this {singular(table)} once added"
            else:
                denied = self._denied_fields(table, keys, record, "create")
                if denied:
                    problem = f"you may not set {_names(denied)}"
            if problem:
                problems.append({"row": i, "message": problem})
        if problems:
            if len(records) == 1:
                raise Forbidden(problems[0]["message"].capitalize(), problems)
            raise Forbidden(f"{len(problems)} of the records may not be added", problems)

    def check_may_update(self, table: Table, before: Mapping[str, Any]) -> None:
        """Before anything else of an update: a role may update the record as it is."""
        if not self.allows(table, "update", before):
            raise Forbidden(f"You may not change this {singular(table)}")

    def check_update(
        self, table: Table, before: Mapping[str, Any], changed: Mapping[str, Any]
    ) -> None:
        """After ``check_may_update``: the changed fields may be written on the record
        as it was, and after the change the actor can still read and update it."""
        if self.unlimited:
            return
        denied = self._denied_fields(table, set(changed), before, "update")
        if denied:
            raise Forbidden(
                f"You may not change {_names(denied)}",
                [{"field": k, "message": "you may not change this field"} for k in denied],
            )
        after = {**before, **changed}
        if not (self.allows(table, "read", after) and self.allows(table, "update", after)):
            raise Forbidden(
                f"This change would move the {singular(table)} out of your reach "
                "(you could no longer see or change it)"
            )

    def _denied_fields(
        self, table: Table, keys: set, record: Mapping[str, Any], row_action: str
    ) -> list[str]:
        denied = []
        for k in sorted(keys):
            f = table.fields.get(k)
            if f is None:
                continue
            ruled = field_rules(f) or (table.key == USERS and k in ADMIN_ONLY_USER_FIELDS)
            if ruled and not self.field_allows(table, f, "write", record, row_action):
                denied.append(k)
        return denied

    def check_delete(self, table: Table, record: Mapping[str, Any]) -> None:
        if not self.allows(table, "delete", record):
            raise Forbidden(f"You may not delete this {singular(table)}")

    def readable_keys(self, table: Table, record: Mapping[str, Any]) -> set[str]:
        """Keys of the fields the actor may read on ``record`` (interpreter)."""
        keys = set(table.fields)
        if self.unlimited:
            return keys
        for f in table.fields.values():
            if field_rules(f) and not self.field_allows(table, f, "read", record, "read"):
                keys.discard(f.key)
        return keys


def _field_source(rule: Mapping[str, str] | None, action: str) -> str | None:
    """A role's field rule for ``action``: None (no limit) when the role has no rule
    or the rule leaves the action out; ``write`` falls back to ``read``."""
    if rule is None:
        return None
    if action == "write":
        return rule.get("write") or rule.get("read")
    return rule.get("read")


def _fields_read(checked: F.CheckedFormula) -> set[tuple[str, str]]:
    """(table, field) of every field the formula itself reads: inside the bodies of
    formula fields it does not look (those are admin-defined, system context)."""
    out: set[tuple[str, str]] = set()
    stack = [checked.root]
    while stack:
        n = stack.pop()
        if isinstance(n, A.TField | A.TNav):
            out.add((n.table.key, n.field.key))
        stack.extend(A.tchildren(n))
    return out


def _names(keys: list[str]) -> str:
    return ", ".join(f"`{k}`" for k in keys)


def singular(table: Table) -> str:
    """ "customer" for Customers: how messages name one record."""
    label = table.label.lower()
    return label[:-1] if label.endswith("s") and not label.endswith("ss") else label
