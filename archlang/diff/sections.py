"""Cut a compiled graph into the sections a diff compares, and pair the sections of A and B.

Sections come from the build summary rows (`cost.rows`, see archlang/structure.py): rows with
role "stem" form the stem, the i-th stage row is "stage i" (whether the spec says `@stage` or
the stage was found from the structure), rows with role "head" form the head (DeiT's `head`
and `head_dist` are one head), and every other top-level row is a section named after itself.
So stage 2 of A meets stage 2 of B whatever the two specs call their modules, and a spec with
one flat list of blocks (Hiera) still compares stage by stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Node
from ..structure import LOOSE, is_owner


@dataclass
class Section:
    name: str
    paths: list[str]  # the summary rows it covers, in order (module paths, or runs "blocks.2-3")
    params: int = 0
    macs: int = 0
    nodes: list[Node] = field(default_factory=list)  # topological order
    modules: list[str] = field(default_factory=list)  # module paths its rows cover
    blocks: int | None = None  # blocks in its stage rows; None when it has none

    def owns(self, path: str) -> bool:
        """Whether a module path lies inside this section."""
        return any(path == p or path.startswith(p + ".") for p in self.modules)

    @property
    def owners(self) -> list[Node]:
        """Nodes that own a state_dict prefix: module ops, weights and buffers."""
        return [n for n in self.nodes if is_owner(n)]

    @property
    def output(self) -> Node | None:
        """The section's last node; none for the loose top-level nodes, which end anywhere."""
        return self.nodes[-1] if self.nodes and self.name != LOOSE else None


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
    owner: dict[str, Section] = {}
    for row in cost.rows:
        name = section_name(row.roles, row.name, sum(s.name.startswith("stage ") for s in out.values()))
        sec = out.setdefault(name, Section(name, []))
        sec.paths.append(row.name)
        sec.modules += row.paths
        sec.params += row.params
        sec.macs += row.macs
        if row.blocks is not None:
            sec.blocks = (sec.blocks or 0) + row.blocks
        for p in row.paths or (LOOSE,):
            owner[p] = sec
    for n in graph.nodes():
        sec = _section_of(n.scope, owner)
        if sec is not None:
            sec.nodes.append(n)
    return out


def _section_of(scope: str, owner: dict[str, Section]) -> Section | None:
    """The section whose rows cover a scope (the innermost row path above it)."""
    parts = scope.split(".") if scope else []
    for i in range(len(parts), 0, -1):
        sec = owner.get(".".join(parts[:i]))
        if sec is not None:
            return sec
    return owner.get(LOOSE) if not scope else None


def pair_names(a: list[str], b: list[str]) -> list[str]:
    """Section names of A and B merged: A's order, each one only in B just before the section
    that follows it in B (so B's extra `fc_norm` lands before the head, after all of A's stages)."""
    merged = list(a)
    for i, name in reversed(list(enumerate(b))):
        if name in merged:
            continue
        before = next((merged.index(p) for p in b[i + 1:] if p in merged), len(merged))
        merged.insert(before, name)
    return merged
