"""Stored values of formula fields.

A formula field that reads nothing of the moment (no ``TODAY()``, ``NOW()``,
``USER()``, ``HAS_ROLE``) keeps its value in a column of its own, ``f_<id>``, like
a stored field, whether it reads its own row (``amount * 0.05``) or reaches into
other tables (a link path such as ``region.area.name``, an aggregate such as
``SUMIF(deals.amount, ...)``). A page of records then reads columns instead of
computing every formula for every row (an index probe per row and aggregate),
and filters and sorts by such a field compare a column. Formulas that read the
moment are computed when read.

The records service keeps the column right: every write (create, bulk create,
update, delete, restore, purge, many-to-many changes) asks ``refresh`` which
stored values it may have changed, following each formula's dependency paths
backwards from the written rows to the rows owning the formula, and recomputes
exactly those with one ``UPDATE ... SET f_<id> = <the formula's SQL> WHERE id IN
(...)`` per formula, in dependency order (a stored formula that reads another is
refreshed after it). Schema changes that rewrite values recompute the whole
column. The value is the formula's own SQL, in system context, so it is what the
formula would compute on read; the interpreter, which works on one record in
memory, still computes it from the formula.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import formula as F
from ..formula import ast as A
from .formulas import context_uses, live_rows

if TYPE_CHECKING:
    from .schema import Field, Schema, Table

CHUNK = 5000  # ids per IN list


def should_store(checked: F.CheckedFormula) -> bool:
    """A formula field is stored when it reads nothing of the moment: no TODAY(),
    NOW(), USER() or HAS_ROLE, itself or through the formula fields it reads."""
    return not context_uses(checked) and checked.type.kind != "list"


@dataclass(frozen=True)
class Hop:
    """One step of a path from the row owning a formula to the rows it reads."""

    kind: str  # "nav": many-to-one link; "agg": to-many link
    table: str  # where the step starts
    to: str  # where it arrives
    via: str  # nav: the link field on ``table``; agg: the item table's link field, or ""
    junction: sa.Table | None = None  # agg through a many-to-many link
    owner_column: str | None = None  # junction column holding the ``table`` row's id
    item_column: str | None = None  # junction column holding the item's id


@dataclass(frozen=True)
class Dependency:
    """Stored field ``field`` of ``base`` reads ``reads`` of ``table`` at ``path``
    (``reads`` None: the rows themselves, as an aggregate counts them; ``path``
    None: rows it cannot trace back, so any write there recomputes every row)."""

    base: str
    field: str
    table: str
    reads: str | None
    path: tuple[Hop, ...] | None


class Dependents:
    """The stored formula fields of one schema snapshot and what they read."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.fs = schema.formula_schema()
        self.stored: dict[tuple[str, str], Field] = {}
        self.checked: dict[tuple[str, str], F.CheckedFormula] = {}
        self.by_table: dict[str, list[Dependency]] = {}
        self._links: dict[str, frozenset[str]] = {}
        for t in schema.tables.values():
            for f in t.fields.values():
                if f.type == "formula" and f.column_name is not None:
                    self.stored[(t.key, f.key)] = f
        for (base, key), f in list(self.stored.items()):
            try:
                checked = F.check(f.config["formula"], self.fs, base)
            except F.FormulaError:
                # broken by a schema change: it cannot be computed on read either
                del self.stored[(base, key)]
                continue
            self.checked[(base, key)] = checked
            deps: set[Dependency] = {Dependency(base, key, base, None, ())}
            _Walker(self, base, key, deps).walk(checked.root, [()])
            for d in deps:
                self.by_table.setdefault(d.table, []).append(d)
        self.order = self._order()

    def _order(self) -> list[tuple[str, str]]:
        """Stored fields, each after the stored fields it reads."""
        reads: dict[tuple[str, str], set[tuple[str, str]]] = {k: set() for k in self.stored}
        for deps in self.by_table.values():
            for d in deps:
                if d.reads is not None and (d.table, d.reads) in self.stored:
                    reads[(d.base, d.field)].add((d.table, d.reads))
        self.reads = reads
        out: list[tuple[str, str]] = []
        done: set[tuple[str, str]] = set()

        def visit(k: tuple[str, str]) -> None:
            if k in done:
                return
            done.add(k)
            for dep in sorted(reads[k]):
                if dep != k:
                    visit(dep)
            out.append(k)

        for k in sorted(self.stored):
            visit(k)
        return out

    def of_table(self, table_key: str) -> list[Dependency]:
        return self.by_table.get(table_key, [])

    def link_fields(self, table_key: str) -> frozenset[str]:
        """Fields of ``table_key`` that some path goes through: changing one moves
        rows out of paths, so the rows reached before the change count too (worked
        out once per table and snapshot: every update asks)."""
        hit = self._links.get(table_key)
        if hit is None:
            hit = self._links[table_key] = frozenset(self._link_fields(table_key))
        return hit

    def _link_fields(self, table_key: str) -> set[str]:
        out = set()
        for deps in self.by_table.values():
            for d in deps:
                for hop in d.path or ():
                    if hop.kind == "nav" and hop.table == table_key:
                        out.add(hop.via)
                    if hop.kind == "agg" and hop.to == table_key and hop.via:
                        out.add(hop.via)
        for d in self.of_table(table_key):
            if d.reads is not None and self._is_link(table_key, d.reads):
                out.add(d.reads)
        return out

    def _is_link(self, table_key: str, field_key: str) -> bool:
        f = self.schema.tables[table_key].fields.get(field_key)
        return f is not None and f.link_kind in ("one", "many")


