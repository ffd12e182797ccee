"""One self-contained HTML file: the SVG drawing, pan and zoom, and a panel with a clicked node's
details (what it is, shape, params, MACs, arguments, and the spec line it came from).

No network, no libraries: the page's script is ours and short. Opening the file with `#selftest`
clicks the largest node and records what the panel shows, so a headless browser can check it.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from ..errors import SOURCES
from ..ir import format_attr
from ..spec_names import SpecNames
from ..values import has_sym
from .view import View

STATIC = Path(__file__).with_name("static")


def unit_data(compiled, view: View) -> dict:
    names = SpecNames(compiled.program, compiled.graph)
    out = {}
    for uid, u in view.units.items():
        what = f"{u.subtitle} ×{u.count}" if u.kind == "fold" else (u.subtitle or u.kind)
        rows = [("path", u.path or "(model)"), ("kind", u.kind)]
        if u.roles:
            rows.append(("roles", ", ".join(u.roles)))
        rows += [("output", u.shape), ("params", f"{u.params:,}"), ("MACs", f"{u.macs:,}")]
        rows += [(k, _attr(names, u, i, k, v)) for i, (k, v) in enumerate(u.attrs.items())]
        span = u.span
        line = SOURCES.line(span.file, span.line) or ""
        out[uid] = {"title": u.title, "what": what, "rows": rows, "params": u.params,
                    "where": compiled.program.where(span), "line": line.strip()}
    return out


def _attr(names: SpecNames, u, position: int, key: str, v) -> str:
    """An argument as the panel shows it; run-time sizes in the spec's words, not node ids."""
    if not has_sym(v):
        return format_attr(v)
    if isinstance(v, tuple) and all(isinstance(x, tuple) and len(x) == 2 for x in v):  # rearrange sizes
        return ", ".join(f"{k}={names.value(x, u.span, k)}" for k, x in v)
    return names.value(v, u.span, key, position)


def make_html(compiled, view: View, svg: str) -> str:
    svg = svg[svg.find("<svg"):] if "<svg" in svg else svg
    data = json.dumps(unit_data(compiled, view), ensure_ascii=True).replace("</", "<\\/")
    cost = compiled.cost
    title = escape(view.title)
    summary = escape(f"{cost.params:,} params · {cost.macs / 1e9:.3f} GMACs at "
                     f"{'x'.join(map(str, compiled.input_size))}{' · fused' if compiled.fused else ''}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_static("viz.css")}</style></head>
<body>
<div id="bar"><b>{title}</b><span>{summary}</span><button id="reset">reset view</button>
<span style="color:#777">scroll to zoom, drag to pan, click a node for details</span></div>
<div id="main"><div id="stage">{svg}</div>
<div id="panel"><h2></h2><div class="what"></div><table></table>
<p class="where"></p><pre></pre></div></div>
<script type="application/json" id="units">{data}</script>
<script>{_static("viz.js")}</script>
</body></html>
"""


def _static(name: str) -> str:
    return (STATIC / name).read_text()
