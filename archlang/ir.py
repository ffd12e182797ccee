"""The IR: a dataflow graph of primitive ops, stored in networkx behind a thin wrapper.

Each `Node` is a frozen record: op, inputs, bound arguments, the module scope that owns it,
its inferred shape and the spec span it came from. `Graph.modules` records the module tree
(stem, stages, blocks, ...) with each module's kind, definition name, roles and span, so
passes, viz and diff can speak of blocks and roles. `Graph.dump()` is the canonical text form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx

from .errors import Span
from .ops import OPS
from .shapes import fmt


@dataclass(frozen=True)
class Node:
    id: int
    op: str
    inputs: tuple[int, ...]
    attrs: tuple[tuple[str, object], ...]
    scope: str  # module path owning the node; a module op's own path
    name: str  # a module op's label or a weight's name; "" for plain functions
    module: bool  # True when the node is a module of its own (scope is its path)
    span: Span
    shape: tuple | None = None
    dtype: str | None = None  # "float" | "long" | "bool", set with the shape
    init: bool = False  # computed once in the module's __init__ (a build-time tensor), not in forward

    def attr(self, key: str, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def attr_dict(self) -> dict[str, object]:
        return dict(self.attrs)

    @property
    def path(self) -> str:
        """Prefix of the tensors this node owns: `scope` for modules, `scope.name` for weights."""
        if self.module or not self.name:
            return self.scope
        return f"{self.scope}.{self.name}" if self.scope else self.name


@dataclass(frozen=True)
class ModuleInfo:
    path: str
    kind: str  # "model" | "block" | "group" | "container" | "op"
    name: str  # block definition, op name, or label for groups and containers
    roles: tuple[str, ...]
    span: Span


@dataclass
class Graph:
    family: str
    variant: str | None
    settings: dict[str, object]
    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    modules: dict[str, ModuleInfo] = field(default_factory=dict)
    output: int | None = None
    next_id: int = 0
    # block name -> [(module path, bound parameters)] of every instance (fusion checks these)
    instances: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    # deploy form only: fused module path -> (weight recipe, scope its paths are relative to)
    fusions: dict[str, tuple] = field(default_factory=dict)
    shaped: bool = False  # every node carries its shape (set by check-shapes)

    # -- construction
    def add(self, op: str, inputs, attrs: dict, scope: str, name: str, module: bool, span: Span,
            init: bool = False) -> Node:
        node = Node(self.next_id, op, tuple(inputs), tuple(attrs.items()), scope, name, module, span, init=init)
        self.next_id += 1
        self.g.add_node(node.id, node=node)
        for pos, src in enumerate(node.inputs):
            self.g.add_edge(src, node.id, pos=pos)
        return node

    def replace(self, node: Node) -> None:
        self.g.nodes[node.id]["node"] = node

    def with_shapes(self, shapes: dict[int, tuple], dtypes: dict[int, str] | None = None) -> Graph:
        out = dataclasses.replace(self, g=self.g.copy(), shaped=True)
        for nid, shape in shapes.items():
            dtype = (dtypes or {}).get(nid)
            out.g.nodes[nid]["node"] = dataclasses.replace(self.node(nid), shape=shape, dtype=dtype)
        return out

    # -- queries
    def node(self, nid: int) -> Node:
        return self.g.nodes[nid]["node"]

    def nodes(self) -> Iterator[Node]:
        """Nodes in a deterministic topological order (creation order breaks ties)."""
        for nid in nx.lexicographical_topological_sort(self.g):
            yield self.node(nid)

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    @property
    def input(self) -> Node:
        return next(n for n in self.nodes() if _op(n).has("model_input"))

    def users(self, nid: int) -> list[Node]:
        return [self.node(u) for u in sorted(self.g.successors(nid))]

    def roles_of(self, scope: str) -> tuple[str, ...]:
        """Roles of `scope` and of every module above it, outermost first."""
        roles: list[str] = []
        parts = scope.split(".") if scope else []
        for i in range(len(parts) + 1):
            info = self.modules.get(".".join(parts[:i]))
            if info:
                roles.extend(r for r in info.roles if r not in roles)
        return tuple(roles)

    # -- invariants
    def lint(self, shaped: bool | None = None) -> list[str]:
        """Problems with the graph's invariants (an empty list when it is well formed); shapes
        are required when `shaped` says so, by default once check-shapes has run."""
        shaped = self.shaped if shaped is None else shaped
        problems = []
        if not nx.is_directed_acyclic_graph(self.g):
            problems.append("graph has a cycle")
        if self.output is None or self.output not in self.g:
            problems.append("output is not a node")
        owners: dict[str, int] = {}
        for n in self.nodes():
            for i in n.inputs:
                if i not in self.g or i >= n.id:
                    problems.append(f"%{n.id} reads %{i}, which is not an earlier node")
                elif self.node(i).init and not n.init and not _op(n).has("state"):
                    problems.append(f"%{n.id} runs in forward but reads %{i}, computed in __init__")
                elif n.init and not self.node(i).init:
                    problems.append(f"%{n.id} is computed in __init__ but reads %{i}, computed in forward")
            if n.module and self.modules.get(n.path, None) is None:
                problems.append(f"%{n.id} is module {n.path!r} but the module table lacks it")
            if n.module or _op(n).has("state"):
                if n.path in owners:
                    problems.append(f"%{n.id} and %{owners[n.path]} both own {n.path!r}")
                owners[n.path] = n.id
            if shaped and n.shape is None:
                problems.append(f"%{n.id} has no shape")
        for path in self.modules:
            parent = path.rpartition(".")[0]
            if path and parent not in self.modules:
                problems.append(f"module {path!r} has no parent module {parent!r}")
        return problems

    # -- text form
    def dump(self, where=lambda span: f"{span.file}:{span.line}") -> str:
        """One node per line; `where(span)` formats the source location."""
        head = f"graph {self.family}" + (f"[{self.variant}]" if self.variant else "")
        lines = [head]
        for n in self.nodes():
            lines.append(format_node(n, where))
        lines.append(f"return %{self.output}")
        return "\n".join(lines) + "\n"


def format_attr(v) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_node(n: Node, where) -> str:
    ins = ", ".join(f"%{i}" for i in n.inputs)
    attrs = ", ".join(f"{k}={format_attr(v)}" for k, v in n.attrs)
    scope = n.path or "<top>"
    text = f"%{n.id} = {n.op}({ins})"
    if attrs:
        text += " {" + attrs + "}"
    text += f" : {fmt(n.shape)}" + (f" {n.dtype}" if n.dtype not in (None, "float") else "") + f"  @{scope}"
    text += "  [init]" if n.init else ""
    return f"{text}  # {where(n.span)}"


def _op(n: Node):
    return OPS[n.op]
