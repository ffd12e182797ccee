"""`archlang viz`: compile the spec, draw it, write the file, say where it went.

The drawing format comes from `--format` or the `-o` suffix; a suffix that names no format
(`x.jpg`) or disagrees with `--format` is refused rather than writing SVG bytes into a .jpg.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ArchError, cmdline_span, printable
from ..tooling import STDOUT, compile_from_args, default_name, output_target, refuse_inputs, write_output
from . import FORMATS, render_bytes


def run(args) -> int:
    fmt = drawing_format(args.output, args.format, "-o")
    output_target(args.output, "-o", Path("build") / f"model.{fmt}")  # a directory is refused before compiling
    compiled = compile_from_args(args)
    out = output_target(args.output, "-o", Path("build") / default_name(compiled, fmt))
    refuse_inputs(out, compiled.program.files, "-o", args.output or str(out))
    write_output(out, render_bytes(compiled, fmt, args.depth, tuple(args.expand), args.rankdir))
    print(printable(f"wrote {out or 'the drawing to standard output'} ({fmt}, {len(compiled.graph)} IR nodes, "
                    f"depth {args.depth})"), file=sys.stdout if out else sys.stderr)
    return 0


def drawing_format(arg: str | None, fmt: str | None, flag: str) -> str:
    """The format to draw in: `fmt` if given, else the file's suffix, else svg; a suffix must name
    a format, and agree with `fmt`."""
    suffix = Path(arg).suffix[1:].lower() if arg and arg != STDOUT else ""
    span = cmdline_span(f"{flag} {arg}", len(flag) + 1) if arg else None
    if suffix and suffix not in FORMATS:
        raise ArchError(f"cannot tell a drawing format from '.{suffix}'", span,
                        hint=f"name the file .{', .'.join(FORMATS)}, or give --format with a name without a suffix")
    if suffix and fmt and suffix != fmt:
        raise ArchError(f"--format {fmt} does not match the file name '{arg}'", span,
                        hint=f"write to a .{fmt} file, or drop --format")
    return fmt or suffix or "svg"
