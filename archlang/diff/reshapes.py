"""Runs of layout-only ops, each read as one step: how a section moves its data around.

A run is a set of connected layout ops (the op table's `layout`: rearrange, permute,
transpose, flatten, reshape, unpacking, chunk, `t[0]`) fed by one tensor. Every path from that
tensor to a tensor leaving the run composes into a single einops pattern: the input's axes are
split into named parts as far as the ops need, then regrouped and reordered. So rearrange +
unpack + rearrange reads `b (nh p) (nw q) (three m d) -> three (b nh nw) m (p q) d`, and a
reshape/permute/reshape chain reads as the rearrange it amounts to. Unpacked axes (what `q, k,
v = ...` or `t[0]` take one slice of) lead the output. Names come from the spec's patterns,
else from the input's layout (b c h w, b n c); sizes the spec gave print in its own words
(`p=side`). A step that only unpacks or adds unit axes is no layout change and is left out.
"""

from __future__ import annotations

from ..axes import Axes, layout_name, layout_of, resolved
from ..einpattern import parse_pattern
from ..ir import Graph, Node
from ..ops import OPS, Layout
from ..shapes import Batch, dim_mul
from ..spec_names import SpecNames


class Atom:
    """An elementary axis: a name, a size, and the spec's text for that size if it gave one."""

    def __init__(self, name: str, size, given: str | None = None, placeholder: bool = False):
        self.name, self.size, self.given, self.placeholder = name, size, given, placeholder
        self.parts: list[Atom] | None = None

    def leaves(self) -> list[Atom]:
        return [a for p in self.parts for a in p.leaves()] if self.parts else [self]


class Composer:
    """Composes the layout ops along one path, starting from the tensor `src`."""

    def __init__(self, src: Node, axis: int | None):
        self.used: set[str] = set()
        names = _source_names(src.shape, axis)
        self.source = [Atom(self._fresh(n), d, placeholder=True) for n, d in zip(names, src.shape)]
        self.axes: list[list[Atom]] = [[a] for a in self.source]
        self.unpacked = 0

    def _fresh(self, name: str) -> str:
        out, k = name, 1
        while out in self.used:
            k += 1
            out = f"{name}{k}"
        self.used.add(out)
        return out

    def _label(self, atom: Atom, name: str | None, given: str | None) -> None:
        """Give a part the spec's name, unless the spec named it already (first name wins)."""
        if name is not None and atom.placeholder:
            self.used.discard(atom.name)
            atom.name, atom.placeholder = self._fresh(name), False
        elif not atom.name:
            atom.name = self._fresh("x")
        if given is not None:
            atom.given = given

    def apply(self, lay: Layout, shape_in, shape_out, sizes: dict, given: dict) -> bool:
        live = self.axes[self.unpacked:]
        if lay.pattern is None:
            groups = self._regroup([a for ax in live for a in ax], list(shape_out))
            if groups is None:
                return False
            self.axes = self.axes[:self.unpacked] + groups
            return True
        p = parse_pattern(lay.pattern)
        if len(p.lhs) != len(live):
            return False
        bound: dict[str, list[Atom]] = {}
        for group, atoms, dim in zip(p.lhs, live, shape_in):
            names = [a for a in group if a != "1"]
            if len(names) == 1:
                parts = [atoms]
            else:
                elem = _elementary(names, dim, sizes)
                parts = self._regroup(atoms, elem) if elem is not None else None
                if parts is None:
                    return False
            for name, got in zip(names, parts):
                bound[name] = got
                if len(got) == 1:
                    self._label(got[0], name if lay.named else None, given.get(name))
        out = [[a for name in g if name != "1" for a in bound[name]] for g in p.rhs]
        self.axes = self.axes[:self.unpacked] + out
        self.unpacked += lay.unpacked
        return True

    def _regroup(self, atoms: list[Atom], targets: list) -> list[list[Atom]] | None:
        """Cut `atoms` (row-major) into groups of the target sizes, splitting atoms as needed;
        a target of size 1 gets a new unit part."""
        queue, out = list(atoms), []
        for t in targets:
            group, acc = [], 1
            if t == 1:
                group.append(self._unit(queue, out))
            while acc != t:
                rest = _div(t, acc)
                if not queue or rest is None:
                    return None
                a = queue[0]
                if _div(rest, a.size) is not None:
                    group.append(queue.pop(0))
                    acc = dim_mul(acc, a.size)
                    continue
                inner = _div(a.size, rest)
                if inner is None:
                    return None
                outer_part, queue[0] = self._split(a, rest, inner)
                group.append(outer_part)
                acc = t
            out.append(group)
        while queue and queue[0].size == 1 and out:
            out[-1].append(queue.pop(0))
        return None if queue else out

    def _unit(self, queue: list[Atom], out: list[list[Atom]]) -> Atom:
        """A new part of size 1, split off a neighbour so that the input side shows it too."""
        if queue:
            unit, queue[0] = self._split(queue[0], 1, queue[0].size)
            return unit
        if out and out[-1]:
            out[-1][-1], unit = self._split(out[-1][-1], out[-1][-1].size, 1)
            return unit
        return Atom(self._fresh("u"), 1, placeholder=True)

    def _split(self, a: Atom, outer, inner) -> tuple[Atom, Atom]:
        """Split `a` into an outer and an inner part, named after it until a pattern names them."""
        self.used.discard(a.name)
        first, second = Atom(self._fresh(a.name), outer), Atom(self._fresh(a.name), inner)
        first.placeholder = second.placeholder = True
        a.parts = [first, second]
        return first, second

    def text(self) -> tuple[str, str, bool]:
        """(input side, output side, whether anything moved)."""
        lhs = [a.leaves() for a in self.source]
        rhs = [[x for a in ax for x in a.leaves()] for ax in self.axes]
        kept = {id(x) for ax in rhs[self.unpacked:] for x in ax}
        moved = _groups(rhs[self.unpacked:]) != _groups([[x for x in ax if id(x) in kept] for ax in lhs])
        return _side(lhs), _side(rhs), moved

    def given(self) -> list[str]:
        leaves = [x for a in self.source for x in a.leaves()]
        return [f"{x.name}={x.given}" for x in leaves if x.given is not None]


