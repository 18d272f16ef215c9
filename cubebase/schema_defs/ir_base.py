"""The IR's building blocks: the marked strings (``Key``, ``Formula``, ``Rule``),
``doc`` (a dataclass field with its documentation), ``IRNode`` (the base of every IR
class) and the walkers that read the classes' annotations (the loader's, the
exporter's and ``json_schema()``'s). The classes themselves: ``ir_tables``,
``ir_workflows``, ``ir_automations``, ``ir_reports``; all of it is imported from
``cubebase.schema_defs.ir``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

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
