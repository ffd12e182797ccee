"""Compiler passes and the pipeline that runs them (installed as `archlang.passes`).

Every pass has one signature, `Build -> Build`: it reads what earlier passes left on the build
record and returns a new record with its own result added (a graph, shapes, costs, a fused
program). Passes are registered by name; a pipeline is a tuple of names, and `run` is the one
driver. Between passes `run` checks the IR's invariants (`Graph.lint`) when ARCHLANG_DEBUG or
ARCHLANG_LINT is set (the test suite sets it), so a pass that breaks the graph is caught at once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Build:
    """What passes read and write: the program and settings of one build, and their results."""

    program: object  # archlang.program.Program (rewritten by fuse-reparam)
    variant: str | None
    settings: dict
    input_size: tuple[int, ...]
    graph: object | None = None  # archlang.ir.Graph, from elaborate
    cost: object | None = None  # count_flops.CostReport
    fusion: object | None = None  # fuse_reparam.Fusion, in the deploy pipeline
    unfused: Build | None = field(default=None, repr=False)  # the train-form build fusion started from

    def but(self, **changes) -> Build:
        return dataclasses.replace(self, **changes)


Pass = Callable[[Build], Build]
PASSES: dict[str, Pass] = {}


def register(name: str):
    def wrap(fn: Pass) -> Pass:
        assert name not in PASSES, name
        PASSES[name] = fn
        fn.pass_name = name
        return fn
    return wrap


def get(name: str) -> Pass:
    return PASSES[name]


from . import check_shapes, count_flops, elaborate, fuse_reparam  # noqa: E402,F401  (registers the passes)

# The train form; the deploy form fuses the shaped, counted train graph and compiles the result.
PIPELINE = ("elaborate", "check-shapes", "count-flops")
DEPLOY_PIPELINE = PIPELINE + ("fuse-reparam",) + PIPELINE


def run(build: Build, pipeline: tuple[str, ...] = PIPELINE) -> Build:
    """Run the named passes in order, checking the IR between them when asked to."""
    lint = bool(os.environ.get("ARCHLANG_DEBUG") or os.environ.get("ARCHLANG_LINT"))
    for name in pipeline:
        build = PASSES[name](build)
        if lint and build.graph is not None:
            problems = build.graph.lint()
            if problems:
                raise AssertionError(f"internal error: the IR is malformed after pass '{name}': "
                                     + "; ".join(problems[:5]))
    return build
