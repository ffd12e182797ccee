"""What a section is made of, as short comparable strings: depth, width, mixers, norms, ...

Each item is computed for A's and B's section alike and the diff prints the ones that differ.
What a node is comes from the op table's traits (norm, activation, attention, conv, layout
rules), never from op names. Width is the size of the output's channel axis as the IR knows it
(axes.py): axis 1 of an NCHW map, the last axis of a channels-last map or a token sequence.
Descriptions leave widths out (a block's width-valued arguments read `dim=w`, `hidden=4w`,
relative to the section's width w), so a mixer that only got wider compares equal and the
width shows up once, on its own line. Run-time sizes print in the spec's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..axes import Axes
from ..ir import Graph, Node
from ..ops import OPS, defaults
from ..shapes import Batch, fmt, size
from ..spec_names import SpecNames
from .reshapes import steps
from .sections import Section
from .wording import fold

# Arguments that hold a channel count (their values are the widths a block's arguments are
# measured against).
CHANNEL_ATTRS = ("in_channels", "out_channels", "num_channels", "num_features", "normalized_shape",
                 "in_features", "out_features")
ROLE_ITEMS = (("token mixer", "token_mixer"), ("channel mixer", "channel_mixer"), ("downsample", "downsample"))
NONE = "none"


@dataclass
class Model:
    """One side of the diff, with what the descriptions read from it."""

    graph: Graph
    axes: Axes
    names: SpecNames


def describe(m: Model, sec: Section) -> dict[str, object]:
    """Item name -> value; items that do not apply read "none"."""
    g = m.graph
    w = width(m, sec)
    items: dict[str, object] = {"depth": sec.blocks if sec.blocks is not None else NONE,
                                "width": w if w else NONE, "output": output(m, sec)}
    for item, role in ROLE_ITEMS:
        items[item] = _join(describe_module(m, sec, p, w) for p in role_modules(g, sec, role))
    # kinds, not order: sorted, so a reordering is not reported as a different set
    items["norms"] = _join(sorted({describe_op(n) for n in sec.nodes if _is(n, "norm")}))
    items["activations"] = _join(sorted({describe_op(n) for n in sec.nodes if _is(n, "activation")}))
    items["attention"] = _join(_attention(g, n) for n in sec.nodes if _is(n, "attention") or _is(n, "distribution"))
    items["reshapes"] = _join(steps(g, sec.nodes, m.axes, m.names))
    if sec.blocks is None:  # stem, head and loose rows: their layers in order
        items["layers"] = _layers(sec)
    return items


def _is(n: Node, trait: str) -> bool:
    return OPS[n.op].has(trait)


def width(m: Model, sec: Section) -> int | None:
    """Channels out: the size of the channel axis of the section's output."""
    out = sec.output
    axis = m.axes.get(out.id) if out is not None else None
    if axis is None or len(out.shape) < 2:
        return None
    return size(out.shape[axis])


def output(m: Model, sec: Section) -> str:
    """The output shape with the width axis written `w`: resolution or token count, apart from width."""
    if width(m, sec) is None:
        return NONE
    dims = [str(d) for d in sec.output.shape]
    dims[m.axes[sec.output.id]] = "w"
    return "[" + ", ".join(dims) + "]"


def role_modules(graph: Graph, sec: Section, role: str) -> list[str]:
    """The outermost modules with `role` inside the section."""
    found = [p for p, info in graph.modules.items() if role in info.roles and sec.owns(p)]
    return [p for p in found if not any(p.startswith(q + ".") for q in found)]


def describe_module(m: Model, sec: Section, path: str, w: int | None) -> str:
    graph = m.graph
    info = graph.modules[path]
    inside = [n for n in sec.nodes if n.module and (n.path == path or n.path.startswith(path + "."))]
    if info.kind == "op":
        return describe_op(inside[0]) if inside else info.name
    if info.kind == "block":
        bound = next((b for p, b in graph.instances.get(info.name, []) if p == path), {})
        widths = {v for n in inside for k, v in n.attrs if k in CHANNEL_ATTRS}
        args = ", ".join(f"{k}={_arg(m, v, w, widths, info.span, k, i)}" for i, (k, v) in enumerate(bound.items()))
        return f"{info.name}({args})"
    return "{" + _layers_of(inside) + "}"


