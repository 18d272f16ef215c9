"""Problems found in app files: each names the file, line and key."""

from __future__ import annotations

from dataclasses import dataclass

from ..platform.errors import BadRequest


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    path: str  # the key, e.g. ``tables[2].permissions[1].read``
    message: str
    excerpt: str | None = None  # a formula's line with a caret under the mistake

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.excerpt:
            text += "\n" + "\n".join("    " + line for line in self.excerpt.splitlines())
        return text

    def to_dict(self) -> dict:
        out = {"file": self.file, "line": self.line, "key": self.path, "message": self.message}
        if self.excerpt:
            out["excerpt"] = self.excerpt
        return out


class AppFileError(BadRequest):
    """App files with mistakes: every problem found, nothing applied."""

    code = "invalid_app_files"

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.path))
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the app files:"
        super().__init__(
            "\n".join([head, *map(str, self.problems)]), [p.to_dict() for p in self.problems]
        )


class Problems:
    """Collects problems so that validation reports every mistake at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, where: tuple[str, int, str], message: str, excerpt: str | None = None) -> None:
        file, line, path = where
        self.items.append(Problem(file, line, path, message, excerpt))

    def raise_if_any(self) -> None:
        if self.items:
            raise AppFileError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)
