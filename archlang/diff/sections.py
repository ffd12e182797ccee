"""Cut a compiled graph into the sections a diff compares, and pair the sections of A and B.

Sections come from the build summary rows (`cost.rows`): rows with role "stem" form the stem,
the i-th row with role "stage" is "stage i", rows with role "head" form the head (DeiT's `head`
and `head_dist` are one head), and every other top-level row is a section named after itself.
So stage 2 of A meets stage 2 of B whatever the two specs call their modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Node

LOOSE = "(top level)"  # the summary row of nodes outside every module


@dataclass
class Section:
    name: str
    paths: list[str]  # the summary rows (module paths) it covers, in order
    params: int = 0
    macs: int = 0
    nodes: list[Node] = field(default_factory=list)  # topological order

    def owns(self, path: str) -> bool:
        """Whether a module path lies inside this section."""
        return any(path == p or path.startswith(p + ".") for p in self.paths if p != LOOSE)

    @property
    def owners(self) -> list[Node]:
        """Nodes that own a state_dict prefix: module ops, weights and buffers."""
        return [n for n in self.nodes if is_owner(n)]


def is_owner(n: Node) -> bool:
    return n.module or n.op in ("weight", "buffer")


def section_name(roles: tuple[str, ...], row: str, stages: int) -> str:
    if "stem" in roles:
        return "stem"
    if "stage" in roles:
        return f"stage {stages}"
    if "head" in roles:
        return "head"
    return row


def sections(graph: Graph, cost) -> dict[str, Section]:
    """The sections of a graph, in the order their first row appears."""
    out: dict[str, Section] = {}
    row_section: dict[str, Section] = {}
    for row in cost.rows:
        name = section_name(row.roles, row.name, sum(s.name.startswith("stage ") for s in out.values()))
        sec = out.setdefault(name, Section(name, []))
        sec.paths.append(row.name)
        sec.params += row.params
        sec.macs += row.macs
        row_section[row.name] = sec
    for n in graph.nodes():
        sec = row_section.get(_row_of(n.scope, row_section))
        if sec is not None:
            sec.nodes.append(n)
    return out


def _row_of(scope: str, rows) -> str:
    """The summary row a scope is counted in (a stage row, else its top-level module)."""
    if not scope:
        return LOOSE
    parts = scope.split(".")
    two = ".".join(parts[:2])
    return two if two in rows else parts[0]


def pair_names(a: list[str], b: list[str]) -> list[str]:
    """Section names of A and B merged: A's order, each one only in B after its predecessor in B."""
    merged = list(a)
    for i, name in enumerate(b):
        if name in merged:
            continue
        after = next((merged.index(p) for p in reversed(b[:i]) if p in merged), -1)
        merged.insert(after + 1, name)
    return merged
