"""The schema an app would make: a ``Schema`` snapshot from metadata rows that are never
saved (live ids for what exists, fresh ids for what is new), so every formula, rule
and link of the app is checked against it before anything is applied (part of
``validate.resolve``).
"""

from __future__ import annotations

import itertools
from typing import Any

from .. import formula as F
from ..platform.models import FieldDef, TableDef
from ..platform.schema import USERS, Field, Schema, Table
from ..platform.schema_changes.tables import system_field_defs
from . import ir
from .resolved import Resolved, platform_config


def virtual_schema(res: Resolved) -> Schema:
    live = res.live
    new_ids = itertools.count(10_000_000 + max([0, *live.by_id] + _field_ids(live)))
    ir_by_key = {t.key: t for t in res.app.tables}
    gone_tables = {t.id for t in res.deleted_tables}
    gone_fields = {f.id for f in res.deleted_fields}
    table_ids: dict[str, int] = {}
    for key, table in res.tables.items():
        table_ids[key] = table.id if table is not None else next(new_ids)
    rebuilt = {table_ids[k] for k in ir_by_key if k != USERS and k in table_ids}
    field_ids: dict[tuple[str, str], int] = {}
    for (tkey, fkey), lf in res.fields.items():
        field_ids[(tkey, fkey)] = lf.id if lf is not None else next(new_ids)
    ir_field_ids = set(field_ids.values())

    tdefs: list[TableDef] = []
    fdefs: list[FieldDef] = []
    for table in live.tables.values():
        if table.id in gone_tables or table.id in rebuilt:
            continue
        tdefs.append(_tdef(table.id, table.key, table.label, table.display_field, table))
    for t in res.app.tables:
        if t.key == USERS or t.key not in table_ids:
            continue
        live_t = res.tables[t.key]
        tdefs.append(
            _tdef(table_ids[t.key], t.key, t.label or t.key, t.display, live_t, app=res.app.app)
        )
        have = live_t.fields if live_t is not None else {}
        fdefs += system_field_defs(
            table_ids[t.key],
            lambda fkey, have=have: have[fkey].id if have.get(fkey) else next(new_ids),
        )
    # live fields that stay as they are
    for table in live.tables.values():
        if table.id in gone_tables:
            continue
        for lf in table.fields.values():
            if lf.id in gone_fields or lf.id in ir_field_ids:
                continue
            if table.id in rebuilt and lf.link_kind not in ("reverse", "reverse_many"):
                continue
            if lf.link_kind in ("reverse", "reverse_many"):
                fwd = lf.config.get("reverse_of")
                if fwd in ir_field_ids or fwd in gone_fields or _in_tables(live, fwd, gone_tables):
                    continue
            fdefs.append(_fdef_live(lf))
    # the app's fields, then the reverse sides they name
    used: dict[int, set[str]] = {}
    for fd in fdefs:
        used.setdefault(fd.table_id, set()).add(fd.key)
    reverse: list[tuple[ir.FieldSpec, int, int, int]] = []
    for t in res.app.tables:
        if t.key not in table_ids:
            continue  # refused above
        for pos, f in enumerate(t.fields, start=1):
            fid = field_ids.get((t.key, f.key))
            if fid is None:
                continue  # refused above
            config = platform_config(f)
            if f.type == "link":
                config["to"] = table_ids.get(f.to) or _live_id(live, f.to)
                if config["to"] is None:
                    continue  # a link to an unknown table: reported below
                if f.many:
                    config["many"] = True
            if f.type == "formula":
                config["formula"] = f.formula
                config["result_type"] = "text"
            if f.related_name:
                config["related_name"] = f.related_name
                target_key = USERS if f.type == "user" else f.to
                target_id = table_ids.get(target_key) or _live_id(live, target_key)
                if target_id is not None:
                    reverse.append((t, f, fid, target_id, pos))
            used.setdefault(table_ids[t.key], set()).add(f.key)
            fdefs.append(
                FieldDef(
                    id=fid,
                    table_id=table_ids[t.key],
                    key=f.key,
                    label=f.label or f.key,
                    type=f.type,
                    required=f.required,
                    unique=f.unique,
                    default=None,
                    help=f.help,
                    position=(300 if t.key == USERS else 0) + pos,
                    system=False,
                    config=config,
                )
            )
    for t, f, fid, target_id, pos in reverse:
        if f.related_name in used.setdefault(target_id, set()):
            res.clashes.append((t, f))
            continue
        used[target_id].add(f.related_name)
        lf = res.fields[(t.key, f.key)]
        live_rev = _live_reverse(live, lf, f.related_name) if lf is not None else None
        rcfg: dict[str, Any] = {"reverse_of": fid}
        if f.many:
            rcfg["many"] = True
        fdefs.append(
            FieldDef(
                id=live_rev.id if live_rev is not None else next(new_ids),
                table_id=target_id,
                key=f.related_name,
                label=f.related_name,
                type="link",
                position=500 + pos,
                config=rcfg,
                required=False,
                unique=False,
                system=False,
            )
        )
    fdefs.sort(key=lambda d: (d.position, d.id))
    schema = Schema.from_defs(0, tdefs, fdefs, live.timezone)
    return _settle_result_types(schema, tdefs, fdefs, table_ids, field_ids)


