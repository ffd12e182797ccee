"""elaborate: the program and its settings become the IR graph (see `archlang.elaborate`).

In the deploy pipeline it runs again after fuse-reparam, on the fused program, whose rewritten
layers carry their weight recipes (`syntax.Fused`).
"""

from __future__ import annotations

from archlang.elaborate import elaborate as _elaborate

from . import Build, register


@register("elaborate")
def elaborate(build: Build) -> Build:
    graph = _elaborate(build.program, build.variant, build.settings)
    return build.but(graph=graph, cost=None)
