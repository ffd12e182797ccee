"""Syntax helpers for fusion: which statements map x to x, which names they bind and read,
module paths from labels, and substituting a call's arguments into a block's statements."""

from __future__ import annotations

import dataclasses
from collections import Counter

from archlang import syntax as S
from archlang.ops import OPS


def plain(st) -> bool:
    """A statement that maps x to x: an unbound layer or a labelled group."""
    if isinstance(st, S.Layer):
        return st.inputs is None and st.targets is None
    return isinstance(st, S.Group)


def label_path(label: S.Label | None) -> str | None:
    """The module path a label spells relative to its body, if static (`c`, `c[0]`, not `c[i]`)."""
    if label is None:
        return None
    if label.index is None:
        return label.name
    if isinstance(label.index, S.Const) and isinstance(label.index.value, int) \
            and not isinstance(label.index.value, bool):
        return f"{label.name}.{label.index.value}"
    return None


def label_text(st) -> str:
    label = getattr(st, "label", None)
    return f"`{label.name}`" if label is not None else f"`{st.callee}`"


def with_bias(st: S.Layer) -> S.Layer:
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


def arg_exprs(st: S.Layer) -> tuple:
    return (*st.args, *(k.value for k in st.kwargs))


def stmt_exprs(st) -> list:
    """The expressions a statement holds directly (not those of nested bodies)."""
    if isinstance(st, S.Layer):
        index = [st.label.index] if st.label is not None and st.label.index is not None else []
        return [*arg_exprs(st), *(st.inputs or ()), *index]
    if isinstance(st, (S.Assign, S.Let, S.Return)):
        return [st.value]
    if isinstance(st, S.If):
        return [test for test, _ in st.arms]
    if isinstance(st, S.For):
        return [st.start, st.stop]
    return []


def free_names(e) -> set[str]:
    """Names an expression reads."""
    return {sub.id for sub in S.subexprs(e) if isinstance(sub, S.Name)} if isinstance(e, S.Expr) else set()


def call_binding(bdef: S.BlockDef, call: S.Layer) -> dict[str, S.Expr]:
    """Block parameter -> the caller's expression for it (defaults included)."""
    binding: dict[str, S.Expr] = {}
    for p, e in zip(bdef.params, call.args):
        binding[p.name] = e
    for k in call.kwargs:
        binding[k.name] = k.value
    for p in bdef.params:
        if p.name not in binding and p.default is not None:
            binding[p.name] = p.default
    return binding


def subst(e, binding: dict[str, S.Expr]):
    """`e` with names replaced by the expressions `binding` gives them."""
    if isinstance(e, S.Name):
        return binding.get(e.id, e)
    if not binding or not dataclasses.is_dataclass(e):
        return e
    changes = {}
    for f in dataclasses.fields(e):
        v = getattr(e, f.name)
        if isinstance(v, S.Expr):
            changes[f.name] = subst(v, binding)
        elif isinstance(v, tuple) and v and isinstance(v[0], (S.Expr, S.Kwarg)):
            changes[f.name] = tuple(subst(x, binding) if isinstance(x, S.Expr)
                                    else dataclasses.replace(x, value=subst(x.value, binding)) for x in v)
    return dataclasses.replace(e, **changes) if changes else e


def subst_layer(st: S.Layer, binding: dict[str, S.Expr]) -> S.Layer:
    return dataclasses.replace(st, args=tuple(subst(a, binding) for a in st.args),
                               kwargs=tuple(dataclasses.replace(k, value=subst(k.value, binding)) for k in st.kwargs))


def bound_names(body) -> Counter:
    """How often each name is bound by a let or a loop variable anywhere in a body."""
    out: Counter = Counter()
    for st in body:
        if isinstance(st, S.Let):
            out[st.name] += 1
        if isinstance(st, S.For) and st.var:
            out[st.var] += 1
        for sub in S.sub_bodies(st):
            out += bound_names(sub)
    return out


# ---------------------------------------------------------------- tensor names a statement uses


def binds(st, definite: bool = False) -> set[str]:
    """Names a statement (re)binds: with `definite`, only those it always rebinds, else also
    those bound in nested bodies that run in place (an `if` arm, a loop body)."""
    if isinstance(st, S.Layer):
        return set(st.targets) if st.targets is not None else {"x"}
    if isinstance(st, S.Assign):
        return set(st.targets)
    if isinstance(st, S.Let):
        return {st.name}
    if isinstance(st, S.Group):
        return {"x"}
    out = {"x"} if isinstance(st, (S.Residual, S.Branches)) else set()
    if not definite:
        for body in S.own_bodies(st):
            for sub in body:
                out |= binds(sub)
    return out


def uses(name: str, st) -> int:
    """How many times a statement reads `name` (a plain layer or block reads `x` once)."""
    n = sum(1 for e in stmt_exprs(st) for sub in S.subexprs(e) if isinstance(sub, S.Name) and sub.id == name)
    if name == "x" and (plain(st) or isinstance(st, (S.Residual, S.Branches))):
        n += 1
    for body in S.sub_bodies(st):
        n += sum(uses(name, sub) for sub in body)
    return n
