"""The human-readable summaries: a build's table (one row per stem, stage and head, then
totals), and a spec's list of variants (`archlang build SPEC --help-variants`).

Build rows come from `structure.summary_rows` (so stages are found even where the spec marks
none); each shows its output shape, the layout of that output read from the IR (BCHW, BHWC, BNC,
BC: which axis holds channels), how many blocks it holds, and its params and MACs. The variant list
is read from the spec alone (nothing is elaborated), so it is instant for any number of variants.
"""

from __future__ import annotations

from . import syntax as S
from .axes import channel_axes, layout_name
from .values import show_value

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


def format_variants(program) -> str:
    """Every variant of `program`: its names, the input it builds at, and what it sets."""
    from .program import literal, resolve_settings

    default = program.default or next(iter(program.variants), None)
    lines = [f"{program.family}: {len(program.variants)} variant{'s' * (len(program.variants) != 1)} in "
             f"{program.path}" + (f" (default {default})" if default else ""), ""]
    if not program.variants:
        return "\n".join(lines + ["  the spec declares no variants: it builds with its params' defaults"])
    rows, runtime = [], False
    for name, v in program.variants.items():
        settings = resolve_settings(program, name, None)[1]
        runtime = runtime or _runtime_names(program, settings)
        sets = ([f"extends {v.extends}"] if v.extends else []) + \
            [f"{kw.name}={show_value(literal(kw.value))}" for kw in v.values]
        rows.append((name + " *" * (name == default), ", ".join(v.aka), _input_text(program, settings),
                     "; ".join(sets)))
    header = ("variant", "aka", "input", "sets")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
    for r in (header, *rows):
        lines.append(("  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3]).rstrip())
    lines += ["", "  * the default. --variant takes a name or an aka; --set KEY=VALUE overrides any param."]
    if runtime:
        lines.append("  A name in the input is a run-time size: any size works (the size after '=', else 224, "
                     "unless --input says).")
    return "\n".join(lines)


def _input_text(program, settings) -> str:
    """The input line's sizes after the batch, as `archlang build` takes them by default: fixed
    sizes as numbers, run-time names as written with their default (`H=256`; any size, 224 when
    the spec gives none)."""
    if program.input is None:
        return "any"
    defaults = {kw.name: kw.value for kw in program.input_defaults}
    parts = []
    for e in program.input[0][1:]:
        value = settings.get(e.id) if isinstance(e, S.Name) else getattr(e, "value", None)
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(str(value))
        elif isinstance(e, S.Name):
            given = defaults.get(e.id)
            size = settings.get(given.id) if isinstance(given, S.Name) else getattr(given, "value", None)
            parts.append(e.id + (f"={size}" if isinstance(size, int) and not isinstance(size, bool) else ""))
        else:
            parts.append("?")
    return "x".join(parts)


def _runtime_names(program, settings) -> bool:
    """Whether the input line has a run-time size (a name that is not a param)."""
    return program.input is not None and any(isinstance(e, S.Name) and e.id not in settings
                                             for e in program.input[0][1:])
