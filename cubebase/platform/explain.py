"""Preview and explain permissions: "what can X see here?" and "why can X see Y?".

``explain_table`` shows, for a user and a table, the rules in effect per action
and how many rows the user can read (capped: a big table never waits on an exact
count). ``explain_record`` evaluates every rule of the user's roles on one
record (with the interpreter, as a write would) and says in words which role's
rule grants or denies each action, and each field. The CLI's ``cubebase access``
and the designer's "view as this user" page use both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .access import Access, singular
from .actor import Actor
from .errors import NotFound
from .formulas import display
from .permission_rules import ROW_ACTIONS, field_rules, lock_rule, row_rules

COUNT_CAP = 100_000


def _who(actor: Actor) -> str:
    return actor.label()


def explain_table(
    platform, session: Session, actor: Actor, table_key: str, *, cap: int = COUNT_CAP
) -> dict[str, Any]:
    """The rules in effect for ``actor`` on a table, and how many rows they can read."""
    service = platform.records(session, actor)
    table = service.table(table_key)
    access = service.access
    schema = service.schema
    actions: dict[str, Any] = {}
    for action in ROW_ACTIONS:
        rules = [
            {"role": r["role"], "rule": display(schema, table.key, r[action])}
            for r in access.rules(table)
            if r.get(action)
        ]
        if access.unlimited:
            effect = "every record (administrator)"
        elif not rules:
            effect = "nothing: none of the user's roles has a rule for this"
        else:
            effect = " OR ".join(f"({r['rule']})" for r in rules)
        actions[action] = {"rules": rules, "effect": effect}
    visible = service.count(table_key, cap=cap)
    hidden, sometimes = access.hidden_fields(table)
    lock = lock_rule(table)
    return {
        "user": _who(actor),
        "roles": sorted(actor.roles),
        "admin": access.unlimited,
        "table": table.key,
        "actions": actions,
        "visible_rows": min(visible, cap),
        "more_than_cap": visible > cap,
        "hidden_fields": sorted(hidden),
        "fields_hidden_on_some_records": sorted(sometimes),
        "lock": display(schema, table.key, lock) if lock else None,
    }


def explain_record(
    platform,
    session: Session,
    actor: Actor,
    table_key: str,
    record_id: Any,
    field_key: str | None = None,
) -> dict[str, Any]:
    """Why ``actor`` may or may not read, change and delete one record (and its fields)."""
    service = platform.records(session, actor)
    table = service.table(table_key)
    system = service.system()
    try:
        rec = system._fetch(table, int(record_id), trashed=None, whole=True)
    except (TypeError, ValueError):
        raise NotFound(f"No {singular(table)} with id {record_id}") from None
    record = {"id": rec.id, **rec.values}
    access: Access = service.access
    schema = service.schema
    who = _who(actor)
    thing = f"this {singular(table)}"
    locked = access.locked(table, record)
    out: dict[str, Any] = {
        "user": who,
        "roles": sorted(actor.roles),
        "table": table.key,
        "record": rec.id,
        "in_trash": rec.deleted_at is not None,
        "locked": locked,
        "actions": {},
        "fields": {},
    }
    mine = {r["role"]: r for r in row_rules(table) if r["role"] in actor.roles}
    for action in ROW_ACTIONS:
        evaluated = []
        for role, rule in mine.items():
            if rule.get(action):
                ok = access.holds(table, rule[action], record, f"{action} rule")
                evaluated.append(
                    {
                        "role": role,
                        "rule": display(schema, table.key, rule[action]),
                        "result": ok,
                    }
                )
        if access.unlimited:
            allowed, because = True, f"{who} is an administrator: rules do not limit them"
        elif not evaluated:
            allowed = False
            because = (
                f"none of {who}'s roles ({', '.join(sorted(actor.roles)) or 'no roles'}) "
                f"has a {action} rule on {table.label}"
            )
        else:
            granted = [e for e in evaluated if e["result"]]
            allowed = bool(granted)
            if granted:
                e = granted[0]
                because = f"role {e['role']}: `{e['rule']}` is TRUE for {thing}"
            else:
                because = "; ".join(
                    f"role {e['role']}: `{e['rule']}` is FALSE for {thing}" for e in evaluated
                )
        if action != "read" and allowed and not access.unlimited:
            if not out["actions"]["read"]["allowed"]:
                allowed, because = False, f"{who} cannot read {thing}, so cannot {action} it"
        if action in ("update", "delete") and locked:
            allowed = False
            because = (
                f"{thing} is locked by `{display(schema, table.key, lock_rule(table))}`: "
                "nobody may change it, administrators included"
            )
        out["actions"][action] = {"allowed": allowed, "because": because, "rules": evaluated}
    keys = [field_key] if field_key else [k for k, f in table.fields.items() if field_rules(f)]
    for key in keys:
        f = table.field(key)
        entry = {}
        for action, row_action in (("read", "read"), ("write", "update")):
            ok = access.field_allows(table, f, action, record, row_action)
            row_ok = out["actions"][row_action]["allowed"]
            entry[action] = ok and row_ok
            rules = [
                f"role {r['role']}: {action} `{display(schema, table.key, r[action])}`"
                for r in field_rules(f)
                if r["role"] in actor.roles and r.get(action)
            ]
            if not row_ok:
                entry[f"{action}_because"] = out["actions"][row_action]["because"]
            elif access.unlimited:
                entry[f"{action}_because"] = f"{who} is an administrator"
            elif rules:
                entry[f"{action}_because"] = "; ".join(rules)
            else:
                entry[f"{action}_because"] = "no field rule limits it for the user's roles"
        out["fields"][key] = entry
    return out


def describe(result: dict[str, Any]) -> str:
    """An explanation as lines of text for the command line."""
    lines = [f"{result['user']} (roles: {', '.join(result['roles']) or 'none'})"]
    if "record" in result:
        head = f"{result['table']} #{result['record']}"
        if result["in_trash"]:
            head += " (in the trash)"
        if result["locked"]:
            head += " (locked)"
        lines.append(head)
        for action, e in result["actions"].items():
            lines.append(f"  {action:<7} {'yes' if e['allowed'] else 'no ':<4} {e['because']}")
        for key, e in result["fields"].items():
            lines.append(
                f"  field {key}: read {'yes' if e['read'] else 'no'} ({e['read_because']}); "
                f"write {'yes' if e['write'] else 'no'} ({e['write_because']})"
            )
        return "\n".join(lines)
    n = f"{result['visible_rows']:,}" + ("+" if result["more_than_cap"] else "")
    lines.append(f"{result['table']}: {n} records visible")
    for action, e in result["actions"].items():
        lines.append(f"  {action:<7} {e['effect']}")
    if result["hidden_fields"]:
        lines.append(f"  hidden fields: {', '.join(result['hidden_fields'])}")
    if result["fields_hidden_on_some_records"]:
        lines.append(
            "  fields hidden on some records: " + ", ".join(result["fields_hidden_on_some_records"])
        )
    if result["lock"]:
        lines.append(f"  locked when: {result['lock']}")
    return "\n".join(lines)
