"""The `archlang` command line: build (viz and diff come next).

Every user error is an ArchError rendered as `file:line:col`, the line, a caret and a hint,
with exit status 2 and no traceback. Output files are written atomically, and only after the
whole build succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import ArchError, cmdline_span

EPILOG = """examples:
  archlang build specs/convnext.arch
  archlang build specs/convnext.arch --variant v2_nano --set num_classes=10 -o convnext_v2_nano.py
  archlang build specs/repvit.arch --variant m1_1 --fuse --json
  archlang build specs/deit.arch --variant small --dump-ir
"""


def parse_input(text: str) -> tuple[int, ...]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ArchError(f"--input expects sizes like 3x224x224, got '{text}'", cmdline_span(f"--input {text}", 8))
    return dims


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archlang", description="Compile .arch architecture specs to PyTorch.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--version", action="version", version="archlang 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    b = sub.add_parser("build", help="compile a spec variant to a PyTorch module and print its summary",
                       description="Compile SPEC to a standalone PyTorch file and print a per-stage summary "
                                   "(output shape, parameters, GMACs) computed from the IR.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    b.add_argument("spec", metavar="SPEC", help="path to a .arch file")
    b.add_argument("--variant", metavar="NAME", help="variant to build (default: the spec's default); "
                   "timm model names work too, e.g. convnextv2_nano")
    b.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                   help="override a param, e.g. --set depths=[2,2,6,2] --set num_classes=10 (repeatable)")
    b.add_argument("--input", metavar="CxHxW", default="3x224x224", help="input size for shapes and costs "
                   "(default 3x224x224)")
    b.add_argument("--fuse", action="store_true", help="emit the reparameterized (deploy) form")
    b.add_argument("-o", "--output", metavar="OUT.py", help="where to write the module "
                   "(default build/<family>_<variant>.py)")
    b.add_argument("--dump-ir", action="store_true", help="print the IR, one node per line, and write nothing")
    b.add_argument("--json", action="store_true", help="print the summary as JSON (params, macs, flops, stages)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return run_build(args)
    except ArchError as err:
        print(err.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in archlang, not in the user's input
        if os.environ.get("ARCHLANG_DEBUG"):
            raise
        print(f"internal error: {exc.__class__.__name__}: {exc}\n"
              "this is a bug in archlang; rerun with ARCHLANG_DEBUG=1 for a traceback", file=sys.stderr)
        return 70


def run_build(args) -> int:
    from .compiler import compile_spec
    from .program import parse_override
    from .summary import format_summary

    overrides, spans = {}, {}
    for text in args.overrides:
        key, value, span = parse_override(text)
        overrides[key], spans[key] = value, span
    size = parse_input(args.input)
    compiled = compile_spec(args.spec, args.variant, overrides, input_size=size, fuse=args.fuse,
                            override_spans=spans)
    if args.dump_ir:
        print(compiled.graph.dump(compiled.program.where), end="")
        return 0
    out = Path(args.output) if args.output else default_output(compiled)
    write_atomic(out, compiled.source)
    if args.json:
        data = compiled.cost.as_dict()
        data.update(family=compiled.program.family, variant=compiled.variant, input=list(size),
                    fused=compiled.fused, output_file=str(out))
        print(json.dumps(data, indent=2))
    else:
        print(format_summary(compiled))
        print(f"wrote {out}")
    return 0


def default_output(compiled) -> Path:
    stem = f"{compiled.program.family}_{compiled.variant or 'default'}{'_fused' if compiled.fused else ''}"
    return Path("build") / f"{stem}.py"


def write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        raise ArchError(f"cannot write '{path}': {exc.strerror}", hint="choose another -o path") from None


if __name__ == "__main__":
    sys.exit(main())
