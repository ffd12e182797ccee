"""`archlang diff A B`: parse the two SPEC[:VARIANT] arguments, compile both, print the diff.

Exit status: 0 when there is no structural difference, 1 when there is (like diff(1)); user
errors are ArchErrors (exit 2 in cli.main), with a caret under the offending part of A or B.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..compiler import Compiled, compile_spec
from ..errors import ArchError, cmdline_span, did_you_mean
from ..program import load
from ..tooling import STDOUT, output_target, parse_input, refuse_inputs, write_output
from .compare import diff
from .report import format_diff


def run(args) -> int:
    from ..viz import render_bytes
    from ..viz.command import drawing_format

    size = parse_input(args.input)
    if args.viz == STDOUT:
        raise ArchError("--viz - would mix the drawing into the report on standard output",
                        cmdline_span("--viz -", 6), hint="write the drawing to a file")
    fmt = drawing_format(args.viz, None, "--viz") if args.viz else None
    out = output_target(args.viz, "--viz", Path(f"diff.{fmt}")) if args.viz else None
    outside = getattr(args, "allow_import_outside", False)
    # compiled once in the deploy form, which carries the train form: the prose says what fusion does
    fa, fb = compile_arg(args.a, size, outside, fuse=True), compile_arg(args.b, size, outside, fuse=True)
    fused = getattr(args, "fuse", False)
    a, b = (fa, fb) if fused else (fa.unfused, fb.unfused)
    result = diff(a, b, None if fused else (fa, fb))
    if out is not None:  # drawn first: an error there (no Graphviz, bad path) leaves no partial output
        refuse_inputs(out, a.program.files + b.program.files, "--viz", args.viz)
        write_output(out, render_bytes(b, fmt, status=result.status), "--viz")
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_diff(result), end="")
    return 0 if result.identical else 1


def split_arg(text: str) -> tuple[str, str | None]:
    """`SPEC` or `SPEC:VARIANT` -> (spec path, variant or None), checking that the file exists."""
    if Path(text).is_file():  # a spec whose path holds a ':'
        return text, None
    spec, colon, variant = text.rpartition(":") if ":" in text else (text, "", "")
    if not spec:
        raise ArchError(f"expected SPEC or SPEC:VARIANT, got '{text}'", cmdline_span(text, 0, len(text)),
                        hint="for example specs/convnext.arch:tiny")
    if colon and not variant:
        raise ArchError("expected a variant name after ':'", cmdline_span(text, len(text)),
                        hint="write SPEC:VARIANT, or leave out ':' for the spec's default variant")
    if not Path(spec).exists():  # anything else that is not a spec file, program.load names
        raise ArchError(f"cannot read '{spec}': no such file", cmdline_span(text, 0, len(spec)),
                        hint="check the path to the .arch file")
    return spec, variant or None


def compile_arg(text: str, size: tuple[int, ...] | None, allow_outside: bool = False, fuse: bool = False) -> Compiled:
    spec, variant = split_arg(text)
    program = load(spec, allow_outside)
    if variant is not None and program.find_variant(variant) is None:
        known = list(program.variants) + [a for v in program.variants.values() for a in v.aka]
        start = len(spec) + 1
        raise ArchError(f"no variant '{variant}' in {spec}", cmdline_span(text, start, len(text)),
                        hint=did_you_mean(variant, known) or "variants: " + (", ".join(program.variants) or "none"))
    return compile_spec(spec, variant, input_size=size, fuse=fuse, allow_import_outside=allow_outside)
