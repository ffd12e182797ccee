"""count-flops: parameters and multiply-accumulates per node, module, summary row and total.

Everything comes from the shaped IR and each op's cost rule, so any input size is counted
without building a model. MACs follow fvcore's conventions (see `archlang.ops`); FLOPs are
reported as 2 x MACs. Parameters are counted once per tensor, as `sum(p.numel())` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from archlang.ir import Graph
from archlang.ops import OPS, Attrs
from archlang.structure import Row, summary_rows

from . import Build, register


@dataclass
class CostReport:
    params: int
    buffers: int
    macs: int
    node_params: dict[int, int]
    node_macs: dict[int, int]
    modules: dict[str, tuple[int, int]]  # path -> (params, macs), subtree totals
    rows: list[Row] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def as_dict(self) -> dict:
        return {
            "params": self.params, "macs": self.macs, "flops": self.flops,
            "stages": [{"name": r.name, "roles": list(r.roles), "output": r.shape,
                        "params": r.params, "macs": r.macs, "flops": 2 * r.macs} for r in self.rows],
        }


def node_params(node) -> tuple[int, int]:
    """(parameter count, buffer element count) owned by a node."""
    op = OPS[node.op]
    a = Attrs(node.attr_dict)
    return (sum(prod(s) for s in op.params(a).values()), sum(prod(s) for s in op.buffers(a).values()))


@register("count-flops")
def count_flops(build: Build) -> Build:
    """Parameters and MACs of the build's shaped graph (run check-shapes first)."""
    return build.but(cost=cost_report(build.graph))


def cost_report(graph: Graph) -> CostReport:
    """Cost of a shaped graph."""
    params, macs, buffers = {}, {}, 0
    modules: dict[str, list[int]] = {}
    for n in graph.nodes():
        op = OPS[n.op]
        p, b = node_params(n)
        # build-time tensors are computed once in __init__, not per sample: no MACs
        m = 0 if n.init else op.cost(Attrs(n.attr_dict), [graph.node(i).shape for i in n.inputs], n.shape)
        params[n.id], macs[n.id] = p, m
        buffers += b
        for prefix in _prefixes(n.scope):
            acc = modules.setdefault(prefix, [0, 0])
            acc[0] += p
            acc[1] += m
    report = CostReport(sum(params.values()), buffers, sum(macs.values()), params, macs,
                        {k: (v[0], v[1]) for k, v in modules.items()})
    report.rows = summary_rows(graph, report)
    return report


def _prefixes(scope: str) -> list[str]:
    parts = scope.split(".") if scope else []
    return [".".join(parts[:i]) for i in range(len(parts) + 1)]
