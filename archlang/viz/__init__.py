"""Drawing compiled specs: `render(compiled, path, ...)` writes svg, png, pdf, dot or html.

The view (view.py) cuts the IR into clusters and units; dot.py turns it into Graphviz text; svg,
png and pdf come from Graphviz's `dot`; html embeds an SVG (from `dot` when it is installed,
else from the built-in layered layout in layout.py) with pan/zoom and a details panel.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import ArchError, cmdline_span, did_you_mean
from ..tooling import write_atomic
from .dot import to_dot
from .view import View, build_view

FORMATS = ("svg", "png", "pdf", "dot", "html")
INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
                "conda: conda install graphviz), or use --format dot or --format html, which need no Graphviz")


def have_dot() -> bool:
    return shutil.which("dot") is not None


def run_dot(text: str, fmt: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise ArchError(f"--format {fmt} needs Graphviz's `dot` program, which is not on PATH", hint=INSTALL_HINT)
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ArchError("Graphviz took more than 5 minutes", hint="draw less: lower --depth, fewer --expand") from None
    if done.returncode != 0:
        raise ArchError(f"Graphviz failed: {done.stderr.decode(errors='replace').strip()[:500]}")
    return done.stdout


def check_expand(compiled, expand) -> None:
    for scope in expand:
        if scope not in compiled.graph.modules:
            raise ArchError(f"no module '{scope}' to expand", cmdline_span(f"--expand {scope}", 9),
                            hint=did_you_mean(scope, compiled.graph.modules) or
                            "module paths look like stages.2.blocks (see `archlang build --dump-ir`)")


def render_bytes(compiled, fmt: str = "svg", depth: int = 2, expand=(), rankdir: str = "TB",
                 status: dict[str, str] | None = None) -> bytes:
    """The drawing as bytes in one of FORMATS."""
    check_expand(compiled, expand)
    view = build_view(compiled, depth, tuple(expand))
    text = to_dot(view, rankdir, status)
    if fmt == "dot":
        return text.encode()
    if fmt == "html":
        from .html import make_html

        svg = run_dot(text, "svg").decode() if have_dot() else layout_svg(view, status)
        return make_html(compiled, view, svg).encode()
    return run_dot(text, fmt)


def layout_svg(view: View, status) -> str:
    from .layout import draw

    return draw(view, status)


def render(compiled, path, fmt: str | None = None, depth: int = 2, expand=(), rankdir: str = "TB",
           status: dict[str, str] | None = None) -> Path:
    """Write the drawing to `path` (format from `fmt`, else from the suffix, else svg)."""
    path = Path(path)
    fmt = fmt or (path.suffix[1:].lower() if path.suffix[1:].lower() in FORMATS else "svg")
    data = render_bytes(compiled, fmt, depth, expand, rankdir, status)
    write_atomic(path, data)
    return path


__all__ = ["FORMATS", "build_view", "render", "render_bytes", "to_dot", "have_dot"]
