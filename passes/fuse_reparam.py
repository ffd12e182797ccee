"""fuse-reparam: rewrite a program into its deploy form with a list of named algebraic rules.

Rules rewrite statement lists inside block bodies (so the emitted deploy module keeps one class
per block), each named for the identity it uses:

- `conv_bn_fold`:       conv(x) then BatchNorm        == conv with scaled weight and a bias
- `bn_linear_fold`:     BatchNorm1d then linear       == linear with scaled weight and a bias
- `parallel_conv_sum`:  sum/avg of aligned convs and identities == one conv (kernels zero-padded
                        to the largest, identity as a centred one-hot kernel)
- `parallel_linear_sum`: sum/avg of linear maps of one input == one linear
- `collapse_block`:     a block (or inline group) whose body fused into one layer *is* that layer;
                        call sites use it directly under the call's label (timm's `.fuse()`).

Before the rules run, `if`s whose condition is the same in every instance are resolved, since
the deploy form is for one build. A rule fires only when its preconditions hold for every
instance of the block (checked on concrete values from elaboration; a name the body rebinds, such
as a loop variable, counts as unknown). Each rewritten statement carries a recipe
(`archlang.fusion`) that computes its weights from the train-form tensors.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from archlang import syntax as S
from archlang.elaborate import Elaborator, Frame
from archlang.errors import ArchError
from archlang.ir import Graph
from archlang.ops import OPS
from archlang.ops.conv import same_padding
from archlang.program import Program, literal

from . import register


@dataclass
class Fusion:
    program: Program
    recipes: dict[int, tuple]  # id(Layer stmt) -> recipe, relative to the body's module scope
    applied: list[tuple[str, str]] = field(default_factory=list)  # (rule, where)


class _Ctx:
    """What rules may consult: concrete environments of every instance of the current body."""

    def __init__(self, program: Program, graph: Graph, recipes: dict, applied: list):
        self.program, self.graph, self.recipes, self.applied = program, graph, recipes, applied
        self.ev = Elaborator(program, graph.variant, graph.settings)
        self.envs: list[dict] = [{}]
        self.hidden: frozenset[str] = frozenset()  # names whose value depends on where in the body
        self.local: frozenset[str] = frozenset()  # every name the body binds, its params included

    def enter(self, body: tuple, params: tuple[str, ...], envs: list[dict]) -> None:
        """Consult one body: its instances' environments plus its top-level lets that bind a new
        name once. Loop variables and other lets are hidden: their value depends on the statement."""
        bound = _bound_names(body)
        lets = [st for st in body if isinstance(st, S.Let) and bound[st.name] == 1
                and st.name not in params and st.name not in self.graph.settings]
        self.envs = [self._with_lets(env, lets) for env in envs]
        known = {st.name for st in lets if all(st.name in env for env in self.envs)}
        self.hidden = frozenset(bound) - known
        self.local = frozenset(bound) | frozenset(params)

    def _with_lets(self, env: dict, lets: list) -> dict:
        env = dict(env)
        for st in lets:
            try:
                env[st.name] = self.ev.const(st.value, Frame("", dict(env)))
            except ArchError:
                pass
        return env

    def values(self, expr: S.Expr) -> list | None:
        """Value of a compile-time expression in every instance, or None if any is unknown."""
        if _free_names(expr) & self.hidden:
            return None
        out = []
        for env in self.envs:
            try:
                out.append(self.ev.const(expr, Frame("", dict(env))))
            except ArchError:
                return None
        return out

    def attrs(self, st: S.Layer) -> list[dict] | None:
        """Bound op arguments of a layer statement in every instance."""
        if set().union(*map(_free_names, _arg_exprs(st))) & self.hidden:
            return None
        op = OPS.get(st.callee)
        out = []
        for env in self.envs:
            try:
                out.append(self.ev.bind_op(op, st.args, st.kwargs, Frame("", dict(env)), st.span))
            except ArchError:
                return None
        return out

    def ranks(self, st: S.Layer) -> set[int]:
        """Ranks of the tensors the statement's op produced, over all its instances."""
        op = OPS[st.callee].name
        return {len(n.shape) for n in self.graph.nodes() if n.span == st.span and n.op == op and n.shape}

    def log(self, rule: str, span) -> None:
        self.applied.append((rule, f"{span.file}:{span.line}"))


# ---------------------------------------------------------------- helpers


def _plain(st, callee: str | None = None) -> bool:
    """A layer applied to x with its output bound to x (no explicit inputs or targets)."""
    return (isinstance(st, S.Layer) and st.inputs is None and st.targets is None
            and (callee is None or st.callee == callee))


