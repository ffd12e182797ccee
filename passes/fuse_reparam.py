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
instance of the block (checked on concrete values from elaboration). Each rewritten statement
carries a recipe (`archlang.fusion`) that computes its weights from the train-form tensors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from archlang import syntax as S
from archlang.elaborate import Elaborator, Frame
from archlang.errors import ArchError
from archlang.ir import Graph
from archlang.ops import OPS
from archlang.ops.conv import same_padding
from archlang.program import Program, literal

from . import register

FUSED_PLACEHOLDER = "__fused__"


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
        self.where = ""

    def values(self, expr: S.Expr) -> list | None:
        """Value of a compile-time expression in every instance, or None if any is unknown."""
        out = []
        for env in self.envs:
            try:
                out.append(self.ev.const(expr, Frame("", dict(env))))
            except ArchError:
                return None
        return out

    def attrs(self, st: S.Layer) -> list[dict] | None:
        """Bound op arguments of a layer statement in every instance."""
        op = OPS.get(st.callee)
        out = []
        for env in self.envs:
            try:
                out.append(self.ev.bind_op(op, st.args, st.kwargs, Frame("", dict(env)), st.span))
            except ArchError:
                return None
        return out

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


def _label(st: S.Layer) -> str:
    return st.label.name if st.label else FUSED_PLACEHOLDER


def _leaf(st: S.Layer, recipes: dict) -> tuple:
    """Recipe of a statement: its own if already fused, else the module it names."""
    if id(st) in recipes:
        return recipes[id(st)]
    return (OPS[st.callee].name if st.callee != "batchnorm1d" else "bn", _label(st))


# ---------------------------------------------------------------- rules on statement lists


def conv_bn_fold(stmts, i, ctx) -> tuple | None:
    a, b = stmts[i], stmts[i + 1] if i + 1 < len(stmts) else None
    if not (_plain(a, "conv2d") and _plain(b, "batchnorm2d")) or a.label is None and id(a) not in ctx.recipes:
        return None
    if b.label is None:
        return None
    new = _with_bias(a)
    ctx.recipes[id(new)] = ("then", _leaf(a, ctx.recipes), ("bn", b.label.name))
    ctx.log("conv_bn_fold", b.span)
    return stmts[:i] + (new,) + stmts[i + 2:]


def bn_linear_fold(stmts, i, ctx) -> tuple | None:
    a, b = stmts[i], stmts[i + 1] if i + 1 < len(stmts) else None
    if not (_plain(a, "batchnorm1d") and _plain(b, "linear")) or a.label is None:
        return None
    if b.label is None and id(b) not in ctx.recipes:
        return None
    new = _with_bias(b)
    ctx.recipes[id(new)] = ("then", ("bn", a.label.name), _leaf(b, ctx.recipes))
    ctx.log("bn_linear_fold", a.span)
    return stmts[:i] + (new,) + stmts[i + 2:]


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
    if template is None:
        return None
    label = S.Label(st.fused_name, None, st.span) if st.fused_name else None
    new = dataclasses.replace(_with_bias(template), label=label, span=st.span, roles=st.roles + template.roles)
    items = tuple(("identity",) if s.callee == "identity" else _leaf(s, ctx.recipes) for s in layers)
    ctx.recipes[id(new)] = (st.op, items)
    ctx.log(rule, st.span)
    return stmts[:i] + (new,) + stmts[i + 1:]


def _aligned_convs(layers, ctx) -> S.Layer | None:
    """The branch with the largest kernel if all branches are centred convs of one geometry."""
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
        for a in attrs:
            pad = same_padding(a["kernel_size"], 1, a["dilation"]) if a["padding"] is None else a["padding"]
            if a["kernel_size"] % 2 == 0 or pad != a["dilation"] * (a["kernel_size"] - 1) // 2:
                return None
        if any(s.callee == "identity" for s in layers) and (cin != cout or stride != 1):
            return None
        top = max(range(len(convs)), key=lambda j: attrs[j]["kernel_size"])
        if best is None:
            best = top
        elif attrs[best]["kernel_size"] != attrs[top]["kernel_size"]:
            return None  # the largest branch differs between instances
    return convs[best]


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
    if len(body) == 1 and _plain(body[0]) and id(body[0]) in ctx.recipes:
        only = body[0]
        new = dataclasses.replace(only, label=st.label, span=st.span, roles=st.roles + only.roles)
        ctx.recipes[id(new)] = ("at", st.label.name, ctx.recipes[id(only)])
        ctx.log("collapse_block", st.span)
        return new
    return st


