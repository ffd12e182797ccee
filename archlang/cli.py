"""The `archlang` command line: build, viz and diff.

Every user error is an ArchError rendered as `file:line:col`, the line, a caret and a hint,
with exit status 2 and no traceback. Output files are written atomically, and only after the
whole build succeeded (tooling.py); `-o -` writes to standard output. When the reader of standard
output goes away (`archlang build ... --json | head`), the command ends quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import ArchError, printable
from .tooling import STDOUT, compile_from_args, default_name, output_target, refuse_inputs, write_output

EPILOG = """examples:
  archlang build specs/convnext.arch
  archlang build specs/convnext.arch --variant v2_nano --set num_classes=10 -o convnext_v2_nano.py
  archlang build specs/repvit.arch --variant m1_1 --fuse --json
  archlang build specs/deit.arch --variant small --dump-ir
  archlang viz specs/convnext.arch --variant tiny -o convnext_tiny.svg
  archlang diff specs/convnext.arch:tiny specs/convnext.arch:small
"""

VIZ_EPILOG = """examples:
  archlang viz specs/convnext.arch --variant tiny -o convnext_tiny.svg
  archlang viz specs/repvit.arch --fuse --format html -o repvit_deploy.html
  archlang viz specs/deit.arch --depth 3 --expand blocks.0 --rankdir LR -o deit.pdf
"""

DIFF_EPILOG = """examples:
  archlang diff specs/convnext.arch:tiny specs/convnext.arch:small
  archlang diff specs/convnext.arch:v2_nano specs/repvit.arch:m1_1 --json
  archlang diff specs/deit.arch:tiny specs/deit.arch:tiny_distilled --viz changes.svg
