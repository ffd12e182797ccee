"""`archlang viz`: compile the spec, draw it, write the file, say where it went."""

from __future__ import annotations

from pathlib import Path

from . import FORMATS, render


def run(args) -> int:
    from ..cli import compile_from_args

    compiled = compile_from_args(args)
    suffix = Path(args.output).suffix[1:].lower() if args.output else ""
    fmt = args.format or (suffix if suffix in FORMATS else "svg")
    out = Path(args.output) if args.output else default_path(compiled, fmt)
    render(compiled, out, fmt, args.depth, tuple(args.expand), args.rankdir)
    print(f"wrote {out} ({fmt}, {len(compiled.graph)} IR nodes, depth {args.depth})")
    return 0


def default_path(compiled, fmt: str) -> Path:
    stem = f"{compiled.program.family}_{compiled.variant or 'default'}{'_fused' if compiled.fused else ''}"
    return Path("build") / f"{stem}.{fmt}"
