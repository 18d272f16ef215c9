"""The plan's starting records (a hook of ``plan._Builder``): a table's ``seed`` rows (and
``demo`` rows when asked) are added only while it has no records, each table after the
tables its rows link to; a link may name its record by display value (or e-mail for
users). Rows go through the records service, so its validations apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..platform.errors import CubebaseError, ValidationError
from ..platform.schema import USERS, Field, Table
from ..platform.schema_changes import SchemaEditor
from . import ir
from .dry_run import records_in
from .errors import AppFileError, Problem
from .validate_meaning import plain_value

if TYPE_CHECKING:
    from .plan import _Builder


def plan_seeds(b: _Builder) -> None:
    """Starting records for tables that have none yet."""
    for t in _seed_order(b):
        rows = list(t.seed) + (list(t.demo) if b.demo else [])
        live_t = b.res.tables[t.key]
        if live_t is not None and _count(b.ed, live_t) > 0:
            continue
        n = len(rows)
        b.add(
            "seed",
            f"Add {n} starting record{'s' if n != 1 else ''} to `{t.key}`",
            lambda ed, t=t: _seed(ed, b.app, t, b.demo),
            t.key,
        )


def _seed_order(b: _Builder) -> list[ir.TableSpec]:
    """Tables with starting records, each after the tables its rows link to (in file
    order otherwise), so a row can name a record another table's seed adds."""
    seeded = [t for t in b.app.tables if t.seed or (b.demo and t.demo)]
    keys = {t.key for t in seeded}
    needs = {}
    for t in seeded:
        used = {k for row in [*t.seed, *t.demo] for k in row}
        targets = {USERS if f.type == "user" else f.to for f in t.fields if f.key in used}
        needs[t.key] = (targets & keys) - {t.key}
    order: list[ir.TableSpec] = []
    done: set[str] = set()
    while len(order) < len(seeded):
        ready = [t for t in seeded if t.key not in done and needs[t.key] <= done]
        t = ready[0] if ready else next(t for t in seeded if t.key not in done)  # a cycle
        order.append(t)
        done.add(t.key)
    return order


def _count(ed: SchemaEditor, table: Table) -> int:
    return records_in(ed).count(table.key)


def _seed(ed: SchemaEditor, app: ir.AppSpec, t: ir.TableSpec, demo: bool) -> None:
    service = records_in(ed)
    table = service.schema.table(t.key)
    sections = [("seed", t.seed)] + ([("demo", t.demo)] if demo else [])
    if service.count(t.key) > 0:
        return
    for section, rows in sections:
        for i, row in enumerate(rows):
            try:
                values = {k: _seed_value(service, table.field(k), v) for k, v in row.items()}
                service.create(t.key, values)
            except (ValidationError, CubebaseError) as exc:
                file, line, _ = t.at(section)
                base = f"{t.at()[2]}.{section}" if t.at()[2] else section
                line = app.lines.get((file, f"{base}[{i}]"), line)
                raise AppFileError([Problem(file, line, f"{base}[{i}]", exc.message)]) from None


def _seed_value(service, f: Field, value: Any) -> Any:
    """Links in seed rows may name the record by its display value (or e-mail for users)."""
    kind = f.link_kind
    if kind not in ("one", "many") or value is None:
        return plain_value(value)
    values = value if isinstance(value, list) else [value]
    ids = []
    for v in values:
        if isinstance(v, str) and not v.isdigit():
            ids.append(_find(service, f.target_key, v))
        else:
            ids.append(v)
    return ids if isinstance(value, list) else ids[0]


def _find(service, table_key: str, text: str) -> int:
    from ..platform.records import Condition

    table = service.schema.table(table_key)
    key = "email" if table_key == USERS else table.display_field
    if key is None:
        raise ValidationError(
            [_problem(f"`{table_key}` has no display field: link to its records by id")]
        )
    page = service.list(table_key, where=Condition(key, "eq", text), limit=2)
    if len(page.records) != 1:
        found = "no" if not page.records else "more than one"
        raise ValidationError([_problem(f"{found} record of `{table_key}` has {key} `{text}`")])
    return page.records[0].id


def _problem(message: str):
    from ..platform.errors import FieldProblem

    return FieldProblem(None, message)
