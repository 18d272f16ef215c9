"""Workflow definitions as data: IR dataclasses, loading and validation.

A workflow is bound to one table and written in YAML in the schema_defs format:
its IR classes are in ``cubebase.schema_defs.ir`` (an app file's ``workflows:``
section, or a workflow file), so the same line-tracking loader builds them and
reports unknown keys, wrong kinds and duplicates with file, line and key. ``validate_workflows`` then checks the meaning against the
live (or planned) schema and reports every mistake at once (``AppFileError``).
The result is a ``Compiled`` workflow: the IR turned into a plain JSON
document with formulas in stored form (field references by id), which is what
a version row keeps and what the engine runs.

Format (see docs/workflows.md)::

    workflows:
      - key: discount_approval
        table: quotes
        start: {when: 'discount > 0'}     # or: manual | on_create
        allow_self_approval: false
        steps:
          - key: submit
            assignees: owner              # a formula giving a user or users
            editable: [discount, note]
            actions:
              - {key: submit, routes: [{when: 'discount > 0.1', to: manager}, {to: done}]}
          - key: manager
            role: sales_manager            # or every user holding a role
            deadline: 2d                   # a duration (m, h, d, w) or a formula
            reminder: 4h                   # before the deadline
            escalation: {after: 1d, action: reassign, to: 'owner.manager'}
            actions:
              - {key: approve, to: done}
              - {key: reject, to: submit, comment: required}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode

from .. import formula as F
from ..formula import ast as A
from ..formula import types as ft
from ..schema_defs.errors import AppFileError, Problems
from ..schema_defs.ir import (
    ActionSpec,
    EscalationSpec,
    IRNode,
    RouteSpec,
    StartSpec,
    StepSpec,
    WorkflowFile,
    WorkflowSpec,
)
from ..schema_defs.loader import Source, _Walker, did_you_mean, read_sources

END_STEPS = ("done", "rejected", "cancelled")  # targets that finish an instance
DURATION = re.compile(r"^\s*(\d{1,6})\s*(m|min|h|d|w)\s*$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
CALCULATED_TYPES = frozenset({"formula", "autonumber"})


def parse_duration(text: str) -> timedelta | None:
    """``3d``, ``4h``, ``30m``, ``2w``; None when ``text`` is not a duration."""
    m = DURATION.match(text or "")
    if not m:
        return None
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


# --- the IR ------------------------------------------------------------------------------
# The classes live in cubebase.schema_defs.ir, the app format's single source of truth
# (so an app file's `workflows:` section, its JSON Schema and its export come from the
# same definitions); they are re-exported here.


@dataclass
class Loaded:
    workflows: list[WorkflowSpec]
    lines: dict[tuple[str, str], int]  # (file, key path) -> line of a formula's first line


def load_workflow_sources(sources: list[Source]) -> Loaded:
    """Workflow files into IR; AppFileError lists every problem of form."""
    problems = Problems()
    lines: dict[tuple[str, str], int] = {}
    out: list[WorkflowSpec] = []
    for src in sources:
        try:
            root = yaml.compose(src.text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problems.add(
                (src.name, mark.line + 1 if mark else 0, ""),
                f"not valid YAML: {exc.problem or exc.context}",
            )
            continue
        if not isinstance(root, MappingNode):
            problems.add((src.name, 0, ""), "expected `workflows:` with a list of workflows")
            continue
        walker = _Walker(src.name, problems, lines)
        built = walker.build(WorkflowFile, root, "")
        if built is not None:
            out.extend(built.workflows)
    problems.raise_if_any()
    return Loaded(out, lines)


def load_workflows(path: str | Path) -> Loaded:
    """A workflow file, or a folder of them."""
    return load_workflow_sources(read_sources(path))


def load_workflows_text(text: str, name: str = "<workflows>") -> Loaded:
    return load_workflow_sources([Source(name, text)])


# --- validation --------------------------------------------------------------------------


@dataclass
class Compiled:
    """A valid workflow: its key, table and the JSON document a version keeps."""

    key: str
    table: str
    document: dict[str, Any]
    spec: WorkflowSpec | None = None


def validate_workflows(
    section: list[WorkflowSpec],
    schema,
    roles: set[str] | None = None,
    lines: dict[tuple[str, str], int] | None = None,
    *,
    problems: Problems | None = None,
) -> list[Compiled]:
    """Check workflows against ``schema`` (a platform Schema, live or planned) and the
    known role keys; every mistake is reported at once with file, line and key.

    With ``problems`` given (schema_defs collecting the whole app's mistakes),
    problems are added there and nothing is raised."""
    own = problems is None
    problems = problems if problems is not None else Problems()
    lines = lines or {}
    out: list[Compiled] = []
    seen: dict[str, int] = {}
    for wf in section:
        if wf.key in seen:
            problems.add(wf.at("key"), f"workflow `{wf.key}` is defined twice")
            continue
        seen[wf.key] = 1
        doc_ = _Checker(wf, schema, roles, lines, problems).run()
        if doc_ is not None:
            out.append(Compiled(wf.key, wf.table, doc_, wf))
    if own:
        problems.raise_if_any()
    return out


class _Checker:
    def __init__(self, wf: WorkflowSpec, schema, roles, lines, problems: Problems):
        self.wf = wf
        self.schema = schema
        self.roles = roles
        self.lines = lines
        self.problems = problems
        self.before = len(problems.items)
        self.fs = schema.formula_schema()

    def err(self, node: IRNode, key: str, message: str) -> None:
        self.problems.add(node.at(key), message)

    def formula(
        self, node: IRNode, key: str, source: str | None, expected: ft.FType | None = None
    ) -> str | None:
        """The formula in stored form, or None (with its problems added)."""
        if source is None:
            return None
        file, line, path = node.at(key)
        line = self.lines.get((file, path), line)
        try:
            checked = F.check(source, self.fs, self.wf.table, expected)
        except F.FormulaError as exc:
            for item in exc.errors:
                self.problems.add((file, line + item.line - 1, path), item.message, item.excerpt)
            return None
        if expected is None and key in ("assignees", "to"):
            if not ft.gives_users(checked.type):
                self.problems.add(
                    (file, line, path),
                    f"must give a user or a list of users, not {checked.type_name}",
                )
                return None
        return F.to_stored(source, self.fs, self.wf.table)

    def run(self) -> dict[str, Any] | None:
        wf = self.wf
        if not self.schema.has_table(wf.table):
            self.err(
                wf, "table", f"no table `{wf.table}`{did_you_mean(wf.table, self.schema.tables)}"
            )
            return None
        table = self.schema.table(wf.table)
        doc_: dict[str, Any] = {
            "key": wf.key,
            "table": wf.table,
            "label": wf.label or wf.key.replace("_", " ").capitalize(),
            "allow_self_approval": wf.allow_self_approval,
            "start": {"mode": wf.start.mode, "when": None},
            "steps": [],
        }
        if wf.start.mode == "when":
            if wf.start.when is None:
                self.err(wf.start, "", "`start` needs `when: FORMULA`, or manual / on_create")
            doc_["start"]["when"] = self.formula(wf.start, "when", wf.start.when, ft.BOOLEAN)
        elif wf.start.when is not None:
            self.err(wf.start, "when", f"`when` does not go with `mode: {wf.start.mode}`")
        if not wf.steps:
            self.err(wf, "steps", "a workflow needs at least one step")
        keys: dict[str, StepSpec] = {}
        for s in wf.steps:
            if s.key in END_STEPS:
                self.err(s, "key", f"`{s.key}` is reserved for the end of a workflow")
            elif s.key in keys:
                self.err(s, "key", f"step `{s.key}` is defined twice")
            keys[s.key] = s
        for s in wf.steps:
            doc_["steps"].append(self.step(s, table, keys))
        for old, new in (wf.migrate or {}).items():
            if new not in keys and new not in END_STEPS:
                self.err(
                    wf,
                    "migrate",
                    f"`{old}: {new}`: no step `{new}`{did_you_mean(new, [*keys, *END_STEPS])} "
                    f"in this version (steps: {', '.join(keys)}; or {', '.join(END_STEPS)})",
                )
        if len(self.problems.items) > self.before:
            return None
        return doc_

    def field_list(self, s: StepSpec, key: str, table) -> list[str]:
        out = []
        for i, fk in enumerate(getattr(s, key)):
            f = table.fields.get(fk)
            if f is None:
                self.err(
                    s,
                    key,
                    f"table `{table.key}` has no field `{fk}`{did_you_mean(fk, table.fields)}",
                )
            elif f.system or f.type in CALCULATED_TYPES:
                self.err(s, key, f"`{fk}` is calculated automatically; no one edits it")
            else:
                out.append(fk)
            del i
        return out

    def step(self, s: StepSpec, table, keys: dict[str, StepSpec]) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": s.key,
            "label": s.label or s.key.replace("_", " ").capitalize(),
            "assignees": None,
            "role": None,
            "approval": s.approval,
            "quorum": s.quorum,
            "editable": self.field_list(s, "editable", table),
            "required": self.field_list(s, "required", table),
            "deadline": None,
            "deadline_formula": None,
            "reminder": None,
            "escalation": None,
            "actions": [],
        }
        if (s.assignees is None) == (s.role is None):
            self.err(s, "", f"step `{s.key}` needs either `assignees` (a formula) or `role`")
        d["assignees"] = self.formula(s, "assignees", s.assignees)
        if s.role is not None:
            if self.roles is not None and s.role not in self.roles:
                self.err(s, "role", f"no role `{s.role}`{did_you_mean(s.role, self.roles)}")
            d["role"] = s.role
        if s.quorum is not None:
            if s.quorum < 1:
                self.err(s, "quorum", "a quorum is at least 1")
            if s.approval == "all":
                self.err(s, "quorum", "give either `approval: all` or `quorum`, not both")
        for fk in d["required"]:
            if fk not in d["editable"] and not table.fields[fk].required:
                pass  # required may be filled at an earlier step; checked on approval
        if s.deadline is not None:
            dur = parse_duration(s.deadline)
            if dur is not None:
                d["deadline"] = int(dur.total_seconds())
            else:
                stored = self.formula(s, "deadline", s.deadline)
                if stored is not None:
                    checked = F.check(stored, self.fs, table.key)
                    if checked.type.kind not in ("date", "datetime"):
                        self.err(
                            s,
                            "deadline",
                            "a deadline is a duration (3d, 4h, 30m, 2w) or a formula "
                            f"giving a date or date and time, not {checked.type_name}",
                        )
                    d["deadline_formula"] = stored
        if s.reminder is not None:
            dur = parse_duration(s.reminder)
            if dur is None:
                self.err(s, "reminder", f"`{s.reminder}` is not a duration (e.g. 1d, 4h, 30m)")
            else:
                d["reminder"] = int(dur.total_seconds())
            if s.deadline is None:
                self.err(s, "reminder", "a reminder comes before a deadline: give `deadline`")
        if s.escalation is not None:
            e = s.escalation
            dur = parse_duration(e.after)
            if dur is None:
                self.err(e, "after", f"`{e.after}` is not a duration (e.g. 1d, 4h)")
            if s.deadline is None:
                self.err(e, "", "an escalation comes after a deadline: give `deadline`")
            to = self.formula(e, "to", e.to)
            d["escalation"] = {
                "after": int(dur.total_seconds()) if dur else 0,
                "action": e.action,
                "to": to,
            }
        if not s.actions:
            self.err(s, "actions", f"step `{s.key}` has no actions: nobody could move it on")
        seen: set[str] = set()
        for a in s.actions:
            if a.key in seen:
                self.err(a, "key", f"action `{a.key}` is given twice in step `{s.key}`")
            seen.add(a.key)
            d["actions"].append(self.action(a, keys))
        return d

    def target(self, node: IRNode, key: str, to: str, keys) -> None:
        if to not in keys and to not in END_STEPS:
            choices = [*keys, *END_STEPS]
            self.err(
                node,
                key,
                f"no step `{to}`{did_you_mean(to, choices)} (steps: {', '.join(keys)}; "
                f"or {', '.join(END_STEPS)})",
            )

    def action(self, a: ActionSpec, keys) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": a.key,
            "label": a.label or a.key.replace("_", " ").capitalize(),
            "kind": a.kind,
            "routes": [],
            "guard": self.formula(a, "guard", a.guard, ft.BOOLEAN),
            "guard_message": a.guard_message,
            "comment": a.comment,
        }
        if (a.to is None) == (not a.routes):
            self.err(a, "", f"action `{a.key}` needs either `to` or `routes`")
        if a.to is not None:
            self.target(a, "to", a.to, keys)
            d["routes"].append({"when": None, "to": a.to})
        for i, r in enumerate(a.routes):
            self.target(r, "to", r.to, keys)
            if r.when is None and i != len(a.routes) - 1:
                self.err(r, "", "a route without `when` must come last (later ones never run)")
            d["routes"].append({"when": self.formula(r, "when", r.when, ft.BOOLEAN), "to": r.to})
        if a.set:
            d["set"] = self.set_fields(a)
        return d

    def set_fields(self, a: ActionSpec) -> dict[str, str]:
        """``set: {field: formula}``: each field one the system may write, each formula
        giving that field's type (in stored form). Only in the document when given, so
        versions deployed before ``set`` existed compare equal."""
        table = self.schema.table(self.wf.table)
        info = self.fs.table(self.wf.table)
        file, line, path = a.at("set")
        line = self.lines.get((file, path), line)
        out: dict[str, str] = {}
        for fk, source in a.set.items():
            at = (file, line, f"{path}.{fk}")
            f = table.fields.get(fk)
            if f is None:
                self.problems.add(
                    at,
                    f"`set`: table `{table.key}` has no field `{fk}`{did_you_mean(fk, table.fields)}",
                )
                continue
            if f.system or f.type in CALCULATED_TYPES:
                self.problems.add(
                    at, f"`set`: `{fk}` is calculated automatically; it cannot be set"
                )
                continue
            fi = info.fields.get(fk)
            if fi is None or fi.storage == "reverse" or f.type == "file":
                self.problems.add(at, f"`set`: `{fk}` cannot be set by a workflow")
                continue
            try:
                checked = F.check(source, self.fs, self.wf.table, fi.type)
            except F.FormulaError as exc:
                for item in exc.errors:
                    self.problems.add(
                        (file, line + item.line - 1, at[2]),
                        f"`set` {fk}: {item.message}",
                        item.excerpt,
                    )
                continue
            if _reads_the_user(checked.root):
                self.problems.add(
                    at,
                    f"`set` {fk}: runs as the system, where USER() is blank and HAS_ROLE is "
                    "FALSE; the workflow's history already names who took the action",
                )
                continue
            out[fk] = F.to_stored(source, self.fs, self.wf.table)
        return out


def _reads_the_user(root: A.TNode) -> bool:
    """USER() or HAS_ROLE in a formula the system runs (formula bodies aside)."""
    stack = [root]
    while stack:
        n = stack.pop()
        if isinstance(n, A.TUser) or (isinstance(n, A.TCall) and n.func.name == "HAS_ROLE"):
            return True
        stack.extend(A.tchildren(n))
    return False


# --- back to the IR (export) -------------------------------------------------------------


def format_duration(seconds: int) -> str:
    """The shortest duration text for ``seconds`` (``parse_duration`` reads it back)."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def to_spec(document: dict[str, Any], show) -> WorkflowSpec:
    """A version's document back to the IR: ``show(stored)`` gives a formula's text with
    today's field names. Settings at their defaults are left out, so checking the result
    gives the same document again."""

    def formula(stored: str | None) -> str | None:
        return show(stored) if stored else None

    steps = []
    for sd in document["steps"]:
        actions = []
        for ad in sd["actions"]:
            routes = ad["routes"]
            default_kind = "reject" if ad["key"] in ("reject", "return", "send_back") else "approve"
            a = ActionSpec(
                key=ad["key"],
                label=None if ad["label"] == _label(ad["key"]) else ad["label"],
                outcome=None if ad["kind"] == default_kind else ad["kind"],
                guard=formula(ad["guard"]),
                guard_message=ad["guard_message"],
                comment=ad["comment"],
            )
            if ad.get("set"):
                a.set = {k: formula(v) for k, v in ad["set"].items()}
            if len(routes) == 1 and routes[0]["when"] is None:
                a.to = routes[0]["to"]
            else:
                a.routes = [RouteSpec(to=r["to"], when=formula(r["when"])) for r in routes]
            actions.append(a)
        esc = sd["escalation"]
        deadline = sd["deadline"]
        steps.append(
            StepSpec(
                key=sd["key"],
                label=None if sd["label"] == _label(sd["key"]) else sd["label"],
                assignees=formula(sd["assignees"]),
                role=sd["role"],
                approval=sd["approval"],
                quorum=sd["quorum"],
                editable=list(sd["editable"]),
                required=list(sd["required"]),
                deadline=(
                    format_duration(deadline)
                    if deadline is not None
                    else formula(sd["deadline_formula"])
                ),
                reminder=format_duration(sd["reminder"]) if sd["reminder"] is not None else None,
                escalation=(
                    EscalationSpec(
                        to=formula(esc["to"]),
                        after=format_duration(esc["after"]),
                        action=esc["action"],
                    )
                    if esc is not None
                    else None
                ),
                actions=actions,
            )
        )
    start = document["start"]
    return WorkflowSpec(
        key=document["key"],
        table=document["table"],
        label=None if document["label"] == _label(document["key"]) else document["label"],
        start=StartSpec(mode=start["mode"], when=formula(start["when"])),
        allow_self_approval=document["allow_self_approval"],
        steps=steps,
    )


def fields_used(document: dict[str, Any], schema, table_key: str) -> tuple[set[int], set[str]]:
    """(field ids its formulas read, keys of its table's fields it edits, requires or
    sets) of a version's document: what deleting a field would break (the schema
    editor refuses, see ``engine.workflow_users``)."""
    from ..platform.usage import fields_read

    fs = schema.formula_schema()
    keys: set[str] = set()
    formulas = [(document.get("start") or {}).get("when")]
    for sd in document.get("steps") or []:
        keys |= set(sd.get("editable") or []) | set(sd.get("required") or [])
        formulas += [sd.get("assignees"), sd.get("deadline_formula")]
        formulas.append((sd.get("escalation") or {}).get("to"))
        for ad in sd.get("actions") or []:
            formulas.append(ad.get("guard"))
            formulas += [r.get("when") for r in ad.get("routes") or []]
            keys |= set(ad.get("set") or {})
            formulas += list((ad.get("set") or {}).values())
    ids: set[int] = set()
    for stored in formulas:
        ids |= fields_read(stored, fs, table_key)
    return ids, keys


def load_and_validate(path: str | Path, schema, roles: set[str] | None = None) -> list[Compiled]:
    loaded = load_workflows(path)
    return validate_workflows(loaded.workflows, schema, roles, loaded.lines)


__all__ = [
    "END_STEPS",
    "ActionSpec",
    "AppFileError",
    "Compiled",
    "EscalationSpec",
    "RouteSpec",
    "StartSpec",
    "StepSpec",
    "WorkflowSpec",
    "load_workflows",
    "WorkflowFile",
    "format_duration",
    "load_workflows_text",
    "parse_duration",
    "to_spec",
    "validate_workflows",
]