def _settle_result_types(schema: Schema, tdefs, fdefs, table_ids, field_ids) -> Schema:
    """A formula field's type is its formula's, and a formula reading it through a link
    (``parent.total``, ``SUM(children.total)``) takes it from the field's ``result_type``:
    check the app's formula fields and rebuild until every result type holds."""
    from ..platform.formulas import result_type_name

    ids = {fid: key for key, fid in field_ids.items()}
    formula_defs = [
        (ids[fd.id], fd)
        for fd in fdefs
        if fd.type == "formula" and fd.id in ids and fd.config.get("formula")
    ]
    for _ in range(len(formula_defs) + 1):
        fs = schema.formula_schema()
        changed = False
        for (tkey, fkey), fd in formula_defs:
            try:
                checked = F.check(fd.config["formula"], fs, tkey, field_key=fkey)
            except F.FormulaError:
                continue
            kind = result_type_name(checked.type)
            if fd.config.get("result_type") != kind:
                fd.config = {**fd.config, "result_type": kind}
                changed = True
        if not changed:
            break
        schema = Schema.from_defs(0, tdefs, fdefs, schema.timezone)
    return schema


def _live_reverse(schema: Schema, fwd: Field, name: str) -> Field | None:
    """The live reverse side of link ``fwd``, when it keeps the name ``name``."""
    target = schema.tables.get(fwd.target_key or "")
    if target is None:
        return None
    rf = target.fields.get(name)
    return rf if rf is not None and rf.config.get("reverse_of") == fwd.id else None


def _field_ids(schema: Schema) -> list[int]:
    return [f.id for t in schema.tables.values() for f in t.fields.values()]


def _in_tables(schema: Schema, field_id: Any, table_ids: set[int]) -> bool:
    return any(
        t.field_by_id(field_id) is not None for t in schema.tables.values() if t.id in table_ids
    )


def _live_id(schema: Schema, key: str | None) -> int | None:
    t = schema.tables.get(key) if key else None
    return t.id if t else None


def _tdef(tid, key, label, display, live_t: Table | None, app=None) -> TableDef:
    return TableDef(
        id=tid,
        key=key,
        label=label,
        display_field=display,
        app=live_t.app if live_t is not None and app is None else app,
        system=live_t.system if live_t is not None else False,
        config={},
    )


def _fdef_live(lf: Field) -> FieldDef:
    return FieldDef(
        id=lf.id,
        table_id=lf.table_id,
        key=lf.key,
        label=lf.label,
        type=lf.type,
        required=lf.required,
        unique=lf.unique,
        default=lf.default,
        help=lf.help,
        position=lf.position,
        system=lf.system,
        config=dict(lf.config),
    )
