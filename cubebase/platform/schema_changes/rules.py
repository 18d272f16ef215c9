"""Validation, permission and lock rules, formula fields' formulas and defaults:
formulas checked and stored in the metadata."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...formula import types as ft
from .. import formulas, materialized, permission_rules
from ..errors import BadRequest
from ..models import FieldDef, TableDef
from ..schema import (
    Field,
    Table,
)


class RuleChanges:
    """Rule and formula changes; mixed into ``SchemaEditor``."""

    def set_validations(self, table_key: str, rules: list[dict[str, str]]) -> Table:
        """Replace a table's validation rules: each a Boolean formula and the message
        shown when a record does not satisfy it."""
        table = self.schema.table(table_key)
        stored_rules = []
        for i, rule in enumerate(rules):
            if (
                not isinstance(rule, dict)
                or not isinstance(rule.get("message"), str)
                or not rule["message"].strip()
            ):
                raise BadRequest(f"Validation rule {i + 1} needs a `rule` formula and a `message`")
            stored, _ = formulas.store(
                self.schema, table_key, rule.get("rule"), f"Validation rule {i + 1}", ft.BOOLEAN
            )
            stored_rules.append({"rule": stored, "message": rule["message"].strip()})
        td = self.session.get(TableDef, table.id)
        td.config = {**(td.config or {}), "validations": stored_rules}
        self._changed(table.id)
        return self.schema.table(table_key)

    def set_permissions(self, table_key: str, rules: list[dict[str, Any]]) -> Table:
        """Replace a table's row rules: per role, a Boolean formula for each of
        read, create, update and delete (a missing action grants nothing)."""
        table = self.schema.table(table_key)
        stored = permission_rules.store_row_rules(self.session, self.schema, table, rules)
        td = self.session.get(TableDef, table.id)
        td.config = {**(td.config or {}), "permissions": stored}
        self._changed(table.id)
        return self.schema.table(table_key)

    def set_lock(self, table_key: str, rule: str | None) -> Table:
        """Set (or with None clear) the formula that makes a record read-only for everyone."""
        table = self.schema.table(table_key)
        td = self.session.get(TableDef, table.id)
        config = dict(td.config or {})
        if rule is None or (isinstance(rule, str) and not rule.strip()):
            config.pop("lock", None)
        else:
            config["lock"], _ = formulas.store(
                self.schema, table_key, rule, "Lock rule", ft.BOOLEAN
            )
        td.config = config
        self._changed(table.id)
        return self.schema.table(table_key)

    def set_field_permissions(
        self, table_key: str, field_key: str, rules: list[dict[str, Any]]
    ) -> Field:
        """Replace a field's rules: per role, Boolean formulas for read and write."""
        table = self.schema.table(table_key)
        f = table.field(field_key)
        stored = permission_rules.store_field_rules(self.session, self.schema, table, f, rules)
        fd = self.session.get(FieldDef, f.id)
        config = {k: v for k, v in fd.config.items() if k != "permissions"}
        if stored:
            config["permissions"] = stored
        fd.config = config
        self._changed(table.id)
        return self.schema.table(table_key).field(field_key)

    def _save_formula(self, table_key: str, field_key: str, source: str) -> None:
        stored, checked = formulas.store(
            self.schema, table_key, source, f"Formula field `{field_key}`", field_key=field_key
        )
        table = self.schema.table(table_key)
        before = table.field(field_key)
        fd = self.session.get(FieldDef, before.id)
        keep = materialized.should_store(checked)
        if before.column_name is not None:  # a stored formula: its column is rebuilt
            self.ops.drop_column(table.sql.name, before.column_name)
        fd.config = {
            **{k: v for k, v in fd.config.items() if k != "stored"},
            "formula": stored,
            "result_type": formulas.result_type_name(checked.type),
            **({"stored": True} if keep else {}),
        }
        self._changed(fd.table_id)
        formulas.check_no_cycle(self.schema, table_key, field_key)
        if keep:
            f = self.schema.table(table_key).field(field_key)
            self.ops.add_column(table.sql.name, sa.Column(f.column_name, f.ftype.column_type(f)))
        materialized.recompute_dependents(self.session, self.schema, table_key, field_key)

    def _save_default(self, table_key: str, field_key: str, source: str | None) -> None:
        f = self.schema.table(table_key).field(field_key)
        fd = self.session.get(FieldDef, f.id)
        if source is None or (isinstance(source, str) and not source.strip()):
            fd.default = None
        else:
            if not f.writable:
                raise BadRequest(f"A {f.type} field is calculated and cannot have a default")
            fd.default, _ = formulas.store(
                self.schema, table_key, source, f"Default of `{field_key}`", f.ftype.formula_type(f)
            )
        self._changed(f.table_id)