def _with_bias(st: S.Layer) -> S.Layer:
    """The same conv/linear statement with bias = true."""
    op = OPS[st.callee]
    pos = list(st.args)
    idx = op.arg_names.index("bias")
    kwargs = tuple(k for k in st.kwargs if k.name != "bias")
    true = S.Const(st.span, True)
    if len(pos) > idx:
        pos[idx] = true
    else:
        kwargs += (S.Kwarg("bias", true, st.span),)
    return dataclasses.replace(st, args=tuple(pos), kwargs=kwargs)


def _name(label: S.Label | None) -> str | None:
    """The module path a label spells relative to its body, if static (not `name[i]`)."""
    return label.name if label is not None and label.index is None else None


def _leaf(st: S.Layer, recipes: dict) -> tuple | None:
    """Recipe of a statement relative to its body's scope: its own if already fused, else the
    module it names; None when that path is only known per instance (unlabelled, indexed)."""
    recipe = recipes.get(id(st))
    if recipe is not None:
        return None if recipe[0] == "own" else recipe
    name = _name(st.label)
    if name is None:
        return None
    return ("bn" if st.callee.startswith("batchnorm") else OPS[st.callee].name, name)


def _scoped(label: S.Label | None, recipe: tuple) -> tuple:
    """A recipe moved under the module `label`: by name, or as the fused module's own path."""
    name = _name(label)
    return ("at", name, recipe) if name is not None else ("own", recipe)


# ---------------------------------------------------------------- rules on statement lists


def _fold_pair(rule: str, first_op: str, second_op: str, keep: int, guard=None):
    """A rule for two adjacent layers that compose into one: `first_op` then `second_op` becomes
    the `keep`-th of them with a bias, its weights from the recipe ("then", first, second)."""

    def fold(stmts, i, ctx) -> tuple | None:
        if i + 1 >= len(stmts) or not (_plain(stmts[i], first_op) and _plain(stmts[i + 1], second_op)):
            return None
        a, b = stmts[i], stmts[i + 1]
        first, second = _leaf(a, ctx.recipes), _leaf(b, ctx.recipes)
        if first is None or second is None or (guard is not None and not guard(a, ctx)):
            return None
        new = _with_bias((a, b)[keep])
        ctx.recipes[id(new)] = ("then", first, second)
        ctx.log(rule, b.span if keep == 0 else a.span)
        return stmts[:i] + (new,) + stmts[i + 2:]

    fold.__name__ = rule
    return fold


# conv then BN: scale each output channel's kernel, fold the shift into the bias.
conv_bn_fold = _fold_pair("conv_bn_fold", "conv2d", "batchnorm2d", keep=0)
# BN1d then linear: scale the linear's input columns, push the shift through it. On [B, C, L]
# BatchNorm1d scales axis 1 but the linear maps the last axis, so only rank-2 inputs fold.
bn_linear_fold = _fold_pair("bn_linear_fold", "batchnorm1d", "linear", keep=1,
                            guard=lambda bn, ctx: ctx.ranks(bn) == {2})


def parallel_sum(stmts, i, ctx) -> tuple | None:
    st = stmts[i]
    if not isinstance(st, S.Branches) or not all(len(b) == 1 and _plain(b[0]) for b in st.branches):
        return None
    layers = [b[0] for b in st.branches]
    kinds = {s.callee for s in layers} - {"identity"}
    if kinds == {"conv2d"}:
        template = _aligned_convs(layers, ctx)
        rule = "parallel_conv_sum"
    elif kinds == {"linear"} and all(s.callee == "linear" for s in layers):
        template = _aligned_linears(layers, ctx)
        rule = "parallel_linear_sum"
    else:
        return None
    items = tuple(("identity",) if s.callee == "identity" else _leaf(s, ctx.recipes) for s in layers)
    if template is None or None in items:
        return None
    label = S.Label(st.fused_name, None, st.span) if st.fused_name else None
    new = dataclasses.replace(_with_bias(template), label=label, span=st.span, roles=st.roles + template.roles)
    ctx.recipes[id(new)] = (st.op, items)
    ctx.log(rule, st.span)
    return stmts[:i] + (new,) + stmts[i + 1:]


def _aligned_convs(layers, ctx) -> S.Layer | None:
    """The branch with the largest kernel if all branches are convs of one geometry whose
    kernels share a centre: odd kernels, each padded by half its extent plus one common offset."""
    convs = [s for s in layers if s.callee == "conv2d"]
    per = [ctx.attrs(s) for s in convs]
    if any(p is None for p in per):
        return None
    best = None
    for k in range(len(ctx.envs)):
        attrs = [p[k] for p in per]
        geometry = {(a["in_channels"], a["out_channels"], a["stride"], a["dilation"], a["groups"]) for a in attrs}
        if len(geometry) != 1:
            return None
        cin, cout, stride, dil, _ = geometry.pop()
        if not all(_square(a) for a in attrs):
            return None  # pairs and "same"/"valid" padding: kernels need not share a centre
        if any(a["kernel_size"] % 2 == 0 for a in attrs) or len({_centre_offset(a) for a in attrs}) != 1:
            return None
        if any(s.callee == "identity" for s in layers) and (cin != cout or stride != 1 or _centre_offset(attrs[0])):
            return None
        top = max(range(len(convs)), key=lambda j: attrs[j]["kernel_size"])
        if best is None:
            best = top
        elif attrs[best]["kernel_size"] != attrs[top]["kernel_size"]:
            return None  # the largest branch differs between instances
    return convs[best]


