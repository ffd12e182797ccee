"""What a drawing shows: the IR cut at a depth into clusters (opened modules) and units (nodes).

Modules down to `depth` levels open as clusters; containers (stages, blocks) do not count as a
level. A container whose items are all the same block with the same structure folds into one
unit "block xN" unless it is expanded; in other containers, each run of such items folds. Every
IR node belongs to exactly one unit; an edge is drawn wherever dataflow crosses from one unit to
another, labelled with the tensor's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..axes import layout_of
from ..ir import Graph
from ..ops import OPS
from ..shapes import fmt
from ..structure import is_owner
from ..values import Sym

# Colour classes, in legend order: (class, fill colour, legend text).
CATEGORIES = (
    ("stem", "#9fd8cb", "stem"),
    ("token_mixer", "#f9c288", "token mixer"),
    ("channel_mixer", "#9cc3e6", "channel mixer"),
    ("attention", "#ffe08a", "attention"),
    ("conv", "#b6d7a8", "conv"),
    ("linear", "#c9c1e6", "linear"),
    ("norm", "#dddddd", "norm"),
    ("act", "#f4f4f4", "activation"),
    ("reshape", "#e3b5d1", "reshape / partition"),
    ("downsample", "#a7c9cf", "downsample"),
    ("head", "#ee9a9a", "head"),
    ("merge", "#ffffff", "add / branch merge"),
    ("tensor", "#fff2cc", "weight / input"),
    ("block", "#eef3f8", "block"),
)
COLORS = {c: fill for c, fill, _ in CATEGORIES}
_ROLE_CATEGORY = ("token_mixer", "channel_mixer", "stem", "downsample", "head")
# An op's colour: the category of the first of these traits it has (see ops.TRAITS); pairs,
# not a dict, because the order is the precedence.
_TRAIT_CATEGORY = (
    ("attention", "attention"), ("matmul", "attention"), ("distribution", "attention"),
    ("conv", "conv"), ("linear", "linear"), ("norm", "norm"),
    ("branch", "merge"), ("elementwise", "merge"), ("source", "tensor"),
    ("activation", "act"), ("dropout", "act"), ("pool", "act"),
)


@dataclass
class Unit:
    """One drawn node: an op, a collapsed module, or a fold of N identical blocks."""

    id: str
    path: str
    kind: str  # "op" | "module" | "fold"
    title: str
    subtitle: str
    roles: tuple[str, ...]
    category: str
    span: object
    count: int = 1
    params: int = 0
    macs: int = 0
    shape: str = ""
    attrs: dict = field(default_factory=dict)
    nodes: list[int] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)  # paths of the tensors (weights) it owns


@dataclass
class Cluster:
    path: str
    title: str
    roles: tuple[str, ...]
    items: list = field(default_factory=list)  # Units and Clusters, in dataflow order


@dataclass
class View:
    title: str
    root: Cluster
    units: dict[str, Unit]
    edges: list[tuple[str, str, str]]  # (from unit, to unit, shape label)


def category(graph: Graph, path: str, op: str | None) -> str:
    roles = graph.roles_of(path) if path else ()
    own = graph.modules.get(path)
    for role in reversed(roles if own is None else own.roles or roles):
        if role in _ROLE_CATEGORY:
            return role
    if op is None:
        return "block"
    return next((cat for trait, cat in _TRAIT_CATEGORY if OPS[op].has(trait)), "reshape")


class _Builder:
    def __init__(self, compiled, depth: int, expand: tuple[str, ...]):
        self.c, self.g = compiled, compiled.graph
        self.depth, self.expand = depth, set(expand)
        self.children: dict[str, list[str]] = {}
        for path in self.g.modules:
            if path:
                self.children.setdefault(path.rpartition(".")[0], []).append(path)
        self.members: dict[str, list[int]] = {}  # module path -> IR nodes inside it
        for n in self.g.nodes():
            parts = n.scope.split(".") if n.scope else []
            for i in range(len(parts) + 1):
                self.members.setdefault(".".join(parts[:i]), []).append(n.id)
        self.units: dict[str, Unit] = {}
        self.owner: dict[int, str] = {}

    def build(self) -> View:
        root = Cluster("", self.c.name, ())
        self.fill(root, "", level=0)
        edges = self.edges()
        return View(self.c.name, root, self.units, edges)

    # -- tree
    def fill(self, cluster: Cluster, path: str, level: int) -> None:
        """Put the direct content of module `path` into `cluster`, in dataflow order."""
        entries: list[tuple[int, object]] = []
        for child in self.children.get(path, []):
            first = min(self.members.get(child, [10 ** 9]))
            entries.append((first, child))
        for nid in self.members.get(path, []):
            n = self.g.node(nid)
            if n.scope == path and not n.module:
                entries.append((nid, nid))
        ordered = [e for _, e in sorted(entries, key=lambda e: e[0])]
        for run in self.runs(path, ordered):
            if len(run) > 1:
                cluster.items.append(self.fold_run(run))
                continue
            entry = run[0]
            item = self.place(entry, level) if isinstance(entry, str) else self.op_unit(self.g.node(entry))
            if item is not None:
                cluster.items.append(item)

    def runs(self, path: str, entries: list) -> list[list]:
        """A container's items cut into runs of one block with one structure (MaxViT's stage: a
        stride-2 first block, then N identical ones); other content comes one entry per run."""
        info = self.g.modules.get(path)
        if info is None or path in self.expand or not (info.kind == "container" or self.numbered(path)):
            return [[e] for e in entries]
        out: list[list] = []
        for e in entries:
            last = out[-1][-1] if out else None
            if isinstance(e, str) and isinstance(last, str) and self.same_item(last, e):
                out[-1].append(e)
            else:
                out.append([e])
        return out

    def numbered(self, path: str) -> bool:
        """A group whose modules are numbered as nn.Sequential numbers them (Hiera's blocks, one
        loop per stage inside one list): it folds like a container."""
        kids = self.children.get(path, [])
        return self.g.modules[path].kind == "group" and bool(kids) and \
            all(k.rsplit(".", 1)[-1].isdigit() for k in kids)

    def same_item(self, a: str, b: str) -> bool:
        if a in self.expand or b in self.expand:
            return False
        ia, ib = self.g.modules[a], self.g.modules[b]
        return (ia.kind, ia.name) == (ib.kind, ib.name) and ia.kind in ("block", "group") \
            and self.signature(a) == self.signature(b)

    def fold_run(self, run: list[str]) -> Unit:
        """Items i..j of a container drawn as one unit "block xN" (`--expand` the container to open it)."""
        info = self.g.modules[run[0]]
        first, last = run[0].rsplit(".", 1)[-1], run[-1].rsplit(".", 1)[-1]
        nodes = [i for p in run for i in self.members.get(p, [])]
        unit = self.new_unit(run[0], "fold", f"{first}-{last}", info.name, None, nodes, info.span, len(run))
        env = next((e for p, e in self.g.instances.get(info.name, []) if p == run[0]), None)
        if env:
            unit.attrs = dict(env)
        return unit

    def place(self, path: str, level: int):
        info = self.g.modules[path]
        if info.kind == "op":
            return self.op_unit(self.g.node(self.members[path][0]))
        if info.kind == "container":
            fold = self.fold(path)
            if fold is not None:
                return fold
            cluster = Cluster(path, f"{path.rsplit('.', 1)[-1]}", info.roles)
            self.fill(cluster, path, level)  # containers do not use up a level
            return cluster
        if level < self.depth or path in self.expand:
            title = f"{path.rsplit('.', 1)[-1]}: {info.name}" if info.kind == "block" else path.rsplit(".", 1)[-1]
            cluster = Cluster(path, title, info.roles)
            self.fill(cluster, path, level + 1)
            return cluster
        return self.module_unit(path)

    def fold(self, path: str) -> Unit | None:
        """N items of one block with one structure, drawn as one unit, unless expanded."""
        items = self.children.get(path, [])
        if path in self.expand or len(items) < 2 or any(i in self.expand for i in items):
            return None
        infos = [self.g.modules[i] for i in items]
        if len({(i.kind, i.name) for i in infos}) != 1 or infos[0].kind not in ("block", "group"):
            return None
        shapes = {self.signature(i) for i in items}
        if len(shapes) != 1:
            return None
        unit = self.module_unit(path, count=len(items), name=infos[0].name)
        unit.kind = "fold"
        return unit

    def signature(self, path: str) -> tuple:
        """Structure of a module: its ops and their arguments, in order (paths left out; a run-time
        size `shape(t)[i]` names t by its position in the module, so equal blocks compare equal)."""
        ids = self.members.get(path, [])
        where = {nid: k for k, nid in enumerate(ids)}
        return tuple((self.g.node(i).op, _relative(self.g.node(i).attrs, where), self.g.node(i).shape) for i in ids)

    # -- units
    def new_unit(self, path: str, kind: str, title: str, subtitle: str, op: str | None, nodes: list[int],
                 span, count: int = 1) -> Unit:
        uid = f"u{len(self.units)}"
        roles = self.g.roles_of(path) if path else ()
        unit = Unit(uid, path, kind, title, subtitle, roles, category(self.g, path, op), span, count)
        unit.nodes = nodes
        unit.owners = [self.g.node(i).path for i in nodes if is_owner(self.g.node(i))]
        cost = self.c.cost
        unit.params = sum(cost.node_params[i] for i in nodes)
        unit.macs = sum(cost.node_macs[i] for i in nodes)
        unit.shape = fmt(self.g.node(max(nodes)).shape)
        for i in nodes:
            self.owner[i] = uid
        self.units[uid] = unit
        return unit

    def op_unit(self, n) -> Unit:
        title = n.name or n.op
        subtitle = _pattern(self.g, n) or (n.op if n.name else "")
        unit = self.new_unit(n.path, "op", title, subtitle, n.op, [n.id], n.span)
        unit.attrs = {k: v for k, v in n.attrs}
        return unit

    def module_unit(self, path: str, count: int = 1, name: str | None = None) -> Unit:
        info = self.g.modules[path]
        label = path.rsplit(".", 1)[-1] if path else self.c.name
        subtitle = name or info.name
        unit = self.new_unit(path, "module", label, subtitle, None, list(self.members.get(path, [])),
                             info.span, count)
        env = next((e for p, e in self.g.instances.get(info.name, []) if p == path), None)
        if env:
            unit.attrs = dict(env)
        return unit

    # -- edges
    def edges(self) -> list[tuple[str, str, str]]:
        out, seen = [], set()
        for u, v in sorted(self.g.g.edges):
            a, b = self.owner[u], self.owner[v]
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                out.append((a, b, fmt(self.g.node(u).shape)))
        return out


def _pattern(graph: Graph, n) -> str:
    """The spec's own pattern of a layout op that has one (a rearrange): what tells a window
    partition from a grid partition at a glance."""
    lay = layout_of(n, graph)
    return lay.pattern if lay is not None and lay.named and lay.pattern else ""


def _relative(value, where: dict[int, int]):
    """`value` with the IR nodes that its run-time sizes read renamed to positions in `where`."""
    if isinstance(value, Sym):
        if value.kind == "dim":
            return Sym("dim", ("local", where[value.a]) if value.a in where else value.a, value.b)
        return Sym(value.kind, _relative(value.a, where), _relative(value.b, where))
    if isinstance(value, tuple):
        return tuple(_relative(v, where) for v in value)
    return value


def build_view(compiled, depth: int = 2, expand: tuple[str, ...] = ()) -> View:
    return _Builder(compiled, depth, tuple(expand)).build()
