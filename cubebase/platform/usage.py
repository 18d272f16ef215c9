"""What a field or a table is used by, so deleting it can be refused by name.

Formula fields, defaults, validations and permission rules live in the schema; other
definitions live in their own platform tables (reports; automations and workflows,
which ``cubebase.workflows`` registers). Each kind registers a *finder* on
``platform.hooks.deletion_users``: ``finder(session, schema, gone) -> [Use]``. The
schema editor asks every finder before deleting a field or a table and refuses the
delete naming each user, with nothing changed; an app-file plan asks them too (see
``schema_defs.plan``), so a plan names the refusal before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import formula as F
from .errors import ConflictError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .schema import Field, Schema, Table

_REF = re.compile(r"\{#(\d+)\}")
SHOWN = 8  # users named in the message; the rest are counted


@dataclass(frozen=True)
class Gone:
    """What a delete would remove: one field (``field``), or a whole table (``field`` is
    None). ``ids``: every field id that goes (field ids are unique across tables),
    the reverse side of a deleted link included."""

    table: Table
    field: Field | None
    ids: frozenset[int]

    @property
    def whole_table(self) -> bool:
        return self.field is None

    @property
    def what(self) -> str:
        if self.field is None:
            return f"Table `{self.table.key}`"
        return f"Field `{self.table.key}.{self.field.key}`"

    def field_keys(self, table_key: str) -> set[str]:
        """The keys of the fields of ``table_key`` that go (for definitions by key)."""
        if table_key != self.table.key:
            return set()
        if self.field is None:
            return set(self.table.fields)
        return {self.field.key}


@dataclass(frozen=True)
class Use:
    """One definition that uses what a delete would remove. ``kind``: formula, report,
    automation or workflow; ``key``: the definition's key; ``app``: its app (None: made
    outside an app); ``text``: how the refusal names it (the report `Funnel`)."""

    kind: str
    key: str
    text: str
    app: str | None = None


def gone(schema: Schema, table: Table, field: Field | None = None) -> Gone:
    """What deleting ``field`` of ``table`` (None: the whole table) removes."""
    fields = list(table.fields.values()) if field is None else [field]
    ids = {f.id for f in fields}
    for other in schema.tables.values():
        for f in other.fields.values():
            if f.config.get("reverse_of") in ids:
                ids.add(f.id)
    return Gone(table, field, frozenset(ids))


def fields_read(stored: str | None, fs: Any, table_key: str) -> set[int]:
    """The ids of the fields a stored formula reads: the checker's dependencies (links
    followed, aggregates' link fields included) when it still checks, else its
    ``{#id}`` references (a formula that no longer checks still names its fields)."""
    if not stored:
        return set()
    try:
        checked = F.check(stored, fs, table_key)
    except F.FormulaError:
        return {int(m) for m in _REF.findall(stored)}
    return {fid for _t, fid in F.dependencies(checked)}


def users_of(platform: Any, session: Session, schema: Schema, what: Gone) -> list[Use]:
    """Every definition, of every registered kind, that uses what ``what`` removes."""
    out: list[Use] = []
    for finder in platform.hooks.deletion_users:
        out.extend(finder(session, schema, what))
    return out


def refusal(what: Gone, uses: list[Use]) -> ConflictError:
    """The error naming each user: "Field `deals.amount` cannot be deleted: it is used
    by the report `Funnel` and the automation `Credit won deals`. Change those first."."""
    texts = list(dict.fromkeys(u.text for u in uses))
    shown = texts[:SHOWN]
    if len(texts) > SHOWN:
        named = f"{', '.join(shown)} and {len(texts) - SHOWN} more"
    elif len(shown) > 1:
        named = f"{', '.join(shown[:-1])} and {shown[-1]}"
    else:
        named = shown[0]
    return ConflictError(
        f"{what.what} cannot be deleted: it is used by {named}. Change those first.",
        [{"used_by": texts, "uses": [{"kind": u.kind, "key": u.key} for u in uses]}],
    )


def refuse_if_used(
    platform: Any, session: Session, schema: Schema, table: Table, field: Field | None = None
) -> None:
    """Raise ``refusal`` when anything uses ``field`` (None: the whole ``table``)."""
    what = gone(schema, table, field)
    uses = users_of(platform, session, schema, what)
    if uses:
        raise refusal(what, uses)
