"""`archlang build --fuse --explain`: where each fusion rule fired, and what did not fuse and why.

One section per rule that fired (in table order), one line per place: the spec line, and the
module scope (the block and the first of its module paths, or the model). Then every candidate
that did not fuse (a branch sum, a conv/BN pair, a residual or expression around a foldable
layer) with the first precondition it failed.
"""

from __future__ import annotations

from .fuse_reparam import Event
from .fusion_rules import COLLAPSE, RULES

COLLAPSE_IDENTITY = "a block or group whose body fused into one layer is that layer, under its own label"


def format_explain(compiled) -> str:
    """The explanation of a fused build (`compile_spec(..., fuse=True)`)."""
    fusion, program = compiled.fusion, compiled.program
    instances = compiled.unfused.graph.instances
    identities = {r.name: r.identity for r in RULES} | {COLLAPSE: COLLAPSE_IDENTITY}
    fired, unfused = fusion.fired, fusion.unfused
    rules = [name for name in identities if any(e.rule == name for e in fired)]

    def where(e: Event) -> str:
        return program.where(e.span)

    body = []
    for name in rules:
        events = list(_unique(sorted((e for e in fired if e.rule == name), key=lambda e: _order(where(e))), where))
        width = max(len(where(e)) for e in events)
        body += ["", f"{name}: {identities[name]}"]
        body += [f"  {where(e):<{width}}  {scope(e, instances)}" for e in events]
    failed = list(_unique(sorted(unfused, key=lambda e: _order(where(e))), where))
    body += ["", "did not fuse:" if failed else "did not fuse: nothing"]
    body += [f"  {where(e)}  {scope(e, instances)}  [{e.rule}] {e.reason}" for e in failed]
    places = sum(1 for line in body if line.startswith("  ")) - len(failed)
    if not rules and not failed:
        return f"fusion of {compiled.name}: nothing to fuse (no branch sums, conv/BN pairs or other candidates)\n"
    head = f"fusion of {compiled.name}: {len(rules)} rule(s) fired in {places} place(s); "
    head += f"{len(failed)} candidate(s) did not fuse" if failed else "every candidate fused"
    return "\n".join([head, *body]) + "\n"


def scope(e: Event, instances: dict) -> str:
    """`block NAME at PATH (+N more)` or `model` / `model at PATH`."""
    inner = ".".join(e.path)
    if e.block is None:
        return f"model at {inner}" if inner else "model"
    paths = [p for p, _ in instances.get(e.block, [])]
    if not paths:
        return f"block {e.block}"
    first = ".".join(x for x in (paths[0], inner) if x)
    more = f" (+{len(paths) - 1} more)" if len(paths) > 1 else ""
    return f"block {e.block} at {first}{more}"


def _order(where: str):
    file, _, line = where.rpartition(":")
    return (file, int(line) if line.isdigit() else 0)


def _unique(events, where):
    """One line per (place, scope, reason): a rule applied at one operator of one line twice
    (as in `x + w * (a - b)`) is still one place."""
    seen = set()
    for e in events:
        key = (where(e), e.block, e.path, e.reason)
        if key not in seen:
            seen.add(key)
            yield e
