"""The IR of tables: fields and the settings each field type takes, validations, row
and field rules (and the roles they name), views, indexes, seed and demo records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .ir_base import Formula, IRNode, Key, Rule, _where, doc

FieldTypeName = Literal[
    "text",
    "long_text",
    "number",
    "currency",
    "integer",
    "boolean",
    "date",
    "datetime",
    "select",
    "multi_select",
    "email",
    "phone",
    "url",
    "link",
    "user",
    "file",
    "formula",
    "autonumber",
]

# Type settings each field type takes (the common keys are allowed everywhere),
# and the ones it cannot do without.
TYPE_SETTINGS: dict[str, frozenset[str]] = {
    "text": frozenset({"max_length"}),
    "long_text": frozenset({"max_length"}),
    "email": frozenset(),
    "phone": frozenset(),
    "url": frozenset(),
    "number": frozenset({"precision"}),
    "currency": frozenset({"precision", "currency"}),
    "integer": frozenset(),
    "boolean": frozenset(),
    "date": frozenset(),
    "datetime": frozenset(),
    "select": frozenset({"options"}),
    "multi_select": frozenset({"options"}),
    "link": frozenset({"to", "many", "related_name"}),
    "user": frozenset({"related_name"}),
    "file": frozenset(),
    "formula": frozenset({"formula"}),
    "autonumber": frozenset({"prefix"}),
}
REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "select": ("options",),
    "multi_select": ("options",),
    "link": ("to",),
    "formula": ("formula",),
}
COMMON_FIELD_KEYS = frozenset(
    {"key", "type", "label", "required", "unique", "indexed", "default", "help", "renamed_from"}
)
NOT_INDEXABLE = frozenset({"multi_select", "file", "formula"})
NOT_UNIQUE = frozenset({"file", "formula", "boolean", "multi_select"})
CALCULATED = frozenset({"formula", "autonumber"})


@dataclass
class RoleDef(IRNode):
    """A role users can hold; ``roles: [sales]`` is short for ``[{key: sales}]``."""

    __shorthand__ = "key"
    key: Key = doc("the role's key, used by rules (HAS_ROLE) and `permissions`")
    label: str | None = doc("the name people see (default: from the key)", None)
    where: dict = _where()


@dataclass
class FieldSpec(IRNode):
    """A field of a table; type settings depend on `type`."""

    key: Key = doc("the field's key, used in formulas and the API")
    type: FieldTypeName = doc("the field type")
    label: str | None = doc("the name people see (default: from the key)", None)
    required: bool = doc("a record needs a value", False)
    unique: bool = doc("no two live records share a value", False)
    indexed: bool = doc("keep an index for fast sorting and filtering", False)
    default: Formula | None = doc(
        "a formula giving the value of a new record that has none, e.g. '\"lead\"', 'TODAY()'",
        None,
    )
    help: str | None = doc("a hint shown under the field in forms", None)
    renamed_from: Key | None = doc(
        "the field's previous key: apply renames it instead of adding a new field", None
    )
    options: list[str] | None = doc("select, multi_select: the choices", None)
    precision: int | None = doc("number, currency: decimals (0-10)", None)
    currency: str | None = doc("currency: the currency code shown, e.g. EUR", None)
    max_length: int | None = doc("text, long_text: the longest value allowed", None)
    to: Key | None = doc("link: the key of the table linked to", None)
    many: bool = doc("link: many-to-many (a list of records)", False)
    related_name: Key | None = doc(
        "link, user: the key of the reverse side on the other table", None
    )
    formula: Formula | None = doc("formula: the formula computing the value", None)
    prefix: str | None = doc("autonumber: text shown before the number", None)
    where: dict = _where()


@dataclass
class ValidationDef(IRNode):
    """A rule every saved record must satisfy."""

    rule: Rule = doc("a Boolean formula; a record for which it is not TRUE is refused")
    message: str = doc("what the user is told when the rule is not satisfied")
    where: dict = _where()


@dataclass
class RowPermission(IRNode):
    """What one role may do with a table's records: one Boolean formula per action
    (true: every record; an action left out grants nothing)."""

    role: Key = doc("the role this rule is for")
    read: Rule | None = doc("records the role may see", None)
    create: Rule | None = doc("records the role may create (checked on the new values)", None)
    update: Rule | None = doc("records the role may change", None)
    delete: Rule | None = doc("records the role may move to the trash", None)
    where: dict = _where()


@dataclass
class FieldPermission(IRNode):
    """What one role may do with one field (left out: readable, writable where readable)."""

    field: Key = doc("the field this rule is for")
    role: Key = doc("the role this rule is for")
    read: Rule | None = doc("records on which the role sees the field", None)
    write: Rule | None = doc("records on which the role may change the field", None)
    where: dict = _where()


@dataclass
class ViewDef(IRNode):
    """A saved list of a table's records: which fields, which records, which order."""

    key: Key = doc("the view's key")
    label: str | None = doc("the name people see (default: from the key)", None)
    fields: list[Key] | None = doc("the fields shown, in order (default: all)", None)
    filter: Rule | None = doc("a Boolean formula: the records shown", None)
    sort: str | None = doc("sort keys, e.g. '-amount,name' (- for descending)", None)
    where: dict = _where()


@dataclass
class IndexDef(IRNode):
    """An index over several fields, plain (faster lists and filters) or unique."""

    fields: list[Key] = doc("the fields, in index order (2 to 6)")
    unique: bool = doc(
        "no two live records share the combination (a record with any of the fields "
        "blank never conflicts; the trash does not count)",
        False,
    )
    message: str | None = doc(
        "unique: what the user is told (default: Another <record> already has this <a> and <b>)",
        None,
    )
    where: dict = _where()


@dataclass
class TableSpec(IRNode):
    """A table (`key: users` extends the built-in users table with fields)."""

    key: Key = doc("the table's key, used in formulas, links and the API")
    label: str | None = doc("the name people see (default: from the key)", None)
    display: Key | None = doc("the field that names a record in lists and links", None)
    renamed_from: Key | None = doc(
        "the table's previous key: apply renames it instead of creating a new table", None
    )
    fields: list[FieldSpec] = doc("the table's fields, in form order", default_factory=list)
    validations: list[ValidationDef] = doc("rules every record must satisfy", default_factory=list)
    lock: Rule | None = doc("a Boolean formula: records for which it is TRUE are read-only", None)
    permissions: list[RowPermission] = doc(
        "row rules, at most one per role (admins are never limited)", default_factory=list
    )
    field_permissions: list[FieldPermission] = doc(
        "field rules, at most one per field and role", default_factory=list
    )
    views: list[ViewDef] = doc("saved views of the table", default_factory=list)
    indexes: list[IndexDef] = doc(
        "indexes over several fields, plain or unique", default_factory=list
    )
    seed: list[dict[str, Any]] = doc(
        "starting records, inserted when the table holds no records", default_factory=list
    )
    demo: list[dict[str, Any]] = doc(
        "demo records, inserted like seed with `app install --demo`", default_factory=list
    )
    where: dict = _where()
