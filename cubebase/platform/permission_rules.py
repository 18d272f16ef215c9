"""Permission rules as data: how row rules, field rules and lock rules are kept.

Row rules live in the table's settings, field rules in the field's, each
formula in stored form (field references by id, so renames never break them)::

    table.config["permissions"] = [{"role": "salesperson", "read": "...", "update": "..."}]
    table.config["lock"] = "..."
    field.config["permissions"] = [{"role": "finance", "read": "FALSE"}]

A role has at most one rule per table (and per field); an action a rule leaves
out grants nothing, except a field rule's missing ``read`` (the field stays
readable) and missing ``write`` (writable wherever readable). Enforcement is in
``access.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..formula import types as ft
from . import formulas
from .actor import ADMIN_ROLE
from .errors import BadRequest
from .users import role_keys

if TYPE_CHECKING:
    from .schema import Field, Schema, Table

ROW_ACTIONS = ("read", "create", "update", "delete")
FIELD_ACTIONS = ("read", "write")


def _source(value: Any) -> Any:
    """YAML and JSON give ``true``/``false`` for the constant rules."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value


def _store_rules(
    session: Session,
    schema: Schema,
    table: Table,
    rules: Any,
    actions: tuple[str, ...],
    what: str,
) -> list[dict[str, str]]:
    if not isinstance(rules, list | tuple):
        raise BadRequest(f"{what}: give a list of rules, one per role")
    known = set(role_keys(session))
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for i, rule in enumerate(rules):
        where = f"{what}, rule {i + 1}"
        if not isinstance(rule, dict):
            raise BadRequest(f"{where}: a rule is an object with `role` and the actions")
        unknown = sorted(set(rule) - {"role", *actions})
        if unknown:
            raise BadRequest(
                f"{where}: unknown key `{unknown[0]}` (a rule has role, {', '.join(actions)})"
            )
        role = rule.get("role")
        if not isinstance(role, str) or role not in known:
            raise BadRequest(
                f"{where}: unknown role `{role}` (roles: {', '.join(sorted(known)) or 'none'})"
            )
        if role == ADMIN_ROLE:
            raise BadRequest(f"{where}: administrators are not limited by rules; remove this rule")
        if role in seen:
            raise BadRequest(f"{where}: role `{role}` already has a rule here; merge the two")
        seen.add(role)
        stored: dict[str, str] = {"role": role}
        for action in actions:
            if rule.get(action) is None:
                continue
            stored[action], _ = formulas.store(
                schema,
                table.key,
                _source(rule[action]),
                f"{where} ({role}), {action}",
                ft.BOOLEAN,
            )
        out.append(stored)
    return out


def store_row_rules(
    session: Session, schema: Schema, table: Table, rules: Any
) -> list[dict[str, str]]:
    """Check row rules as an admin typed them; their stored form."""
    return _store_rules(session, schema, table, rules, ROW_ACTIONS, f"Permissions of `{table.key}`")


def store_field_rules(
    session: Session, schema: Schema, table: Table, f: Field, rules: Any
) -> list[dict[str, str]]:
    """Check a field's rules as an admin typed them; their stored form."""
    return _store_rules(
        session, schema, table, rules, FIELD_ACTIONS, f"Permissions of `{table.key}.{f.key}`"
    )


def row_rules(table: Table) -> list[dict[str, str]]:
    return list(table.config.get("permissions") or [])


def field_rules(f: Field) -> list[dict[str, str]]:
    return list(f.config.get("permissions") or [])


def lock_rule(table: Table) -> str | None:
    return table.config.get("lock") or None


def rule_formulas(table: Table) -> list[tuple[str, str]]:
    """(what, stored formula) of every permission and lock rule of a table, so that
    deleting a field a rule reads is refused like any other formula use."""
    out = []
    for rule in row_rules(table):
        for action in ROW_ACTIONS:
            if rule.get(action):
                out.append((f"the {action} rule of `{table.key}` for {rule['role']}", rule[action]))
    if lock_rule(table):
        out.append((f"the lock rule of `{table.key}`", table.config["lock"]))
    for f in table.fields.values():
        for rule in field_rules(f):
            for action in FIELD_ACTIONS:
                if rule.get(action):
                    out.append(
                        (
                            f"the {action} rule of `{table.key}.{f.key}` for {rule['role']}",
                            rule[action],
                        )
                    )
    return out
