"""The plan's field steps (hooks of ``plan._Builder``): new fields (plain, then links, then
formula fields each after the formula fields it reads), type changes and changed
settings, defaults, the fields' order, and deletions (fields, then tables, links
between deleted tables first). Each step says in words what it does; a step that can
lose data gets a ``measure`` (see ``dry_run.measure_losses``).
"""

from __future__ import annotations

import graphlib
from typing import TYPE_CHECKING, Any

from .. import formula as F
from ..platform.schema import USERS, Field
from . import ir
from .export import default_label, exported_fields
from .plan_words import field_words, one_line
from .resolved import platform_config

if TYPE_CHECKING:
    from .plan import _Builder


def plan_new_fields(b: _Builder) -> None:
    """New fields: plain ones, then links, then formula fields in dependency order."""
    new = [(t, f) for t in b.app.tables for f in t.fields if b.res.fields[(t.key, f.key)] is None]
    plain = [(t, f) for t, f in new if f.type not in ("link", "formula")]
    links = [(t, f) for t, f in new if f.type == "link"]
    formulas = _formula_order(b, [(t, f) for t, f in new if f.type == "formula"])
    for t, f in [*plain, *links, *formulas]:
        b.added.setdefault(t.key, []).append(f.key)
        b.add(
            "add_field",
            f"Add field {field_words(f)} to `{t.key}`",
            lambda ed, t=t, f=f: ed.add_field(t.key, _add_spec(f)),
            t.key,
        )


def _formula_order(b: _Builder, items: list[tuple]) -> list[tuple]:
    """New formula fields, each after the new formula fields it reads."""
    fs = b.res.virtual.formula_schema()
    by_id = {}
    for t, f in items:
        vf = b.res.virtual.table(t.key).field(f.key)
        by_id[vf.id] = (t, f)
    graph: dict[int, set[int]] = {}
    for fid, (t, f) in by_id.items():
        checked = F.check(f.formula, fs, t.key)
        graph[fid] = {dep for _, dep in F.dependencies(checked) if dep in by_id}
    order = graphlib.TopologicalSorter(graph).static_order()
    return [by_id[i] for i in order]


def plan_changed_fields(b: _Builder) -> None:
    """Type changes (measured for losses) and changed settings of kept fields."""
    for t in b.app.tables:
        for f in t.fields:
            lf = b.res.fields[(t.key, f.key)]
            if lf is None:
                continue
            _type_change(b, t, f, lf)
            _settings_change(b, t, f, lf)


def _type_change(b: _Builder, t: ir.TableSpec, f: ir.FieldSpec, lf: Field) -> None:
    precision_changed = f.type in ("number", "currency") and f.precision != lf.config.get(
        "precision"
    )
    if f.type == lf.type and not precision_changed:
        return
    config = platform_config(f)
    config.pop("indexed", None)
    what = f"`{t.key}.{f.key}`"
    if f.type == lf.type:
        text = f"Change the decimals of {what} to {f.precision if f.precision is not None else 'the default'}"
    else:
        text = f"Change the type of {what} from {lf.type} to {f.type}"
    step = b.add(
        "change_type",
        text,
        lambda ed, t=t, f=f, config=config: ed.change_field_type(
            t.key, f.key, f.type, config, confirm=True
        ),
        t.key,
    )
    step.field_key = f.key
    step.measure = lambda ed, lf=lf, f=f, config=config: ed.preview_type_change(
        lf.table_key, lf.key, f.type, config
    )


def _settings_change(b: _Builder, t: ir.TableSpec, f: ir.FieldSpec, lf: Field) -> None:
    kw: dict[str, Any] = {}
    words: list[str] = []
    label = f.label or default_label(f.key)
    if label != lf.label:
        kw["label"] = label
        words.append(f"label {label}")
    if f.required != lf.required:
        kw["required"] = f.required
        words.append("now required" if f.required else "no longer required")
    if f.unique != lf.unique:
        kw["unique"] = f.unique
        words.append("now unique" if f.unique else "no longer unique")
    if (f.help or None) != (lf.help or None):
        kw["help"] = f.help
        words.append("help text")
    config: dict[str, Any] = {}
    cfg = lf.config
    for name in ("options", "max_length", "currency", "prefix"):
        want = getattr(f, name)
        if (want or None) != (cfg.get(name) or None) and name in ir.TYPE_SETTINGS[f.type]:
            config[name] = want if want is not None else ("" if name == "prefix" else None)
            if name == "options":
                words.append(f"options {', '.join(want or [])}")
            else:
                words.append(f"{name.replace('_', ' ')} {want if want is not None else 'cleared'}")
    if f.indexed != bool(cfg.get("indexed")):
        config["indexed"] = f.indexed
        words.append("indexed" if f.indexed else "no longer indexed")
    if f.type in ("link", "user") and (f.related_name or None) != cfg.get("related_name"):
        config["related_name"] = f.related_name
        words.append(
            f"other side named `{f.related_name}`" if f.related_name else "other side removed"
        )
    if f.type == "formula" and lf.type == "formula":
        stored = b.res.stored[(t.key, f"formula:{f.key}")]
        if stored != cfg.get("formula"):
            config["formula"] = f.formula
            words.append(f"formula `{one_line(f.formula)}`")
    if config:
        kw["config"] = config
    if not kw:
        return
    step = b.add(
        "change_field",
        f"Change field `{t.key}.{f.key}`: {'; '.join(words)}",
        lambda ed, t=t, f=f, kw=kw: ed.update_field(t.key, f.key, **kw),
        t.key,
    )
    step.field_key = f.key
    step.now_required = kw.get("required") is True


