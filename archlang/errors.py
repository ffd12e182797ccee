"""Source spans and the one error type every user-facing failure goes through.

A `Span` points into a source text registered with `SOURCES`, so any pass can report an
error at the spec line that caused it. `ArchError.render()` prints the compiler-style
message: ``file:line:col: error: message``, the source line, a caret and a hint.

What is rendered is safe for a terminal: control characters from spec text (escape sequences,
form feeds, line separators) are shown escaped (`\x1b`), and a long source line is clipped
around the caret, so a 1 MB line prints as one screen line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


class _Sources:
    """Texts of every file (and command-line fragment) that spans may point into."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def add(self, path: str, text: str) -> None:
        self._texts[path] = text

    def line(self, path: str, line: int) -> str | None:
        """Line `line` as the parser counts lines: only '\n' ends one (a form feed or U+2028 does not)."""
        text = self._texts.get(path)
        if text is None or line < 1:
            return None
        start = 0
        for _ in range(line - 1):
            start = text.find("\n", start) + 1
            if start == 0:
                return None
        end = text.find("\n", start)
        found = text[start:] if end < 0 else text[start:end]
        return found[:-1] if found.endswith("\r") else found


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
    source: str | None = field(default=None, compare=False, repr=False)  # the line, when not in SOURCES

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @staticmethod
    def point(file: str, line: int = 1, col: int = 1) -> Span:
        return Span(file, line, col, line, col + 1)


def cmdline_span(text: str, start: int = 0, end: int | None = None) -> Span:
    """A span into a command-line argument, so CLI mistakes render like spec mistakes."""
    end = len(text) if end is None else end
    return Span(CMDLINE, 1, start + 1, 1, max(end, start + 1) + 1, source=text)


def override_span(key: str, value, api: bool) -> Span:
    """Where an override was given: `--set key=value`, or `overrides={'key': value}` in Python."""
    if not api:
        return cmdline_span(f"--set {key}=...", 6, 6 + len(key))
    text = f"overrides={{{key!r}: {value!r}}}"
    return Span("<overrides>", 1, 12, 1, 12 + len(repr(key)), source=clip(text, 200))


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
            lines.append(clip(printable(f"hint: {self.hint}")))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


MAX_LINE = 160  # characters of a source line shown around the caret
MAX_MESSAGE = 600


def _header(span: Span | None, kind: str, message: str) -> str:
    text = f"{span}: {kind}: {message}" if span else f"{kind}: {message}"
    return clip(printable(text), MAX_MESSAGE)


def printable(text: str) -> str:
    """`text` with every control or invisible-layout character escaped, so spec text cannot move
    the cursor, retitle the terminal or split a line."""
    if text.isprintable():
        return text
    return "".join(_show(c) for c in text)


def _show(c: str) -> str:
    if c.isprintable():
        return c
    if c == "\t":
        return " "
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 5
    return text[:keep * 3 // 4] + " ... " + text[-(keep // 4):]


def _excerpt(span: Span | None) -> list[str]:
    if span is None:
        return []
    text = span.source if span.source is not None else SOURCES.line(span.file, span.line)
    if text is None:
        return []
    width = max(1, (span.end_col - span.col) if span.end_line == span.line else len(text) - span.col + 1)
    shown, lead, marks = _window(text, span.col - 1, width)
    gutter = " " * len(str(span.line))
    return [f" {span.line} | {shown}", f" {gutter} | {' ' * lead}{'^' * marks}"]


def _window(text: str, start: int, width: int) -> tuple[str, int, int]:
    """The displayed line, the caret's offset on it and the caret's width: at most about MAX_LINE
    displayed characters of `text` around the caret, each character shown as `_show` writes it."""
    stop = start + max(1, min(width, MAX_LINE))
    lo, hi = max(0, start - MAX_LINE), min(len(text), stop + MAX_LINE)
    before = [_show(c) for c in text[lo:min(start, hi)]]
    under = "".join(_show(c) for c in text[start:min(stop, hi)])
    after = [_show(c) for c in text[min(stop, hi):hi]] if stop < hi else []
    fits = sum(map(len, before)) + len(under) + sum(map(len, after)) <= MAX_LINE
    room = MAX_LINE if fits else MAX_LINE // 3
    kept: list[str] = []
    while before and sum(map(len, kept)) + len(before[-1]) <= room:
        kept.insert(0, before.pop())
    head = "..." if before or lo > 0 else ""
    under = under[:MAX_LINE]
    room = max(0, MAX_LINE - sum(map(len, kept)) - len(under))
    shown_after = ""
    while after and len(shown_after) + len(after[0]) <= room:
        shown_after += after.pop(0)
    tail = "..." if after or hi < len(text) else ""
    lead = len(head) + sum(map(len, kept)) + max(0, start - len(text))
    marks = len(under) if under else max(1, min(width, MAX_LINE))
    return head + "".join(kept) + under + shown_after + tail, lead, marks


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
