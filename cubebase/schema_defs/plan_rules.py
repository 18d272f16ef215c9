"""The plan's rule steps (a hook of ``plan._Builder``): validation rules, the lock rule,
row permissions and field permissions of each table, compared in their stored form so
a rule written differently but meaning the same is no change. A changed read rule is
marked so a dry run counts the records each user would stop or start seeing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..platform.schema import USERS, Field
from . import ir
from .plan_words import acts, one_line, perm_words

if TYPE_CHECKING:
    from .plan import _Builder


def plan_rules(b: _Builder) -> None:
    """Each table's validations, lock, row and field permissions."""
    st = b.res.stored
    for t in b.app.tables:
        if t.key == USERS:
            continue
        live_t = b.res.tables[t.key]
        cfg = live_t.config if live_t is not None else {}
        # validations
        new_v = [(st[(t.key, f"validation:{i}")], v.message) for i, v in enumerate(t.validations)]
        old_v = [(v["rule"], v["message"]) for v in cfg.get("validations") or []]
        if new_v != old_v:
            added = [v for v, s in zip(t.validations, new_v, strict=True) if s not in old_v]
            removed = len([o for o in old_v if o not in new_v])
            parts = [f"add `{one_line(v.rule)}`" for v in added]
            if removed:
                parts.append(f"remove {removed} rule{'s' if removed != 1 else ''}")
            step = b.add(
                "set_validations",
                f"Validation rules of `{t.key}`: {', '.join(parts) or 'reordered'}",
                lambda ed, t=t: ed.set_validations(
                    t.key, [{"rule": v.rule, "message": v.message} for v in t.validations]
                ),
                t.key,
            )
            step.new_rules = added
        # lock
        new_lock = st.get((t.key, "lock"))
        if (new_lock or None) != (cfg.get("lock") or None):
            b.add(
                "set_lock",
                f"Lock records of `{t.key}` where `{one_line(t.lock)}`"
                if t.lock
                else f"Records of `{t.key}` are no longer locked by a rule",
                lambda ed, t=t: ed.set_lock(t.key, t.lock),
                t.key,
            )
        # row permissions
        new_p = [
            {"role": r.role, **{a: st[(t.key, f"permission:{r.role}:{a}")] for a in acts(r)}}
            for r in t.permissions
        ]
        old_p = cfg.get("permissions") or []
        if new_p != old_p:
            step = b.add(
                "set_permissions",
                perm_words(t, old_p),
                lambda ed, t=t: ed.set_permissions(
                    t.key,
                    [
                        {"role": r.role, **{a: getattr(r, a) for a in acts(r)}}
                        for r in t.permissions
                    ],
                ),
                t.key,
            )
            old_read = {p["role"]: p.get("read") for p in old_p}
            new_read = {p["role"]: p.get("read") for p in new_p}
            step.read_changed = old_read != new_read
        # field permissions
        by_field: dict[str, list] = {}
        for r in t.field_permissions:
            by_field.setdefault(r.field, []).append(r)
        keys = list(by_field)
        if live_t is not None:
            for lf in live_t.fields.values():
                if lf.config.get("permissions"):
                    key = _ir_key(b, t, lf)
                    if key is not None and key not in keys:
                        keys.append(key)
        for fkey in keys:
            rules = by_field.get(fkey, [])
            new_r = [
                {
                    "role": r.role,
                    **{a: st[(t.key, f"field_permission:{fkey}:{r.role}:{a}")] for a in acts(r)},
                }
                for r in rules
            ]
            lf = b.res.fields.get((t.key, fkey))
            old_r = (lf.config.get("permissions") or []) if lf is not None else []
            if new_r != old_r:
                roles = ", ".join(r.role for r in rules) or "none"
                b.add(
                    "set_field_permissions",
                    f"Field rules of `{t.key}.{fkey}` (roles: {roles})",
                    lambda ed, t=t, fkey=fkey, rules=rules: ed.set_field_permissions(
                        t.key,
                        fkey,
                        [{"role": r.role, **{a: getattr(r, a) for a in acts(r)}} for r in rules],
                    ),
                    t.key,
                )


def _ir_key(b: _Builder, t: ir.TableSpec, lf: Field) -> str | None:
    for f in t.fields:
        if b.res.fields.get((t.key, f.key)) is lf:
            return f.key
    return None