def describe_op(n: Node) -> str:
    """An op and the arguments that say what it does (not its widths): `conv2d 3x3 stride 2
    depthwise`, `layernorm(eps=1e-06)`, `gelu(tanh)`, `weight[1, 197, 192]`."""
    op, a = OPS[n.op], n.attr_dict
    if op.has("conv"):
        text = f"{n.op} {_kernel(a['kernel_size'])}"
        if a["stride"] != 1:
            text += f" stride {a['stride']}"
        if a.get("padding") == "same" and not constant_same(a):
            text += " pad same"  # TensorFlow's, asymmetric: what ported TF weights need
        if a["groups"] > 1:
            text += " depthwise" if a["groups"] == a["in_channels"] else f" groups {a['groups']}"
        return text
    if op.has("state"):
        return f"{n.op}{fmt(n.shape)}"
    dflt = defaults(op)
    shown = {k: v for k, v in a.items()
             if k not in CHANNEL_ATTRS and (k not in dflt or v != dflt[k] or (k == "eps" and op.has("norm")))}
    if not shown:
        return n.op
    (k, v), = shown.items() if len(shown) == 1 else ((None, None),)
    if k is not None and not op.has("norm") and not isinstance(v, bool):
        return f"{n.op}({v})"  # gelu(tanh), maxpool2d(3)
    return f"{n.op}(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def constant_same(a: dict) -> bool:
    """TF "same" padding that is PyTorch's symmetric k // 2 (stride 1, odd kernels): no difference.
    A pool's stride None is its window."""
    stride = a["kernel_size"] if a.get("stride") is None else a["stride"]
    pairs = [v if isinstance(v, tuple) else (v, v) for v in (a["kernel_size"], stride)]
    return all(s == 1 and k % 2 for k, s in zip(*pairs))


def _kernel(k) -> str:
    return "x".join(str(x) for x in k) if isinstance(k, tuple) else f"{k}x{k}"


def _arg(m: Model, v, w: int | None, widths: set, span, key: str, position: int) -> str:
    """A bound block argument; width-valued ints relative to the section width w."""
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "none"}[v]
    if isinstance(v, int) and w and v in widths:
        r = Fraction(v, w)
        num = "" if r.numerator == 1 else str(r.numerator)
        return f"{num}w" + (f"/{r.denominator}" if r.denominator > 1 else "")
    if isinstance(v, tuple):
        return "[" + ", ".join(_arg(m, x, w, widths, None, key, position) for x in v) + "]"
    if isinstance(v, (int, float, str)):
        return repr(v) if isinstance(v, str) else str(v)
    return m.names.value(v, span, key, position)  # a run-time size: the spec's words


def _attention(graph: Graph, n: Node) -> str:
    """Fused attention (sdpa), or attention written out as softmax(q @ k^T) @ v, by its sizes."""
    if OPS[n.op].has("distribution"):
        scores = _through(graph, graph.node(n.inputs[0]))
        if not OPS[scores.op].has("matmul"):
            return ""
        q, kt = (graph.node(i).shape for i in scores.inputs)
        keys, name = kt[-1], "attention"
    else:
        q, k = (graph.node(i).shape for i in n.inputs[:2])
        keys, name = k[-2], n.op
    text = f"{name}(heads={size(q[-3]) if len(q) > 2 else 1}, tokens={size(q[-2])}"
    if keys != q[-2]:
        text += f", keys={size(keys)}"
    text += f", head_dim={size(q[-1])}"
    if isinstance(q[0], Batch) and q[0].k > 1:
        text += f", windows={q[0].k}"
    scale = n.attr("scale")
    if scale is not None and abs(scale - size(q[-1]) ** -0.5) > 1e-12:
        text += f", scale={scale!r}"
    return text + ")"


def _through(graph: Graph, n: Node) -> Node:
    """Back through element-wise ops on scores (a scale, a bias) to what made them."""
    while OPS[n.op].has("elementwise") and n.inputs:
        n = graph.node(n.inputs[0])
    return n


def _layers(sec: Section) -> str:
    # dropout and drop-path are identities in eval, like the training-only modules left out of the
    # summary: listing them would make a stem or head with a p = 0 dropout differ from one without
    return _layers_of([n for n in sec.owners if not _is(n, "dropout")]) or NONE


def _layers_of(nodes: list[Node]) -> str:
    """Owner nodes in order, runs of equal descriptions folded to `text xN`."""
    return ", ".join(fold([describe_op(n) for n in nodes]))


def _join(texts) -> str:
    """Distinct texts in first-seen order."""
    return ", ".join(dict.fromkeys(t for t in texts if t)) or NONE
