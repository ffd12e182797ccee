"""What a module computes and how it is trained, in words, for the diff's prose summary.

`computes` reads a module's layers in the deploy form (what runs once it is fused): convs and
linears by their geometry ("a 3x3 depthwise conv"), an expand-then-project pair as an MLP ("a 4x
MLP of 1x1 convs"), attention by its sizes, norms by op. `trained_as` renders the fusion recipes
(archlang/fusion.py) of the layers fusion made inside the module as the formula the train form
computes: RepMixer's deploy conv reads `x + γ·(BN(x) + BN(dwconv3x3(x)) + BN(dwconv1x1(x)) −
BN(x))`. `gates` finds squeeze-and-excitation style gates: modules that scale their input by a
value computed from a reduction of it. Everything is read from op traits, never op names.
"""

from __future__ import annotations

from fractions import Fraction

from ..ir import Graph, Node
from ..ops import OPS
from ..shapes import size
from .attention import sites
from .wording import fold


def inside(graph: Graph, path: str) -> list[Node]:
    """The nodes of a module and its submodules, in topological order."""
    return [n for n in graph.nodes() if n.scope == path or n.scope.startswith(path + ".")]


def _has(n: Node, trait: str) -> bool:
    return OPS[n.op].has(trait)


# ---------------------------------------------------------------- convs and linears


def conv_words(a: dict) -> str:
    """`3x3 stride-2 depthwise conv`, `7x7 depthwise conv with channel multiplier 2`."""
    k, stride = a["kernel_size"], a["stride"]
    text = "x".join(map(str, k)) if isinstance(k, tuple) else f"{k}x{k}"
    if isinstance(stride, tuple):
        stride = stride[0] if len(set(stride)) == 1 else "x".join(map(str, stride))
    if stride != 1:
        text += f" stride-{stride}"
    groups, cin, cout = a["groups"], a["in_channels"], a["out_channels"]
    if groups > 1 and groups == cin:
        text += " depthwise conv" + (f" with channel multiplier {cout // cin}" if cout != cin else "")
    elif groups > 1:
        text += f" conv in {groups} groups"
    else:
        text += " conv"
    return text


def conv_symbol(a: dict) -> str:
    """`conv3x3`, `dwconv3x3`, `dwconv7x7s2` (s: stride) for formulas."""
    k = a["kernel_size"]
    text = ("dw" if a["groups"] > 1 and a["groups"] == a["in_channels"] else "") + "conv"
    text += "x".join(map(str, k)) if isinstance(k, tuple) else f"{k}x{k}"
    return text + (f"s{a['stride']}" if a["stride"] != 1 else "")


def _map_in_out(n: Node) -> tuple[int, int]:
    a = n.attr_dict
    if _has(n, "conv"):
        return a["in_channels"], a["out_channels"]
    return a["in_features"], a["out_features"]


def _pointwise(n: Node) -> bool:
    """A 1x1 conv of one group or a linear: a map of channels alone."""
    if not _has(n, "affine_map"):
        return False
    if not _has(n, "conv"):
        return True
    a = n.attr_dict
    k = a["kernel_size"]
    return (k == 1 or k == (1, 1)) and a["groups"] == 1 and a["stride"] == 1


# ---------------------------------------------------------------- computes


def computes(graph: Graph, path: str, skip: list[str] = (), detail: bool = False) -> str:
    """What the module at `path` computes, as a phrase of its layers in order (the modules
    `skip` names aside: gates, said on their own). `detail` adds pools and activations and the
    width of linears (a stem or a head, where they are what tells two apart)."""
    nodes = [n for n in inside(graph, path) if not any(n.scope == q or n.scope.startswith(q + ".") for q in skip)]
    found = sites(graph, nodes)
    if found:
        words = [attention_words(graph, found[0].q, found[0].k)]
        words += [n.op for n in nodes if n.module and _has(n, "norm")]
        return ", ".join(words)
    layers = [n for n in nodes if _layer(n, detail)]
    words: list[str] = []
    i = 0
    while i < len(layers):
        n, pair = layers[i], _mlp_pair(layers, i)
        if pair:
            cin, hidden = _map_in_out(n)
            kind = "1x1 convs" if _has(n, "conv") else "linears"
            words.append(f"a {_ratio(Fraction(hidden, cin))}x MLP of {kind}")
            i += pair
            continue
        words.append(_layer_words(n, detail))
        i += 1
    return ", ".join(fold(words)) or "no layers"


def _layer(n: Node, detail: bool) -> bool:
    if n.module and (_has(n, "affine_map") or _has(n, "norm")):
        return True
    return detail and (_has(n, "activation") or (_has(n, "pool") and n.module))


def _layer_words(n: Node, detail: bool) -> str:
    if _has(n, "conv"):
        return "a " + conv_words(n.attr_dict)
    if _has(n, "affine_map"):
        return f"a linear to {n.attr('out_features')}" if detail else "a linear"
    if _has(n, "pool"):
        whole = _has(n, "reduction") and all(size(d) == 1 for d in n.shape[2:])  # NCHW, to one position
        return f"a global pool ({n.op})" if whole else f"a {n.op}"
    if _has(n, "activation"):
        approximate = n.attr("approximate")
        return n.op + (f"({approximate})" if approximate not in (None, "none") else "")
    return n.op