def _square(a: dict) -> bool:
    """An int window with symmetric int (or default) padding: what the centre arithmetic covers."""
    return all(type(a[k]) is int for k in ("kernel_size", "stride", "dilation")) and \
        (a["padding"] is None or type(a["padding"]) is int)


def _centre_offset(a: dict) -> int:
    """Padding beyond half the (dilated) kernel: where the kernel centre sits off the output grid."""
    pad = same_padding(a["kernel_size"], a["stride"], a["dilation"]) if a["padding"] is None else a["padding"]
    return pad - a["dilation"] * (a["kernel_size"] - 1) // 2


def _aligned_linears(layers, ctx) -> S.Layer | None:
    per = [ctx.attrs(s) for s in layers]
    if any(p is None for p in per):
        return None
    for k in range(len(ctx.envs)):
        if len({(p[k]["in_features"], p[k]["out_features"]) for p in per}) != 1:
            return None
    return layers[0]


RULES = (conv_bn_fold, bn_linear_fold, parallel_sum)


# ---------------------------------------------------------------- driver


def _rewrite(stmts: tuple, ctx: _Ctx) -> tuple:
    """Apply the rules to a statement list and to every nested body, to a fixed point."""
    stmts = tuple(_rewrite_nested(st, ctx) for st in stmts)
    changed = True
    while changed:
        changed = False
        for i in range(len(stmts)):
            for rule in RULES:
                out = rule(stmts, i, ctx)
                if out is not None:
                    stmts, changed = out, True
                    break
            if changed:
                break
    return stmts


def _rewrite_nested(st, ctx: _Ctx):
    if isinstance(st, S.Group):
        body = _rewrite(st.body, ctx)
        return _collapse_group(dataclasses.replace(st, body=body), ctx)
    if isinstance(st, S.Residual):
        return dataclasses.replace(st, body=_rewrite(st.body, ctx),
                                   shortcut=_rewrite(st.shortcut, ctx) if st.shortcut else None)
    if isinstance(st, S.Branches):
        return dataclasses.replace(st, branches=tuple(_rewrite(b, ctx) for b in st.branches))
    if isinstance(st, S.If):
        arms = tuple((t, _rewrite(b, ctx)) for t, b in st.arms)
        return dataclasses.replace(st, arms=arms, orelse=_rewrite(st.orelse, ctx) if st.orelse else None)
    if isinstance(st, S.For):
        return dataclasses.replace(st, body=_rewrite(st.body, ctx))
    if isinstance(st, S.Layer) and st.callee in ctx.collapsible:
        return _inline_call(st, ctx)
    return st


def _collapse_group(st: S.Group, ctx: _Ctx):
    body = [s for s in st.body if not isinstance(s, S.Pass)]
    if len(body) == 1 and _plain(body[0]) and id(body[0]) in ctx.recipes and _leaf(body[0], ctx.recipes):
        only = body[0]
        new = dataclasses.replace(only, label=st.label, span=st.span, roles=st.roles + only.roles)
        ctx.recipes[id(new)] = _scoped(st.label, ctx.recipes[id(only)])
        ctx.log("collapse_block", st.span)
        return new
    return st


def _inline_call(st: S.Layer, ctx: _Ctx) -> S.Layer:
    """Replace `label: block(args)` by the single fused layer the block's body became."""
    bdef, inner, lets = ctx.collapsible[st.callee]
    names = {p.name: p for p in bdef.params}
    spec_level = set().union(*map(_free_names, (*_arg_exprs(inner), *(let.value for let in lets))))
    if (spec_level - set(names) - {let.name for let in lets}) & ctx.local:
        return st  # the block reads a spec param that the caller's own names would shadow
    binding: dict[str, S.Expr] = {}
    for p, e in zip(bdef.params, st.args):
        binding[p.name] = e
    for k in st.kwargs:
        binding[k.name] = k.value
    for name, p in names.items():
        if name not in binding and p.default is not None:
            binding[name] = p.default
    for let in lets:
        binding[let.name] = _subst(let.value, binding)
    new = dataclasses.replace(
        inner, label=st.label, span=st.span, roles=st.roles + inner.roles,
        args=tuple(_subst(a, binding) for a in inner.args),
        kwargs=tuple(dataclasses.replace(k, value=_subst(k.value, binding)) for k in inner.kwargs))
    ctx.recipes[id(new)] = _scoped(st.label, ctx.recipes[id(inner)])
    return new


