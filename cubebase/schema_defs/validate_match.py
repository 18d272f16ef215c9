"""Matching an app's tables and fields to the live ones (by key, or by ``renamed_from``),
refusing what cannot change in place, and listing what the app no longer has
(part of ``validate.resolve``).
"""

from __future__ import annotations

from ..platform.schema import USERS, Field, Schema, Table
from ..platform.schema_changes import CONVERTIBLE
from . import ir
from .errors import Problems
from .resolved import Resolved, app_tables, app_user_fields


def match_live(
    app: ir.AppSpec, live: Schema, live_roles: dict[str, str], problems: Problems
) -> Resolved:
    res = Resolved(app, live, live)
    res.roles = dict(live_roles)
    for role in app.roles:
        res.roles.setdefault(role.key, role.label or role.key)
    claimed: set[str] = set()
    for t in app.tables:
        table = live.tables.get(t.key)
        if t.key == USERS:
            if table is None:  # pragma: no cover - every initialised platform has it
                problems.add(t.at("key"), "the built-in users table is missing: run cubebase init")
            res.tables[t.key] = table
            claimed.add(t.key)
            _match_fields(res, t, table, problems)
            continue
        if table is not None and table.app not in (None, app.app):
            problems.add(
                t.at("key"),
                f"table `{t.key}` belongs to the app `{table.app}`; choose another key",
            )
            continue
        if table is not None and table.system:
            problems.add(t.at("key"), f"`{t.key}` is a built-in table")
            continue
        if table is None and t.renamed_from:
            old = live.tables.get(t.renamed_from)
            if old is not None and old.app in (None, app.app) and not old.system:
                table = old
        if table is not None and table.key in claimed:
            problems.add(t.at("renamed_from"), f"table `{table.key}` is already used above")
            continue
        if table is not None:
            claimed.add(table.key)
        res.tables[t.key] = table
        _match_fields(res, t, table, problems)
    for table in app_tables(live, app.app):
        if table.key not in claimed:
            res.deleted_tables.append(table)
    return res


def _match_fields(res: Resolved, t: ir.TableSpec, table: Table | None, problems: Problems) -> None:
    claimed: set[str] = set()
    for f in t.fields:
        lf = table.fields.get(f.key) if table is not None else None
        if lf is None and f.renamed_from and table is not None:
            lf = table.fields.get(f.renamed_from)
            if lf is not None and (lf.system or lf.link_kind in ("reverse", "reverse_many")):
                lf = None
        if lf is not None and lf.link_kind in ("reverse", "reverse_many"):
            problems.add(
                f.at("key"),
                f"`{t.key}.{f.key}` is the other side of the link `{lf.target_key}."
                f"{_fwd_key(res.live, lf)}` (its related_name); choose another key",
            )
            continue
        if lf is not None and lf.key in claimed:
            problems.add(f.at("renamed_from"), f"field `{lf.key}` is already used above")
            continue
        if lf is not None:
            claimed.add(lf.key)
            if lf.type != f.type and not _convertible(lf.type, f.type):
                problems.add(
                    f.at("type"),
                    f"`{t.key}.{f.key}` cannot change from {lf.type} to {f.type}: "
                    "add a new field and delete this one",
                )
            elif lf.type == f.type == "link":
                target = res.live.by_id.get(lf.config.get("to"))
                want = f.to
                if target is not None and want != target.key:
                    renamed_target = next(
                        (x.key for x in res.app.tables if x.renamed_from == target.key), None
                    )
                    if want != renamed_target:
                        problems.add(
                            f.at("to"),
                            f"where `{t.key}.{f.key}` links to cannot change in place "
                            f"(now `{target.key}`): add a new field and delete this one",
                        )
                if bool(lf.config.get("many")) != f.many:
                    problems.add(
                        f.at("many"),
                        f"`{t.key}.{f.key}` cannot switch between one and many links in place: "
                        "add a new field and delete this one",
                    )
        res.fields[(t.key, f.key)] = lf
    if table is None:
        return
    if table.key == USERS:
        owned = set(app_user_fields(res.live, res.app.app))
        candidates = [table.fields[k] for k in owned if k in table.fields]
    else:
        candidates = [
            lf
            for lf in table.fields.values()
            if not lf.system and lf.link_kind not in ("reverse", "reverse_many")
        ]
    for lf in candidates:
        if lf.key not in claimed:
            res.deleted_fields.append(lf)


def _convertible(old: str, new: str) -> bool:
    return old in CONVERTIBLE and new in CONVERTIBLE


def _fwd_key(schema: Schema, reverse: Field) -> str:
    target = schema.tables.get(reverse.target_key)
    fwd = target.field_by_id(reverse.config.get("reverse_of")) if target else None
    return fwd.key if fwd else "?"
