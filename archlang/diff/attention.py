"""Attention in words, for the diff's prose: where it attends, how q, k, v are laid out, what bias
it adds to its logits.

An attention site is a fused `sdpa` node, or attention written out: a `distribution` op
(softmax) whose scores come, through element-wise ops, from a matmul. For each site:

- the partition: the layout op that made the token axis the site attends over, read as a
  rearrange pattern. Tokens grouped from the inner factors of the spatial axes
  (`b (nh p) (nw q) c -> (b nh nw) (p q) c`) are contiguous p x q windows; from the outer
  factors (`b (p nh) (q nw) c -> ...`) they form a p x q grid spread over the whole map.
- the q/k/v layout: where one projection is unpacked into q, k and v, the order of the
  factors its channel axis is split into ([3, heads, head_dim]: q, k and v each a contiguous
  block; [heads, 3, head_dim]: interleaved per head). Separate projections say so.
- the logit bias: the batch-free operands added to the scores, read back to what makes them: a
  learned table (a weight), read through a gather at a computed index or through einsums with
  computed lookups, or produced by an MLP (linears) from computed inputs. Axes the size of the
  head count print as `heads`.

Everything is read from the IR and the op traits; names are the spec's block names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..axes import layout_of, resolved
from ..einpattern import parse_pattern
from ..ir import Graph, Node
from ..ops import OPS
from ..shapes import Batch, size
from .reshapes import Composer


@dataclass
class Site:
    """One attention: its q, k, v and the batch-free operands added to its logits."""

    node: Node
    q: Node
    k: Node
    v: Node
    biases: list[Node]

    @property
    def heads(self):
        """The head count (q's axis -3), or None for single-head attention of rank 2."""
        return self.q.shape[-3] if len(self.q.shape) > 2 else None


def _has(n: Node, trait: str) -> bool:
    return OPS[n.op].has(trait)


def _batched(n: Node) -> bool:
    return any(isinstance(d, Batch) for d in (n.shape or ()))


def sites(graph: Graph, nodes: list[Node]) -> list[Site]:
    """The attention sites among `nodes`, in order."""
    out = []
    for n in nodes:
        if _has(n, "attention"):
            q, k, v = (graph.node(i) for i in n.inputs[:3])
            out.append(Site(n, q, k, v, []))
        elif _has(n, "distribution") and (site := _written_out(graph, n)) is not None:
            out.append(site)
    return out


def _written_out(graph: Graph, soft: Node) -> Site | None:
    """softmax(q @ k^T + bias) @ v: walk from the softmax back to the matmul of the scores,
    collecting the batch-free operands of the element-wise ops on the way."""
    biases, n = [], graph.node(soft.inputs[0])
    while _has(n, "elementwise") and n.inputs:
        ins = [graph.node(i) for i in n.inputs]
        main = [m for m in ins if _batched(m)]
        if len(main) != 1:
            return None
        biases += [m for m in ins if not _batched(m)]
        n = main[0]
    users = [u for u in graph.users(soft.id) if _has(u, "matmul") and u.inputs[0] == soft.id]
    if not _has(n, "matmul") or len(n.inputs) != 2 or not users:
        return None
    q, kt = (graph.node(i) for i in n.inputs)
    return Site(soft, q, kt, graph.node(users[0].inputs[1]), biases)


# ---------------------------------------------------------------- tracing back through layout


def _back(graph: Graph, n: Node) -> list[Node]:
    """`n` and the layout ops and scalar element-wise ops (a scale) it was made through, back to
    (and with) the first node that computes: the path, newest first."""
    path = [n]
    while n.inputs and (layout_of(n, graph) is not None or (_has(n, "elementwise") and len(n.inputs) == 1)):
        n = graph.node(n.inputs[0])
        path.append(n)
    return path


def _behind(graph: Graph, t: Node, limit: int = 64) -> list[Node]:
    """The batched nodes `t` is computed from, newest first, back to (and with) the affine maps
    that end every path: through a scale, a reshape, or a rotation such as RoPE's
    (q * cos + rotate(q) * sin), but never through a projection. At most `limit` nodes."""
    seen, order, todo = {t.id}, [], [t]
    while todo and len(order) < limit:
        n = todo.pop(0)
        order.append(n)
        if _has(n, "affine_map"):
            continue
        for i in n.inputs:
            m = graph.node(i)
            if m.id not in seen and _batched(m):
                seen.add(m.id)
                todo.append(m)
    return order


def projections(graph: Graph, t: Node) -> frozenset[int]:
    """The affine maps (projections) `t` is made from, through layout and element-wise ops."""
    return frozenset(n.id for n in _behind(graph, t) if _has(n, "affine_map"))


# ---------------------------------------------------------------- partition


def partition(graph: Graph, site: Site) -> str:
    """`in windows of 7x7 tokens`, `on a grid of 7x7 tokens ...`, or "" when tokens are not cut
    from a map. The layout ops between the projection and q (Hiera cuts after projecting) or
    before the projection (MaxViT cuts, then projects) are composed into one step, and the
    token axis is read by where its parts sat in the map's axes."""
    keys = site.v  # the tokens attended over (q may be pooled to fewer, as Hiera's first blocks)
    behind = _behind(graph, keys)
    maps = [n for n in behind if _has(n, "affine_map")]
    if not maps:
        return ""
    after = [n for n in reversed(_back(graph, keys)) if layout_of(n, graph) is not None]
    words = _tiles(graph, after, len(keys.shape) - 2)
    if words or not maps[0].inputs:
        return words
    before = [n for n in reversed(_back(graph, graph.node(maps[0].inputs[0]))) if layout_of(n, graph) is not None]
    return _tiles(graph, before, len(graph.node(maps[0].inputs[0]).shape) - 2)


def _tiles(graph: Graph, path: list[Node], token_axis: int) -> str:
    """Compose a run of layout ops and read its output's token axis: all its parts the inner
    part of a map axis are windows, all the outer part a grid."""
    if not path:
        return ""
    comp = Composer(graph.node(path[0].inputs[0]), None)
    for n in path:
        lay, src = layout_of(n, graph), graph.node(n.inputs[0])
        if not comp.apply(lay, src.shape, n.shape, {k: resolved(graph, v) for k, v in lay.sizes}, {}):
            return ""
    if comp.unpacked + token_axis >= len(comp.axes):
        return ""
    tokens = [x for a in comp.axes[comp.unpacked + token_axis] for x in a.leaves()]
    # the map axis parts of size 1 aside: an axis cut into one window of its whole length is not cut
    where = {id(x): (k, len(axis)) for axis in ([p for p in a.leaves() if p.size != 1] for a in comp.source)
             for k, x in enumerate(axis)}
    places = {_place(*where.get(id(t), (0, 1))) for t in tokens}
    if len(tokens) < 2 or len(places) != 1:
        return ""
    dims = "x".join(str(size(t.size)) for t in tokens)
    return {"inner": f"in windows of {dims} tokens", "outer": f"on a grid of {dims} tokens spread over the map",
            "": ""}[places.pop()]


def _place(k: int, parts: int) -> str:
    """Where part k of a map axis cut in `parts` sits: "inner", "outer", or "" (neither, uncut)."""
    if parts < 2:
        return ""
    return "inner" if k == parts - 1 else "outer" if k == 0 else ""


# ---------------------------------------------------------------- q, k, v


def qkv_layout(graph: Graph, site: Site) -> str:
    """How q, k and v come from their projection(s)."""
    sources = [projections(graph, t) for t in (site.q, site.k, site.v)]
    if all(sources) and len(frozenset().union(*sources)) == sum(map(len, sources)):  # pairwise disjoint
        return "separate q, k and v projections"
    for n in _behind(graph, site.q):
        lay = layout_of(n, graph)
        if lay is None or not lay.unpacked:
            continue
        return _split_order(graph, graph.node(n.inputs[0]), lay, site)
    return ""


def _split_order(graph: Graph, made: Node, unpack, site: Site) -> str:
    """[3, heads, head_dim] or [heads, 3, head_dim]: the factors of the projection's channel axis,
    in order, from the rearrange that made the tensor q, k, v are unpacked from."""
    lay = layout_of(made, graph)
    if lay is None or not lay.named:
        return ""
    p, u = parse_pattern(lay.pattern), parse_pattern(unpack.pattern)
    unpacked = u.rhs[0][0]  # the unpack op's first output axis is the one it takes a slice of
    axis = next((i for i, g in enumerate(u.lhs) if g == (unpacked,)), None)
    if axis is None or axis >= len(p.rhs) or len(p.rhs[axis]) != 1:
        return ""
    name = p.rhs[axis][0]
    group = next((g for g in p.lhs if name in g), ())
    heads, sizes = site.heads, dict(lay.sizes)
    words = []
    for a in group:
        if a == name:
            words.append("3")
        elif a in sizes and heads is not None and size(sizes[a]) == size(heads):
            words.append("heads")
        else:
            words.append("head_dim")
    if words.count("head_dim") != 1 or words.count("3") != 1:
        return ""
    how = "q, k, v each a contiguous block" if words[0] == "3" else "q, k, v interleaved per head"
    return "[" + ", ".join(words) + f"] of one projection ({how})"


# ---------------------------------------------------------------- the logit bias


def bias(graph: Graph, site: Site) -> str:
    """What the batch-free operands added to the logits are made of."""
    texts = [_made_of(graph, b, site) for b in site.biases]
    texts = [t for t in texts if t]
    if not texts:
        return ""
    scope = site.biases[0].scope  # named where a block of its own makes the bias
    owner = graph.modules.get(scope) if scope != site.node.scope else None
    who = f"`{owner.name}`, " if owner is not None and owner.kind == "block" else ""
    return who + " and ".join(texts)


def _made_of(graph: Graph, b: Node, site: Site) -> str:
    made, heads = _ancestors(graph, b), site.heads
    maps = [n for n in made if n.module and _has(n, "affine_map")]
    tables = [n for n in made if _has(n, "learned")]
    gathers = [n for n in made if _has(n, "gather")]
    ids = {n.id for n in made}
    lookups = [n for n in made if _has(n, "matmul") and
               any(i in ids and not _has(graph.node(i), "learned") for i in n.inputs)]
    if maps:
        first = graph.node(maps[0].inputs[0])
        text = f"an MLP of {len(maps)} linears on a computed {_dims(first)} tensor"
    elif tables:
        text = "a learned " + " and ".join(f"{_dims(t, heads)} table" for t in tables)
    else:
        return f"a computed {_dims(b)} tensor"
    if gathers:
        index = graph.node(gathers[0].inputs[-1])
        text += f", indexed by a computed {_dims(index)} index"
    elif lookups:
        seen = [graph.node(i) for n in lookups for i in n.inputs if not _has(graph.node(i), "learned")
                and not _has(graph.node(i), "matmul")]
        text += f", read through {len(lookups)} einsums with computed {_dims(seen[0])} lookups" \
            if seen else f", read through {len(lookups)} matrix products"
    return text


def _ancestors(graph: Graph, b: Node) -> list[Node]:
    """`b` and the batch-free nodes it is computed from (an arange's device operand aside)."""
    seen, todo = {b.id: b}, [b]
    while todo:
        n = todo.pop()
        for i in n.inputs:
            m = graph.node(i)
            if m.id not in seen and not _batched(m):
                seen[m.id] = m
                todo.append(m)
    return sorted(seen.values(), key=lambda n: n.id)


def _dims(n: Node, heads=None) -> str:
    return "[" + ", ".join("heads" if heads is not None and d == heads else str(size(d)) for d in n.shape) + "]"


def phrases(graph: Graph, nodes: list[Node]) -> dict[str, str]:
    """The attention of a set of nodes as three phrases, each joining the distinct words of its
    sites: where it attends, how q, k, v are laid out, and the logit bias; {} without attention."""
    found = sites(graph, nodes)
    if not found:
        return {}
    out = {}
    for label, words in (("Attention", partition), ("q, k, v", qkv_layout), ("Logit bias", bias)):
        out[label] = " and ".join(dict.fromkeys(w for s in found if (w := words(graph, s))))
    return out
