"""The parts of a model as a reader names them: stem, stages, head and other top-level modules.

These are the rows of the build summary and the sections `archlang diff` pairs. Roles written
in the spec (`@stem`, `@stage`, `@head`) decide where they exist; the structure decides where
they do not:
- every top-level module is one row, with its roles;
- a top-level container whose items are `@stage`s opens into one row per item;
- a top-level container of blocks without `@stage` is cut where the blocks' output shape
  changes (width, resolution or token count): each run of same-shaped blocks is a stage,
  *found* rather than declared. Hiera's one flat list of blocks becomes its four stages, a
  ViT's blocks one stage;
- nodes outside every module form the row "(top level)" when they own parameters, cost MACs
  or move data (layout ops: a diff compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph, Node
from .ops import OPS
from .shapes import fmt

LOOSE = "(top level)"


@dataclass
class Row:
    name: str  # a module path, or a run of container items ("blocks.2-3")
    roles: tuple[str, ...]
    shape: str  # output shape
    params: int = 0
    macs: int = 0
    paths: tuple[str, ...] = ()  # the module paths it covers
    found: bool = False  # its "stage" role comes from the structure, not from the spec
    blocks: int | None = None  # blocks in it (stages); None where there is no container
    output: int | None = None  # id of its last node


def is_owner(n: Node) -> bool:
    """Whether a node owns a state_dict prefix: a module op, a weight or a buffer."""
    return n.module or OPS[n.op].has("state")


def summary_rows(graph: Graph, report) -> list[Row]:
    """The rows of a shaped, costed graph (`report` gives per-node params and MACs)."""
    first, last = _extents(graph)
    rows: list[Row] = []
    tops = sorted((p for p in graph.modules if p and "." not in p and p in first and not _train_only(graph, p)),
                  key=first.get)
    for top in tops:
        rows += _rows_of(graph, top, first, last)
    loose = Row(LOOSE, (), "")
    owner = {p: r for r in rows for p in r.paths}
    moves = False  # whether layout ops lie outside every module
    for n in graph.nodes():
        row = _owner(n.scope, owner) or loose
        row.params += report.node_params[n.id]
        row.macs += report.node_macs[n.id]
        moves |= row is loose and OPS[n.op].layout is not None
    if loose.params or loose.macs or moves:
        rows.append(loose)
    for r in rows:
        if r.output is not None:
            r.shape = fmt(graph.node(r.output).shape)
    return rows


def _train_only(graph: Graph, path: str) -> bool:
    """A module that only acts in training (DeiT's `pos_drop`: dropout, an identity in eval): no
    part a reader compares, so no row."""
    ops = [OPS[n.op] for n in graph.nodes() if n.scope == path or n.scope.startswith(path + ".")]
    return bool(ops) and all(op.has("dropout") for op in ops)


def _extents(graph: Graph) -> tuple[dict[str, int], dict[str, int]]:
    """Module path -> position of its first node, and id of its last node, in topological order."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for pos, n in enumerate(graph.nodes()):
        parts = n.scope.split(".") if n.scope else []
        for i in range(1, len(parts) + 1):
            path = ".".join(parts[:i])
            first.setdefault(path, pos)
            last[path] = n.id
    return first, last


def _owner(scope: str, owner: dict[str, Row]) -> Row | None:
    parts = scope.split(".") if scope else []
    for i in range(len(parts), 0, -1):
        row = owner.get(".".join(parts[:i]))
        if row is not None:
            return row
    return None


def children(graph: Graph, path: str, first: dict[str, int]) -> list[str]:
    """Direct submodules of `path` that hold nodes, in dataflow order."""
    kids = [p for p in graph.modules if p.rpartition(".")[0] == path and p != path and p in first]
    return sorted(kids, key=first.get)


def items_of(graph: Graph, path: str, first) -> list[str]:
    """The items of a container: a loop's ModuleList, or a group that is a plain sequence of
    numbered modules (an nn.Sequential, e.g. blocks.0, blocks.1, ... written as nested loops)."""
    info = graph.modules[path]
    kids = children(graph, path, first) if info.kind in ("container", "group") else []
    numbered = bool(kids) and all(k.rpartition(".")[2].isdigit() and graph.modules[k].kind in ("block", "group")
                                  for k in kids)
    return kids if info.kind == "container" or numbered else []


def _rows_of(graph: Graph, top: str, first, last) -> list[Row]:
    info = graph.modules[top]
    items = items_of(graph, top, first)
    if items and any("stage" in graph.roles_of(i) for i in items):
        return [_row(graph, i, (i,), _with_stage(graph, i), first, last) for i in items]
    if items and all(graph.modules[i].kind in ("block", "group") for i in items):
        return _found_stages(graph, top, items, first, last)
    return [_row(graph, top, (top,), info.roles, first, last)]


def _with_stage(graph: Graph, path: str) -> tuple[str, ...]:
    own = graph.modules[path].roles
    return own if "stage" in own else (*own, "stage")


def _row(graph: Graph, name: str, paths: tuple[str, ...], roles, first, last) -> Row:
    return Row(name, tuple(roles), "", paths=paths, blocks=block_count(graph, paths, first),
               output=max(last[p] for p in paths))


def _found_stages(graph: Graph, top: str, items: list[str], first, last) -> list[Row]:
    """Runs of consecutive items with the same output shape, one stage each."""
    runs: list[list[str]] = []
    for item in items:
        shape = graph.node(last[item]).shape
        if runs and graph.node(last[runs[-1][-1]]).shape == shape:
            runs[-1].append(item)
        else:
            runs.append([item])
    rows = []
    roles = tuple(r for r in graph.modules[top].roles if r != "stage")
    for run in runs:
        name = top if len(runs) == 1 else run[0] if len(run) == 1 else f"{run[0]}-{run[-1].rsplit('.', 1)[-1]}"
        row = _row(graph, name, tuple(run), (*roles, "stage"), first, last)
        row.found, row.blocks = True, len(run)
        rows.append(row)
    return rows


def block_count(graph: Graph, paths: tuple[str, ...], first) -> int | None:
    """Blocks in the modules `paths`: the items of the outermost containers inside them (a
    downsample's containers aside); None when there is no container."""
    def inside(p):
        return any(p == q or p.startswith(q + ".") for q in paths)

    containers = [p for p in graph.modules
                  if inside(p) and "downsample" not in graph.roles_of(p) and items_of(graph, p, first)]
    outer = [p for p in containers if not any(p.startswith(q + ".") for q in containers)]
    if not outer:
        return None
    return sum(len(items_of(graph, c, first)) for c in outer)
