"""The human-readable build summary: one row per stem, stage and head, then totals."""

from __future__ import annotations


def format_summary(compiled) -> str:
    cost = compiled.cost
    size = "x".join(str(s) for s in compiled.input_size)
    title = f"{compiled.program.family} {compiled.variant or ''}".strip()
    form = "fused (deploy) form" if compiled.fused else "train form"
    lines = [f"{title}  [{compiled.program.path}, {form}, input {size}]", ""]
    header = ("module", "role", "output", "params", "GMACs")
    rows = [(r.name, ",".join(r.roles), r.shape, f"{r.params:,}", f"{r.macs / 1e9:.3f}") for r in cost.rows]
    total = ("total", "", "", f"{cost.params:,}", f"{cost.macs / 1e9:.3f}")
    widths = [max(len(x[i]) for x in (header, *rows, total)) for i in range(5)]

    def fmt(cols):
        left = [c.ljust(w) for c, w in zip(cols[:3], widths[:3])]
        right = [c.rjust(w) for c, w in zip(cols[3:], widths[3:])]
        return "  " + "  ".join(left + right)

    lines.append(fmt(header))
    lines += [fmt(r) for r in rows]
    lines.append("  " + "-" * (sum(widths) + 8))
    lines.append(fmt(total))
    lines.append(f"  GFLOPs = 2 x GMACs = {cost.flops / 1e9:.3f}; MACs follow fvcore's conventions")
    return "\n".join(lines)
