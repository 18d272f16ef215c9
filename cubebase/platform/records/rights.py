"""What the actor may do with a table or one record, asked before acting.

Pages use it to offer only the actions the actor can take (a *New record* button,
*Edit*, *Move to trash*, an input per writable field). It is computed by the same
``Access`` checks the writes make (the interpreter on the whole record, the lock
rule, field write rules), so it never disagrees with them; the writes still check
everything themselves, this only avoids offering what they would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..access import _FALSE, ADMIN_ONLY_USER_FIELDS, _field_source
from ..permission_rules import field_rules
from ..schema import USERS, Table
from .values import record_id_of


@dataclass(frozen=True)
class Rights:
    """The actor's rights on a table (``record`` None) or on one record.

    ``create``: a role of the actor may add records to the table (a create rule
    that is not FALSE; whether it holds for the values given is decided on save).
    ``update``/``delete``: on this record, as it is now (False without a record).
    ``locked``: the table's lock rule holds on the record (nobody may change it).
    ``writable``: keys of the fields the actor may set (on the new record, or on
    this one when ``update``).
    ``update_some``: on the table (``record`` None), a role of the actor has an update
    rule that is not FALSE, so some records may be changed (a bulk change offers
    itself; each record is still decided on save)."""

    create: bool
    update: bool = False
    delete: bool = False
    locked: bool = False
    writable: frozenset[str] = field(default_factory=frozenset)
    update_some: bool = False


class RightsReading:
    def rights(self, table_key: str, record_id: Any = None) -> Rights:
        """May the actor create in ``table_key`` / update or delete record ``record_id``,
        and which fields may they write. A record outside their read rule: NotFound."""
        table = self.table(table_key)
        access = self.access
        create = access.unlimited or any(
            r.get("create")
            and access._const(table, r["create"], f"The create rule of `{table.key}`") != _FALSE
            for r in access.rules(table)
        )
        if record_id is None:
            update_some = access.unlimited or any(
                r.get("update")
                and access._const(table, r["update"], f"The update rule of `{table.key}`") != _FALSE
                for r in access.rules(table)
            )
            return Rights(
                create=create,
                writable=self._create_writable(table) if create else frozenset(),
                update_some=update_some,
            )
        self._fetch(table, record_id_of(record_id, table))  # readable, else NotFound
        current = self._fetch(table, record_id_of(record_id, table), whole=True)
        record = {"id": current.id, **current.values}
        locked = access.locked(table, record)
        update = not locked and access.allows(table, "update", record)
        delete = not locked and access.allows(table, "delete", record)
        writable: frozenset[str] = frozenset()
        if update:
            writable = frozenset(
                f.key
                for f in table.fields.values()
                if f.writable and access.field_allows(table, f, "write", record, "update")
            )
        return Rights(create=create, update=update, delete=delete, locked=locked, writable=writable)

    def _create_writable(self, table: Table) -> frozenset[str]:
        """Fields a new record may set: some role with a create rule has no field write
        rule for it, or one that is not FALSE (a rule depending on the values is
        decided on save)."""
        access = self.access
        fields = [f for f in table.fields.values() if f.writable]
        if access.unlimited:
            return frozenset(f.key for f in fields)
        creators = [
            r["role"]
            for r in access.rules(table)
            if r.get("create")
            and access._const(table, r["create"], f"The create rule of `{table.key}`") != _FALSE
        ]
        out = set()
        for f in fields:
            if table.key == USERS and f.key in ADMIN_ONLY_USER_FIELDS:
                continue
            by_role = {r["role"]: r for r in field_rules(f)}
            for role in creators:
                src = _field_source(by_role.get(role), "write")
                what = f"The write rule of `{table.key}.{f.key}` for {role}"
                if src is None or access._const(table, src, what) != _FALSE:
                    out.add(f.key)
                    break
        return frozenset(out)
