"""The fusion rule table: each rule is one entry, named for the algebraic identity it uses.

A `Rule` has a pattern (which statements or operators it looks at), preconditions (each returns
the reason it fails, or None), a recipe (how the fused layer's weights come from the recipes of
the terms it combines, see archlang.fusion) and a rewrite (the fused layer statement that
replaces the match). `fuse_reparam` applies the table to a fixed point; `--explain` reports where
each rule fired and, for every candidate that did not fuse, its first failing precondition.

Patterns: `EvalIdentity` (a dropout or drop-path statement, dropped), `Chain` (two consecutive
statements that each map x to x), `Parallel` (a `sum`/`avg` or a `residual` statement) and
`Operator` (`a - b`, `x + a`, `w * a` in a tensor assignment, where `a`, `b` name foldable layers
of one input; see `ExprFolder`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from archlang import syntax as S
from archlang.errors import Span
from archlang.ops import OPS
from archlang.ops.conv import same_padding

from .fusion_syntax import plain, with_bias
from .fusion_terms import Ctx, Term, Unfoldable


@dataclass
class Match:
    """What a pattern found: the terms it combines, in order, and what the fused layer replaces."""

    terms: list  # Term | Unfoldable per operand
    labels: list[str]  # how reasons name each operand ("branch 2", "`mixer`")
    span: Span
    start: int = 0  # statements [start, stop) of the list are replaced by the fused layer
    stop: int = 0
    label: S.Label | None = None  # the fused layer's label, when the statement gives one
    named: bool = False  # ... chosen with `as NAME`
    roles: tuple[str, ...] = ()
    signs: tuple[int, ...] = ()  # +1 / -1 per operand of a sum or difference
    avg: bool = False
    template: int | None = None  # which operand the fused layer is built from (set by `aligned`)
    inputs: tuple | None = None  # the fused layer's explicit inputs and targets, if bound
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Chain:
    """Two consecutive statements that map x to x, of the given term sorts."""

    first: tuple[str, ...]
    second: tuple[str, ...]

    def match(self, stmts, i, ctx: Ctx) -> Match | None:
        if i + 1 >= len(stmts) or not (plain(stmts[i]) and plain(stmts[i + 1])):
            return None
        a, b = ctx.term(stmts[i]), ctx.term(stmts[i + 1])
        if a is None or b is None or a.sort not in self.first or b.sort not in self.second:
            return None
        keep = 0 if a.sort in ("conv", "dense") else 1  # the map the fused layer is built from
        labels = [_describe(stmts[i]), _describe(stmts[i + 1])]
        roles = _roles(stmts[i].roles, stmts[i + 1].roles)
        kept = stmts[i + keep]
        return Match([a, b], labels, stmts[i + 1].span, i, i + 2, kept.label, _named(kept), roles, template=keep)


@dataclass(frozen=True)
class EvalIdentity:
    """One plain layer statement of an op that is the identity in eval (dropout, drop-path)."""

    def match(self, stmts, i, ctx: Ctx) -> Match | None:
        st = stmts[i]
        if not (isinstance(st, S.Layer) and plain(st) and st.callee in OPS and OPS[st.callee].has("dropout")):
            return None
        return Match([], [_describe(st)], st.span, i, i + 1)


@dataclass(frozen=True)
class Parallel:
    """A `sum`/`avg` whose maps are of `family`, or a `residual` with the identity shortcut;
    every branch must have fused into one foldable statement."""

    form: str  # "sum" | "residual"
    family: str = "conv"

    def match(self, stmts, i, ctx: Ctx) -> Match | None:
        st = stmts[i]
        if self.form == "residual":
            return self._residual(st, i, ctx)
        if not isinstance(st, S.Branches):
            return None
        terms = [_branch_term(b, ctx) for b in st.branches]
        family = next((t.family if isinstance(t, Term) else t.sort for t in terms
                       if t.sort in ("conv", "dense")), "conv")
        if family != self.family:
            return None
        label = S.Label(st.fused_name, None, st.span) if st.fused_name else None
        return Match(terms, [f"branch {j + 1}" for j in range(len(terms))], st.span, i, i + 1, label,
                     st.fused_name is not None, st.roles, (1,) * len(terms), st.op == "avg")

    def _residual(self, st, i, ctx: Ctx) -> Match | None:
        if not isinstance(st, S.Residual) or st.shortcut is not None:
            return None
        body = [s for s in st.body if not isinstance(s, S.Pass)]
        named = st.fused_name is not None
        if named:  # `as NAME` asks for fusion: say why not
            term = _branch_term(body, ctx)
        elif len(body) != 1 or not plain(body[0]) or ctx.term(body[0]) is None:
            return None  # a residual around a block that is not one map: nothing to fuse
        else:
            term = ctx.term(body[0])
        label = S.Label(st.fused_name, None, st.span) if named else body[0].label
        named = named or _named(body[0])
        identity = Term(("eye",), "the identity shortcut", sort="eye")
        return Match([term, identity], ["the residual body", "the identity shortcut"], st.span, i, i + 1,
                     label, named, _roles(st.roles, body[0].roles), (1, 1))


@dataclass(frozen=True)
class Operator:
    """`a - b`, `x + a` (or `a + x`) or `w * a` inside a tensor assignment; `ExprFolder` walks
    the expression and offers each operator node to the rules with this pattern."""

    op: str  # "-" | "+" | "*"


@dataclass(frozen=True)
class Rule:
    name: str
    identity: str  # the equation it uses, for docs and --explain
    patterns: tuple  # Chain | Parallel | Operator
    preconditions: tuple[Callable[[Match, Ctx], str | None], ...]
    recipe: Callable[[Match], tuple] | None
    rewrite: Callable[[Match, Term, str], S.Layer] | None  # the fused layer that replaces the match;
    # None: the match is dropped

    def check(self, m: Match, ctx: Ctx) -> str | None:
        for pre in self.preconditions:
            why = pre(m, ctx)
            if why is not None:
                return why
        return None

    def result(self, m: Match) -> Term:
        """The fused term: the template operand's geometry with this rule's recipe."""
        base = m.terms[m.template]
        return dataclasses.replace(base, recipe=self.recipe(m))


# ---------------------------------------------------------------- preconditions


def foldable(m: Match, ctx: Ctx) -> str | None:
    """Every operand reads as a term (its tensors have static names, its arguments are known)."""
    for label, t in zip(m.labels, m.terms):
        if isinstance(t, Unfoldable):
            return f"{label}: {t.reason}"
    return None


def diagonal_fits(m: Match, ctx: Ctx) -> str | None:
    """A per-channel map acts on the axis the neighbouring map produces (or reads), with as many
    channels: BatchNorm1d over [B, C, L] normalises C while a linear maps L."""
    mp = m.terms[m.template]
    diag = m.terms[1 - m.template]
    dl, ml = m.labels[1 - m.template], m.labels[m.template]
    if diag.axis is not None and diag.axis != mp.axis:
        return f"{dl} scales axis {diag.axis} (counted from the end), {ml} maps axis {mp.axis}"
    key = ("out_channels" if mp.family == "conv" else "out_features") if m.template == 0 else "in_features"
    for k, a in enumerate(mp.attrs):
        if diag.channels and diag.channels[k] != a[key]:
            return f"{dl} has {diag.channels[k]} channels, {ml} {a[key]}"
    return None


GEOMETRY = ("in_channels", "out_channels", "stride", "dilation", "groups")


def aligned(m: Match, ctx: Ctx) -> str | None:
    """Parallel terms of one input are one map: convs of one geometry with odd kernels that
    share a centre (the identity, BatchNorm and scales need a square, stride-1, centred map),
    or linears of one shape. The fused layer takes the largest kernel."""
    maps = [j for j, t in enumerate(m.terms) if t.family]
    if not maps:
        return "no conv or linear among them to fuse into"
    for j in maps:
        if m.terms[j].family != m.terms[maps[0]].family:
            return f"{m.labels[j]} is a {KINDS[m.terms[j].family]}, {m.labels[maps[0]]} a " \
                   f"{KINDS[m.terms[maps[0]].family]}"
    check = _align_convs if m.terms[maps[0]].family == "conv" else _align_linears
    best = None
    for k in range(len(m.terms[maps[0]].attrs)):
        why = check(m, maps, k)
        if why is not None:
            return why
        top = max(maps, key=lambda j: m.terms[j].attrs[k].get("kernel_size", 0))
        if best is None:
            best = top
        elif m.terms[best].attrs[k].get("kernel_size") != m.terms[top].attrs[k].get("kernel_size"):
            return "the largest kernel is in different branches in different instances"
    m.template = best
    return None


def _align_convs(m: Match, maps: list[int], k: int) -> str | None:
    first = m.terms[maps[0]].attrs[k]
    for j in maps:
        a = m.terms[j].attrs[k]
        for key in GEOMETRY:
            if a[key] != first[key]:
                return f"{m.labels[j]}: {_differs(key)} ({a[key]} vs {first[key]})"
        if not _square(a):
            return f"{m.labels[j]}: a window pair or a padding word (\"same\") is not aligned by this rule"
        if a["kernel_size"] % 2 == 0:
            return f"{m.labels[j]}: kernel size {a['kernel_size']} is even, so it has no centre tap"
    offset = _centre_offset(first)
    for j in maps:
        off = _centre_offset(m.terms[j].attrs[k])
        if off != offset:
            return f"{m.labels[j]}: kernel centre is off by {off - offset:+d} pixel(s) (padding differs)"
    for label, t in zip(m.labels, m.terms):
        if t.family:
            continue
        what = f"{label} ({t.what})"
        if first["in_channels"] != first["out_channels"]:
            return f"{what} needs as many input as output channels, the convs map " \
                   f"{first['in_channels']} to {first['out_channels']}"
        if first["stride"] != 1:
            return f"{what} needs stride 1, the convs have stride {first['stride']}"
        if offset:
            return f"{what} needs centred kernels, the convs' centre is {offset:+d} pixel(s) off"
        why = _diagonal_on(t, what, -3, first["out_channels"], k)
        if why:
            return why
    return None


def _align_linears(m: Match, maps: list[int], k: int) -> str | None:
    first = m.terms[maps[0]].attrs[k]
    for j in maps:
        a = m.terms[j].attrs[k]
        for key in ("in_features", "out_features"):
            if a[key] != first[key]:
                return f"{m.labels[j]}: {_differs(key)} ({a[key]} vs {first[key]})"
    for label, t in zip(m.labels, m.terms):
        if t.family:
            continue
        what = f"{label} ({t.what})"
        if first["in_features"] != first["out_features"]:
            return f"{what} needs as many input as output features, the linears map " \
                   f"{first['in_features']} to {first['out_features']}"
        why = _diagonal_on(t, what, -1, first["out_features"], k)
        if why:
            return why
    return None


def _diagonal_on(t: Term, what: str, axis: int, channels: int, k: int) -> str | None:
    if t.axis is not None and t.axis != axis:
        return f"{what} acts on axis {t.axis}, the maps on axis {axis}"
    if t.channels and t.channels[k] != channels:
        return f"{what} has {t.channels[k]} channels, the maps {channels}"
    return None


def _differs(key: str) -> str:
    words = key.replace("_", " ")
    return f"{words} {'differ' if words.endswith('s') else 'differs'}"


def _square(a: dict) -> bool:
    """Int kernel, stride and dilation, and int or default padding: what the centre arithmetic covers."""
    return all(type(a[k]) is int for k in ("kernel_size", "stride", "dilation")) and \
        (a["padding"] is None or type(a["padding"]) is int)


def _centre_offset(a: dict) -> int:
    """Padding beyond half the (dilated) kernel: where the kernel centre sits off the output grid."""
    pad = same_padding(a["kernel_size"], a["stride"], a["dilation"]) if a["padding"] is None else a["padding"]
    return pad - a["dilation"] * (a["kernel_size"] - 1) // 2


KINDS = {"conv": "conv", "dense": "linear map"}


def family_is(family: str):
    def check(m: Match, ctx: Ctx) -> str | None:
        found = next((t.family for t in m.terms if t.family), family)
        return None if found == family else f"the maps are {KINDS[found]}s"
    check.__name__ = f"family_is_{family}"
    return check


# ---------------------------------------------------------------- recipes and rewrites


def then(m: Match) -> tuple:
    return ("then", m.terms[0].recipe, m.terms[1].recipe)


def combined(m: Match) -> tuple:
    items = tuple(t.recipe if s > 0 else ("negate", t.recipe) for t, s in zip(m.terms, m.signs))
    return ("avg" if m.avg else "sum", items)


def fused_statement(m: Match, term: Term, rule: str) -> S.Layer:
    """One conv or linear layer (with a bias) in the template's geometry, labelled as the match
    says: `as NAME`, else the label of the conv/linear it keeps (or none)."""
    return fused_layer(term, rule, m.label, m.named, m.span, m.roles + term.template.roles, m.inputs, m.targets)


def fused_layer(term: Term, rule: str, label, named: bool, span: Span, roles, inputs, targets) -> S.Layer:
    return dataclasses.replace(with_bias(term.template), label=label, span=span, roles=_roles(roles),
                               inputs=inputs, targets=targets, fused=S.Fused(term.recipe, rule, named))


# ---------------------------------------------------------------- the table


RULES: tuple[Rule, ...] = (
    Rule("eval_identity_drop",
         identity="dropout(x) = drop_path(x) = x in eval: the deploy form drops them (so what is around "
                  "them can fold, as a conv and the BatchNorm of a head after its dropout)",
         patterns=(EvalIdentity(),), preconditions=(), recipe=None, rewrite=None),
    Rule("conv_bn_fold",
         identity="bn(conv(x)) = conv'(x): rows of W scaled by gamma/sigma, the shift folded into b",
         patterns=(Chain(("conv",), ("bn",)),),
         preconditions=(foldable, diagonal_fits), recipe=then, rewrite=fused_statement),
    Rule("bn_linear_fold",
         identity="linear(bn(x)) = linear'(x): columns of W scaled by gamma/sigma, the shift pushed through W",
         patterns=(Chain(("bn",), ("dense",)),),
         preconditions=(foldable, diagonal_fits), recipe=then, rewrite=fused_statement),
    Rule("layer_scale_fold",
         identity="w * f(x) = f'(x): rows of W and b scaled by the per-channel w",
         patterns=(Chain(("conv", "dense"), ("scale",)), Operator("*")),
         preconditions=(foldable, diagonal_fits), recipe=then, rewrite=fused_statement),
    Rule("parallel_conv_sum",
         identity="sum of aligned convs = one conv: kernels zero-padded to the largest and added; "
                  "identity/BN branches centred",
         patterns=(Parallel("sum", "conv"),),
         preconditions=(foldable, family_is("conv"), aligned), recipe=combined, rewrite=fused_statement),
    Rule("parallel_linear_sum",
         identity="sum of linears of one input = one linear: weights and biases added",
         patterns=(Parallel("sum", "dense"),),
         preconditions=(foldable, family_is("dense"), aligned), recipe=combined, rewrite=fused_statement),
    Rule("parallel_difference",
         identity="f(x) - g(x) = h(x): W_h = W_f - W_g, b_h = b_f - b_g (aligned as in a sum)",
         patterns=(Operator("-"),),
         preconditions=(foldable, aligned), recipe=combined, rewrite=fused_statement),
    Rule("residual_identity_fold",
         identity="x + f(x) = f'(x): the identity added at the centre of f's kernel",
         patterns=(Parallel("residual"), Operator("+")),
         preconditions=(foldable, aligned), recipe=combined, rewrite=fused_statement),
)

BY_NAME = {r.name: r for r in RULES}
COLLAPSE = "collapse_block"  # a block or group whose body fused into one layer is that layer


def statement_rules():
    """(rule, pattern) for every pattern that matches statements (not operators)."""
    return [(r, p) for r in RULES for p in r.patterns if not isinstance(p, Operator)]


def operator_rule(op: str) -> Rule | None:
    return next((r for r in RULES for p in r.patterns if isinstance(p, Operator) and p.op == op), None)


# ---------------------------------------------------------------- helpers


def _branch_term(branch, ctx: Ctx):
    body = [s for s in branch if not isinstance(s, S.Pass)]
    if len(body) != 1:
        return Unfoldable("", f"{len(body)} statements that did not fuse into one ("
                          + ", ".join(_describe(s) for s in body) + ")")
    st = body[0]
    term = ctx.term(st) if plain(st) else None
    if term is None:
        return Unfoldable("", f"{_describe(st)} is not a conv, linear, BatchNorm, scale or identity")
    return term


def _describe(st) -> str:
    label = getattr(st, "label", None)
    if isinstance(st, S.Layer):
        if label is None:
            return f"`{st.callee}()`"
        return f"`{label.name}`" if label.index is None else f"`{label.name}[...]`"
    if isinstance(st, S.Group):
        return f"`{label.name}`"
    return f"a {type(st).__name__.lower()} statement"


def _named(st) -> bool:
    return isinstance(st, S.Layer) and st.fused is not None and st.fused.named


def _roles(*groups) -> tuple[str, ...]:
    out: list[str] = []
    for roles in groups:
        out += [r for r in roles if r not in out]
    return tuple(out)


__all__ = ["RULES", "BY_NAME", "COLLAPSE", "Rule", "Match", "Chain", "Parallel", "Operator",
           "statement_rules", "operator_rule", "fused_layer"]
