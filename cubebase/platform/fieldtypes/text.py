"""Text-like field types: text, long text, e-mail, phone, web address."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from ...formula import types as ft
from .base import LONG_TEXT_MAX, TEXT_MAX, ConversionError, FieldType, _clip, _describe

if TYPE_CHECKING:
    from ..schema import Field


class TextType(FieldType):
    name = "text"
    default_max = TEXT_MAX
    config_keys = frozenset({"max_length"})

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Text()

    def formula_type(self, field: Field) -> ft.FType:
        return ft.TEXT

    def max_length(self, field: Field) -> int:
        return int(field.config.get("max_length") or self.default_max)

    def to_python(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConversionError(f"expected text, got {_describe(value)}")
        if "\x00" in value:
            raise ConversionError("text must not contain NUL characters")
        limit = self.max_length(field)
        if len(value) > limit:
            raise ConversionError(f"is too long ({len(value):,} characters; at most {limit:,})")
        return value

    def parse_text(self, field: Field, text: str) -> Any:
        return None if text.strip() == "" else self.to_python(field, text)


class LongTextType(TextType):
    name = "long_text"
    default_max = LONG_TEXT_MAX


class EmailType(TextType):
    name = "email"
    default_max = 320
    pattern = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    def to_python(self, field: Field, value: Any) -> Any:
        value = super().to_python(field, value)
        if value is None:
            return None
        value = value.strip().lower()
        if not self.pattern.match(value):
            raise ConversionError(f"`{_clip(value)}` is not an e-mail address")
        return value


class PhoneType(TextType):
    name = "phone"
    default_max = 40
    pattern = re.compile(r"^\+?[0-9 ()./\-]+((ext\.?|x) ?[0-9]+)?$", re.IGNORECASE)

    def to_python(self, field: Field, value: Any) -> Any:
        value = super().to_python(field, value)
        if value is None:
            return None
        value = value.strip()
        if not self.pattern.match(value) or sum(map(str.isdigit, value)) < 3:
            raise ConversionError(f"`{_clip(value)}` is not a phone number")
        return value


class UrlType(TextType):
    name = "url"
    default_max = 2000

    def to_python(self, field: Field, value: Any) -> Any:
        value = super().to_python(field, value)
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
            raise ConversionError(f"`{_clip(value)}` is not a web address (http:// or https://)")
        return value
