"""What fusion can fold: statements read as affine maps of one input tensor (`Term`s).

A term is a conv or linear module, a BatchNorm, a per-channel weight (a layer scale), the
identity, a layer an earlier rule fused, or a block or labelled group whose whole body is one of
these ("unit"). Each term carries its weight recipe (archlang.fusion), its geometry in every
instance of the body being rewritten (a rule must hold for all of them), and, for maps, the
conv/linear statement a fused layer is built from. A statement that looks foldable but is not
(an indexed label, arguments that change inside the body) reads as `Unfoldable` with the reason.

Fusion asks ops what they are through their traits (`affine_map`, `conv`, `linear`, `batchnorm`,
`identity`, `source`), never by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from archlang import syntax as S
from archlang.elaborate import Elaborator, Frame
from archlang.errors import ArchError
from archlang.ir import Graph
from archlang.ops import OPS, Attrs, defaults
from archlang.program import Program

from .fusion_syntax import (
    arg_exprs,
    binds,
    bound_names,
    call_binding,
    free_names,
    label_path,
    label_text,
    plain,
    stmt_exprs,
    subst,
    subst_layer,
)
from .fusion_unfused import is_unfused


@dataclass(frozen=True)
class Term:
    """One statement as an affine map of its input: a map with its own geometry (a conv or a
    linear) or a per-channel diagonal (BatchNorm, scale; `channels` empty for the identity)."""

    recipe: tuple
    what: str  # how reasons name it: "`conv`", "identity()", "`gamma`"
    family: str | None = None  # "conv" | "dense" (a linear) for maps, None for diagonals
    attrs: tuple = ()  # maps: bound op arguments, one dict per instance
    channels: tuple = ()  # diagonals: channel count per instance; () for the identity
    axis: int | None = None  # the axis it maps or scales, counted from the end; None: any
    template: S.Layer | None = None  # maps: the statement a fused layer is built from
    sort: str = ""  # "conv", "dense", "bn", "scale", "eye" (the identity): what patterns ask for


@dataclass(frozen=True)
class Unfoldable:
    """A statement that looks like a `sort` term but cannot be folded, and why."""

    sort: str
    reason: str


def map_term(recipe: tuple, st: S.Layer, attrs: list[dict], what: str | None = None) -> Term:
    op = OPS[st.callee]
    family = "conv" if op.has("conv") else "dense"
    return Term(recipe, what or op.name, family, tuple(attrs), (), channel_axis(op, 4 if family == "conv" else 0),
                st, family)


def channel_axis(op, rank: int) -> int | None:
    """The op's channel axis counted from the end (NCHW channels: -3, features: -1)."""
    axis = op.channel_axis
    if axis is None:
        return None
    return axis if axis < 0 else (axis - rank if rank else None)