def _inline_call(st: S.Layer, ctx: _Ctx) -> S.Layer:
    """Replace `label: block(args)` by the single fused layer the block's body became."""
    bdef, inner, lets = ctx.collapsible[st.callee]
    names = {p.name: p for p in bdef.params}
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
    recipe = ctx.recipes[id(inner)]
    ctx.recipes[id(new)] = ("at", st.label.name, recipe) if st.label else recipe
    return new


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
        out.append(_map_bodies(st, lambda b: _specialize(b, ctx)))
    return tuple(out)


def _choose(st: S.If, ctx: _Ctx):
    for test, body in st.arms:
        vals = ctx.values(test)
        if vals is None or len({bool(v) for v in vals}) != 1:
            return None
        if vals[0]:
            return body
    return st.orelse or ()


def _map_bodies(st, fn):
    if isinstance(st, S.Group):
        return dataclasses.replace(st, body=fn(st.body))
    if isinstance(st, S.Residual):
        return dataclasses.replace(st, body=fn(st.body), shortcut=fn(st.shortcut) if st.shortcut else None)
    if isinstance(st, S.Branches):
        return dataclasses.replace(st, branches=tuple(fn(b) for b in st.branches))
    if isinstance(st, S.If):
        return dataclasses.replace(st, arms=tuple((t, fn(b)) for t, b in st.arms),
                                   orelse=fn(st.orelse) if st.orelse else None)
    if isinstance(st, S.For):
        return dataclasses.replace(st, body=fn(st.body))
    return st


def _envs_with_lets(bdef: S.BlockDef, envs: list[dict], ctx: _Ctx) -> list[dict]:
    """Instance environments extended with the body's top-level lets (where they evaluate)."""
    out = []
    for env in envs:
        env = dict(env)
        for st in bdef.body:
            if isinstance(st, S.Let):
                try:
                    env[st.name] = ctx.ev.const(st.value, Frame("", dict(env)))
                except ArchError:
                    pass
        out.append(env)
    return out


@register("fuse-reparam")
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
            ctx.envs = _envs_with_lets(bdef, [env for _, env in graph.instances[name]], ctx)
            body = _rewrite(_specialize(bdef.body, ctx), ctx)
            blocks[name] = bdef = dataclasses.replace(bdef, body=body)
            _maybe_collapsible(name, bdef, ctx)
        ctx.envs = [{}]
        model = dataclasses.replace(model, body=_rewrite(_specialize(model.body, ctx), ctx))
    for body in [model.body] + [blocks[n].body for n in used if n not in ctx.collapsible]:
        for st in _all_layers(body):
            if id(st) in recipes and st.label is None:
                raise ArchError("fused branches need a module name", st.span, hint="write `sum as NAME { ... }`")
    fused = dataclasses.replace(program, blocks=blocks, model=model)
    applied = sorted(set(ctx.applied))
    return Fusion(fused, recipes, applied)


def _maybe_collapsible(name: str, bdef: S.BlockDef, ctx: _Ctx) -> None:
    lets = [s for s in bdef.body if isinstance(s, S.Let)]
    rest = [s for s in bdef.body if not isinstance(s, (S.Let, S.Pass))]
    if len(rest) == 1 and _plain(rest[0]) and id(rest[0]) in ctx.recipes and name not in ctx.collapsible:
        # The recipe stays relative to the block's scope; call sites prefix their label.
        ctx.collapsible[name] = (bdef, rest[0], lets)
        ctx.log("collapse_block", bdef.span)


def _all_layers(body):
    for st in body:
        if isinstance(st, S.Layer):
            yield st
        for sub in _sub_bodies(st):
            yield from _all_layers(sub)


def _sub_bodies(st):
    if isinstance(st, (S.Group, S.For)):
        return [st.body]
    if isinstance(st, S.Residual):
        return [st.body, st.shortcut or ()]
    if isinstance(st, S.Branches):
        return list(st.branches)
    if isinstance(st, S.If):
        return [b for _, b in st.arms] + [st.orelse or ()]
    return []


__all__ = ["Fusion", "fuse_reparam", "RULES", "literal"]
