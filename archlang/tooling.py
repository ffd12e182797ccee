"""What the command-line tools share: reading `--input` and `--set`, compiling from arguments, and
writing output files without ever destroying anything.

An output path is checked before anything is written: `-` means standard output, a directory is
refused (it needs a file name), and so is any file the build read (the spec or an import: `-o
spec.arch` must not replace the spec with Python). A regular file is written atomically: the data
goes to a fresh temporary file in the target's folder (created with O_EXCL under an unpredictable
name, so no planted symlink is followed), which then replaces the target; on any error the
temporary file is removed and the target is untouched. A symlink is written through (the file it
points to is replaced, not the link). `/dev/stdout` is standard output; another device or FIFO is
written in place, as a stream.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from .errors import ArchError, cmdline_span

STDOUT = "-"


def parse_input(text: str | None, flag: str = "--input") -> tuple[int, ...] | None:
    """`3x224x224` -> (3, 224, 224); None (not given) stays None: the spec's own input size."""
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts if len(p) <= 9)
    except ValueError:
        dims = ()
    if len(dims) != len(parts) or not dims or any(d < 1 for d in dims):
        raise ArchError(f"{flag} expects sizes like 3x224x224, got '{text}'",
                        cmdline_span(f"{flag} {text}", len(flag) + 1))
    return dims


def compile_from_args(args):
    """Compile SPEC with --variant, --set, --input, --fuse and --allow-import-outside as given."""
    from .compiler import compile_spec
    from .program import parse_override

    overrides, spans = {}, {}
    for text in args.overrides:
        key, value, span = parse_override(text)
        overrides[key], spans[key] = value, span
    return compile_spec(args.spec, args.variant, overrides, input_size=parse_input(args.input), fuse=args.fuse,
                        override_spans=spans, allow_import_outside=args.allow_import_outside)


def default_name(compiled, suffix: str) -> str:
    return f"{compiled.program.family}_{compiled.variant or 'default'}{'_fused' if compiled.fused else ''}.{suffix}"


def output_target(arg: str | None, flag: str, default: Path) -> Path | None:
    """Where `flag ARG` asks to write (None: standard output), refusing what cannot be a file."""
    if arg is None:
        return default
    if arg == STDOUT or _is_stdout(arg):
        return None
    if arg.endswith(("/", os.sep)) or Path(arg).is_dir():
        raise ArchError(f"{flag} {arg}: is a directory", _span(flag, arg),
                        hint=f"name the file to write, e.g. {flag} {os.path.join(arg, default.name)}")
    return Path(arg)


def _is_stdout(arg: str) -> bool:
    """`-o /dev/stdout` (or /proc/self/fd/1): the stream standard output already writes to."""
    try:
        mine, theirs = os.fstat(sys.stdout.fileno()), os.stat(arg)
    except (OSError, ValueError, AttributeError):
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def refuse_inputs(target: Path | None, files, flag: str, arg: str) -> None:
    """Refuse to write over a file the build read (the spec itself or anything it imports)."""
    if target is None:
        return
    real = os.path.realpath(target)
    for f in files:
        if os.path.realpath(f) == real:
            raise ArchError(f"{flag} {arg} would overwrite '{f}', an input of this build", _span(flag, arg),
                            hint="choose another output path")


def write_output(target: Path | None, data: str | bytes, flag: str = "-o") -> None:
    """Write all of `data` to `target` (None: standard output), or nothing."""
    raw = data if isinstance(data, bytes) else data.encode()
    if target is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return
    real = Path(os.path.realpath(target))  # a symlink is written through, never replaced by a file
    try:
        mode = os.stat(real).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISBLK(mode):
        raise ArchError(f"{flag} {target}: is a block device (a disk); refusing to write to it",
                        _span(flag, str(target)), hint=f"choose another {flag} path")
    try:
        if mode is not None and not stat.S_ISREG(mode):
            with open(real, "wb") as f:  # a character device or FIFO: a stream, nothing to replace
                f.write(raw)
        else:
            write_atomic(real, raw)
    except OSError as exc:
        raise ArchError(f"cannot write '{target}': {exc.strerror or exc}", _span(flag, str(target)),
                        hint=f"choose another {flag} path") from None


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` in one step (a temporary file in the same folder, renamed over it);
    raises OSError and leaves nothing behind when any step fails."""
    path = Path(path)
    raw = data if isinstance(data, bytes) else data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _file_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would give (mkstemp makes files private)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _span(flag: str, arg: str):
    return cmdline_span(f"{flag} {arg}", len(flag) + 1)
