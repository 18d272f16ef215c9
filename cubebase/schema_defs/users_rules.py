"""Rules on the built-in users table from app files: `permissions` and
`field_permissions` on an app's `key: users` entry.

The users table is shared by every app, so an app manages only the rules of its
own roles there (the roles it lists under `roles:`): applying an app replaces its
roles' rules on `users` and keeps every other role's rules as they are, and its
export writes back only its roles' rules. Everything else works as on any table:
the rules are formulas checked against the schema the app would make, a missing
rule grants nothing, admins are never limited, `users.roles` and `users.active`
stay writable by admins only (``access.ADMIN_ONLY_USER_FIELDS``). Password hashes
and API tokens are not fields of `users` (they live in platform tables no records
path reads), so no rule can show them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..platform.schema import USERS, Schema, Table
from . import ir

if TYPE_CHECKING:
    from .plan import _Builder

ACTIONS = ("read", "create", "update", "delete")


def check_users_rules(app: ir.AppSpec, t: ir.TableSpec, problems) -> None:
    """On `users`, an app writes rules only for the roles it lists itself."""
    if t.key != USERS:
        return
    own = {r.key for r in app.roles}
    for rule in [*t.permissions, *t.field_permissions]:
        if rule.role not in own and rule.role != "admin":
            problems.add(
                rule.at("role"),
                f"on the shared users table an app writes rules only for its own roles: "
                f"list `{rule.role}` under `roles`",
            )


def _acts(rule, actions) -> list[str]:
    return [a for a in actions if getattr(rule, a) is not None]


def plan_users_rules(b: _Builder) -> None:
    """Steps replacing the app's roles' row and field rules on `users`."""
    entry = next((t for t in b.app.tables if t.key == USERS), None)
    live_t = b.live.tables.get(USERS)
    if live_t is None:
        return
    own = {r.key for r in b.app.roles}
    st = b.res.stored
    rules = entry.permissions if entry is not None else []
    new_p = [
        {"role": r.role, **{a: st[(USERS, f"permission:{r.role}:{a}")] for a in _acts(r, ACTIONS)}}
        for r in rules
    ]
    old_all = live_t.config.get("permissions") or []
    if [p for p in old_all if p["role"] in own] != new_p:
        roles = ", ".join(r.role for r in rules) or "none"
        b.add(
            "set_permissions",
            f"Row rules of `users` for the roles of app `{b.app.app}` ({roles})",
            lambda ed, rules=rules: ed.set_permissions(
                USERS, _others(ed, None, own, ACTIONS) + [_given(r, ACTIONS) for r in rules]
            ),
            USERS,
        ).read_changed = True
    by_field: dict[str, list] = {}
    for r in entry.field_permissions if entry is not None else []:
        by_field.setdefault(r.field, []).append(r)
    keys = list(by_field) + [
        f.key
        for f in live_t.fields.values()
        if f.key not in by_field
        and any(r["role"] in own for r in f.config.get("permissions") or [])
    ]
    for fkey in keys:
        if fkey not in live_t.fields:
            continue  # a field the app adds: its rules come once it exists (below)
        frules = by_field.get(fkey, [])
        new_r = [
            {
                "role": r.role,
                **{
                    a: st[(USERS, f"field_permission:{fkey}:{r.role}:{a}")]
                    for a in _acts(r, ("read", "write"))
                },
            }
            for r in frules
        ]
        old = live_t.fields[fkey].config.get("permissions") or []
        if [r for r in old if r["role"] in own] == new_r:
            continue
        roles = ", ".join(r.role for r in frules) or "none"
        b.add(
            "set_field_permissions",
            f"Field rules of `users.{fkey}` for the roles of app `{b.app.app}` ({roles})",
            lambda ed, fkey=fkey, frules=frules: ed.set_field_permissions(
                USERS,
                fkey,
                _others(ed, fkey, own, ("read", "write"))
                + [_given(r, ("read", "write")) for r in frules],
            ),
            USERS,
        )
    for fkey, frules in by_field.items():
        if fkey in live_t.fields:
            continue
        b.add(
            "set_field_permissions",
            f"Field rules of `users.{fkey}` (roles: {', '.join(r.role for r in frules)})",
            lambda ed, fkey=fkey, frules=frules: ed.set_field_permissions(
                USERS, fkey, [_given(r, ("read", "write")) for r in frules]
            ),
            USERS,
        )


def _given(rule, actions) -> dict[str, Any]:
    """A rule as the schema editor takes it: the formulas as written, `display` form."""
    out: dict[str, Any] = {"role": rule.role}
    for a in _acts(rule, actions):
        value = getattr(rule, a)
        out[a] = value
    return out


def _others(ed, field_key: str | None, own: set[str], actions) -> list[dict[str, Any]]:
    """The live rules of the roles of other apps (on the table, or on one field),
    written back as formulas so the editor stores them again unchanged."""
    from ..platform import formulas

    users = ed.schema.table(USERS)
    live = (
        users.config.get("permissions")
        if field_key is None
        else users.field(field_key).config.get("permissions")
    ) or []
    return [
        {
            "role": r["role"],
            **{a: formulas.display(ed.schema, USERS, r[a]) for a in actions if r.get(a)},
        }
        for r in live
        if r["role"] not in own
    ]


def add_users_rules(
    specs: list[ir.TableSpec], schema: Schema, app_key: str | None, roles: list[str]
) -> None:
    """Export: the rules of ``roles`` on `users` into the users entry of ``specs``
    (added first when the app adds no users fields). ``app_key`` None: every rule."""
    from ..platform import formulas

    if not schema.has_table(USERS):
        return
    users: Table = schema.table(USERS)
    own = set(roles)

    def mine(role: str) -> bool:
        return app_key is None or role in own

    show = lambda stored: formulas.display(schema, USERS, stored)  # noqa: E731
    perms = [
        ir.RowPermission(role=r["role"], **{a: show(r[a]) for a in ACTIONS if r.get(a)})
        for r in users.config.get("permissions") or []
        if mine(r["role"])
    ]
    fperms = [
        ir.FieldPermission(
            field=f.key, role=r["role"], **{a: show(r[a]) for a in ("read", "write") if r.get(a)}
        )
        for f in users.fields.values()
        for r in f.config.get("permissions") or []
        if mine(r["role"])
    ]
    if not perms and not fperms:
        return
    entry = next((s for s in specs if s.key == USERS), None)
    if entry is None:
        entry = ir.TableSpec(key=USERS)
        specs.insert(0, entry)
    entry.permissions = perms
    entry.field_permissions = fperms
