"""What a section is made of, as short comparable strings: depth, width, mixers, norms, ...

Each item is computed for A's and B's section alike and the diff prints the ones that differ.
Descriptions leave widths out (a block's width-valued arguments read `dim=w`, `hidden=4w`,
relative to the section's width w), so a mixer that only got wider compares equal and the
width shows up once, on its own line.
"""

from __future__ import annotations

from fractions import Fraction

from ..ir import Graph, Node
from ..ops.act import ACTS
from ..shapes import Batch, fmt, size
from .sections import LOOSE, Section

NORMS = ("layernorm", "layernorm2d", "batchnorm1d", "batchnorm2d")
ACTIVATIONS = tuple(op.name for op in ACTS if op.name != "dropout")
CHANNEL_ATTRS = ("in_channels", "out_channels", "num_channels", "num_features", "normalized_shape",
                 "in_features", "out_features")
ROLE_ITEMS = (("token mixer", "token_mixer"), ("channel mixer", "channel_mixer"), ("downsample", "downsample"))
NONE = "none"


def describe(graph: Graph, sec: Section) -> dict[str, object]:
    """Item name -> value; items that do not apply read "none"."""
    w = width(sec)
    depth = block_count(graph, sec)
    items: dict[str, object] = {"depth": depth if depth is not None else NONE, "width": w if w else NONE,
                                "output": output(sec)}
    for item, role in ROLE_ITEMS:
        items[item] = _join(describe_module(graph, sec, p, w) for p in role_modules(graph, sec, role))
    # kinds, not order: sorted, so a reordering is not reported as a different set
    items["norms"] = _join(sorted({describe_op(n) for n in sec.nodes if n.op in NORMS}))
    items["activations"] = _join(sorted({describe_op(n) for n in sec.nodes if n.op in ACTIVATIONS}))
    items["attention"] = _join(_sdpa(graph, n) for n in sec.nodes if n.op == "sdpa")
    items["rearranges"] = _join(_rearrange(n) for n in sec.nodes if n.op == "rearrange")
    if depth is None:  # stem, head and loose rows: their layers in order
        items["layers"] = _layers(sec)
    return items


def width(sec: Section) -> int | None:
    """Channels out: axis 1 of an NCHW map, else the last axis ([B, N, C] tokens, [B, C]).
    None for the loose top-level nodes, whose last node may be anywhere in the graph."""
    shape = sec.nodes[-1].shape if sec.nodes and sec.name != LOOSE else None
    if not shape or len(shape) < 2:
        return None
    return size(shape[1] if len(shape) == 4 else shape[-1])


def output(sec: Section) -> str:
    """The output shape with the width axis written `w`: resolution or token count, apart from width."""
    if width(sec) is None:
        return NONE
    dims = [str(d) for d in sec.nodes[-1].shape]
    dims[1 if len(dims) == 4 else -1] = "w"
    return "[" + ", ".join(dims) + "]"


def block_count(graph: Graph, sec: Section) -> int | None:
    """Number of blocks: children of the outermost containers (repeats, loops) in the section,
    outside any downsample module; None when the section has no container."""
    containers = [p for p, info in graph.modules.items()
                  if info.kind == "container" and sec.owns(p) and "downsample" not in graph.roles_of(p)]
    outer = [p for p in containers if not any(p.startswith(q + ".") for q in containers)]
    if not outer:
        return None
    return sum(1 for p in graph.modules for c in outer if p.rpartition(".")[0] == c)


def role_modules(graph: Graph, sec: Section, role: str) -> list[str]:
    """The outermost modules with `role` inside the section."""
    found = [p for p, info in graph.modules.items() if role in info.roles and sec.owns(p)]
    return [p for p in found if not any(p.startswith(q + ".") for q in found)]


def describe_module(graph: Graph, sec: Section, path: str, w: int | None) -> str:
    info = graph.modules[path]
    inside = [n for n in sec.nodes if n.module and (n.path == path or n.path.startswith(path + "."))]
    if info.kind == "op":
        return describe_op(inside[0]) if inside else info.name
    if info.kind == "block":
        bound = next((b for p, b in graph.instances.get(info.name, []) if p == path), {})
        widths = {v for n in inside for k, v in n.attrs if k in CHANNEL_ATTRS}
        args = ", ".join(f"{k}={_arg(v, w, widths)}" for k, v in bound.items())
        return f"{info.name}({args})"
    return "{" + _layers_of(inside) + "}"


def describe_op(n: Node) -> str:
    a = n.attr_dict
    if n.op == "conv2d":
        text = f"conv2d {_kernel(a['kernel_size'])}"
        if a["stride"] != 1:
            text += f" stride {a['stride']}"
        if a["groups"] > 1:
            text += " depthwise" if a["groups"] == a["in_channels"] else f" groups {a['groups']}"
        return text
    if n.op in NORMS:
        return f"{n.op}(eps={a['eps']!r})"
    if n.op == "gelu" and a.get("approximate", "none") != "none":
        return f"gelu({a['approximate']})"
    if n.op in ("weight", "buffer"):
        return f"{n.op}{fmt(n.shape)}"
    return n.op


def _kernel(k) -> str:
    return "x".join(str(x) for x in k) if isinstance(k, tuple) else f"{k}x{k}"


def _arg(v, w: int | None, widths: set) -> str:
    """A bound block argument; width-valued ints relative to the section width w."""
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "none"}[v]
    if isinstance(v, int) and w and v in widths:
        r = Fraction(v, w)
        num = "" if r.numerator == 1 else str(r.numerator)
        return f"{num}w" + (f"/{r.denominator}" if r.denominator > 1 else "")
    if isinstance(v, tuple):
        return "[" + ", ".join(_arg(x, w, widths) for x in v) + "]"
    return repr(v) if isinstance(v, str) else str(v)


def _sdpa(graph: Graph, n: Node) -> str:
    q = graph.node(n.inputs[0]).shape  # [B*windows, heads, tokens, head_dim]
    text = f"sdpa(heads={size(q[-3])}, tokens={size(q[-2])}, head_dim={size(q[-1])}"
    if isinstance(q[0], Batch) and q[0].k > 1:
        text += f", windows={q[0].k}"
    scale = n.attr("scale")
    if scale is not None and abs(scale - size(q[-1]) ** -0.5) > 1e-12:
        text += f", scale={scale!r}"
    return text + ")"


def _rearrange(n: Node) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in n.attr("sizes", ()))
    return f"'{n.attr('pattern')}'" + (f" ({sizes})" if sizes else "")


def _layers(sec: Section) -> str:
    return _layers_of(sec.owners) or NONE


def _layers_of(nodes: list[Node]) -> str:
    """Owner nodes in order, runs of equal descriptions folded to `text xN`."""
    runs: list[list] = []
    for text in (describe_op(n) for n in nodes):
        if runs and runs[-1][0] == text:
            runs[-1][1] += 1
        else:
            runs.append([text, 1])
    return ", ".join(t if k == 1 else f"{t} x{k}" for t, k in runs)


def _join(texts) -> str:
    """Distinct texts in first-seen order."""
    return ", ".join(dict.fromkeys(texts)) or NONE