def _arg_exprs(st: S.Layer) -> tuple:
    return (*st.args, *(k.value for k in st.kwargs))


def _free_names(e) -> set[str]:
    """Names an expression reads."""
    return {sub.id for sub in S.subexprs(e) if isinstance(sub, S.Name)} if isinstance(e, S.Expr) else set()


def _subst(e: S.Expr, binding: dict[str, S.Expr]) -> S.Expr:
    if isinstance(e, S.Name):
        return binding.get(e.id, e)
    if not dataclasses.is_dataclass(e):
        return e
    changes = {}
    for f in dataclasses.fields(e):
        v = getattr(e, f.name)
        if isinstance(v, S.Expr):
            changes[f.name] = _subst(v, binding)
        elif isinstance(v, tuple) and v and isinstance(v[0], (S.Expr, S.Kwarg)):
            changes[f.name] = tuple(_subst(x, binding) if isinstance(x, S.Expr)
                                    else dataclasses.replace(x, value=_subst(x.value, binding)) for x in v)
    return dataclasses.replace(e, **changes) if changes else e


def _specialize(stmts: tuple, ctx: _Ctx) -> tuple:
    """Resolve every `if` whose condition has one value across all instances of the body."""
    out = []
    for st in stmts:
        if isinstance(st, S.If):
            chosen = _choose(st, ctx)
            if chosen is not None:
                out.extend(_specialize(chosen, ctx))
                continue
        out.append(S.map_bodies(st, lambda b: _specialize(b, ctx)))
    return tuple(out)


def _choose(st: S.If, ctx: _Ctx):
    for test, body in st.arms:
        vals = ctx.values(test)
        if vals is None or len({bool(v) for v in vals}) != 1:
            return None
        if vals[0]:
            return body
    return st.orelse or ()


def _bound_names(body) -> Counter:
    """How often each name is bound by a let or a loop variable anywhere in a body."""
    out: Counter = Counter()
    for st in body:
        if isinstance(st, S.Let):
            out[st.name] += 1
        if isinstance(st, S.For) and st.var:
            out[st.var] += 1
        for sub in S.sub_bodies(st):
            out += _bound_names(sub)
    return out


@register("fuse-reparam")
def fuse_pass(build):
    """The deploy form: the fused program, to be elaborated again (with its recipes)."""
    fusion = fuse_reparam(build.program, build.graph)
    return build.but(program=fusion.program, fusion=fusion, graph=None, cost=None, unfused=build)


def fuse_reparam(program: Program, graph: Graph) -> Fusion:
    """The deploy-form program of this build, plus weight recipes for every fused layer."""
    recipes: dict[int, tuple] = {}
    ctx = _Ctx(program, graph, recipes, [])
    ctx.collapsible = {}
    blocks = dict(program.blocks)
    used = [name for name in blocks if name in graph.instances]
    model = program.model
    for _ in range(len(used) + 2):  # callees collapse first; a few rounds reach the fixed point
        for name in used:
            bdef = blocks[name]
            ctx.enter(bdef.body, tuple(p.name for p in bdef.params), [env for _, env in graph.instances[name]])
            body = _rewrite(_specialize(bdef.body, ctx), ctx)
            blocks[name] = bdef = dataclasses.replace(bdef, body=body)
            _maybe_collapsible(name, bdef, ctx)
        ctx.enter(model.body, (), [{}])
        model = dataclasses.replace(model, body=_rewrite(_specialize(model.body, ctx), ctx))
    for body in [model.body] + [blocks[n].body for n in used if n not in ctx.collapsible]:
        for st in (s for s in S.walk(body) if isinstance(s, S.Layer)):
            if st.label is None and _leaf(st, recipes) is not None:
                raise ArchError("fused branches need a module name", st.span, hint="write `sum as NAME { ... }`")
    fused = dataclasses.replace(program, blocks=blocks, model=model)
    applied = sorted(set(ctx.applied))
    return Fusion(fused, recipes, applied)


def _maybe_collapsible(name: str, bdef: S.BlockDef, ctx: _Ctx) -> None:
    lets = [s for s in bdef.body if isinstance(s, S.Let)]
    rest = [s for s in bdef.body if not isinstance(s, (S.Let, S.Pass))]
    if len(rest) == 1 and _plain(rest[0]) and id(rest[0]) in ctx.recipes and _leaf(rest[0], ctx.recipes) \
            and name not in ctx.collapsible:
        # The recipe stays relative to the block's scope; call sites prefix their label.
        ctx.collapsible[name] = (bdef, rest[0], lets)
        ctx.log("collapse_block", bdef.span)


__all__ = ["Fusion", "fuse_reparam", "RULES", "literal"]