class _Walker:
    """Collects the dependencies of one stored formula from its checked tree."""

    def __init__(self, dependents: Dependents, base: str, field: str, out: set[Dependency]):
        self.d = dependents
        self.base = base
        self.field = field
        self.out = out

    def add(self, table: str, reads: str | None, path: tuple[Hop, ...] | None) -> None:
        self.out.add(Dependency(self.base, self.field, table, reads, path))

    def read(self, table: str, info: F.FieldInfo, body: A.TNode | None, path) -> None:
        self.add(table, info.key, path)
        if body is not None and info.column is None:  # a computed formula field
            self.walk(body, [path])

    def walk(self, n: A.TNode, env: list) -> None:
        if isinstance(n, A.TField):
            self.read(n.table.key, n.field, n.body, env[n.scope])
            return
        if isinstance(n, A.TNav):
            self.walk(n.source, env)
            self.read(n.table.key, n.field, n.body, self.target_path(n.source, env))
            return
        if isinstance(n, A.TAgg):
            base_path = env[n.scope]
            hop = self._agg_hop(n)
            path = None if base_path is None else (*base_path, hop)
            self.add(n.item_table.key, None, path)
            if hop.via:
                self.add(n.item_table.key, hop.via, path)
            else:  # many-to-many: the junction is written by the owner of the link
                owner, key = self._junction_owner(hop.junction)
                self.add(owner, key, base_path if owner == n.table.key else path)
            for child in (n.value, n.cond):
                if child is not None:
                    self.walk(child, [*env, path])
            return
        if isinstance(n, A.TCall) and n.func.name == "ISUNDER":
            tree = n.extra.get("table")
            if tree:
                parent = self.d.schema.tables[tree].config.get("parent_field")
                parent = parent or self.d.fs.table(tree).parent_field
                self.add(tree, parent, None)  # a move anywhere in the tree: recompute all
        for child in A.tchildren(n):
            self.walk(child, env)

    def target_path(self, source: A.TNode, env: list) -> tuple[Hop, ...] | None:
        """The path to the row whose id ``source`` is (None: not a chain of links)."""
        if isinstance(source, A.TField) and source.field.storage == "column":
            inner = env[source.scope]
        elif isinstance(source, A.TNav) and source.body is None:
            inner = self.target_path(source.source, env)
        else:
            return None
        link = source.field.link
        if inner is None or link is None:
            return None
        return (*inner, Hop("nav", source.table.key, link.target, source.field.key))

    def _agg_hop(self, n: A.TAgg) -> Hop:
        link = n.link.link
        if n.link.storage == "reverse":
            return Hop("agg", n.table.key, n.item_table.key, link.target_field)
        return Hop(
            "agg",
            n.table.key,
            n.item_table.key,
            "",
            junction=link.junction,
            owner_column=link.source_column,
            item_column=link.target_column,
        )

    def _junction_owner(self, junction: sa.Table) -> tuple[str, str]:
        for t in self.d.schema.tables.values():
            for f in t.fields.values():
                if f.link_kind == "many" and t.junctions.get(f.id) is junction:
                    return t.key, f.key
        raise LookupError(junction.name)  # pragma: no cover - every junction has an owner


def dependents(schema: Schema) -> Dependents:
    hit = schema.formula_cache.get(("materialized",))
    if hit is None:
        hit = schema.formula_cache[("materialized",)] = Dependents(schema)
    return hit


# --- keeping the columns right ----------------------------------------------------------


