"""The human-readable build summary: one row per stem, stage and head, then totals.

Rows come from `structure.summary_rows` (so stages are found even where the spec marks none);
each shows its output shape, the layout of that output read from the IR (BCHW, BHWC, BNC, BC:
which axis holds channels), how many blocks it holds, and its params and MACs.
"""

from __future__ import annotations

from .axes import channel_axes, layout_name

FOUND = "*"  # marks a role found from the structure rather than written in the spec


def format_summary(compiled) -> str:
    cost, graph = compiled.cost, compiled.graph
    axes = channel_axes(graph)
    size = "x".join(str(s) for s in compiled.input_size)
    title = f"{compiled.program.family} {compiled.variant or ''}".strip()
    form = "fused (deploy) form" if compiled.fused else "train form"
    lines = [f"{title}  [{compiled.program.path}, {form}, input {size}]", ""]
    header = ("module", "role", "output", "layout", "blocks", "params", "GMACs")
    rows = []
    for r in cost.rows:
        out = graph.node(r.output) if r.output is not None else None
        layout = layout_name(out.shape, axes[out.id]) if out is not None else ""
        role = ",".join(r.roles) + (FOUND if r.found else "")
        blocks = "" if r.blocks is None else str(r.blocks)
        rows.append((r.name, role, r.shape, layout, blocks, f"{r.params:,}", f"{r.macs / 1e9:.3f}"))
    total = ("total", "", "", "", "", f"{cost.params:,}", f"{cost.macs / 1e9:.3f}")
    widths = [max(len(x[i]) for x in (header, *rows, total)) for i in range(len(header))]

    def fmt(cols):
        left = [c.ljust(w) for c, w in zip(cols[:4], widths[:4])]
        right = [c.rjust(w) for c, w in zip(cols[4:], widths[4:])]
        return ("  " + "  ".join(left + right)).rstrip()

    lines.append(fmt(header))
    lines += [fmt(r) for r in rows]
    lines.append("  " + "-" * (sum(widths) + 2 * (len(widths) - 1)))
    lines.append(fmt(total))
    lines.append(f"  GFLOPs = 2 x GMACs = {cost.flops / 1e9:.3f}; MACs follow fvcore's conventions")
    if any(r.found for r in cost.rows):
        lines.append(f"  {FOUND} stage found from the structure (the spec has no @stage): "
                     "a run of blocks with one output shape")
    return "\n".join(lines)