exit status: 0 when there is no structural difference, 1 when there is, 2 on errors
"""


def _spec_options(p: argparse.ArgumentParser, fuse_help: str) -> None:
    """Options that pick what to compile, shared by build and viz."""
    p.add_argument("--variant", metavar="NAME", help="variant (default: the spec's default); timm model names "
                   "work too, e.g. convnextv2_nano; '?' lists them")
    p.add_argument("--help-variants", action="store_true", help="list the spec's variants (names, timm names, "
                   "input size, what each sets) and exit")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                   help="override a param, e.g. --set depths=[2,2,6,2] --set num_classes=10 (repeatable)")
    p.add_argument("--input", metavar="CxHxW", default=None,
                   help="input size for shapes and costs (default: the sizes the spec's input line fixes "
                        "or defaults to, e.g. H = 256, else 3x224x224)")
    p.add_argument("--fuse", action="store_true", help=fuse_help)
    _import_option(p)


def _import_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-import-outside", action="store_true",
                   help="let imports reach files outside the spec's folder and archlang's spec library")


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected a number of levels from 0 to 1000, got '{text}'")
    return value


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archlang", description="Compile .arch architecture specs to PyTorch, "
                                "draw them, and compare them.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--version", action="version", version="archlang 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    b = sub.add_parser("build", help="compile a spec variant to a PyTorch module and print its summary",
                       description="Compile SPEC to a standalone PyTorch file and print a per-stage summary "
                                   "(output shape, parameters, GMACs) computed from the IR.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    b.add_argument("spec", metavar="SPEC", help="path to a .arch file")
    _spec_options(b, "emit the reparameterized (deploy) form")
    b.add_argument("-o", "--output", metavar="OUT.py", help="where to write the module "
                   "(default build/<family>_<variant>.py; '-' writes it to standard output and the "
                   "summary to standard error)")
    b.add_argument("--dump-ir", action="store_true", help="print the IR, one node per line, and write nothing")
    b.add_argument("--json", action="store_true", help="print the summary as JSON (params, macs, flops, stages)")
    b.add_argument("--validate", action="store_true", help="also check the emitted module node for node against "
                   "the IR with torch.fx (on whenever ARCHLANG_DEBUG=1)")
    b.add_argument("--explain", action="store_true", help="after the summary, list where each fusion rule fired "
                   "and why candidates did not fuse (implies --fuse)")

    v = sub.add_parser("viz", help="draw a spec variant's graph (svg, png, pdf, dot or interactive html)",
                       description="Draw the IR as nested clusters (stem, stages, blocks) with shapes, params and "
                                   "MACs on every node; repeated blocks fold into one node 'xN'.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=VIZ_EPILOG)
    v.add_argument("spec", metavar="SPEC", help="path to a .arch file")
    _spec_options(v, "draw the reparameterized (deploy) form")
    v.add_argument("--depth", type=_depth, default=2, metavar="N",
                   help="how many levels of modules open as clusters (default 2)")
    v.add_argument("--expand", metavar="SCOPE", action="append", default=[],
                   help="open this module, or unfold this repeat, whatever the depth (repeatable), "
                        "e.g. --expand stages.2.blocks")
    v.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top-to-bottom (default) or left-to-right")
    v.add_argument("--format", choices=("svg", "png", "pdf", "dot", "html"), default=None,
                   help="output format (default: from the -o suffix, which must name a format, else svg); "
                        "dot and html need no Graphviz")
    v.add_argument("-o", "--output", metavar="FILE", help="where to write (default build/<family>_<variant>.<format>; "
                   "'-' writes to standard output)")

    d = sub.add_parser("diff", help="compare two architectures structurally; exit 1 when they differ",
                       description="Align A and B by role and scope, then by topology, and print what changed: "
                                   "stem, each stage, head, totals, and which of A's weights load into B. "
                                   "A and B are SPEC or SPEC:VARIANT.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DIFF_EPILOG)
    d.add_argument("a", metavar="A", help="SPEC or SPEC:VARIANT")
    d.add_argument("b", metavar="B", help="SPEC or SPEC:VARIANT")
    d.add_argument("--input", metavar="CxHxW", default=None,
                   help="input size for costs (default: each spec's own, else 3x224x224)")
    d.add_argument("--fuse", action="store_true", help="compare the deploy (fused) forms")
    d.add_argument("--json", action="store_true", help="print the comparison as JSON")
    d.add_argument("--viz", metavar="OUT.svg", help="also draw B coloured by the diff (added, changed, unchanged)")
    _import_option(d)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "help_variants", False) or getattr(args, "variant", None) == "?":
            return run_help_variants(args)
        return {"build": run_build, "viz": run_viz, "diff": run_diff}[args.command](args)
    except ArchError as err:
        print(err.render(), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in archlang, not in the user's input
        if os.environ.get("ARCHLANG_DEBUG"):
            raise
        print(f"internal error: {exc.__class__.__name__}: {exc}\n"
              "this is a bug in archlang; rerun with ARCHLANG_DEBUG=1 for a traceback", file=sys.stderr)
        return 70


def run_help_variants(args) -> int:
    from .program import load
    from .summary import format_variants

    text = format_variants(load(args.spec, allow_outside=args.allow_import_outside))
    print("\n".join(printable(line) for line in text.split("\n")))  # names and paths are user text
    return 0


def run_viz(args) -> int:
    from .viz.command import run

    return run(args)


def run_diff(args) -> int:
    from .diff import run

    return run(args)


def _reader_gone() -> int:
    """Standard output's reader closed it (`| head`): stop quietly, as a killed-by-SIGPIPE tool would,
    and point stdout at /dev/null so the interpreter's final flush does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def run_build(args) -> int:
    from .compiler import verify
    from .summary import format_summary

    args.fuse = args.fuse or args.explain
    if args.output == STDOUT and args.json:
        raise ArchError("-o - and --json both write to standard output", hint="write the module to a file")
    placeholder = Path("build") / "model.py"
    output_target(args.output, "-o", placeholder)  # a directory is refused before compiling
    compiled = compile_from_args(args)
    size = compiled.input_size
    if args.dump_ir:
        print(compiled.graph.dump(compiled.program.where), end="")
        return 0
    out = output_target(args.output, "-o", Path("build") / default_name(compiled, "py"))
    refuse_inputs(out, compiled.program.files, "-o", args.output or str(out))
    verify(compiled, full=args.validate or bool(os.environ.get("ARCHLANG_DEBUG")))
    write_output(out, compiled.source)
    if args.json:
        data = compiled.cost.as_dict()
        data.update(family=compiled.program.family, variant=compiled.variant, input=list(size),
                    fused=compiled.fused, output_file=str(out))
        print(json.dumps(data, indent=2))
    else:
        report = sys.stderr if out is None else sys.stdout  # stdout carries the module itself
        text = format_summary(compiled)
        if args.explain:
            from .passes.fusion_explain import format_explain

            text += "\n\n" + format_explain(compiled).rstrip("\n")
        text += f"\nwrote {out or 'the module to standard output'}"
        print("\n".join(printable(line) for line in text.split("\n")), file=report)  # paths are user text
    return 0


if __name__ == "__main__":
    sys.exit(main())
