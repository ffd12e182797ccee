"""The weight-transfer report: where each tensor of A's state_dict would go in B.

Names and shapes come from the IR (`param_table`: parameters and persistent buffers), so no
model is built. A tensor loads *unchanged* when B has the same name with the same shape (what
`load_state_dict` does by name); otherwise it loads *after renaming* into the tensor of its
aligned node with the same shape, or *reshaped* into a same-name or aligned tensor with as many
elements; anything else does *not load*. B's tensors that receive nothing are *new*.
"""

from __future__ import annotations

from math import prod

from ..compiler import param_table
from ..ir import Graph, Node
from ..ops import OPS, Attrs
from .records import Rename, Reshape, Transfer, Unloaded


def tensors(graph: Graph) -> dict[str, tuple]:
    params, buffers = param_table(graph)
    return {**params, **buffers}


def node_tensors(n: Node) -> dict[str, str]:
    """Tensor key (`weight`, `running_mean`, "" for a bare weight) -> full name, for one owner."""
    op, a = OPS[n.op], Attrs(n.attr_dict)
    keys = list(op.params(a)) + list(op.buffers(a))
    return {k: f"{n.path}.{k}" if k else n.path for k in keys}


def aligned_names(pairs: list[tuple[Node, Node]]) -> dict[str, str]:
    """A tensor name -> B tensor name, through aligned nodes (same op, so the same keys)."""
    out = {}
    for a, b in pairs:
        tb = node_tensors(b)
        for key, name in node_tensors(a).items():
            if key in tb:
                out[name] = tb[key]
    return out


def transfer(ta: dict[str, tuple], tb: dict[str, tuple], aligned: dict[str, str]) -> Transfer:
    report = Transfer()
    report.unchanged = [k for k, s in ta.items() if tb.get(k) == s]
    claimed = set(report.unchanged)  # each tensor of B receives at most one tensor of A
    for name, shape in ta.items():
        if tb.get(name) == shape:
            continue
        options = [c for c in dict.fromkeys((aligned.get(name), name)) if c in tb and c not in claimed]
        target = _pick(options, tb, shape)
        if target is None:
            fallback = options[0] if options else None
            report.not_loaded.append(Unloaded(name, shape, fallback, tb.get(fallback)))
            claimed.add(fallback)
        elif tb[target] == shape:
            report.renamed.append(Rename(name, target))
            claimed.add(target)
        else:
            report.reshaped.append(Reshape(name, target, shape, tb[target]))
            claimed.add(target)
    report.new = [k for k in tb if k not in claimed]
    return report


def _pick(options: list[str], tb: dict[str, tuple], shape: tuple) -> str | None:
    """The first option with the same shape, else the first with as many elements."""
    for c in options:
        if tb[c] == shape:
            return c
    return next((c for c in options if prod(tb[c]) == prod(shape)), None)
