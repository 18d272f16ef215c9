"""Spans and the one error type users ever see from the formula package.

Every problem a user can cause is reported as a ``FormulaError`` holding a list
of ``ErrorItem`` (message, line, column, caret excerpt), so the web form, the
REST endpoint and the CLI can all point at the offending text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Character offsets [start, end) into the formula source."""

    start: int
    end: int

    def __or__(self, other: Span) -> Span:
        return Span(min(self.start, other.start), max(self.end, other.end))


@dataclass(frozen=True)
class ErrorItem:
    message: str
    line: int
    column: int
    excerpt: str
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict:
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "excerpt": self.excerpt,
        }


def line_col(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    col = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, col


def make_item(source: str, span: Span | None, message: str) -> ErrorItem:
    """An error item with a caret excerpt under the span (first line of it)."""
    if span is None:
        span = Span(0, 0)
    start = max(0, min(span.start, len(source)))
    end = max(start, min(span.end, len(source)))
    line, col = line_col(source, start)
    line_start = source.rfind("\n", 0, start) + 1
    line_end = source.find("\n", start)
    if line_end < 0:
        line_end = len(source)
    text = source[line_start:line_end]
    width = max(1, min(end, line_end) - start)
    # Keep excerpts short for very long lines: a window around the span.
    lo = 0
    if len(text) > 120:
        lo = max(0, col - 1 - 40)
        text = text[lo : lo + 120]
    caret = " " * (col - 1 - lo) + "^" * min(width, max(1, len(text) - (col - 1 - lo)))
    return ErrorItem(message, line, col, f"{text}\n{caret}", start, end)


class FormulaError(Exception):
    """A formula the user wrote is not valid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[ErrorItem]):
        self.errors = list(errors)
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = []
        for e in self.errors:
            parts.append(f"line {e.line}, column {e.column}: {e.message}\n{e.excerpt}")
        return "\n".join(parts) or "invalid formula"

    @property
    def message(self) -> str:
        return self.errors[0].message if self.errors else "invalid formula"

    def to_dicts(self) -> list[dict]:
        return [e.to_dict() for e in self.errors]

    @classmethod
    def at(cls, source: str, span: Span | None, message: str) -> FormulaError:
        return cls([make_item(source, span, message)])
