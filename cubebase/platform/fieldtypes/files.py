"""The file field type: the bytes live in the file store (``platform/files.py``),
the field holds their descriptor."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...formula import types as ft
from ..files import clean_content_type
from .base import ConversionError, FieldType

if TYPE_CHECKING:
    from ..schema import Field


class FileType(FieldType):
    """A file: the bytes live in the file store, the field holds its descriptor."""

    name = "file"
    can_be_indexed = False
    can_be_unique = False
    keys = ("key", "name", "size", "content_type")

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.JSON(none_as_null=True)

    def formula_type(self, field: Field) -> ft.FType:
        return ft.TEXT

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            raise ConversionError("expected an uploaded file ({key, name, size, content_type})")
        if not re.fullmatch(r"[0-9a-f]{64}", value["key"]):
            raise ConversionError("refers to no uploaded file")
        name = value.get("name") or "file"
        if not isinstance(name, str) or len(name) > 255 or "/" in name or "\\" in name:
            raise ConversionError("has an invalid file name")
        size = value.get("size")
        ctype = value.get("content_type") or "application/octet-stream"
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(ctype, str)
        ):
            raise ConversionError("has an invalid size or content type")
        return {
            "key": value["key"],
            "name": name,
            "size": size,
            "content_type": clean_content_type(ctype),
        }

    def parse_text(self, field: Field, text: str) -> Any:
        if text.strip():
            raise ConversionError("files cannot be given as text; upload them on the form")
        return None

    def display(self, field: Field, value: Any) -> str:
        return "" if not value else value["name"]
