"""The diff as prose: a paragraph per part of the two models, as a related-work section reads.

For A and B, in the form compared (train, or deploy with `--fuse`), it says what each has overall
(parts, params, GMACs, input size), then section by section (stem, each stage, extra top-level
modules, head): depth, width and resolution; how the stage downsamples; how it mixes tokens and
channels, each named by its block and said as what it computes once fused, with the formula the
train form computes where fusion folded it (archlang/diff/phrases.py); gates (squeeze-and-
excitation) and where they sit; norms and activations where they differ; params and GMACs; and
what fusion removes. Every word comes from the IR, the op traits and the spec's own names.
"""

from __future__ import annotations

import re
import textwrap

from ..ops import OPS
from ..shapes import Batch, size
from . import attention
from .overview import fusion_totals, overview
from .phrases import computes, fused_layers, gates, inside, plain, trained_as
from .sections import LOOSE, Section, pair_names
from .side import Side
from .wording import count_of, counted, fold, giga, listed, millions, pair

ROLES = (("downsample", "Downsampling"), ("token_mixer", "Token mixing"), ("channel_mixer", "Channel mixing"))
WRAP = 96
STRIDE = re.compile(r" stride-\d+")


def summary(a: Side, b: Side, fused: bool) -> list[str]:
    """The paragraphs, each wrapped to WRAP columns."""
    names = pair_names(list(a.secs), list(b.secs))
    paras = [overview(a, b, fused)]
    stages = [n for n in names if n.startswith("stage ") and n in a.secs and n in b.secs]
    done = False
    for name in names:
        if name in stages and not done:
            paras.append(_stages(a, b, stages))
            done = True
        if name != LOOSE:
            paras.append(_section(a, b, name, fused))
    paras.append(fusion_totals(a, b, fused))
    return [textwrap.fill(p, WRAP) for p in paras if p]


# ---------------------------------------------------------------- one section


def _section(a: Side, b: Side, name: str, fused: bool) -> str:
    x, y = a.secs.get(name), b.secs.get(name)
    title = name[0].upper() + name[1:] if name in ("stem", "head") or name.startswith("stage ") else f"`{name}`"
    if x is None or y is None:
        side, sec, who = (a, x, "A") if y is None else (b, y, "B")
        if name.startswith("stage "):
            parts = [f"{_blocks(sec)} of {_dims(side, sec)}"]
            parts += [f"{label.lower()} {text}" for role, label in ROLES if (text := _role(side, sec, role))]
            extra, gated = _extras(side, sec), _gate_words(side, sec)
            parts += ([f"before the blocks {extra}"] if extra else []) + ([f"gates {gated}"] if gated else [])
            what = "; ".join(parts)
        else:
            what = f"{_whole(side, sec)}, ending at {_dims(side, sec)}"
        return (f"{title} (only in {who}): {what}. {millions(sec.params)} parameters, {giga(sec.macs)} GMACs. "
                f"{_fusion(a, b, name, fused)}").strip()
    if name.startswith("stage "):
        sentences = [_shape(a, x, b, y)]
    else:
        sentences = [pair(_whole(a, x), _whole(b, y), "Both:", ":"), _shape(a, x, b, y), _kinds(a, x, b, y)]
    sentences.append(f"Cost: A {millions(x.params)} parameters and {giga(x.macs)} GMACs, B {millions(y.params)} and "
                     f"{giga(y.macs)}.")
    sentences.append(_fusion(a, b, name, fused))
    return f"{title}: " + " ".join(s for s in sentences if s)


def _stages(a: Side, b: Side, names: list[str]) -> str:
    """What the stages are made of, each item once for the run of stages it holds in."""
    items: list[tuple[str, list[str]]] = []
    for role, label in ROLES:
        per = []
        for n in names:
            pa, pb = _role(a, a.secs[n], role), _role(b, b.secs[n], role)
            per.append(pair(pa or "none", pb or "none") if pa or pb else "")
        items.append((label, per))
    words = [(attention.phrases(a.shown.graph, a.secs[n].nodes), attention.phrases(b.shown.graph, b.secs[n].nodes))
             for n in names]
    for label in ("Attention", "q, k, v", "Logit bias"):
        items.append((label, [_either(wa.get(label, ""), wb.get(label, "")) for wa, wb in words]))
    items.append(("Before the blocks", [_either(_extras(a, a.secs[n]), _extras(b, b.secs[n])) for n in names]))
    items.append(("Gates", [_gates(a, a.secs[n], b, b.secs[n]) for n in names]))
    for trait, word in (("norm", "Norms"), ("activation", "Activations")):
        items.append((word, [_kind(a, a.secs[n], b, b.secs[n], trait) for n in names]))
    out = []
    for label, per in items:
        for first, last, text in _runs_of(per):
            if text:
                out.append(f"{label} ({_stage_range(names, first, last)}): {text}")
    return "Stages: " + " ".join(out) if out else ""


def _either(ta: str, tb: str) -> str:
    """`both X.` or `A X; B Y.`, or "" where neither side has any."""
    return pair(ta or "none", tb or "none") if ta or tb else ""


