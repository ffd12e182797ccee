"""Compiler passes, registered by name (installed as `archlang.passes`).

Each pass is a plain function. Graph passes take the IR and return a new IR or a report;
the program pass `fuse-reparam` rewrites block definitions. `PIPELINE` is the default order.
"""

from __future__ import annotations

from collections.abc import Callable

PASSES: dict[str, Callable] = {}


def register(name: str):
    def wrap(fn: Callable) -> Callable:
        assert name not in PASSES, name
        PASSES[name] = fn
        fn.pass_name = name
        return fn
    return wrap


def get(name: str) -> Callable:
    return PASSES[name]


from . import check_shapes, count_flops, fuse_reparam  # noqa: E402,F401  (registers the passes)

PIPELINE = ("check-shapes", "count-flops")
