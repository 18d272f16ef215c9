"""Words for the plan's steps: a formula on one line, a field as a reader sees it, what a
list (views, roles) gains and loses, the row permissions a step sets.
"""

from __future__ import annotations

from . import ir
from .export import default_label


def acts(rule) -> list[str]:
    names = ("read", "create", "update", "delete", "write")
    return [a for a in names if getattr(rule, a, None) is not None]


def one_line(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= 80 else text[:77] + "..."


def field_words(f: ir.FieldSpec) -> str:
    label = f.label or default_label(f.key)
    extra = []
    if f.type == "link":
        extra.append(f"{'many links' if f.many else 'a link'} to `{f.to}`")
    elif f.type == "formula":
        extra.append(f"= `{one_line(f.formula)}`")
    else:
        extra.append(f.type.replace("_", " "))
    if f.required:
        extra.append("required")
    if f.unique:
        extra.append("unique")
    return f"{label} (`{f.key}`, {', '.join(extra)})"


def list_change_words(what: str, new: list[str], old: list[str]) -> str:
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old]
    parts = []
    if added:
        parts.append("add " + ", ".join(f"`{k}`" for k in added))
    if removed:
        parts.append("remove " + ", ".join(f"`{k}`" for k in removed))
    if changed and not added and not removed:
        parts.append("change " + ", ".join(f"`{k}`" for k in changed))
    return f"{what}: {'; '.join(parts)}"


def perm_words(t: ir.TableSpec, old: list[dict]) -> str:
    old_roles = [p["role"] for p in old]
    new_roles = [r.role for r in t.permissions]
    text = list_change_words(f"Row permissions of `{t.key}`", new_roles, old_roles)
    reads = [f"{r.role} reads `{one_line(r.read)}`" for r in t.permissions if r.read]
    return text + (f" ({'; '.join(reads)})" if reads else "")
