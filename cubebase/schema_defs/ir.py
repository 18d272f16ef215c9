"""The app format's single source of truth: typed dataclasses (the IR).

The YAML loader builds these classes by walking their annotations (so a key the
classes do not declare is an error), the exporter writes them back in their
declaration order, and ``json_schema()`` derives the JSON Schema committed as
``app-format.schema.json`` (a test checks the two are equal). Adding a key means
adding one dataclass field here, with its ``doc``.

Annotations understood by the walkers: ``str``, ``int``, ``bool``, ``Any``,
``Literal[...]``, ``list[T]``, ``T | None``, ``dict[str, Any]`` (plain values) and
``dict[str, T]`` (each value a T), the marked
strings ``Key`` and ``Formula`` (``Rule``: a formula or true/false), and nested IR
dataclasses (a class with ``__shorthand__`` also accepts a bare string for
that field, as ``roles: [sales]`` for ``roles: [{key: sales}]``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEY = _Marker("key")
FORMULA = _Marker("formula")
RULE = _Marker("rule")

Key = Annotated[str, KEY]
Formula = Annotated[str, FORMULA]
Rule = Annotated[str, RULE]  # a Boolean formula; YAML true/false are TRUE/FALSE

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

# Sections of later issues: reserved keys, accepted only empty for now.
LATER_SECTIONS: tuple[str, ...] = ()


def doc(
    text: str, default: Any = dataclasses.MISSING, *, metadata_key: str | None = None, **kw: Any
) -> Any:
    """A dataclass field with its documentation (it goes into the JSON Schema);
    ``metadata_key``: its key in the files when that is a Python keyword."""
    meta = {"doc": text} if metadata_key is None else {"doc": text, "key": metadata_key}
    if default is dataclasses.MISSING and "default_factory" not in kw:
        return field(metadata=meta, **kw)
    if "default_factory" in kw:
        return field(metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def yaml_key(f: dataclasses.Field) -> str:
    """The key a field has in the files: its name, or ``metadata["key"]`` for a key
    that is a Python keyword (an automation action's ``as``)."""
    return f.metadata.get("key", f.name)


def _where() -> Any:
    return field(default_factory=dict, repr=False, compare=False, metadata={"internal": True})


@dataclass
class IRNode:
    """Base of every IR class; ``where`` maps a key ("" for the node itself) to
    (file, line, path) where the loader found it."""

    def at(self, key: str = "") -> tuple[str, int, str]:
        where = self.__dict__.get("where") or {}
        return where.get(key) or where.get("") or ("", 0, key)


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


# --- workflows (their meaning is checked by cubebase.workflows.definitions) ------------


@dataclass
class StartSpec(IRNode):
    """How instances start: `manual`, `on_create`, or `{when: FORMULA}` (when it becomes true)."""

    __shorthand__ = "mode"
    mode: Literal["manual", "on_create", "when"] = doc("manual, on_create or when", "when")
    when: Rule | None = doc("start when this becomes true on a record (after a write)", None)
    where: dict = _where()


@dataclass
class RouteSpec(IRNode):
    """One branch of conditional routing: the first route whose `when` holds is taken."""

    to: Key = doc("the next step, or done / rejected / cancelled")
    when: Rule | None = doc("the condition (none: always; write it last)", None)
    where: dict = _where()


@dataclass
class ActionSpec(IRNode):
    """Something an assignee does at a step: submit, approve, reject, return, ..."""

    key: Key = doc("the action's key, sent by the inbox (e.g. approve)")
    label: str | None = doc("the button's text", None)
    outcome: Literal["approve", "reject"] | None = doc(
        "how it counts for parallel approval (default: reject for reject/return, else approve)",
        None,
    )
    to: Key | None = doc("the next step, or done / rejected / cancelled", None)
    routes: list[RouteSpec] = doc("conditional routing instead of `to`", default_factory=list)
    guard: Rule | None = doc("the action is allowed only when this holds on the record", None)
    guard_message: str | None = doc("what the user is told when the guard fails", None)
    comment: Literal["optional", "required"] = doc("whether a comment is required", "optional")
    set: dict[str, Formula] | None = doc(
        "fields the system sets on the record when this action decides the step: "
        "{field: formula over the record}, e.g. {account_manager: transfer_to}",
        None,
    )
    where: dict = _where()

    @property
    def kind(self) -> str:
        if self.outcome:
            return self.outcome
        return "reject" if self.key in ("reject", "return", "send_back") else "approve"


@dataclass
class EscalationSpec(IRNode):
    """What happens when a task is still open some time after its deadline."""

    to: Formula = doc("a formula giving the user (or users) to reassign to or notify")
    after: str = doc("a duration after the deadline (e.g. 1d)", "0m")
    action: Literal["reassign", "notify"] = doc("reassign the task, or notify someone", "notify")
    where: dict = _where()


@dataclass
class StepSpec(IRNode):
    """A step: its assignees get a task each; their actions move the record on."""

    key: Key = doc("the step's key")
    label: str | None = doc("the name people see", None)
    assignees: Formula | None = doc("a formula giving a user or a list of users", None)
    role: Key | None = doc("or: every active user holding this role", None)
    approval: Literal["any", "all"] = doc(
        "with several assignees: one of them decides (any) or all must approve (all)", "any"
    )
    quorum: int | None = doc("k-of-n: this many approvals decide the step", None)
    editable: list[Key] = doc("fields the assignees may change at this step", default_factory=list)
    required: list[Key] = doc("fields that must be filled to approve", default_factory=list)
    deadline: str | None = doc("a duration from the task's start (3d, 4h) or a formula", None)
    reminder: str | None = doc("remind the assignee this long before the deadline", None)
    escalation: EscalationSpec | None = doc("what happens after the deadline", None)
    actions: list[ActionSpec] = doc("what the assignees can do", default_factory=list)
    where: dict = _where()


@dataclass
class WorkflowSpec(IRNode):
    """A workflow bound to a table."""

    key: Key = doc("the workflow's key")
    table: Key = doc("the table whose records move through it")
    label: str | None = doc("the name people see", None)
    start: StartSpec = doc("how instances start", default_factory=lambda: StartSpec("manual"))
    allow_self_approval: bool = doc(
        "may the user who started an instance approve it at a later step", True
    )
    steps: list[StepSpec] = doc(
        "the steps; the first is where an instance starts", default_factory=list
    )
    migrate: dict[str, Key] | None = doc(
        "when a change makes a new version: move the running instances to it, each from "
        "its step to the step named here (old step: new step; a step left out keeps its "
        "key). Without it, running instances finish on the version they started with. "
        "Used once by apply, never exported",
        None,
    )
    where: dict = _where()


@dataclass
class WorkflowFile(IRNode):
    """A workflow file: `workflows:` at its top (in the app folder or its `workflows/`)."""

    workflows: list[WorkflowSpec] = doc("the workflows", default_factory=list)
    where: dict = _where()


# --- automations (their meaning is checked by cubebase.schema_defs.automations) ---------


@dataclass
class NotifySpec(IRNode):
    """An in-app notification (and an e-mail when SMTP is set)."""

    to: Formula | None = doc("a formula giving a user or a list of users", None)
    role: Key | None = doc("or: every active user holding this role", None)
    subject: Formula | None = doc(
        "a formula giving the subject (Text); without it, the automation's label", None
    )
    body: Formula | None = doc("a formula giving the text (Text)", None)
    where: dict = _where()


@dataclass
class SendReportSpec(IRNode):
    """Run a report as each receiver (their rules apply) and notify them of it."""

    report: Key = doc("the report's key")
    to: Formula | None = doc("a formula giving a user or a list of users", None)
    role: Key | None = doc("or: every active user holding this role", None)
    where: dict = _where()


@dataclass
class AutomationActionSpec(IRNode):
    """One action: exactly one of update, create, find_or_create, notify,
    start_workflow, send_report."""

    update: dict[str, Formula] | None = doc(
        "change the triggering record: field -> formula over it", None
    )
    create: Key | None = doc("create a record in this table (with `values`)", None)
    find_or_create: Key | None = doc(
        "find a record of this table matching `match`, create it (with `match` and "
        "`values`) when there is none",
        None,
    )
    as_: Key | None = doc(
        "find_or_create/create: later actions see the record as a link field of this name",
        None,
        metadata_key="as",
    )
    match: dict[str, Formula] | None = doc(
        "find_or_create: field -> formula; the record whose fields equal all of them", None
    )
    values: dict[str, Formula] | None = doc(
        "create/find_or_create: field -> formula (find_or_create: used only when creating)",
        None,
    )
    notify: NotifySpec | None = doc("notify users", None)
    start_workflow: Key | None = doc("start this workflow on the triggering record", None)
    send_report: SendReportSpec | None = doc("send a report to users", None)
    where: dict = _where()


@dataclass
class AutomationSpec(IRNode):
    """An automation: on a record event or a schedule, run actions as the system."""

    key: Key = doc("the automation's key")
    label: str | None = doc("the name people see", None)
    table: Key | None = doc(
        "the table whose records trigger it (a schedule without a table runs its actions "
        "once per due time)",
        None,
    )
    on: Literal["create", "update", "change", "delete", "schedule"] = doc(
        "the trigger: a record is created, updated, either (change), deleted; or a schedule",
        kw_only=True,
    )
    schedule: str | None = doc(
        "on: schedule: hourly | daily HH:MM | weekly mon HH:MM | monthly D HH:MM "
        "(workspace time zone)",
        None,
    )
    when: Formula | None = doc(
        "a Boolean formula on the record: record events run when it becomes true (false "
        "or no record before, true after); a schedule sweeps the records where it holds",
        None,
    )
    enabled: bool = doc("false: kept but never run", True)
    actions: list[AutomationActionSpec] = doc("what it does, in order", default_factory=list)
    where: dict = _where()


# --- reports and dashboards (their meaning is checked by cubebase.schema_defs.reports) ---

ChartName = Literal["bar", "line", "pie", "funnel", "table", "number"]


@dataclass
class ReportSpec(IRNode):
    """A report: a summary (group_by, measures) or a list (columns) of one table's
    records, always run as the viewer (docs/reports.md)."""

    key: Key = doc("the report's key")
    label: str | None = doc("the name people see (default: from the key)", None)
    table: Key = doc("the table it reads", kw_only=True)
    filter: Rule | None = doc("a Boolean formula: the records it reads (default: all)", None)
    group_by: list[str] = doc(
        "a summary: up to two fields; a date or date-time with a grain, e.g. "
        "closed_on:month (day, week, month, quarter, year)",
        default_factory=list,
    )
    measures: list[str] = doc(
        "a summary: count, count(f), sum(f), avg(f), min(f), max(f) (default: count)",
        default_factory=list,
    )
    columns: list[Key] = doc(
        "a list report: the fields shown (instead of group_by and measures)",
        default_factory=list,
    )
    sort: str | None = doc(
        "a group or a measure (a list report: fields, comma-separated), - for descending, "
        "e.g. '-sum(amount)' (default: group order)",
        None,
    )
    limit: int | None = doc("at most this many rows", None)
    roles: list[Key] = doc(
        "who finds it in the Reports menu (admins: every report); the data is always the "
        "viewer's own (row and field rules apply)",
        default_factory=list,
    )
    where: dict = _where()


@dataclass
class DashboardItemSpec(IRNode):
    """A tile of a dashboard: a report as a chart, a table or a number."""

    report: Key = doc("the report's key")
    chart: ChartName = doc(
        "bar, line, pie, funnel (a summary report), table, or number (its first measure)",
        "table",
    )
    label: str | None = doc("the tile's title (default: the report's label)", None)
    where: dict = _where()


@dataclass
class DashboardSpec(IRNode):
    """A dashboard: tiles of reports, each computed as the viewer."""

    key: Key = doc("the dashboard's key")
    label: str | None = doc("the name people see (default: from the key)", None)
    roles: list[Key] = doc(
        "who finds it under Dashboards (admins: every dashboard)", default_factory=list
    )
    items: list[DashboardItemSpec] = doc("the tiles, in order", default_factory=list)
    where: dict = _where()


@dataclass
class AppSpec(IRNode):
    """An app: the top of an app file (its tables may also live in files of their own)."""

    app: Key = doc("the app's key; tables created by the app belong to it")
    roles: list[RoleDef] = doc("roles the app uses (created when missing)", default_factory=list)
    tables: list[TableSpec] = doc("the app's tables", default_factory=list)
    workflows: list[WorkflowSpec] = doc(
        "the app's workflows (also in workflow files: `workflows:` at their top)",
        default_factory=list,
    )
    automations: list[AutomationSpec] = doc(
        "automations: actions on record events or schedules (docs/automations.md)",
        default_factory=list,
    )
    reports: list[ReportSpec] = doc(
        "reports: summaries and lists of a table, run as the viewer (docs/reports.md)",
        default_factory=list,
    )
    dashboards: list[DashboardSpec] = doc(
        "dashboards: reports as charts, tables and numbers", default_factory=list
    )
    where: dict = _where()
    lines: dict = _where()  # (file, key path) -> line: formulas and seed rows


# --- walking the annotations ------------------------------------------------------------


def ir_fields(cls: type) -> list[dataclasses.Field]:
    """The format keys of an IR class, in declaration order."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(T, True) for ``T | None``; (tp, False) otherwise."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def marker(tp: Any) -> _Marker | None:
    if typing.get_origin(tp) is Annotated:
        for m in typing.get_args(tp)[1:]:
            if isinstance(m, _Marker):
                return m
    return None


def is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# --- the JSON Schema -------------------------------------------------------------------

SCHEMA_ID = "https://cubebase.dev/schemas/app-format.schema.json"
IR_CLASSES = (
    RoleDef,
    FieldSpec,
    ValidationDef,
    RowPermission,
    FieldPermission,
    ViewDef,
    IndexDef,
    TableSpec,
    StartSpec,
    RouteSpec,
    ActionSpec,
    EscalationSpec,
    StepSpec,
    WorkflowSpec,
    WorkflowFile,
    NotifySpec,
    SendReportSpec,
    AutomationActionSpec,
    AutomationSpec,
    ReportSpec,
    DashboardItemSpec,
    DashboardSpec,
)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an app file, derived from the dataclasses above."""
    defs = {cls.__name__: _class_schema(cls) for cls in IR_CLASSES}
    app = _class_schema(AppSpec)
    app["required"] = ["app"]
    table_file = {"$ref": "#/$defs/TableSpec"}
    workflow_file = {"$ref": "#/$defs/WorkflowFile"}
    defs["WorkflowFile"]["required"] = ["workflows"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Cubebase app file",
        "description": (
            "An app file (with `app:`), a table file (one table at the top level) or a "
            "workflow file (`workflows:` at the top level). "
            "Generated from cubebase/schema_defs/ir.py: do not edit by hand."
        ),
        "oneOf": [app, table_file, workflow_file],
        "$defs": defs,
    }


def _class_schema(cls: type) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required = []
    for f in ir_fields(cls):
        tp = hints(cls)[f.name]
        schema = _type_schema(tp)
        if f.name in LATER_SECTIONS and cls is AppSpec:
            schema = {"type": "array", "maxItems": 0}
        schema = {"description": f.metadata.get("doc", ""), **schema}
        d = default_of(f)
        if dataclasses.is_dataclass(d) and getattr(d, "__shorthand__", None):
            d = getattr(d, d.__shorthand__)  # e.g. `start: manual`
        if d is not dataclasses.MISSING and d not in (None, []):
            schema["default"] = d
        props[yaml_key(f)] = schema
        if is_required(f):
            required.append(yaml_key(f))
    out: dict[str, Any] = {
        "type": "object",
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    if cls is FieldSpec:
        out["allOf"] = _type_rules()
    shorthand = getattr(cls, "__shorthand__", None)
    if shorthand:
        return {"anyOf": [_type_schema(hints(cls)[shorthand]), out]}
    return out


def _type_rules() -> list[dict[str, Any]]:
    """Per field type: the settings it needs and the ones it does not take."""
    settings = set().union(*TYPE_SETTINGS.values())
    rules = []
    for tname, allowed in TYPE_SETTINGS.items():
        then: dict[str, Any] = {"properties": {k: False for k in sorted(settings - allowed)}}
        if tname in REQUIRED_SETTINGS:
            then["required"] = list(REQUIRED_SETTINGS[tname])
        rules.append({"if": {"properties": {"type": {"const": tname}}}, "then": then})
    return rules


def _type_schema(tp: Any) -> dict[str, Any]:
    inner, optional = unwrap_optional(tp)
    if optional:
        s = _type_schema(inner)
        return {"anyOf": [s, {"type": "null"}]}
    m = marker(tp)
    if m is KEY:
        return {"type": "string", "pattern": KEY_PATTERN}
    if m is FORMULA:
        return {"type": "string", "minLength": 1}
    if m is RULE:
        return {"type": ["string", "boolean"]}
    origin = typing.get_origin(tp)
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0])}
    if origin is dict:
        value = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        if value is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": _type_schema(value)}
    if tp is Any:
        return {}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if dataclasses.is_dataclass(tp):
        return {"$ref": f"#/$defs/{tp.__name__}"}
    raise TypeError(f"no JSON Schema for {tp!r}")  # pragma: no cover - a new annotation kind
