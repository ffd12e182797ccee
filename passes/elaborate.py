"""elaborate: the program and its settings become the IR graph (see `archlang.elaborate`).

In the deploy pipeline it runs again after fuse-reparam, on the fused program, with the weight
recipes fusion attached to the statements it rewrote.
"""

from __future__ import annotations

from archlang.elaborate import elaborate as _elaborate

from . import Build, register


@register("elaborate")
def elaborate(build: Build) -> Build:
    recipes = build.fusion.recipes if build.fusion is not None else None
    graph = _elaborate(build.program, build.variant, build.settings, recipes)
    return build.but(graph=graph, cost=None)
