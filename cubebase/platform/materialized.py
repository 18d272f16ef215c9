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
backwards from the written rows to the rows owning the formula (one query per
distinct path), first for the whole chain of stored formulas reading one another,
then recomputes exactly those rows with one ``UPDATE ... SET f_<a> = <SQL>, f_<b> =
<SQL> WHERE id IN (...)`` per table and dependency level (a stored formula that
reads another is refreshed after it). The statements are built once per schema
snapshot. Schema changes that rewrite values recompute the whole column. The value is the formula's own SQL, in system context, so it is what the
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
IDS = "refresh_ids"  # the expanding parameter of the cached statements


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
        # what reads each stored field (its own row's formula reading itself aside)
        self.readers: dict[tuple[str, str], list[Dependency]] = {}
        for deps_of in self.by_table.values():
            for d in deps_of:
                k = (d.table, d.reads)
                if d.reads is not None and k in self.stored and (d.base, d.field) != k:
                    self.readers.setdefault(k, []).append(d)  # type: ignore[arg-type]
        self.read_by: dict[tuple[str, str], set[tuple[str, str]]] = {k: set() for k in self.stored}
        for k, ins in self.reads.items():
            for r in ins:
                if r != k:
                    self.read_by[r].add(k)
        self.position = {k: i for i, k in enumerate(self.order)}
        # statements built once per snapshot: SQLAlchemy then finds them compiled
        self._owner_sql: dict[tuple[Hop, ...], sa.Select] = {}
        self._update_sql: dict[tuple, sa.Update] = {}

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

    def owner_statement(self, path: tuple[Hop, ...]) -> sa.Select:
        """Ids of the rows at the start of ``path`` that reach the rows ``:refresh_ids``
        at its end (built once per path and snapshot)."""
        hit = self._owner_sql.get(path)
        if hit is not None:
            return hit
        tables = self.schema.tables
        sel: Any = sa.bindparam(IDS, expanding=True)
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
        self._owner_sql[path] = sel
        return sel

    def update_statement(
        self, table_key: str, field_keys: tuple[str, ...], dialect: str, by_id: bool
    ) -> sa.Update:
        """``UPDATE`` setting ``field_keys`` of ``table_key`` to their formulas, for the
        rows ``:refresh_ids`` (``by_id``) or all: the formulas' SQL is compiled once per
        snapshot, not once per write."""
        key = (table_key, field_keys, dialect, by_id)
        hit = self._update_sql.get(key)
        if hit is not None:
            return hit
        table = self.schema.tables[table_key]
        ctx = F.SqlContext(
            schema=self.fs, table=self.fs.table(table_key), dialect=dialect, row_scope=live_rows()
        )
        values = {}
        for k in field_keys:
            checked = self.checked[(table_key, k)]
            values[table.fields[k].column_name] = F.compile_value(checked, ctx)
        t = table.sql
        stmt = sa.update(t).values(values)
        if by_id:
            stmt = stmt.where(t.c.id.in_(sa.bindparam(IDS, expanding=True)))
        self._update_sql[key] = stmt
        return stmt

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
        # owners found per (path, rows) since the write: the same path is often
        # followed from the same rows for several fields
        self._found: dict[tuple, set[int]] = {}

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
        self._collect(
            [d for d in self.deps.of_table(self.table.key) if self._relevant(d)], self.ids
        )
        return self

    def after(self) -> None:
        if not self.deps.stored:
            return
        self._found = {}  # the write in between may have moved rows between links
        if self.ids:
            relevant = [d for d in self.deps.of_table(self.table.key) if self._relevant(d)]
            self._collect(relevant, self.ids)
        self._run()

    def _collect(self, deps: Iterable[Dependency], ids: Iterable[int] | None) -> None:
        """Make the owners of ``deps`` reached from the rows ``ids`` of their table due
        (None: every row): one query per distinct path and rows, not per field."""
        rows = None if ids is None else sorted(ids)
        token = None if rows is None else tuple(rows)
        for dep in deps:
            key = (dep.base, dep.field)
            if dep.path is None or rows is None:
                self.pending[key] = None
                continue
            if self.pending.get(key, set()) is None:
                continue
            owners = self._found.get((dep.path, token))
            if owners is None:
                owners = self._found[(dep.path, token)] = self._owners(dep.path, rows)
            self.pending.setdefault(key, set()).update(owners)

    def _owners(self, path: tuple[Hop, ...], ids: list[int]) -> set[int]:
        if not path:
            return set(ids)
        stmt = self.deps.owner_statement(path)
        out: set[int] = set()
        for start in range(0, len(ids), CHUNK):
            out.update(self.session.scalars(stmt, {IDS: ids[start : start + CHUNK]}))
        out.discard(None)  # type: ignore[arg-type]
        return out

    def _run(self) -> None:
        """Recompute what is due. First every due row is found, in dependency order
        (a field's readers come after it, and the paths back to them cross links,
        which a refresh never changes); then one UPDATE per table and level sets all
        of the table's due fields of that level at once, for the union of their rows
        (recomputing a row that was right rewrites the same value)."""
        deps = self.deps
        due = [k for k in deps.order if k in self.pending]
        i = 0  # ``due`` grows as readers become due: they sort later
        order = deps.position
        while i < len(due):
            key = due[i]
            i += 1
            ids = self.pending[key]
            if ids is not None and not ids:
                continue
            readers = deps.readers.get(key, ())
            fresh = [(d.base, d.field) for d in readers if (d.base, d.field) not in self.pending]
            self._collect(readers, ids)
            if fresh:
                due = due[:i] + sorted(set(due[i:]) | set(fresh), key=order.__getitem__)
        due = [k for k in due if self.pending[k] is None or self.pending[k]]
        for table_key, fields, ids in self._batches(due):
            recompute(self.session, self.schema, table_key, fields, ids)
        self.pending.clear()

    def _batches(self, due: list[tuple[str, str]]):
        """(table, fields, ids) to UPDATE in turn: levels as early as their inputs allow,
        then each field moved as late as its readers allow into a level where its
        table already has an UPDATE for about the same rows, so fewer statements carry
        the same work. Fields of a level and table share an UPDATE when their rows are
        close (a union at most about twice the rows of each)."""
        deps, pending = self.deps, self.pending
        due_set = set(due)
        level: dict[tuple[str, str], int] = {}
        for k in due:
            ins = [level[r] for r in deps.reads[k] if r != k and r in due_set]
            level[k] = 1 + max(ins) if ins else 0
        top = max(level.values(), default=0)
        for k in reversed(due):
            outs = [level[r] for r in deps.read_by[k] if r in due_set]
            latest = min(outs) - 1 if outs else top
            shared = [
                level[o]
                for o in due
                if o[0] == k[0]
                and o != k
                and level[k] < level[o] <= latest
                and _close(pending[o], pending[k])
            ]
            if shared:
                level[k] = max(shared)
        batches: list[tuple[int, str, list[str], set[int] | None]] = []
        for k in sorted(due, key=lambda k: (level[k], k[0])):
            ids = pending[k]
            for lv, table_key, fields, rows in batches:
                if lv == level[k] and table_key == k[0] and _close(rows, ids):
                    fields.append(k[1])
                    if rows is not None and ids is not None:
                        rows |= ids
                    break
            else:
                batches.append((level[k], k[0], [k[1]], None if ids is None else set(ids)))
        for _lv, table_key, fields, rows in batches:
            yield table_key, fields, None if rows is None else sorted(rows)


def _close(a: set[int] | None, b: set[int] | None) -> bool:
    """Two fields' due rows are close enough to be recomputed together."""
    if a is None or b is None:
        return a is None and b is None
    return len(a | b) <= 2 * min(len(a), len(b)) + 8


def recompute(
    session: Session,
    schema: Schema,
    table_key: str,
    field_keys: list[str],
    ids: list[int] | None = None,
) -> None:
    """Compute stored formula fields of one table anew for ``ids`` (None: every row),
    in SQL: one UPDATE setting each of them to its formula (the statement built once
    per schema snapshot)."""
    deps = dependents(schema)
    dialect = session.get_bind().dialect.name
    stmt = deps.update_statement(table_key, tuple(field_keys), dialect, ids is not None)
    if ids is None:
        session.execute(stmt)
        return
    for start in range(0, len(ids), CHUNK):
        session.execute(stmt, {IDS: ids[start : start + CHUNK]})


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