def _groups(axes) -> list[tuple[str, ...]]:
    return [tuple(x.name for x in ax if x.size != 1) for ax in axes if any(x.size != 1 for x in ax)]


def _side(axes: list[list[Atom]]) -> str:
    words = []
    for ax in axes:
        names = [x.name for x in ax]
        words.append("1" if not names else names[0] if len(names) == 1 else "(" + " ".join(names) + ")")
    return " ".join(words)


def _div(a, b):
    """a / b when it divides exactly (batch-aware), else None."""
    if isinstance(a, Batch):
        if isinstance(b, Batch):
            return a.k // b.k if a.k % b.k == 0 else None
        return Batch(a.k // b) if b and a.k % b == 0 else None
    if isinstance(b, Batch) or not b or a % b:
        return None
    return a // b


def _elementary(names: list[str], dim, sizes: dict) -> list | None:
    """Sizes of the names of one input group: given ones, and the one left to infer."""
    free = [n for n in names if n not in sizes]
    if len(free) > 1:
        return None
    known = 1
    for n in names:
        if n in sizes:
            known = dim_mul(known, sizes[n])
    rest = _div(dim, known) if free else None
    return [sizes.get(n, rest) for n in names]


def _source_names(shape, axis: int | None) -> list[str]:
    """Names for the axes of a run's input, from its layout: b c h w, b h w c, b n c, ..."""
    known = layout_name(shape, axis)
    if known:
        return list(known.lower())
    return ["b" if isinstance(d, Batch) else "c" if i == axis else f"x{i}" for i, d in enumerate(shape)]


def steps(graph: Graph, nodes: list[Node], axes: Axes, names: SpecNames) -> list[str]:
    """The layout steps among `nodes` (in order), as `'lhs -> rhs' (sizes)` texts; the
    outputs of one run that share an input side print together, `lhs -> rhs1 | rhs2`."""
    mine = {n.id for n in nodes if layout_of(n, graph) is not None}
    runs: dict[tuple, list[str]] = {}  # (root, input side and sizes) -> output sides
    for n in nodes:
        users = graph.users(n.id)
        if n.id not in mine or (users and all(u.id in mine for u in users)):
            continue  # not a layout op, or not where a run ends
        path = [n]
        while path[0].inputs[0] in mine:
            path.insert(0, graph.node(path[0].inputs[0]))
        if users and all(_transposed_operand(graph, n, u) for u in users):
            path.pop()  # `q @ transpose(k, -2, -1)`: part of the product, not a data move
        for key, rhs in _compose(graph, path, axes, names):
            outs = runs.setdefault((path[0].inputs[0], key), [])
            if rhs not in outs:
                outs.append(rhs)
    return list(dict.fromkeys(_join(key, outs) for (_, key), outs in runs.items()))


def _transposed_operand(graph: Graph, n: Node, user: Node) -> bool:
    """Whether `n` swaps its last two axes and is the right operand of a matmul."""
    if not OPS[user.op].has("matmul") or user.inputs[-1] != n.id:
        return False
    lay = layout_of(n, graph)
    if lay is None or lay.pattern is None or lay.unpacked:
        return False
    p = parse_pattern(lay.pattern)
    return list(p.rhs) == [*p.lhs[:-2], p.lhs[-1], p.lhs[-2]]


def _join(key: str, outputs: list[str]) -> str:
    lhs, _, sizes = key.partition("\0")
    return f"'{lhs} -> {' | '.join(outputs)}'" + (f" ({sizes})" if sizes else "")


def _compose(graph: Graph, path: list[Node], axes: Axes, names: SpecNames) -> list[tuple[str, str]]:
    """One (lhs key, rhs) per composable stretch of the path; stretches that move nothing drop out."""
    found, start = [], 0
    while start < len(path):
        src = graph.node(path[start].inputs[0])
        comp = Composer(src, axes.get(src.id))
        end = start
        while end < len(path) and _apply(comp, graph, path[end], names):
            end += 1
        if end == start:  # the op cannot be composed from here: skip it
            start += 1
            continue
        lhs, rhs, moved = comp.text()
        if moved:
            found.append((lhs + "\0" + ", ".join(comp.given()), rhs))
        start = end
    return found


def _apply(comp: Composer, graph: Graph, n: Node, names: SpecNames) -> bool:
    lay = layout_of(n, graph)
    if lay is None:
        return False
    src = graph.node(n.inputs[0])
    sizes = {k: resolved(graph, v) for k, v in lay.sizes}
    given = {k: names.value(v, n.span, k) for k, v in lay.sizes}
    return comp.apply(lay, src.shape, n.shape, sizes, given)
