"""Source spans and the one error type every user-facing failure goes through.

A `Span` points into a source text registered with `SOURCES`, so any pass can report an
error at the spec line that caused it. `ArchError.render()` prints the compiler-style
message: ``file:line:col: error: message``, the source line, a caret and a hint.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


class _Sources:
    """Texts of every file (and command-line fragment) that spans may point into."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def add(self, path: str, text: str) -> None:
        self._texts[path] = text

    def line(self, path: str, line: int) -> str | None:
        text = self._texts.get(path)
        if text is None:
            return None
        lines = text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else None


SOURCES = _Sources()
CMDLINE = "<command line>"


@dataclass(frozen=True)
class Span:
    """A region of a source file: 1-based line and column, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @staticmethod
    def point(file: str, line: int = 1, col: int = 1) -> Span:
        return Span(file, line, col, line, col + 1)


def cmdline_span(text: str, start: int = 0, end: int | None = None) -> Span:
    """A span into a command-line argument, so CLI mistakes render like spec mistakes."""
    SOURCES.add(CMDLINE, text)
    end = len(text) if end is None else end
    return Span(CMDLINE, 1, start + 1, 1, max(end, start + 1) + 1)


class ArchError(Exception):
    """A mistake in the user's input: a spec, an override, a file name."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 notes: tuple[tuple[str, Span], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.notes = notes

    def render(self) -> str:
        lines = [_header(self.span, "error", self.message)]
        lines += _excerpt(self.span)
        for text, span in self.notes:
            lines.append(_header(span, "note", text))
            lines += _excerpt(span)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _header(span: Span | None, kind: str, message: str) -> str:
    return f"{span}: {kind}: {message}" if span else f"{kind}: {message}"


def _excerpt(span: Span | None) -> list[str]:
    if span is None:
        return []
    text = SOURCES.line(span.file, span.line)
    if text is None:
        return []
    text = text.expandtabs(1)
    width = max(1, (span.end_col - span.col) if span.end_line == span.line else len(text) - span.col + 1)
    gutter = " " * len(str(span.line))
    return [f" {span.line} | {text}", f" {gutter} | {' ' * (span.col - 1)}{'^' * width}"]


def _key(name: str) -> str:
    """A name as a person means it: case, '_' and '-' do not matter (GroupNorm, group_norm)."""
    return name.lower().replace("_", "").replace("-", "")


def did_you_mean(name: str, choices, meanings: dict[str, str] | None = None) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close.

    By meaning first: a choice that differs only in case, '_' or '-', or the target of a synonym
    in `meanings` (alias -> name: the op table's aliases, `gn` -> `groupnorm`), even when that
    target is not among `choices` (a layer named where a function was expected); then by spelling."""
    choices = sorted(set(choices))
    key = _key(name)
    meant = [c for c in choices if _key(c) == key]
    for alias, target in sorted((meanings or {}).items()):
        if _key(alias) == key and target not in meant:
            meant.append(target)
    close = meant or difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
