"""Automations in the app format: checking, stored form, words and export.

An automation (``ir.AutomationSpec``) is checked against the schema the app would
make and turned into a JSON *document* that ``cb_automations.definition`` keeps and
the engine (``cubebase.workflows.automations``) runs. Everything that a rename could
break is kept by id: tables (``table_id``), fields (``[field id, formula]`` pairs)
and formulas (stored form, ``{#id}``), so renaming a table or a field keeps an
automation working.

Formulas of actions are checked against a *view* of the trigger table: its fields,
plus ``id`` (the triggering record itself, a link to its own table) and the ``as``
names of earlier ``create``/``find_or_create`` actions (links to their tables). Those
extra names get ids above ``VIRTUAL_BASE``, so their stored form is ``{#2000000000}``
and so on, and they show as their names again. ``when`` sees the table's own fields
only (on a schedule it becomes SQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from .. import formula as F
from ..formula import types as ft
from ..formula.schema import FieldInfo, LinkInfo, TableInfo
from . import ir
from .errors import Problems
from .loader import did_you_mean
from .schedules import parse_schedule

VIRTUAL_BASE = 2_000_000_000  # ids of `id` (this) and of `as` names (above it)
RECORD_EVENTS = ("create", "update", "change", "delete")
ACTION_KINDS = ("update", "create", "find_or_create", "notify", "start_workflow", "send_report")
NO_TABLE = "_no_table"  # the formulas of an automation without a table see no fields
CALCULATED_TYPES = frozenset({"formula", "autonumber", "file"})


# --- the view the formulas of actions see -------------------------------------------------


class AutomationView:
    """A formula ``SchemaProvider``: the schema, with the trigger table showing ``id``
    and the ``as`` names as link fields (ids above ``VIRTUAL_BASE``)."""

    def __init__(self, fs, table_key: str | None, names: Sequence[tuple[str, str]] = ()):
        self.fs = fs
        self.key = table_key or NO_TABLE
        base = fs.table(table_key) if table_key else None
        if base is None:
            info = TableInfo(id=0, key=NO_TABLE, label="", sql=sa.table(NO_TABLE))
        else:
            info = replace(base, fields=dict(base.fields))
            info.fields["id"] = FieldInfo(
                VIRTUAL_BASE, "id", "id", ft.record_of(base.key), link=LinkInfo(base.key)
            )
        for i, (name, target) in enumerate(names):
            info.fields[name] = FieldInfo(
                VIRTUAL_BASE + 1 + i, name, name, ft.record_of(target), link=LinkInfo(target)
            )
        self.info = info

    def table(self, key: str) -> TableInfo | None:
        return self.info if key == self.key else self.fs.table(key)

    def table_keys(self) -> list[str]:
        return [*self.fs.table_keys(), *([NO_TABLE] if self.key == NO_TABLE else [])]


# --- checking ----------------------------------------------------------------------------


@dataclass
class CompiledAutomation:
    """A valid automation: its document (what ``cb_automations.definition`` keeps)."""

    key: str
    table: str | None
    document: dict[str, Any]
    spec: ir.AutomationSpec | None = None


def load_automations_text(
    text: str, name: str = "<automations>"
) -> tuple[list[ir.AutomationSpec], dict[tuple[str, str], int]]:
    """``automations:`` from YAML text (tests, scripts): the IR and the formulas' lines."""
    import yaml

    from .loader import _Walker

    problems = Problems()
    lines: dict[tuple[str, str], int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    node = next(v for k, v in root.value if k.value == "automations")
    specs = _Walker(name, problems, lines).value(list[ir.AutomationSpec], node, "automations")
    problems.raise_if_any()
    return specs, lines


def table_by_id(schema, table_id: int | None):
    for t in schema.tables.values():
        if t.id == table_id:
            return t
    return None


def field_by_id(table, field_id: int):
    for f in table.fields.values():
        if f.id == field_id:
            return f
    return None


def validate_automations(
    section: list[ir.AutomationSpec],
    schema,
    roles: set[str] | None = None,
    lines: Mapping[tuple[str, str], int] | None = None,
    *,
    workflows: set[str] | None = None,
    reports: set[str] | None = None,
    problems: Problems | None = None,
) -> list[CompiledAutomation]:
    """Check automations against ``schema`` (live or the one the app would make); every
    mistake is added to ``problems`` (or raised at once as AppFileError). ``roles``,
    ``workflows`` and ``reports``: the keys known (None: not checked)."""
    own = problems is None
    problems = problems if problems is not None else Problems()
    out = []
    seen: set[str] = set()
    for a in section:
        if a.key in seen:
            problems.add(a.at("key"), f"automation `{a.key}` is defined twice")
            continue
        seen.add(a.key)
        checker = _Checker(a, schema, roles, lines or {}, problems, workflows, reports)
        doc_ = checker.run()
        if doc_ is not None:
            out.append(CompiledAutomation(a.key, a.table, doc_, a))
    if own:
        problems.raise_if_any()
    return out


class _Checker:
    def __init__(self, a, schema, roles, lines, problems: Problems, workflows, reports):
        self.a = a
        self.schema = schema
        self.roles = roles
        self.lines = lines
        self.problems = problems
        self.workflows = workflows
        self.reports = reports
        self.fs = schema.formula_schema()
        self.before = len(problems.items)
        self.names: list[tuple[str, str]] = []  # `as` names so far: (name, table key)

    def err(self, node: ir.IRNode, key: str, message: str) -> None:
        self.problems.add(node.at(key), message)

    def formula(
        self,
        where: tuple[str, int, str],
        source: str | None,
        expected: ft.FType | None = None,
        *,
        view: bool = True,
        users: bool = False,
    ) -> str | None:
        """The formula in stored form, or None with its problems added."""
        if source is None:
            return None
        file, line, path = where
        line = self.lines.get((file, path), line)
        provider = AutomationView(self.fs, self.a.table, self.names if view else ())
        if not view:
            provider = self.fs if self.a.table else AutomationView(self.fs, None)
        key = self.a.table or NO_TABLE
        try:
            checked = F.check(source, provider, key, expected)
        except F.FormulaError as exc:
            for item in exc.errors:
                self.problems.add((file, line + item.line - 1, path), item.message, item.excerpt)
            return None
        if users:
            if not ft.gives_users(checked.type):
                self.problems.add(
                    (file, line, path),
                    f"must give a user or a list of users, not {checked.type_name}",
                )
                return None
        return F.to_stored(source, provider, key)

    def run(self) -> dict[str, Any] | None:
        a = self.a
        table = None
        if a.table is not None:
            if not self.schema.has_table(a.table):
                self.err(
                    a, "table", f"no table `{a.table}`{did_you_mean(a.table, self.schema.tables)}"
                )
                return None
            table = self.schema.table(a.table)
        elif a.on != "schedule":
            self.err(a, "on", f"`on: {a.on}` needs `table`: the table whose records trigger it")
        doc_: dict[str, Any] = {
            "key": a.key,
            "label": a.label or a.key.replace("_", " ").capitalize(),
            "on": a.on,
            "schedule": None,
            "when": None,
            "enabled": a.enabled,
            "actions": [],
            "as": [],
        }
        if a.on == "schedule":
            sched = parse_schedule(a.schedule) if a.schedule is not None else None
            if a.schedule is None:
                self.err(a, "on", "`on: schedule` needs `schedule:` (e.g. daily 06:00)")
            elif sched is None:
                self.err(
                    a,
                    "schedule",
                    f"`{a.schedule}` is not a schedule: write hourly, daily HH:MM, "
                    "weekly mon HH:MM or monthly D HH:MM (e.g. daily 06:00)",
                )
            else:
                doc_["schedule"] = sched.text
        elif a.schedule is not None:
            self.err(a, "schedule", f"`schedule` goes with `on: schedule`, not `on: {a.on}`")
        if a.when is not None:
            if table is None:
                self.err(a, "when", "`when` needs `table`: it is a condition on its records")
            else:
                doc_["when"] = self.formula(a.at("when"), a.when, ft.BOOLEAN, view=False)
        if not a.actions:
            self.err(a, "actions", f"automation `{a.key}` has no actions")
        for act in a.actions:
            d = self.action(act, table)
            if d is not None:
                doc_["actions"].append(d)
        doc_["as"] = [[name, self.schema.table(t).id] for name, t in self.names]
        if len(self.problems.items) > self.before:
            return None
        return doc_

    # --- actions -------------------------------------------------------------------------
    def action(self, act: ir.AutomationActionSpec, table) -> dict[str, Any] | None:
        given = [k for k in ACTION_KINDS if getattr(act, k) is not None]
        if len(given) != 1:
            what = "none" if not given else ", ".join(given)
            self.err(
                act, "", f"an action needs exactly one of {', '.join(ACTION_KINDS)} (here: {what})"
            )
            return None
        kind = given[0]
        for extra in ("as_", "match", "values"):
            allowed = {"as_": ("create", "find_or_create"), "match": ("find_or_create",)}.get(
                extra, ("create", "find_or_create")
            )
            if getattr(act, extra) is not None and kind not in allowed:
                name = extra.rstrip("_")
                self.err(act, extra, f"`{name}` does not go with `{kind}`")
        if table is None and kind in ("update", "create", "find_or_create", "start_workflow"):
            self.err(act, kind, f"`{kind}` needs the automation's `table` (a record to act on)")
            return None
        return getattr(self, "_" + kind)(act, table)

    def _assignments(
        self, act, key: str, values: Mapping[str, str] | None, target
    ) -> list[list[Any]]:
        """``{field: formula}`` of ``target``'s fields as ``[[field id, stored], ...]``."""
        out = []
        file, line, path = act.at(key)
        for fk, source in (values or {}).items():
            where = (file, self.lines.get((file, f"{path}.{fk}"), line), f"{path}.{fk}")
            f = target.fields.get(fk)
            if f is None:
                self.problems.add(
                    where,
                    f"table `{target.key}` has no field `{fk}`{did_you_mean(fk, target.fields)}",
                )
                continue
            if f.system or f.type in CALCULATED_TYPES or f.link_kind in ("reverse", "reverse_many"):
                self.problems.add(where, f"`{fk}` is calculated automatically; it cannot be set")
                continue
            stored = self.formula(where, source, f.ftype.formula_type(f))
            if stored is not None:
                out.append([f.id, stored])
        return out

    def _update(self, act, table) -> dict[str, Any]:
        if not act.update:
            self.err(act, "update", "`update` needs at least one field: formula")
        return {"kind": "update", "values": self._assignments(act, "update", act.update, table)}

    def _target(self, act, key: str):
        name = getattr(act, key)
        if not self.schema.has_table(name):
            self.err(act, key, f"no table `{name}`{did_you_mean(name, self.schema.tables)}")
            return None
        return self.schema.table(name)

    def _as(self, act, table, target) -> str | None:
        name = act.as_
        if name is None:
            return None
        if name == "id" or name in table.fields:
            self.err(act, "as_", f"`as: {name}` clashes with field `{name}` of `{table.key}`")
        elif any(n == name for n, _ in self.names):
            self.err(act, "as_", f"`as: {name}` is already used by an earlier action")
        return name

    def _create(self, act, table) -> dict[str, Any] | None:
        target = self._target(act, "create")
        if target is None:
            return None
        d = {
            "kind": "create",
            "table_id": target.id,
            "values": self._assignments(act, "values", act.values, target),
            "as": self._as(act, table, target),
        }
        if d["as"]:
            self.names.append((d["as"], target.key))
        return d

    def _find_or_create(self, act, table) -> dict[str, Any] | None:
        target = self._target(act, "find_or_create")
        if target is None:
            return None
        if not act.match:
            self.err(act, "find_or_create", "`find_or_create` needs `match: {field: formula}`")
        for fk in act.match or {}:
            f = target.fields.get(fk)
            if f is not None and (f.link_kind == "many" or f.type in ("multi_select", "file")):
                self.err(act, "match", f"`{fk}` holds several values; match on a single value")
        d = {
            "kind": "find_or_create",
            "table_id": target.id,
            "match": self._assignments(act, "match", act.match, target),
            "values": self._assignments(act, "values", act.values, target),
            "as": self._as(act, table, target),
        }
        if d["as"]:
            self.names.append((d["as"], target.key))
        return d

    def _receivers(self, node, *, required: bool = True) -> tuple[str | None, str | None]:
        if (node.to is None) == (node.role is None) and required:
            self.err(node, "", "give either `to` (a formula giving users) or `role`")
        if node.role is not None and self.roles is not None and node.role not in self.roles:
            self.err(node, "role", f"no role `{node.role}`{did_you_mean(node.role, self.roles)}")
        return self.formula(node.at("to"), node.to, users=True), node.role

    def _notify(self, act, table) -> dict[str, Any]:
        n = act.notify
        to, role = self._receivers(n)
        return {
            "kind": "notify",
            "to": to,
            "role": role,
            "subject": self.formula(n.at("subject"), n.subject, ft.TEXT),
            "body": self.formula(n.at("body"), n.body, ft.TEXT),
        }

    def _start_workflow(self, act, table) -> dict[str, Any]:
        key = act.start_workflow
        if self.workflows is not None and key not in self.workflows:
            self.err(
                act,
                "start_workflow",
                f"no workflow `{key}`{did_you_mean(key, self.workflows)}",
            )
        return {"kind": "start_workflow", "workflow": key}

    def _send_report(self, act, table) -> dict[str, Any]:
        s = act.send_report
        if self.reports is not None and s.report not in self.reports:
            self.err(s, "report", f"no report `{s.report}`{did_you_mean(s.report, self.reports)}")
        to, role = self._receivers(s)
        return {"kind": "send_report", "report": s.report, "to": to, "role": role}


# --- back to the IR and into words -------------------------------------------------------


class Shown:
    """Stored formulas of one automation's document with today's names."""

    def __init__(self, schema, document: Mapping[str, Any], table_key: str | None):
        self.schema = schema
        self.fs = schema.formula_schema()
        names = []
        for name, tid in document.get("as") or []:
            t = table_by_id(schema, tid)
            names.append((name, t.key if t is not None else "?"))
        self.view = AutomationView(self.fs, table_key, names)
        self.key = table_key or NO_TABLE

    def __call__(self, stored: str | None) -> str | None:
        if not stored:
            return None
        try:
            return F.to_display(stored, self.view, self.key)
        except F.FormulaError:
            return stored

    def fields(self, table, pairs) -> dict[str, str]:
        out = {}
        for fid, stored in pairs or []:
            f = field_by_id(table, fid) if table is not None else None
            out[f.key if f is not None else f"#{fid}"] = self(stored)
        return out


def uses(document: Mapping[str, Any], schema, table_id: int | None) -> tuple[set[int], set[int]]:
    """(field ids, table ids) a stored automation uses: its trigger table and the tables
    it creates in, the fields its actions set and every field its formulas read (checked
    against the same view ``Shown`` renders them with). Deleting any of them would break
    it, so the schema editor refuses (``automation_users`` in the engine)."""
    from ..platform.usage import fields_read

    table = table_by_id(schema, table_id) if table_id is not None else None
    show = Shown(schema, document, table.key if table is not None else None)
    tables = {table_id} if table_id is not None else set()
    fields: set[int] = set()
    formulas = [document.get("when")]
    for d in document.get("actions") or []:
        if d.get("table_id") is not None:
            tables.add(d["table_id"])
        for pairs in (d.get("values"), d.get("match")):
            for fid, stored in pairs or []:
                fields.add(fid)
                formulas.append(stored)
        formulas += [d.get("to"), d.get("subject"), d.get("body")]
    for stored in formulas:
        fields |= fields_read(stored, show.view, show.key)
    return fields, tables


def to_spec(document: Mapping[str, Any], schema, table_key: str | None) -> ir.AutomationSpec:
    """A stored automation back to the IR (export): checking the result gives the same
    document again."""
    show = Shown(schema, document, table_key)
    own = schema.table(table_key) if table_key and schema.has_table(table_key) else None
    actions = []
    for d in document["actions"]:
        kind = d["kind"]
        if kind == "update":
            actions.append(ir.AutomationActionSpec(update=show.fields(own, d["values"])))
        elif kind in ("create", "find_or_create"):
            target = table_by_id(schema, d["table_id"])
            a = ir.AutomationActionSpec(as_=d.get("as"))
            setattr(a, kind, target.key if target is not None else f"#{d['table_id']}")
            a.values = show.fields(target, d["values"]) or None
            if kind == "find_or_create":
                a.match = show.fields(target, d["match"])
            actions.append(a)
        elif kind == "notify":
            n = ir.NotifySpec(
                to=show(d["to"]), role=d["role"], subject=show(d["subject"]), body=show(d["body"])
            )
            actions.append(ir.AutomationActionSpec(notify=n))
        elif kind == "start_workflow":
            actions.append(ir.AutomationActionSpec(start_workflow=d["workflow"]))
        elif kind == "send_report":
            s = ir.SendReportSpec(report=d["report"], to=show(d["to"]), role=d["role"])
            actions.append(ir.AutomationActionSpec(send_report=s))
    label = document["label"]
    return ir.AutomationSpec(
        key=document["key"],
        label=None if label == document["key"].replace("_", " ").capitalize() else label,
        table=table_key,
        on=document["on"],
        schedule=document["schedule"],
        when=show(document["when"]),
        enabled=document["enabled"],
        actions=actions,
    )


def _singular(label: str) -> str:
    word = label.lower().replace("_", " ")
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def describe(document: Mapping[str, Any], schema, table_key: str | None) -> str:
    """The automation in business words, for plans: ``on opportunities: when stage =
    "won" becomes true, update closed_on; create a commission credit``."""
    show = Shown(schema, document, table_key)
    on = document["on"]
    when = show(document["when"])
    if on == "schedule":
        head = f"{document['schedule']}"
        head += (
            f", for each record where {when}"
            if when
            else (", for every record" if table_key else "")
        )
    else:
        event = {
            "create": "a record is created",
            "update": "a record is updated",
            "change": "a record is created or updated",
            "delete": "a record is deleted",
        }[on]
        head = f"when {event}" + (f" and {when} becomes true" if when and on != "delete" else "")
        if when and on == "delete":
            head += f" while {when}"
    words = []
    for d in document["actions"]:
        kind = d["kind"]
        if kind == "update":
            own = schema.table(table_key) if table_key and schema.has_table(table_key) else None
            words.append("set " + ", ".join(show.fields(own, d["values"])))
        elif kind in ("create", "find_or_create"):
            t = table_by_id(schema, d["table_id"])
            name = _singular(t.label) if t is not None else "record"
            verb = "create a" if kind == "create" else "find or create a"
            words.append(f"{verb} {name}" + (f" (as {d['as']})" if d.get("as") else ""))
        elif kind == "notify":
            who = f"role {d['role']}" if d["role"] else show(d["to"])
            words.append(f"notify {who}")
        elif kind == "start_workflow":
            words.append(f"start workflow {d['workflow']}")
        elif kind == "send_report":
            who = f"role {d['role']}" if d["role"] else show(d["to"])
            words.append(f"send report {d['report']} to {who}")
    if not document["enabled"]:
        words.append("(disabled)")
    return f"{head}, {'; '.join(words)}"