class Refresh:
    """One write's refresh: ``before`` (rows reached through links about to change),
    then the write, then ``after``, which recomputes what the write touched."""

    def __init__(
        self,
        session: Session,
        schema: Schema,
        table: Table,
        ids: Iterable[int],
        fields: set[str] | None,
    ):
        self.session = session
        self.schema = schema
        self.deps = dependents(schema)
        self.table = table
        self.ids = [int(i) for i in ids]
        self.fields = fields  # None: rows created, trashed, restored or purged
        self.pending: dict[tuple[str, str], set[int] | None] = {}

    def _relevant(self, dep: Dependency) -> bool:
        if self.fields is None:
            return True
        return dep.reads is not None and dep.reads in self.fields

    def before(self) -> Refresh:
        """Collect the rows reached now through the links the write will change."""
        if not self.ids or not self.deps.stored:
            return self
        moving = self.deps.link_fields(self.table.key)
        if self.fields is not None:
            moving &= self.fields
        if self.fields is not None and not moving:
            return self
        for dep in self.deps.of_table(self.table.key):
            if self._relevant(dep):
                self._collect(dep, self.ids)
        return self

    def after(self) -> None:
        if not self.deps.stored:
            return
        if self.ids:
            for dep in self.deps.of_table(self.table.key):
                if self._relevant(dep):
                    self._collect(dep, self.ids)
        self._run()

    def _collect(self, dep: Dependency, ids: list[int]) -> None:
        key = (dep.base, dep.field)
        if dep.path is None:
            self.pending[key] = None
            return
        if self.pending.get(key, set()) is None:
            return
        found = self.pending.setdefault(key, set())
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            if not dep.path:
                found.update(chunk)
                continue
            found.update(self.session.scalars(self._owners(dep.path, chunk)))
        found.discard(None)

    def _owners(self, path: tuple[Hop, ...], ids: list[int]) -> sa.Select:
        """Ids of the rows at the start of ``path`` that reach the rows ``ids`` at its end."""
        tables = self.schema.tables
        end = tables[path[-1].to].sql
        sel: Any = sa.select(end.c.id).where(end.c.id.in_(ids))
        for hop in reversed(path):
            if hop.kind == "nav":
                start = tables[hop.table]
                col = start.column(start.field(hop.via))
                sel = sa.select(start.sql.c.id).where(col.in_(sel))
            elif hop.junction is None:
                item = tables[hop.to]
                col = item.column(item.field(hop.via))
                sel = sa.select(col).where(item.sql.c.id.in_(sel), col.is_not(None))
            else:
                j = hop.junction
                sel = sa.select(j.c[hop.owner_column]).where(j.c[hop.item_column].in_(sel))
        return sel

    def _run(self) -> None:
        """Recompute what is pending, in dependency order: fields of one table due for
        the same rows, none reading another, share one UPDATE."""
        while self.pending:  # a flush can make fields later in the order due
            batch: list[tuple[str, str]] = []
            batch_ids: set[int] | None = None
            for key in self.deps.order:
                if key not in self.pending:
                    continue
                if batch and (
                    key[0] != batch[0][0]
                    or self.pending[key] != batch_ids
                    or self.deps.reads[key] & set(batch)
                ):
                    self._flush(batch, batch_ids)
                    batch = []
                    if key not in self.pending:
                        continue
                ids = self.pending.pop(key)
                if ids is not None and not ids:
                    continue
                batch.append(key)
                batch_ids = ids
            if batch:
                self._flush(batch, batch_ids)

    def _flush(self, batch: list[tuple[str, str]], ids: set[int] | None) -> None:
        base = batch[0][0]
        changed = None if ids is None else sorted(ids)
        recompute(self.session, self.schema, base, [k for _, k in batch], changed)
        # what reads these fields changes with them
        done = set(batch)
        for dep in self.deps.of_table(base):
            if dep.reads is None or (base, dep.reads) not in done:
                continue
            if (dep.base, dep.field) in done:
                continue
            if changed is None:
                self.pending[(dep.base, dep.field)] = None
            else:
                self._collect(dep, changed)


def recompute(
    session: Session,
    schema: Schema,
    table_key: str,
    field_keys: list[str],
    ids: list[int] | None = None,
) -> None:
    """Compute stored formula fields of one table anew for ``ids`` (None: every row),
    in SQL: one UPDATE setting each of them to its formula."""
    deps = dependents(schema)
    table = schema.tables[table_key]
    ctx = F.SqlContext(
        schema=deps.fs,
        table=deps.fs.table(table_key),
        dialect=session.get_bind().dialect.name,
        row_scope=live_rows(),
    )
    values = {}
    for key in field_keys:
        checked = deps.checked[(table_key, key)]
        values[table.fields[key].column_name] = F.compile_value(checked, ctx)
    t = table.sql
    stmt = sa.update(t).values(values)
    if ids is None:
        session.execute(stmt)
        return
    for start in range(0, len(ids), CHUNK):
        session.execute(stmt.where(t.c.id.in_(ids[start : start + CHUNK])))


def recompute_dependents(
    session: Session, schema: Schema, table_key: str, field_key: str | None = None
) -> None:
    """Every stored value that reads ``table_key`` (its ``field_key``, or any field),
    recomputed in full: after a schema change rewrote values, or a load that did
    not go through the records service."""
    deps = dependents(schema)
    wanted: set[tuple[str, str]] = set()
    for d in deps.of_table(table_key):
        if field_key is None or d.reads in (None, field_key):
            wanted.add((d.base, d.field))
    if (table_key, field_key) in deps.stored:
        wanted.add((table_key, field_key))
    refresh = Refresh(session, schema, schema.tables[table_key], [], set())
    refresh.pending = {k: None for k in wanted}
    refresh._run()
