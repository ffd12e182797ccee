"""Reading spec files: only regular files, only UTF-8, only so much, and imports only from where
the spec lives.

A spec path may name anything: a directory, a FIFO (which would block a plain open), /dev/zero
(which never ends), a symlink loop, a Latin-1 file. `read_spec` opens without blocking, checks
that it got a regular file, reads at most what the size budget allows and decodes strict UTF-8;
each failure is a `SourceError` whose message says what the file is, and, for text that is not
UTF-8, a span at the offending byte. `program.py` turns it into an ArchError at the import
statement (or, for the spec itself, an error naming the path).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import SOURCES, Span
from .limits import MAX_SOURCE_BYTES

# The spec library that ships with archlang: specs anywhere may import from it.
SPEC_LIBRARY = Path(__file__).resolve().parent.parent / "specs"


class SourceError(Exception):
    def __init__(self, reason: str, where: Span | None = None, hint: str | None = None):
        super().__init__(reason)
        self.reason, self.where, self.hint = reason, where, hint


class ByteBudget:
    """How many bytes of source one load may still read (the spec and all its imports)."""

    def __init__(self, limit: int = MAX_SOURCE_BYTES) -> None:
        self.left = limit


def read_spec(path: str, budget: ByteBudget) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SourceError("no such file") from None
    except OSError as exc:
        raise SourceError(_describe_os_error(exc)) from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind:
            raise SourceError(f"it is {kind}, not a regular file")
        data = _read(fd, budget.left + 1)
    finally:
        os.close(fd)
    if len(data) > budget.left:
        raise SourceError(f"the spec and its imports are larger than {MAX_SOURCE_BYTES:,} bytes",
                          hint="specs are small text files; is this the right file?")
    budget.left -= len(data)
    return decode(data, path)


def _read(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(1 << 16, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def decode(data: bytes, path: str) -> str:
    """Strict UTF-8 (a leading byte-order mark is allowed); else the offset and spot of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = exc.start
        before = data[:bad]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        SOURCES.add(path, data.decode("utf-8", errors="replace"))
        raise SourceError(f"it is not UTF-8 text: byte 0x{data[bad]:02x} at offset {bad} does not decode",
                          Span(path, line, col, line, col + 1), hint="save the file as UTF-8") from None


def inside_allowed(target: str, root: Path) -> bool:
    """Whether `target` (symlinks followed) lies under `root` or the spec library."""
    real = Path(os.path.realpath(target))
    return any(real.is_relative_to(base) for base in (root, Path(os.path.realpath(SPEC_LIBRARY))))


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket or other special file"


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "its symbolic links form a loop"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a folder on its path is a file"
    return (exc.strerror or exc.__class__.__name__).lower()
