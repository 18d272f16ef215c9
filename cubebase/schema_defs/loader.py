"""Reading app files into the IR, keeping where every key was written.

An app is a folder of YAML files (or one file): exactly one *app file* has
``app:`` at its top (with ``roles``, ``tables`` and ``workflows`` as lists), a
*workflow file* has ``workflows:`` at its top (in the folder or its
``workflows/`` subfolder), every other file is a *table file* holding one table
at its top. YAML is composed into nodes (so
every key keeps its line), then walked against the IR's annotations: a key the
IR does not declare, a value of the wrong kind, a key given twice are problems,
collected for every file before anything is reported.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import ir
from .errors import AppFileError, Problems

MAX_FILE_BYTES = 5 * 1024 * 1024  # a CRM-size app is a few hundred kB
MAX_APP_BYTES = 20 * 1024 * 1024
MAX_NODES = 500_000  # aliases can multiply a small file (a "billion laughs")
YAML_SUFFIXES = (".yaml", ".yml")
STR_TAG = "tag:yaml.org,2002:str"
BOOL_TAG = "tag:yaml.org,2002:bool"
WORKFLOWS_DIR = "workflows"  # an app folder's subfolder of workflow files


@dataclasses.dataclass
class Source:
    name: str  # as shown in messages: relative to the app folder's parent
    text: str


def read_sources(path: str | Path) -> list[Source]:
    """The app's files, refused by size before any is parsed."""
    p = Path(path)
    problems = Problems()
    if p.is_dir():
        files = _yaml_files(p) + _yaml_files(p / WORKFLOWS_DIR)
        base = p.parent
        if not files:
            problems.add((str(p), 0, ""), "no .yaml files in this folder")
    elif p.is_file():
        files, base = [p], p.parent
    else:
        problems.add((str(p), 0, ""), "no such file or folder")
        files, base = [], p
    problems.raise_if_any()
    total = 0
    sizes = []
    for f in files:
        size = f.stat().st_size
        total += size
        sizes.append(size)
        if size > MAX_FILE_BYTES:
            problems.add(
                (_name(f, base), 0, ""),
                f"the file is {size / 1e6:,.1f} MB; app files are limited to "
                f"{MAX_FILE_BYTES // (1024 * 1024)} MB each (split it into table files)",
            )
    if total > MAX_APP_BYTES and not problems:
        problems.add(
            (_name(p, base), 0, ""),
            f"the app's files hold {total / 1e6:,.1f} MB; an app is limited to "
            f"{MAX_APP_BYTES // (1024 * 1024)} MB",
        )
    problems.raise_if_any()
    out = []
    for f in files:
        try:
            out.append(Source(_name(f, base), f.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            problems.add((_name(f, base), 0, ""), f"not UTF-8 text ({exc.reason})")
    problems.raise_if_any()
    return out


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.suffix in YAML_SUFFIXES and f.is_file())


def _name(f: Path, base: Path) -> str:
    try:
        return str(f.relative_to(base))
    except ValueError:
        return str(f)


def load_app(path: str | Path) -> ir.AppSpec:
    """Read an app's files into one ``AppSpec``; AppFileError lists every problem
    (of form: unknown keys, wrong kinds, duplicates; the meaning is checked by
    ``validate``)."""
    return load_sources(read_sources(path))


def load_sources(sources: list[Source]) -> ir.AppSpec:
    problems = Problems()
    app: ir.AppSpec | None = None
    app_file = None
    tables: list[ir.TableSpec] = []
    workflows: list[ir.WorkflowSpec] = []
    lines: dict[tuple[str, str], int] = {}
    for src in sources:
        root = _compose(src, problems)
        if root is None:
            continue
        walker = _Walker(src.name, problems, lines)
        if isinstance(root, MappingNode) and any(_key_text(k) == "app" for k, _ in root.value):
            if app is not None:
                problems.add(
                    (src.name, _line(root), "app"),
                    f"a second app file (the app is already named in {app_file})",
                )
                continue
            app = walker.build(ir.AppSpec, root, "")
            app_file = src.name
            if app is not None:
                tables.extend(app.tables)
                workflows[:0] = app.workflows  # the app file's own come first
        elif isinstance(root, MappingNode) and any(
            _key_text(k) == "workflows" for k, _ in root.value
        ):
            built = walker.build(ir.WorkflowFile, root, "")
            if built is not None:
                workflows.extend(built.workflows)
        elif isinstance(root, MappingNode):
            table = walker.build(ir.TableSpec, root, "")
            if table is not None:
                tables.append(table)
        else:
            problems.add(
                (src.name, _line(root), ""),
                "expected an app file (with `app:`), a table file (a table's keys) or a "
                "workflow file (`workflows:`)",
            )
    if app is None and not problems:
        names = ", ".join(s.name for s in sources)
        problems.add((names, 0, ""), "no app file: one file needs `app: <key>` at its top")
    problems.raise_if_any()
    assert app is not None
    app.tables = tables
    app.workflows = workflows
    app.lines = lines
    return app


def _compose(src: Source, problems: Problems) -> Node | None:
    try:
        root = yaml.compose(src.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = exc.problem or exc.context or "not valid YAML"
        problems.add((src.name, line, ""), f"not valid YAML: {what}")
        return None
    except yaml.YAMLError as exc:
        problems.add((src.name, 0, ""), f"not valid YAML: {exc}")
        return None
    if root is None:
        problems.add((src.name, 0, ""), "the file is empty")
    return root


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _key_text(node: Node) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{close[0]}`?" if close else ""


_KIND = {str: "a text", int: "a whole number", bool: "true or false"}


class _Walker:
    """Builds IR objects from YAML nodes, reporting every mistake with its line."""

    def __init__(self, file: str, problems: Problems, lines: dict[tuple[str, str], int]):
        self.file = file
        self.problems = problems
        self.lines = lines  # (file, path) -> line of formulas (their first line) and seed rows
        self.constructor = SafeConstructor()
        self.nodes = 0

    def at(self, node: Node, path: str) -> tuple[str, int, str]:
        return (self.file, _line(node), path)

    def error(self, node: Node, path: str, message: str) -> None:
        self.problems.add(self.at(node, path), message)

    def build(self, cls: type, node: Node, path: str) -> Any:
        shorthand = getattr(cls, "__shorthand__", None)
        if shorthand and isinstance(node, ScalarNode):
            value = self.value(ir.hints(cls)[shorthand], node, path)
            if value is None:
                return None
            obj = cls(**{shorthand: value})
            obj.where = {"": self.at(node, path), shorthand: self.at(node, path)}
            return obj
        if not isinstance(node, MappingNode):
            self.error(node, path, f"expected a mapping of keys ({_doc_name(cls)})")
            return None
        fields = {ir.yaml_key(f): f for f in ir.ir_fields(cls)}
        values: dict[str, Any] = {}
        where = {"": self.at(node, path)}
        ok = True
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            self._count()
            key = _key_text(knode)
            kpath = f"{path}.{key}" if path else str(key)
            if knode.tag == BOOL_TAG and key in fields and knode.style is None:
                pass  # `on:` (an automation's trigger) is a YAML 1.1 true; a key here
            elif key is None or knode.tag != STR_TAG:
                if knode.tag == "tag:yaml.org,2002:merge":
                    self.error(knode, path, "`<<` merge keys are not supported; write keys out")
                else:
                    self.error(knode, path, "keys must be plain words")
                ok = False
                continue
            if key in seen:
                self.error(knode, kpath, f"`{key}` is given twice (first on line {seen[key]})")
                ok = False
                continue
            seen[key] = _line(knode)
            f = fields.get(key)
            if f is None:
                self.error(knode, kpath, self._unknown_key(cls, key, fields))
                ok = False
                continue
            where[f.name] = self.at(knode, kpath)
            value = self.value(ir.hints(cls)[f.name], vnode, kpath)
            if value is _BAD:
                ok = False
                continue
            if value is None and not _optional(ir.hints(cls)[f.name]):
                if ir.is_required(f):
                    self.error(vnode, kpath, "a value is needed")
                    ok = False
                continue  # an empty list or flag written as blank: the default
            values[f.name] = value
        for name, f in fields.items():
            if ir.is_required(f) and f.name not in values and name not in seen:
                self.error(node, path, f"`{name}` is missing ({f.metadata.get('doc', '')})")
                ok = False
        if not ok:
            return None
        obj = cls(**values)
        obj.where = where
        return obj

    def _unknown_key(self, cls: type, key: str, fields: dict) -> str:
        if cls is ir.AppSpec and key in ("key", "fields"):
            return f"unknown key `{key}`: an app file has app, roles, tables; put a table in its own file"
        return f"unknown key `{key}`{did_you_mean(key, fields)} (known: {', '.join(fields)})"

    def _count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise AppFileError(
                [
                    _problem(
                        self.file,
                        f"more than {MAX_NODES:,} values (aliases that repeat themselves?)",
                    )
                ]
            )

    def value(self, tp: Any, node: Node, path: str) -> Any:
        """A value of type ``tp`` from ``node``; ``_BAD`` when it is not one."""
        self._count()
        inner, optional = ir.unwrap_optional(tp)
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return None
        tp = inner
        m = ir.marker(tp)
        if m is not None:
            return self.marked(m, node, path)
        origin = typing.get_origin(tp)
        if origin is list:
            if not isinstance(node, SequenceNode):
                self.error(node, path, "expected a list")
                return _BAD
            (item,) = typing.get_args(tp)
            out = []
            bad = False
            for i, child in enumerate(node.value):
                v = self.value(item, child, f"{path}[{i}]")
                if v is _BAD or v is None and item is not typing.Any:
                    if v is None:
                        self.error(child, f"{path}[{i}]", "a blank entry")
                    bad = True
                    continue
                out.append(v)
            return _BAD if bad else out
        if origin is dict:
            if not isinstance(node, MappingNode):
                self.error(node, path, "expected a mapping of keys")
                return _BAD
            value_tp = typing.get_args(tp)[1] if typing.get_args(tp) else typing.Any
            if value_tp is typing.Any:
                return self.plain(node, path)
            return self.mapping(value_tp, node, path)
        if origin is Literal:
            choices = typing.get_args(tp)
            v = self.scalar(node, path, str)
            if v is _BAD:
                return _BAD
            if v not in choices:
                self.error(
                    node,
                    path,
                    f"`{v}` is not one of: {', '.join(choices)}{did_you_mean(v, choices)}",
                )
                return _BAD
            return v
        if dataclasses.is_dataclass(tp):
            obj = self.build(tp, node, path)
            return _BAD if obj is None else obj
        if tp is typing.Any:
            return self.plain(node, path)
        return self.scalar(node, path, tp)

    def marked(self, m: ir._Marker, node: Node, path: str) -> Any:
        if m is ir.RULE:
            v = self.scalar(node, path, (str, bool))
            if isinstance(v, bool):
                return "TRUE" if v else "FALSE"
        else:
            v = self.scalar(node, path, str)
        if v is _BAD:
            return _BAD
        if m is ir.KEY and not _key_ok(v):
            self.error(
                node,
                path,
                f"`{v}` is not a valid key: use lower-case letters, digits and _, "
                "starting with a letter (at most 63 characters)",
            )
            return _BAD
        if m in (ir.FORMULA, ir.RULE):
            if not v.strip():
                self.error(node, path, "the formula is empty")
                return _BAD
            # where the formula's own line 1 is in the file (block scalars start below)
            self.lines[(self.file, path)] = _line(node) + (1 if node.style in ("|", ">") else 0)
        return v

    def scalar(self, node: Node, path: str, tp: Any) -> Any:
        kinds = tp if isinstance(tp, tuple) else (tp,)
        if not isinstance(node, ScalarNode):
            self.error(node, path, f"expected {' or '.join(_KIND[k] for k in kinds)}")
            return _BAD
        try:
            v = self.constructor.construct_object(node)
        except (ConstructorError, ValueError, TypeError) as exc:
            self.error(node, path, f"not a valid value: {getattr(exc, 'problem', None) or exc}")
            return _BAD
        if str in kinds and node.tag == STR_TAG:
            return v
        if isinstance(v, bool):
            if bool in kinds:
                return v
        elif isinstance(v, int) and int in kinds:
            return v
        wanted = " or ".join(_KIND[k] for k in kinds)
        got = _describe(v)
        if kinds == (str,) and isinstance(v, int | float | bool):
            hint = f" (write it in quotes: '{node.value}')"
        else:
            hint = ""
        self.error(node, path, f"expected {wanted}, got {got}{hint}")
        return _BAD

    def mapping(self, tp: Any, node: MappingNode, path: str) -> Any:
        """``dict[str, T]``: plain keys, each value a ``T``."""
        out: dict[str, Any] = {}
        bad = False
        for knode, vnode in node.value:
            self._count()
            key = _key_text(knode)
            if key is None or knode.tag != STR_TAG:
                self.error(knode, path, "keys must be plain words")
                bad = True
                continue
            kpath = f"{path}.{key}"
            if key in out:
                self.error(knode, kpath, f"`{key}` is given twice")
                bad = True
                continue
            v = self.value(tp, vnode, kpath)
            if v is _BAD or v is None:
                if v is None:
                    self.error(vnode, kpath, "a value is needed")
                bad = True
                continue
            out[key] = v
        return _BAD if bad else out

    def plain(self, node: Node, path: str) -> Any:
        """Seed values: YAML as it is (mappings need plain keys, no duplicates)."""
        self._count()
        if isinstance(node, ScalarNode):
            try:
                return self.constructor.construct_object(node)
            except (ConstructorError, ValueError, TypeError) as exc:
                self.error(node, path, f"not a valid value: {getattr(exc, 'problem', None) or exc}")
                return _BAD
        if isinstance(node, SequenceNode):
            out = [self.plain(c, f"{path}[{i}]") for i, c in enumerate(node.value)]
            return _BAD if any(v is _BAD for v in out) else out
        out_map: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = _key_text(knode)
            if key is None:
                self.error(knode, path, "keys must be plain words")
                return _BAD
            if key in out_map:
                self.error(knode, f"{path}.{key}", f"`{key}` is given twice")
                return _BAD
            v = self.plain(vnode, f"{path}.{key}")
            if v is _BAD:
                return _BAD
            out_map[key] = v
        self.lines[(self.file, path)] = _line(node)
        return out_map


class _Bad:
    def __repr__(self) -> str:
        return "<bad>"


_BAD: Any = _Bad()


def _key_ok(v: str) -> bool:
    import re

    return re.match(ir.KEY_PATTERN, v) is not None


def _optional(tp: Any) -> bool:
    return ir.unwrap_optional(tp)[1]


def _describe(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, str):
        return "a text"
    return type(v).__name__


def _doc_name(cls: type) -> str:
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")


def _problem(file: str, message: str):
    from .errors import Problem

    return Problem(file, 0, "", message)