class Ctx:
    """What rules may consult: the concrete environments of every instance of the current body,
    the bodies of blocks that fused into one term, and where in the spec the driver is."""

    def __init__(self, program: Program, graph: Graph):
        self.program, self.graph = program, graph
        self.ev = Elaborator(program, graph.variant, graph.settings)
        self.envs: list[dict] = [{}]
        self.hidden: frozenset[str] = frozenset()  # names whose value depends on where in the body
        self.local: frozenset[str] = frozenset()  # every name the body binds, its params included
        self.units: dict[str, tuple] = {}  # block name -> (definition, its fused single-term body)
        self.scope: tuple[str | None, tuple[str, ...]] = (None, ())  # (block or None for model, group path)

    def enter(self, body: tuple, params: tuple[str, ...], envs: list[dict], block: str | None) -> None:
        """Consult one body: its instances' environments plus its top-level lets that bind a new
        name once. Loop variables and other lets are hidden: their value depends on the statement."""
        bound = bound_names(body)
        lets = [st for st in body if isinstance(st, S.Let) and bound[st.name] == 1
                and st.name not in params and st.name not in self.graph.settings]
        self.envs = [self._with_lets(env, lets) for env in envs]
        known = {st.name for st in lets if all(st.name in env for env in self.envs)}
        self.hidden = frozenset(bound) - known
        self.local = frozenset(bound) | frozenset(params)
        self.scope = (block, ())

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
        if free_names(expr) & self.hidden:
            return None
        out = []
        for env in self.envs:
            try:
                out.append(self.ev.const(expr, Frame("", dict(env))))
            except ArchError:
                return None
        return out

    def arm_envs(self, st: S.If) -> list[list[dict]] | None:
        """The instances that take each arm of `st` (then those that take none), or None when a
        condition is not known in every instance: rules inside an arm need hold only there."""
        split: list[list[dict]] = [[] for _ in range(len(st.arms) + 1)]
        for env in self.envs:
            for k, (test, _) in enumerate(st.arms):
                if free_names(test) & self.hidden:
                    return None
                try:
                    taken = bool(self.ev.const(test, Frame("", dict(env))))
                except ArchError:
                    return None
                if taken:
                    split[k].append(env)
                    break
            else:
                split[-1].append(env)
        return split

    def attrs(self, st: S.Layer) -> list[dict] | None:
        """Bound op arguments of a layer statement in every instance."""
        if set().union(*map(free_names, arg_exprs(st))) & self.hidden:
            return None
        op = OPS.get(st.callee)
        out = []
        for env in self.envs:
            try:
                out.append(self.ev.bind_op(op, st.args, st.kwargs, Frame("", dict(env)), st.span))
            except ArchError:
                return None
        return out

    def ranks(self, span, op_name: str) -> set[int]:
        """Ranks of the tensors a statement's op produced, over all its instances."""
        return {len(n.shape) for n in self.graph.nodes() if n.span == span and n.op == op_name and n.shape}

    # ---------------------------------------------------------------- statements as terms

    def term(self, st) -> Term | Unfoldable | None:
        """`st` as a term; None when it is nothing fusion folds."""
        if is_unfused(st):
            return Unfoldable("", "it is marked @unfused")
        if isinstance(st, S.Layer):
            if st.fused is not None:
                return self.fused_term(st)
            op = OPS.get(st.callee)
            if op is not None:
                return self.op_term(st, op)
            unit = self.units.get(st.callee)
            if unit is None:
                return None
            return self.scoped(st.label, self.unit_term(unit, st))
        if isinstance(st, S.Group) and st.label.index is None:
            return self.scoped(st.label, self.body_term(st.body, {}))
        return None

    def fused_term(self, st: S.Layer) -> Term | Unfoldable:
        recipe = st.fused.recipe
        if recipe[0] == "own":  # paths inside the fused module's own path
            name = label_path(st.label)
            if name is None:
                return Unfoldable("map", "it has no static module name")
            recipe = ("at", name, recipe[1])
        attrs = self.attrs(st)
        if attrs is None:
            return Unfoldable("map", "its arguments are not known in every instance")
        return map_term(recipe, st, attrs, what=label_text(st))

    def op_term(self, st: S.Layer, op) -> Term | Unfoldable | None:
        sort = ("conv" if op.has("conv") else "dense") if op.has("affine_map") else \
            "bn" if op.has("batchnorm") else "eye" if op.has("identity") else None
        if sort is None:
            return None
        if sort == "eye":
            return Term(("eye",), "identity()", sort="eye")
        name = label_path(st.label)
        if name is None:
            why = "it has no label" if st.label is None else "its label is indexed by a name bound in the body"
            return Unfoldable(sort, f"{why}, so its tensors have no static name")
        attrs = self.attrs(st)
        if attrs is None:
            return Unfoldable(sort, "its arguments depend on a name bound in the body (a loop variable, a let)")
        if sort != "bn":
            return map_term(("map", name), st, attrs, what=f"`{name}`")
        ranks = self.ranks(st.span, op.name)
        axis = channel_axis(op, ranks.pop()) if len(ranks) == 1 else None
        if axis is None:
            return Unfoldable("bn", "it normalises tensors of different ranks")
        return Term(("bn", name), f"`{name}`", channels=tuple(a["num_features"] for a in attrs), axis=axis, sort="bn")

    def scoped(self, label: S.Label | None, term: Term | Unfoldable | None) -> Term | Unfoldable | None:
        """A term of a unit's body, seen from outside: its paths inside the module `label`."""
        if not isinstance(term, Term) or term.sort == "eye":
            return term
        name = label_path(label)
        if name is None:
            return Unfoldable(term.sort, "an unlabelled or indexed call: its tensors have no static name")
        return dataclasses.replace(term, recipe=("at", name, term.recipe), what=f"`{name}`")

    def unit_term(self, unit: tuple, call: S.Layer) -> Term | Unfoldable | None:
        """The term a call of a single-term block computes, with the call's arguments bound."""
        bdef, body = unit
        names = {p.name for p in bdef.params}
        lets = [s for s in body if isinstance(s, S.Let)]
        spec_level = set().union(*(free_names(e) for st in S.walk(body) for e in stmt_exprs(st)))
        if (spec_level - names - {let.name for let in lets}) & self.local:
            return Unfoldable("map", f"block `{bdef.name}` reads a spec param that this body rebinds")
        return self.body_term(body, call_binding(bdef, call))

    def body_term(self, body: tuple, binding: dict) -> Term | Unfoldable | None:
        """The term of a body that is one foldable statement or one per-channel scale, once its
        `if`s are decided by the values they have here (a call's arguments)."""
        binding = dict(binding)
        for let in (s for s in body if isinstance(s, S.Let)):
            binding[let.name] = subst(let.value, binding)
        body = self.decide_ifs(body, binding)
        if body is None:
            return None
        rest = [s for s in body if not isinstance(s, (S.Let, S.Pass))]
        if len(rest) == 2 and isinstance(rest[1], S.Assign):
            return self.scale_term(rest, 1, binding)
        if len(rest) != 1 or not plain(rest[0]):
            return None
        st = rest[0]
        if isinstance(st, S.Layer) and binding:
            st = subst_layer(st, binding)
        return self.term(st)

    def decide_ifs(self, body: tuple, binding: dict) -> tuple | None:
        """`body` with every top-level `if` replaced by its chosen arm; None if one is undecided."""
        out: list = []
        for st in body:
            if not isinstance(st, S.If):
                out.append(st)
                continue
            chosen = st.orelse or ()
            for test, arm in st.arms:
                vals = self.values(subst(test, binding))
                if vals is None or len({bool(v) for v in vals}) != 1:
                    return None
                if vals[0]:
                    chosen = arm
                    break
            inner = self.decide_ifs(chosen, binding)
            if inner is None:
                return None
            out.extend(inner)
        return tuple(out)

    def scale_term(self, stmts, i: int, binding: dict):
        """`x = x * w` (or `w * x`, `w[:, none, none]`) for a weight `w` bound in `stmts`: a
        diagonal term, and the index of the weight's statement."""
        st = stmts[i]
        if not (isinstance(st, S.Assign) and st.targets == ("x",) and isinstance(st.value, S.BinOp)
                and st.value.op == "*"):
            return None
        left, right = st.value.left, st.value.right
        view = right if isinstance(left, S.Name) and left.id == "x" else left
        other = left if view is right else right
        if not (isinstance(other, S.Name) and other.id == "x"):
            return None
        found = self.weight_view(view, stmts[:i], binding)
        return None if found is None else found[0]

    def weight_view(self, view: S.Expr, before, binding: dict) -> tuple[Term | Unfoldable, int] | None:
        """A per-channel view of a weight bound by a source statement in `before`, as a diagonal
        term, and that statement's index; None when `view` is no weight of this body."""
        name, subs = (view.value, view.subs) if isinstance(view, S.Index) else (view, None)
        if not isinstance(name, S.Name):
            return None
        j = next((k for k in range(len(before) - 1, -1, -1) if name.id in binds(before[k])), None)
        if j is None or not is_weight(before[j]):
            return None
        call = before[j].value
        shape = call.args[0] if call.args else next((k.value for k in call.kwargs if k.name == "shape"), None)
        values = self.values(subst(shape, binding)) if shape is not None else None
        if values is None:
            return Unfoldable("scale", "its shape is not known in every instance"), j
        views = [view_shape(list(v), subs) for v in values]
        if any(v is None for v in views):
            return Unfoldable("scale", "indexed with more than `:` and `none`"), j
        if all(d == 1 for v in views for d in v):  # one number for every channel
            return Term(("scale", name.id), f"`{name.id}`", sort="scale"), j
        axes = {per_channel_axis(v) for v in views}
        if len(axes) != 1 or None in axes:
            return Unfoldable("scale", f"shape {list(values[0])} is not one value per channel"), j
        channels = tuple(max(v) for v in views)
        return Term(("scale", name.id), f"`{name.id}`", channels=channels, axis=axes.pop(), sort="scale"), j


