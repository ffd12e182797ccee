"""`diff(a, b)`: compare two compiled architectures section by section.

Sections are paired by role and scope (sections.py), their owner nodes aligned by topology
(align.py), described item by item (describe.py); the tensors of aligned nodes feed the
weight-transfer report (weights.py). Torch is not needed: everything comes from the IR.
"""

from __future__ import annotations

from ..axes import channel_axes
from ..compiler import Compiled, deploy_form
from ..ir import Graph
from ..ops import OPS
from ..shapes import Batch, numel
from ..spec_names import SpecNames
from .align import Alignment, align, graph_text, node_status, signature
from .describe import NONE, Model, describe
from .prose import summary
from .records import Change, Diff, SectionDiff, Total
from .sections import Section, pair_names, sections
from .side import Side
from .weights import aligned_names, tensors, transfer

BYTES_PER_ELEMENT = 4  # fp32


def diff(a: Compiled, b: Compiled, forms: tuple[Compiled, Compiled] | None = None) -> Diff:
    """Compare A and B. `forms` (A's and B's other form: deploy when A and B are train forms,
    train when they are fused) lets the prose say what fusion does; a fused A knows its own."""
    sa, sb = sections(a.graph, a.cost), sections(b.graph, b.cost)
    ma, mb = model(a), model(b)
    parts, status, pairs = [], {}, []
    for name in pair_names(list(sa), list(sb)):
        x, y = sa.get(name), sb.get(name)
        al = align(a.graph, x.owners if x else [], b.graph, y.owners if y else [])
        parts.append(compare_section(name, ma, x, mb, y, al))
        status.update(node_status(al))
        pairs += al.pairs
    totals = [Total("params", a.cost.params, b.cost.params), Total("macs", a.cost.macs, b.cost.macs),
              Total("activation_bytes", activation_bytes(a.graph), activation_bytes(b.graph))]
    weights = transfer(tensors(a.graph), tensors(b.graph), aligned_names(pairs))
    identical = graph_text(a.graph) == graph_text(b.graph)
    paras = [] if identical else summary(side(a, forms[0] if forms else None), side(b, forms[1] if forms else None),
                                         a.fused)
    return Diff(a.name, b.name, a.input_size, identical, parts, totals, weights, status, paras,
                b.input_size if b.input_size != a.input_size else None)


def side(c: Compiled, other: Compiled | None) -> Side:
    """One model with both its forms (the other form compiled here when not given)."""
    if c.fused:
        return Side(c.name, c, c.unfused, c)
    return Side(c.name, c, c, other if other is not None else deploy_form(c))


def model(c: Compiled) -> Model:
    return Model(c.graph, channel_axes(c.graph), SpecNames(c.program, c.graph))


def compare_section(name: str, ma: Model, x: Section | None, mb: Model, y: Section | None,
                    al: Alignment) -> SectionDiff:
    out = SectionDiff(name, "changed", x.paths if x else [], y.paths if y else [],
                      (x.params if x else 0, y.params if y else 0), (x.macs if x else 0, y.macs if y else 0),
                      nodes=al.counts())
    if x is None or y is None:  # what the section is, on the side that has it
        out.status = "added" if x is None else "removed"
        items = describe(ma, x) if x else describe(mb, y)
        out.changes = [Change(k, items[k], NONE) if x else Change(k, NONE, items[k])
                       for k in ("depth", "width", "output") if items[k] != NONE]
        return out
    da, db = describe(ma, x), describe(mb, y)
    out.changes = [Change(k, da.get(k, NONE), db.get(k, NONE)) for k in dict.fromkeys([*da, *db])
                   if da.get(k, NONE) != db.get(k, NONE)]
    out.changes += _renames(al)
    if not out.changes and signature(x.nodes, x.paths) == signature(y.nodes, y.paths):
        out.status = "unchanged"
    return out


def _renames(al: Alignment) -> list[Change]:
    """Label changes between the paths of aligned nodes, each once, in order: component by
    component when the paths are as deep (`mlp -> ffn`), else the part that differs."""
    found: dict[tuple[str, str], None] = {}
    for a, b in al.pairs:
        pa, pb = a.path.split("."), b.path.split(".")
        if len(pa) == len(pb):
            # block indices shift when depths differ (blocks.3 <-> blocks.4): alignment, not renaming
            found.update(((x, y), None) for x, y in zip(pa, pb) if x != y and not (x.isdigit() and y.isdigit()))
            continue
        pa, pb = _middle(pa, pb)
        if not pa or not pb:  # a level added or removed: say where, with the whole paths
            pa, pb = [a.path], [b.path]
        found[(".".join(pa), ".".join(pb))] = None
    if not found:
        return []
    return [Change("labels", [p for p, _ in found], [q for _, q in found])]


def _middle(pa: list[str], pb: list[str]) -> tuple[list[str], list[str]]:
    while pa and pb and (pa[0] == pb[0] or (pa[0].isdigit() and pb[0].isdigit())):
        pa, pb = pa[1:], pb[1:]
    while pa and pb and pa[-1] == pb[-1]:
        pa, pb = pa[:-1], pb[:-1]
    return pa, pb


def activation_bytes(graph: Graph) -> int:
    """See records.ACTIVATION_MEMORY: outputs that carry the batch axis, fp32, one sample."""
    total = 0
    for n in graph.nodes():
        op = OPS[n.op]
        if op.has("source") or op.has("dropout") or op.has("identity") or not n.shape:
            continue  # dropout and drop-path are identities in eval: no tensor of their own
        if any(isinstance(d, Batch) for d in n.shape):
            total += numel(n.shape)
    return total * BYTES_PER_ELEMENT
