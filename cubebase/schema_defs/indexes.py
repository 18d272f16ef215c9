"""A table's `indexes:` in the app format: checked against the schema the app would
make, planned as one step per table (``SchemaEditor.set_indexes``), exported back.

The platform keeps indexes by field id (``platform.table_indexes``), so a field
renamed in the files (``renamed_from``) keeps its index, and an index's identity
in the plan is its fields (as the files name them) and whether it is unique.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..platform.schema import USERS, Table
from ..platform.table_indexes import MAX_FIELDS, MIN_FIELDS, can_be_in_index, table_indexes
from . import ir
from .loader import did_you_mean

if TYPE_CHECKING:
    from ..platform.schema_changes import SchemaEditor
    from .plan import _Builder


# --- validation -------------------------------------------------------------------------


def check_indexes(t: ir.TableSpec, vt: Table, problems) -> None:
    """Problems of ``t.indexes`` (with file, line and key), against ``vt``: the table as
    the app would make it."""
    if t.indexes and t.key == USERS:
        problems.add(t.at("indexes"), "the built-in users table takes no `indexes`")
        return
    seen: dict[tuple, int] = {}
    for n, ix in enumerate(t.indexes, start=1):
        file, line, path = ix.at("fields")
        if not MIN_FIELDS <= len(ix.fields) <= MAX_FIELDS:
            problems.add(
                ix.at("fields"),
                f"an index needs {MIN_FIELDS} to {MAX_FIELDS} fields (one field: set "
                "`indexed` or `unique` on the field itself)",
            )
        for i, key in enumerate(ix.fields):
            at = (file, line, f"{path}[{i}]")
            if key not in vt.fields:
                problems.add(at, f"unknown field `{key}`{did_you_mean(key, vt.fields)}")
            elif not can_be_in_index(vt.fields[key]):
                f = vt.fields[key]
                kind = "many-to-many link" if f.link_kind == "many" else f.type
                if f.link_kind in ("reverse", "reverse_many"):
                    kind = "related records"
                problems.add(at, f"a {kind} field (`{key}`) cannot be in an index")
            if key in ix.fields[:i]:
                problems.add(at, f"`{key}` is listed twice in this index")
        if ix.message is not None and not ix.unique:
            problems.add(ix.at("message"), "only a unique index has a `message`")
        same = (frozenset(ix.fields), True) if ix.unique else (tuple(ix.fields), False)
        if same in seen:
            problems.add(ix.at(), f"this index repeats index {seen[same]} of `{t.key}`")
        seen.setdefault(same, n)


# --- export -----------------------------------------------------------------------------


def live_indexes(table: Table) -> list[ir.IndexDef]:
    """The table's indexes back in the IR (fields by their current keys)."""
    return [
        ir.IndexDef(fields=list(ix.keys), unique=ix.unique, message=ix.message)
        for ix in table_indexes(table)
    ]


# --- the plan ---------------------------------------------------------------------------


def plan_indexes(b: _Builder) -> None:
    """One step per table whose indexes differ from the files (after new fields and
    type changes, before deletions)."""
    for t in b.app.tables:
        if t.key == USERS:
            continue
        live_t = b.res.tables[t.key]
        old = _live_in_ir_keys(b, t, live_t) if live_t is not None else []
        new = [_ir_entry(ix) for ix in t.indexes]
        if new == old:
            continue
        step = b.add(
            "set_indexes",
            f"Indexes of `{t.key}`: {'; '.join(_changes(old, new)) or 'reordered'}",
            lambda ed, t=t: ed.set_indexes(t.key, [_spec(ix) for ix in t.indexes]),
            t.key,
        )
        if live_t is not None:
            step.measure = lambda ed, step=step, t=t, old=old, new=new: _measure(
                ed, step, t, old, new, b
            )


def _ir_entry(ix: ir.IndexDef) -> tuple:
    return (tuple(ix.fields), ix.unique, ix.message if ix.unique else None)


def _spec(ix: ir.IndexDef) -> dict[str, Any]:
    out: dict[str, Any] = {"fields": list(ix.fields), "unique": ix.unique}
    if ix.message is not None:
        out["message"] = ix.message
    return out


def _live_in_ir_keys(b: _Builder, t: ir.TableSpec, live_t: Table) -> list[tuple]:
    """The live indexes with their fields named as the files name them (renames
    followed); a field the files drop keeps its live key (the index goes with it)."""
    ir_key = {}
    for f in t.fields:
        lf = b.res.fields.get((t.key, f.key))
        if lf is not None:
            ir_key[lf.id] = f.key
    return [
        (tuple(ir_key.get(f.id, f.key) for f in ix.fields), ix.unique, ix.message)
        for ix in table_indexes(live_t)
    ]


def _words(entry: tuple) -> str:
    fields, unique, message = entry
    names = ", ".join(fields)
    if not unique:
        return f"an index over {names} (faster lists and filters)"
    said = f" (message: “{message}”)" if message else ""
    return f"no two records with the same {names}{said}"


def _changes(old: list[tuple], new: list[tuple]) -> list[str]:
    old_ids = {e[:2]: e for e in old}
    new_ids = {e[:2]: e for e in new}
    parts = []
    for ident, e in new_ids.items():
        if ident not in old_ids:
            parts.append(f"add {_words(e)}")
        elif old_ids[ident] != e:
            parts.append(f"change the message of {_words(e)}")
    for ident, e in old_ids.items():
        if ident not in new_ids:
            parts.append(f"remove {_words(e)}")
    return parts


def _measure(ed: SchemaEditor, step, t: ir.TableSpec, old, new, b: _Builder) -> int:
    """Before anything runs: records that repeat the combination of a new unique index
    over fields that already exist (the apply would be refused); said on the step."""
    have = {e[:2] for e in old}
    found = []
    for fields, unique, _ in new:
        if not unique or (fields, unique) in have:
            continue
        live = [b.res.fields.get((t.key, k)) for k in fields]
        if any(lf is None for lf in live):
            continue  # a new field: nothing repeats yet
        n = ed.count_index_conflicts(b.res.tables[t.key].key, [lf.key for lf in live])
        if n:
            found.append(
                f"{n:,} records repeat a combination of {', '.join(fields)}: the apply "
                "will be refused until they are corrected"
            )
    if found:
        step.loss = "; ".join(found)
    return 0