def _runs_of(values: list[str]) -> list[tuple[int, int, str]]:
    out: list[list] = []
    for i, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1][1] = i
        else:
            out.append([i, i, v])
    return [tuple(r) for r in out]


def _stage_range(names: list[str], first: int, last: int) -> str:
    if first == 0 and last == len(names) - 1 and len(names) > 1:
        return "every stage"
    a, b = names[first].split()[1], names[last].split()[1]
    return f"stage {a}" if first == last else f"stages {a}-{b}"


def _shape(a: Side, x: Section, b: Side, y: Section) -> str:
    da, db = _dims(a, x), _dims(b, y)
    if not x.name.startswith("stage "):
        return f"A ends at {da}, B at {db}." if da != db else f"Both end at {da}."
    ba, bb = _blocks(x), _blocks(y)
    if (ba, da) == (bb, db):
        return f"both run {ba} of {da}."
    return f"A runs {ba} of {da}, B {bb} of {db}."


def _blocks(sec: Section) -> str:
    n = sec.blocks or 0
    return "one block" if n == 1 else f"{n} blocks"


def _dims(s: Side, sec: Section) -> str:
    """`64 channels at 56x56 (1/4)` or `192 channels, 197 tokens`."""
    out = sec.output
    axis = s.axes.get(out.id) if out is not None else None
    if out is None or axis is None:
        return "no map"
    if not any(isinstance(d, Batch) for d in out.shape):  # a tensor of the model's own (a table)
        return "a [" + ", ".join(str(size(d)) for d in out.shape) + "] tensor"
    rest = [size(d) for i, d in enumerate(out.shape) if i != axis and not isinstance(d, Batch)]
    text = f"{size(out.shape[axis])} channels"
    if len(rest) == 2 and len(s.shown.input_size) == 3 and rest[0] and s.shown.input_size[1] % rest[0] == 0:
        return text + f" at {rest[0]}x{rest[1]} (1/{s.shown.input_size[1] // rest[0]})"
    if len(rest) == 1:
        return text + f", {rest[0]} tokens"
    return text + (" at " + "x".join(map(str, rest)) if rest else "")


def _whole(s: Side, sec: Section) -> str:
    """A top-level part: the blocks it is made of, what it computes once fused (gates apart)
    and the formulas of its reparameterized layers."""
    graph = s.shown.graph
    tops = [p for p in sec.modules if p in graph.modules]
    blocks = [graph.modules[p].name for p in tops if _layered(graph, p)] or \
        [graph.modules[q].name for q in graph.modules if q.rpartition(".")[0] in tops and _layered(graph, q)]
    gated = gates(graph, tops)
    what = ", ".join(fold([computes(s.deploy.graph, p, skip=gated, detail=True) for p in tops
                           if p in s.deploy.graph.modules]))
    text = (f"{counted(blocks)}: " if blocks else "") + what
    text += _formulas(s, tops)
    return text + (f", gated by `{graph.modules[gated[0]].name}`" if gated else "")


def _layered(graph, path: str) -> bool:
    """A block with layers of its own (a conv, a linear): named in the prose; a block that only
    picks an activation is not."""
    return graph.modules[path].kind == "block" and any(
        OPS[n.op].has("affine_map") for n in inside(graph, path))


def _role(s: Side, sec: Section, role: str) -> str:
    """The distinct modules with `role` in a section: block name, what it computes once fused,
    and the formula of its train form where fusion folds it. A module that differs from another
    only by its stride is said once (the first block of a stage that downsamples in it)."""
    graph = s.shown.graph
    found = [p for p, info in graph.modules.items() if role in info.roles and sec.owns(p)]
    outer = [p for p in found if not any(p.startswith(q + ".") for q in found)]
    phrases: dict[str, list[str]] = {}
    for text in dict.fromkeys(_module(s, p) for p in outer):
        phrases.setdefault(STRIDE.sub("", text), []).append(text)
    return " and ".join(texts[0] if len(texts) == 1 else f"{key} (strided where the stage downsamples)"
                        for key, texts in phrases.items())


def _module(s: Side, path: str) -> str:
    info = s.shown.graph.modules[path]
    gated = gates(s.shown.graph, [path])
    name = f"`{info.name}`, " if info.kind == "block" else ""
    fused = _deployed(s, path)
    text = name + computes(s.deploy.graph, fused, skip=gated) + _formulas(s, [fused])
    return text + (f", gated by `{s.shown.graph.modules[gated[0]].name}`" if gated else "")


def _deployed(s: Side, path: str) -> str:
    """Where a module's layers are in the deploy form: its own path, or, when fusion folded it
    into an enclosing one (a residual whose body became one conv with the identity in its
    kernel), the nearest enclosing module that is still there."""
    out = path
    while "." in out and not any(n.scope == out or n.scope.startswith(out + ".") for n in s.deploy.graph.nodes()):
        out = out.rpartition(".")[0]
    return out