def plan_defaults(b: _Builder) -> None:
    """Defaults, compared stored; a type change clears the old one."""
    for t in b.app.tables:
        for f in t.fields:
            lf = b.res.fields[(t.key, f.key)]
            old = lf.default if lf is not None else None
            new = b.res.stored.get((t.key, f"default:{f.key}"))
            if lf is not None and lf.type != f.type:
                old = None  # a type change clears the default
            if (new or None) == (old or None):
                continue
            text = (
                f"Set the default of `{t.key}.{f.key}` to `{one_line(f.default)}`"
                if f.default
                else f"Remove the default of `{t.key}.{f.key}`"
            )
            b.add(
                "set_default",
                text,
                lambda ed, t=t, f=f: ed.update_field(t.key, f.key, default=f.default),
                t.key,
            )


def plan_order(b: _Builder) -> None:
    """Deleted fields are not in ``after``; new ones come last unless moved."""
    for t in b.app.tables:
        live_t = b.res.tables[t.key]
        if t.key == USERS:
            continue
        by_id = {lf.id: f.key for f in t.fields if (lf := b.res.fields[(t.key, f.key)]) is not None}
        after = []
        if live_t is not None:
            after = [by_id[lf.id] for lf in exported_fields(live_t) if lf.id in by_id]
        after += b.added.get(t.key, [])
        want = [f.key for f in t.fields]
        if after != want and not (set(after) - set(want)):
            b.add(
                "reorder_fields",
                f"Put the fields of `{t.key}` in the order of the file",
                lambda ed, t=t, want=want: ed.reorder_fields(t.key, want),
                t.key,
            )


def plan_deletions(b: _Builder) -> None:
    """Fields, then tables the files no longer have; each measured for what it loses."""
    ir_key = {}
    for key, live_t in b.res.tables.items():
        if live_t is not None:
            ir_key[live_t.key] = key
    gone_tables = {t.key for t in b.res.deleted_tables}
    fields = [f for f in b.res.deleted_fields]
    fields.sort(key=lambda f: (f.type != "formula", f.position))
    for lf in fields:
        tkey = ir_key.get(lf.table_key, lf.table_key)
        step = b.add(
            "delete_field",
            f"Delete field `{tkey}.{lf.key}` ({lf.type})",
            lambda ed, tkey=tkey, key=lf.key: ed.delete_field(tkey, key, confirm=True),
            tkey,
        )
        step.measure = lambda ed, lf=lf: ed.count_values(lf.table_key, lf.key)
    # links between tables being deleted go first, so each table can go
    for t in b.res.deleted_tables:
        for lf in t.fields.values():
            if lf.link_kind in ("one", "many") and lf.target_key in gone_tables - {t.key}:
                b.add(
                    "delete_field",
                    f"Delete field `{t.key}.{lf.key}` (a link to `{lf.target_key}`, deleted too)",
                    lambda ed, t=t, key=lf.key: ed.delete_field(t.key, key, confirm=True),
                    t.key,
                )
    for t in b.res.deleted_tables:
        step = b.add(
            "delete_table",
            f"Delete table {t.label} (`{t.key}`)",
            lambda ed, key=t.key: ed.delete_table(key, confirm=True),
            t.key,
        )
        step.measure = lambda ed, key=t.key: ed.count_records(key)


def _add_spec(f: ir.FieldSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": f.key, "type": f.type}
    if f.label:
        spec["label"] = f.label
    if f.required:
        spec["required"] = True
    if f.unique:
        spec["unique"] = True
    if f.help:
        spec["help"] = f.help
    spec.update(platform_config(f))
    if f.type == "link":
        spec["to"] = f.to
        if f.many:
            spec["many"] = True
    if f.related_name:
        spec["related_name"] = f.related_name
    if f.type == "formula":
        spec["formula"] = f.formula
    return spec
