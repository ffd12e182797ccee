"""Which axis of each IR tensor holds channels, read from the ops rather than assumed.

A rank-4 tensor is not always NCHW: Hiera keeps channels-last maps [B, H, W, C], ViTs carry
token sequences [B, N, C]. `channel_axes(graph)` follows the op table instead: an op that
declares `channel_axis` (conv, linear, the norms, pools) puts channels there; a layout op
(rearrange, permute, flatten, reshape, unbind, ...) carries the channel axis to wherever its
pattern sends it; matmul and attention leave features on the last axis; reductions drop or
keep it; everything else keeps the axis of its input. Tensors with no producer to ask (the
input, weights) take the axis their consumers read channels on. `layout_name` spells the
result for people: BCHW, BHWC, BNC, BC.
"""

from __future__ import annotations

from .einpattern import parse_pattern
from .ir import Graph, Node
from .ops import OPS, Attrs, Layout
from .shapes import Batch, size
from .values import has_sym, resolve

Axes = dict[int, int | None]  # node id -> axis of its output that holds channels, or None


def channel_axes(graph: Graph) -> Axes:
    nodes = list(graph.nodes())
    axes: Axes = {}
    for n in nodes:
        axes[n.id] = _axis(graph, n, axes)
    # Sources (the input, weights) have nothing upstream: ask their consumers, then go again.
    for n in nodes:
        if axes[n.id] is None and OPS[n.op].has("source"):
            axes[n.id] = _from_users(graph, n, axes)
    for n in nodes:
        if not OPS[n.op].has("source"):
            axes[n.id] = _axis(graph, n, axes)
    return axes


def _axis(graph: Graph, n: Node, axes: Axes) -> int | None:
    op, shape = OPS[n.op], n.shape
    if not shape:
        return None
    rank = len(shape)
    if op.channel_axis is not None:
        return op.channel_axis % rank
    if op.has("matmul") or op.has("attention"):
        return rank - 1
    ins = [graph.node(i) for i in n.inputs]
    if not ins:
        return None
    first, axis = ins[0], axes.get(ins[0].id)
    if op.layout is not None:
        return through_layout(graph, n, first, axis)
    a = n.attr_dict
    if op.has("reduction") and "dim" in a:  # mean/amax/norm(dim, keepdim)
        return _reduced(axis, a["dim"], len(first.shape), a.get("keepdim", False))
    if op.has("concat") and len(first.shape) + 1 == rank:  # stack: a new axis at dim
        new = a["dim"] % rank
        return None if axis is None else axis + (axis >= new)
    same = [axes.get(i.id) for i in ins if i.shape and len(i.shape) == rank and axes.get(i.id) is not None]
    return same[0] if same else None


def _reduced(axis: int | None, dims, rank: int, keepdim: bool) -> int | None:
    gone = {d % rank for d in (dims if isinstance(dims, tuple) else (dims,))}
    if axis is None or axis in gone:
        return None
    return axis if keepdim else axis - sum(d < axis for d in gone)


def _from_users(graph: Graph, n: Node, axes: Axes) -> int | None:
    for user in graph.users(n.id):
        op = OPS[user.op]
        if op.channel_axis is not None and user.inputs and user.inputs[0] == n.id:
            return op.channel_axis % len(n.shape)
        if op.has("elementwise") and user.shape and len(user.shape) == len(n.shape):
            if axes.get(user.id) is not None:
                return axes[user.id]
    return None


def layout_of(n: Node, graph: Graph) -> Layout | None:
    """What a layout-only op does as an einops pattern over its input (None: not a layout op)."""
    op = OPS[n.op]
    if op.layout is None or not n.inputs:
        return None
    return op.layout(Attrs(n.attr_dict), len(graph.node(n.inputs[0]).shape))


def through_layout(graph: Graph, n: Node, src: Node, axis: int | None) -> int | None:
    """The output axis of layout op `n` that holds input axis `axis`'s innermost part."""
    if axis is None:
        return None
    op = OPS[n.op]
    lay = op.layout(Attrs(n.attr_dict), len(src.shape))
    if lay is None:  # a slice or broadcast: same axes when the rank stays
        return axis if len(n.shape) == len(src.shape) else None
    if lay.pattern is None:  # row-major reshape: find the axis at the same stride
        return _same_stride(src.shape, axis, n.shape)
    p = parse_pattern(lay.pattern)
    inner = [a for a in p.lhs[axis] if a != "1"]
    if not inner:
        return None
    out = next((i for i, g in enumerate(p.rhs) if inner[-1] in g), None)
    return None if out is None or out < lay.unpacked else out - lay.unpacked


def _same_stride(shape_in, axis: int, shape_out) -> int | None:
    stride = 1
    for d in shape_in[axis + 1:]:
        stride *= size(d)
    inner = 1
    for j in reversed(range(len(shape_out))):
        if inner * size(shape_out[j]) > stride:
            return j
        inner *= size(shape_out[j])
    return None


def resolved(graph: Graph, value):
    """`value` with run-time sizes replaced by their sizes at the compiled input size."""
    if not has_sym(value):
        return value
    shapes = {n.id: n.shape for n in graph.nodes()}
    return resolve(value, graph.input.shape, shapes)


def layout_name(shape, axis: int | None) -> str:
    """BCHW, BHWC (channels-last map), BNC (tokens), BC; "" for other layouts."""
    if not shape or axis is None or not isinstance(shape[0], Batch):
        return ""
    rank = len(shape)
    names = {(4, 1): "BCHW", (4, 3): "BHWC", (3, 2): "BNC", (3, 1): "BCN", (2, 1): "BC"}
    return names.get((rank, axis), "")