# ---------------------------------------------------------------- weights and their views


def is_weight(st) -> bool:
    """`w = weight(...)` or a persistent buffer: a tensor the state_dict holds."""
    if not (isinstance(st, S.Assign) and len(st.targets) == 1 and isinstance(st.value, S.Call)
            and isinstance(st.value.func, S.Name)):
        return False
    op = OPS.get(st.value.func.id)
    if op is None or not op.has("source"):
        return False
    a = Attrs({**defaults(op), "shape": (1,)})
    for k in st.value.kwargs:  # a buffer's `persistent` decides whether the state_dict has it
        if isinstance(k.value, S.Const):
            a[k.name] = k.value.value
    return bool(op.params(a) or op.buffers(a))


def view_shape(shape: list, subs) -> list | None:
    """The shape of `w[subs]` when every subscript is `:` or `none`."""
    if subs is None:
        return shape
    out, rest = [], list(shape)
    for sub in subs:
        if isinstance(sub, S.Const) and sub.value is None:
            out.append(1)
        elif isinstance(sub, S.Slice) and sub.lo is None and sub.hi is None and sub.step is None and rest:
            out.append(rest.pop(0))
        else:
            return None
    return out + rest


def per_channel_axis(shape: list) -> int | None:
    """The one axis (from the end) of a broadcast shape that is not 1, if there is exactly one."""
    axes = [k - len(shape) for k, d in enumerate(shape) if d != 1]
    return axes[0] if len(axes) == 1 else None
