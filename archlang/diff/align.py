"""Node-level alignment inside one pair of sections, and the whole-graph identity test.

The owner nodes of a section (module ops, weights, buffers) are aligned in topological order
with difflib's SequenceMatcher. A node's token is its op and the mixer roles above it, not its
widths; its path joins the token only when both sides have that path, as an anchor (so B's new
`dist_token` does not take the place of `pos_embed`). Two specs that differ only in labels share
no paths and align by structure alone; a stage that is deeper in B aligns its first blocks with
A's blocks of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

from ..ir import Graph, Node, format_node

# Roles that say what a module is for inside a section (stem, stage and head pick the section).
INNER_ROLES = ("downsample", "token_mixer", "channel_mixer")


@dataclass
class Alignment:
    pairs: list[tuple[Node, Node]] = field(default_factory=list)  # (A node, B node), equal tokens
    removed: list[Node] = field(default_factory=list)  # only in A
    added: list[Node] = field(default_factory=list)  # only in B

    def counts(self) -> dict[str, int]:
        changed = sum(not same_node(a, b) for a, b in self.pairs)
        return {"unchanged": len(self.pairs) - changed, "changed": changed,
                "added": len(self.added), "removed": len(self.removed)}


def token(graph: Graph, n: Node, shared: set[str]) -> tuple:
    return n.op, tuple(r for r in graph.roles_of(n.scope) if r in INNER_ROLES), n.path if n.path in shared else None


def align(ga: Graph, a: list[Node], gb: Graph, b: list[Node]) -> Alignment:
    shared = {n.path for n in a} & {n.path for n in b}
    ta, tb = [token(ga, n, shared) for n in a], [token(gb, n, shared) for n in b]
    # autojunk off: repeated blocks make every token "popular", which would junk them all
    matcher = SequenceMatcher(None, ta, tb, autojunk=False)
    out = Alignment()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.pairs += zip(a[i1:i2], b[j1:j2])
        else:
            out.removed += a[i1:i2]
            out.added += b[j1:j2]
    return out


def same_node(a: Node, b: Node) -> bool:
    """Same op, arguments and output shape (names may differ)."""
    return a.op == b.op and a.attrs == b.attrs and a.shape == b.shape


def node_status(al: Alignment) -> dict[str, str]:
    """B's owner paths -> added / changed / unchanged. A renamed but otherwise equal node is
    unchanged: its weights load after renaming."""
    status = {n.path: "added" for n in al.added}
    for a, b in al.pairs:
        status[b.path] = "unchanged" if same_node(a, b) else "changed"
    return status


def signature(nodes: list[Node], roots: list[str]) -> list[tuple]:
    """A section's nodes without ids and source spans: scopes relative to the section's rows,
    inputs as positions in the section (-1 for values from outside)."""
    index = {n.id: i for i, n in enumerate(nodes)}
    return [(n.op, n.attrs, n.shape, _relative(n.scope, roots), n.name, n.module,
             tuple(index.get(i, -1) for i in n.inputs)) for n in nodes]


def _relative(scope: str, roots: list[str]) -> tuple[int, str]:
    for k, root in enumerate(roots):
        if scope == root or scope.startswith(root + "."):
            return k, scope[len(root):]
    return -1, scope


def graph_text(graph: Graph) -> list[str]:
    """The IR dump without source locations: equal for two graphs with no structural difference."""
    lines = [format_node(n, lambda span: "").rsplit("  # ", 1)[0] for n in graph.nodes()]
    return lines + [f"return %{graph.output}"]