def _formulas(s: Side, paths: list[str]) -> str:
    """`, trained as F` for the layers fusion made under `paths` whose recipe is more than a
    conv and its BatchNorm (those read `, its BatchNorms folded`)."""
    recipes = [(r, scope) for p in paths for _, r, scope in fused_layers(s.deploy.graph, p)]
    if not recipes:
        return ""
    shown = list(dict.fromkeys(trained_as(s.train.graph, r, scope) for r, scope in recipes if not plain(r)))
    if not shown:
        return ", its BatchNorms folded"
    many = len(shown) > 1 and len(paths) == 1 and len(recipes) == len(shown)
    text = ", trained as " + (listed(shown) + (" respectively" if many or len(shown) > 1 else "") if len(shown) <= 3
                              else f"{len(shown)} reparameterized layers")
    return text + (" (other BatchNorms folded)" if len(shown) < len(recipes) and any(plain(r) for r, _ in recipes)
                   else "")


def _extras(s: Side, sec: Section) -> str:
    """Modules of a stage other than its downsample and its blocks (a position encoding): the
    other children of a stage module that holds its blocks in a container."""
    graph = s.shown.graph
    out = []
    for root in sec.modules:
        kids = [p for p, info in graph.modules.items() if p.rpartition(".")[0] == root]
        if not any(graph.modules[p].kind == "container" for p in kids):
            continue
        for p, info in graph.modules.items():
            if p.rpartition(".")[0] != root or info.kind == "container" or "downsample" in info.roles:
                continue
            if any(r in info.roles for r, _ in ROLES):
                continue
            out.append(_module(s, p))
    return " and ".join(out)


def _gates(a: Side, x: Section, b: Side, y: Section) -> str:
    ga, gb = _gate_words(a, x), _gate_words(b, y)
    if not ga and not gb:
        return ""
    if ga == gb:
        return f"both {ga}."
    return f"A {ga or 'none'}; B {gb or 'none'}."


def _gate_words(s: Side, sec: Section) -> str:
    graph = s.shown.graph
    found = gates(graph, sec.modules)
    if not found:
        return ""
    places = []
    for p in found:
        if "downsample" in graph.roles_of(p):
            places.append("in the downsample")
        else:
            after = _after_role(graph, p)
            places.append(f"after the {after.replace('_', ' ')}" if after else "in the blocks")
    in_blocks = sum(1 for w in places if w != "in the downsample")
    blocks = sec.blocks or 0
    count = "" if not blocks or not in_blocks or in_blocks == blocks else \
        " in half of the blocks" if 2 * in_blocks == blocks else f" in {in_blocks} of {blocks} blocks"
    names = ", ".join(dict.fromkeys(f"`{graph.modules[p].name}`" for p in found))
    return f"{names} {', '.join(dict.fromkeys(places))}{count}"


def _after_role(graph, path: str) -> str | None:
    """The role of the last module with a role before `path` among its siblings."""
    parent = path.rpartition(".")[0]
    first: dict[str, int] = {}
    for pos, n in enumerate(graph.nodes()):
        first.setdefault(n.scope, pos)

    def start(q: str):
        return min((v for k, v in first.items() if k == q or k.startswith(q + ".")), default=None)

    me, best = start(path), None
    for q, info in graph.modules.items():
        role = next((r for r, _ in ROLES if r in info.roles), None)
        if q.rpartition(".")[0] != parent or q == path or role is None:
            continue
        pos = start(q)
        if pos is not None and me is not None and pos < me and (best is None or pos > best[0]):
            best = (pos, role)
    return best[1] if best else None


def _kinds(a: Side, x: Section, b: Side, y: Section) -> str:
    """Norms of a stem, head or other part, where A's and B's differ: the train form's, since
    fusion may have folded them (its activations are in the layers already said)."""
    text = _kind(a, x, b, y, "norm")
    return f"Norms: {text}" if text else ""


def _kind(a: Side, x: Section, b: Side, y: Section, trait: str) -> str:
    ka, kb = a.ops_with(x.name, trait), b.ops_with(y.name, trait)
    return "" if ka == kb else f"A {ka or 'none'}; B {kb or 'none'}."


def _fusion(a: Side, b: Side, name: str, fused: bool) -> str:
    parts = []
    for who, s in (("A", a), ("B", b)):
        t, d = s.train_secs.get(name), s.deploy_secs.get(name)
        if t is None or d is None:
            continue
        gone = [(_count(t, trait) - _count(d, trait), word) for trait, word in
                (("batchnorm", "BatchNorm"), ("branch", "branch sum"), ("conv", "conv"), ("linear", "linear"))]
        if t.params == d.params and not any(k > 0 for k, _ in gone):
            continue
        words = [count_of(k, w) for k, w in gone if k > 0]
        what = listed(words)
        macs = f", -{giga(t.macs - d.macs)} GMACs" if round((t.macs - d.macs) / 1e6) else ""
        parts.append(f"{what or 'layers'} in {who} (-{millions(t.params - d.params)} parameters{macs})")
    if not parts:
        return ""
    return ("Fusion removed " if fused else "Fusion removes ") + " and ".join(parts) + "."


def _count(sec: Section, trait: str) -> int:
    return sum(1 for n in sec.nodes if OPS[n.op].has(trait))


__all__ = ["Side", "summary"]
