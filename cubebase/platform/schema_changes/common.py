"""Keys, labels, field specs and the error a data-losing change raises: what every
kind of schema change shares."""

from __future__ import annotations

import re
from typing import Any

from ..errors import BadRequest, ConflictError
from ..fieldtypes import FIELD_TYPES

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_KEYS = frozenset(
    {
        "id",
        "version",
        "deleted_at",
        "deleted_by",
        "and",
        "or",
        "not",
        "in",
        "true",
        "false",
        "blank",
        "user",
        "fields",
    }
)
CONVERTIBLE = frozenset(
    {
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
    }
)
FIELD_ATTRS = ("key", "label", "type", "required", "unique", "default", "help")
PREVIEW_ROWS = 20
RULE_KEYS = frozenset(
    {"validations", "permissions", "lock", "indexes"}
)  # each has its own operation


class DataLossError(ConflictError):
    """A change that would lose values; repeat it with confirmation to go ahead."""

    code = "data_loss"


def check_key(key: Any, what: str = "field") -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise BadRequest(
            f"`{key}` is not a valid {what} key: use lower-case letters, digits and _, "
            "starting with a letter (at most 63 characters)"
        )
    if key in RESERVED_KEYS:
        raise BadRequest(f"`{key}` is a reserved word and cannot be a {what} key")
    return key


def check_label(label: Any) -> str:
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        raise BadRequest("a label must be 1 to 200 characters")
    return label.strip()


BUILTIN_USER_FIELDS = frozenset({"email", "name", "roles", "active"})


def split_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A field spec -> (column attributes, type settings)."""
    if not isinstance(spec, dict):
        raise BadRequest("a field must be given as a mapping of settings")
    attrs = {k: spec[k] for k in FIELD_ATTRS if k in spec}
    config = {k: v for k, v in spec.items() if k not in FIELD_ATTRS}
    return attrs, config


def user_types() -> list[str]:
    return sorted(n for n, t in FIELD_TYPES.items() if not t.system_column)


def _kind(ftype: str, config: dict) -> str:
    if ftype == "link" and config.get("reverse_of"):
        return "related records"
    return "many-to-many link" if ftype == "link" and config.get("many") else ftype


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()