def _mlp_pair(layers: list[Node], i: int) -> int:
    """How many layers from i make an expand-then-project MLP (2, or 3 with an activation
    between); 0 when they do not."""
    n = layers[i]
    for step in (1, 2):
        if i + step >= len(layers):
            return 0
        nxt = layers[i + step]
        if step == 2 and not _has(layers[i + 1], "activation"):
            return 0
        if _pointwise(n) and _pointwise(nxt) and _mlp(n, nxt):
            return step + 1
    return 0


def _mlp(a: Node, b: Node) -> bool:
    (ain, aout), (bin_, bout) = _map_in_out(a), _map_in_out(b)
    return aout == bin_ and bout == ain and aout != ain


def _ratio(r: Fraction) -> str:
    return str(r.numerator) if r.denominator == 1 else f"{float(r):g}"


def attention_words(graph: Graph, qn: Node, kn: Node | None = None) -> str:
    """`self-attention over 49 tokens, 32 channels per head`: what stays the same from stage to
    stage when only the head count grows with the width; `of 4 queries over 16 tokens` where the
    queries were pooled (k is q's shape, or its transpose when written out)."""
    q = qn.shape
    keys = None
    if kn is not None and len(kn.shape) >= 2:
        keys = kn.shape[-1] if kn.shape[-2] == q[-1] and kn.shape[-1] != q[-1] else kn.shape[-2]
    if keys is not None and keys != q[-2]:
        return f"self-attention of {size(q[-2])} queries over {size(keys)} tokens, {size(q[-1])} channels per head"
    return f"self-attention over {size(q[-2])} tokens, {size(q[-1])} channels per head"


# ---------------------------------------------------------------- trained as (fusion recipes)


def fused_layers(deploy: Graph, path: str) -> list[tuple[str, tuple, str]]:
    """(fused module path, recipe, the scope its leaves are relative to) inside `path`."""
    # ("own", r): r's paths are inside the fused module itself (an unlabelled or indexed call)
    return [(p, recipe[1], p) if recipe[0] == "own" else (p, recipe, scope)
            for p, (recipe, scope) in deploy.fusions.items() if p == path or p.startswith(path + ".")]


def plain(recipe: tuple) -> bool:
    """A conv or linear and at most its BatchNorm: nothing a formula would add to its name."""
    while recipe[0] in ("at", "own"):
        recipe = recipe[-1]
    if recipe[0] == "then":
        return plain(recipe[1]) and recipe[2][0] in ("bn", "at") and _leaf(recipe[2]) == "bn"
    return recipe[0] == "map"


def _leaf(recipe: tuple) -> str:
    while recipe[0] in ("at", "own"):
        recipe = recipe[-1]
    return recipe[0]


def trained_as(train: Graph, recipe: tuple, scope: str) -> str:
    """The formula a fused layer's recipe says the train form computes, of its input x."""
    modules = {n.path: n for n in train.nodes() if n.module}
    return _render(recipe, scope, "x", modules)


def _render(r: tuple, prefix: str, arg: str, modules: dict) -> str:
    kind = r[0]
    if kind == "at":
        return _render(r[2], f"{prefix}.{r[1]}" if prefix else r[1], arg, modules)
    if kind == "own":
        return _render(r[1], prefix, arg, modules)
    if kind == "eye":
        return arg
    if kind == "bn":
        return f"BN({arg})"
    if kind == "scale":
        return f"γ·{_group(arg)}"
    if kind == "map":
        n = modules.get(f"{prefix}.{r[1]}" if prefix else r[1])
        if n is None:  # a leaf the train form names otherwise (a numbered call): say no more than a map
            return f"W({arg})"
        return f"{conv_symbol(n.attr_dict) if _has(n, 'conv') else 'linear'}({arg})"
    if kind == "then":
        return _render(r[2], prefix, _render(r[1], prefix, arg, modules), modules)
    if kind == "negate":
        return f"−{_group(_render(r[1], prefix, arg, modules))}"
    if kind in ("sum", "avg"):
        text = ""
        terms = [_render(item, prefix, arg, modules) for item in r[1]]
        for term in sorted(terms, key=lambda t: t != arg):  # the identity first: x + f(x)
            text += (" − " + term[1:]) if term.startswith("−") and text else ((" + " if text else "") + term)
        return f"({text})/{len(r[1])}" if kind == "avg" else text
    return "…"


def _group(text: str) -> str:
    """Parentheses around a sum or difference used as one operand."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and text[i:i + 3] in (" + ", " − "):
            return f"({text})"
    return text


# ---------------------------------------------------------------- gates


def gates(graph: Graph, paths: list[str]) -> list[str]:
    """Block modules among `paths`' submodules that gate their input: their output is an
    element-wise product of the input and a value computed from a reduction of it (SE)."""
    out = []
    for p, info in graph.modules.items():
        if info.kind != "block" or not any(p == q or p.startswith(q + ".") for q in paths):
            continue
        nodes = inside(graph, p)
        if not nodes or not any(_has(n, "reduction") for n in nodes):
            continue
        last, ids = nodes[-1], {n.id for n in nodes}
        if _has(last, "product") and any(i not in ids for i in last.inputs) and \
                any(i in ids for i in last.inputs):
            out.append(p)
    return out
