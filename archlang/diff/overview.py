"""The first and last paragraphs of the prose diff: what A and B are overall (parts, params,
GMACs, input size, norms and their eps, activations, padding), and what fusion removes from each.

Padding is told apart only where it changes the numbers: TensorFlow's "same" padding on a
strided or even window pads more at the bottom and right, from the input's size, which is what
ported TF weights need; PyTorch pads k // 2 on every side. Stride-1 odd windows pad alike.
"""

from __future__ import annotations

from ..ops import OPS
from .describe import constant_same
from .sections import LOOSE
from .side import Side
from .wording import giga, listed, millions, pct


def overview(a: Side, b: Side, fused: bool) -> str:
    form = "deploy (fused) forms" if fused else "train forms"
    pa, pb, ma, mb = a.shown.cost.params, b.shown.cost.params, a.shown.cost.macs, b.shown.cost.macs
    text = (f"{a.name} (A) and {b.name} (B), {form}. A has {millions(pa)} parameters and costs {giga(ma)} GMACs "
            f"at {_size(a)}; B has {millions(pb)} and {giga(mb)} GMACs at {_size(b)} ({pct(pa, pb)} parameters, "
            f"{pct(ma, mb)} MACs).")
    parts_a, parts_b = _parts(a), _parts(b)
    text += f" Both are built of {parts_a}." if parts_a == parts_b else f" A is built of {parts_a}, B of {parts_b}."
    text += _kinds(a, b, "norm", "Norms")
    ea, eb = _eps(a), _eps(b)
    if any(ea[op] != eb[op] for op in ea.keys() & eb.keys()):
        text += f" Their eps: A {_eps_words(ea)}; B {_eps_words(eb)}."
    return text + _kinds(a, b, "activation", "Activations") + _padding(a, b)


def _kinds(a: Side, b: Side, trait: str, word: str) -> str:
    ka, kb = a.ops_with(None, trait) or "none", b.ops_with(None, trait) or "none"
    return f" {word}: both {ka}." if ka == kb else f" {word}: A {ka}; B {kb}."


def _parts(s: Side) -> str:
    stages = sum(n.startswith("stage ") for n in s.secs)
    words = []
    for name in s.secs:
        if name.startswith("stage "):
            if f"{stages} stages" not in words:
                words.append(f"{stages} stages" if stages != 1 else "one stage")
        elif name != LOOSE:
            words.append(f"a {name}" if name in ("stem", "head") else f"`{name}`")
    return listed(words)


def _eps(s: Side) -> dict[str, tuple]:
    """Each norm op's eps values."""
    found: dict[str, set] = {}
    for n in s.train_nodes(None):
        if OPS[n.op].has("norm") and n.attr("eps") is not None:
            found.setdefault(n.op, set()).add(n.attr("eps"))
    return {op: tuple(sorted(v)) for op, v in found.items()}


def _eps_words(eps: dict[str, tuple]) -> str:
    """`batchnorm2d 0.001, layernorm 1e-05`."""
    return ", ".join(f"{op} " + "/".join(f"{e:g}" for e in v) for op, v in sorted(eps.items())) or "none"


def _padding(a: Side, b: Side) -> str:
    """` Padding: ...` where either side pads TensorFlow-style."""
    ta, tb = _tf_same(a), _tf_same(b)
    if not ta and not tb:
        return ""

    def words(k: int) -> str:
        if not k:
            return "pads symmetrically (k // 2, PyTorch's)"
        return f"pads {k} strided or even-sized convs and pools TensorFlow-style (\"same\": the extra row and " \
               "column at the bottom and right, sized from the input)"
    if ta == tb:
        return f" Padding: both {words(ta)}."
    return f" Padding: A {words(ta)}; B {words(tb)}."


def _tf_same(s: Side) -> int:
    return sum(1 for n in s.train_nodes(None) if (OPS[n.op].has("conv") or OPS[n.op].has("pool"))
               and n.attr("padding") == "same" and not constant_same(n.attr_dict))


def fusion_totals(a: Side, b: Side, fused: bool) -> str:
    def removed(s: Side) -> str:
        dp, dm = s.train.cost.params - s.deploy.cost.params, s.train.cost.macs - s.deploy.cost.macs
        if not dp and not dm:
            return f"leaves {s.name} as it is"
        return f"removes {millions(dp)} parameters ({pct(s.train.cost.params, s.deploy.cost.params)}) and " \
               f"{giga(dm)} GMACs from {s.name}"
    what = "Compared to the train forms, fusion" if fused else "At deploy time (--fuse), fusion"
    return f"{what} {removed(a)}, and {removed(b)}."


def _size(s: Side) -> str:
    return "x".join(map(str, s.shown.input_size))
