"""Reductions over axes (sum, mean, amax, amin, prod, var, std, norm) and `normalize`.

Every reduction takes the axes as `dim` (one int or a list) and `keepdim`, as torch's tensor
methods do, and never reduces over the batch axis (a per-sample model mixes no samples). fvcore
counts none of them (they are 0 MACs). `sum` shares its name with the builtin that adds a list:
`sum(list)` is the builtin, `sum(t, dim)` this op (see `archlang.lower.plan_call`).
"""

from __future__ import annotations

from .. import pycode as P
from ..dtypes import BOOL, LONG
from ..shapes import Batch, ShapeError, norm_axis
from . import Arg, OpDef, boolean, integer, ints, non_negative_number, number, positive_number, register


def reduce_shape(a, ins):
    (x,) = ins
    dims = a.dim if isinstance(a.dim, tuple) else (a.dim,)
    if not dims:
        raise ShapeError("give the axes to reduce (an empty list would reduce the batch too)")
    axes = [norm_axis(d, len(x)) for d in dims]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"the axes {list(dims)} name one axis twice")
    if any(isinstance(x[i], Batch) for i in axes):
        raise ShapeError("cannot reduce over the batch axis")
    return tuple((1 if i in axes else d) for i, d in enumerate(x) if a.keepdim or i not in axes)


def _keepdim(a) -> dict:
    return {} if a["keepdim"].is_const and a["keepdim"].const is False else {"keepdim": a["keepdim"]}


def _reduce(name: str, doc: str, extra: tuple[Arg, ...] = (), dtype=None, call=None, shape=reduce_shape) -> OpDef:
    """A reduction emitted as the tensor method `t.name(*extra, dim, keepdim=...)`."""

    def method(a, ins):
        pre = [a[x.name] for x in extra]
        return P.call(P.attr(ins[0], name), *pre, a["dim"], **_keepdim(a))

    return OpDef(name, "function", (*extra, Arg("dim", check=ints), Arg("keepdim", False, boolean)),
                 shape=shape, call=call or method, doc=doc, traits=frozenset({"reduction"}), dtype=dtype,
                 fx=(f"call_method:{name}",))


def _counting(a, dtypes):
    """sum and prod of masks count: bool becomes long, as in torch."""
    return LONG if dtypes[0] == BOOL else dtypes[0]


def _prod_shape(a, ins):
    if isinstance(a.dim, tuple) and len(a.dim) != 1:
        raise ShapeError(f"prod reduces one axis at a time, got {list(a.dim)}",
                         hint="nest the calls: prod(prod(t, 3), 2)")
    return reduce_shape(a, ins)


def _prod_call(a, ins):
    dim = a["dim"]
    one = P.lit(dim.const[0]) if dim.is_const and isinstance(dim.const, tuple) else dim  # [3] is 3
    return P.call(P.attr(ins[0], "prod"), one, **_keepdim(a))


def _spread_call(name: str):
    """var/std: `t.var(dim, correction=..., keepdim=...)`, defaults left out."""

    def call(a, ins):
        kw = {"correction": a["correction"]} if not (a["correction"].is_const and a["correction"].const == 1) else {}
        return P.call(P.attr(ins[0], name), a["dim"], **kw, **_keepdim(a))
    return call


def _spread(name: str, doc: str) -> OpDef:
    return OpDef(name, "function", (Arg("dim", check=ints), Arg("correction", 1, non_negative_number),
                                    Arg("keepdim", False, boolean)), shape=reduce_shape,
                 call=_spread_call(name), doc=doc, traits=frozenset({"reduction"}), fx=(f"call_method:{name}",))


def _normalize_shape(a, ins):
    (x,) = ins
    axis = norm_axis(a.dim, len(x))
    if isinstance(x[axis], Batch):
        raise ShapeError("cannot normalize over the batch axis")
    return x


def _normalize_call(a, ins):
    kw = {k: a[k] for k, v in (("p", 2.0), ("dim", 1), ("eps", 1e-12)) if not (a[k].is_const and a[k].const == v)}
    return P.call("F.normalize", ins[0], **kw)


register(
    _reduce("sum", "Sum over axes (`sum(t, dim)`; `sum(list)` is the builtin); bool counts as long.",
            dtype=_counting),
    _reduce("mean", "Mean over axes (fvcore counts it as 0)."),
    _reduce("amax", "Maximum over axes.", dtype=lambda a, d: d[0]),
    _reduce("amin", "Minimum over axes.", dtype=lambda a, d: d[0]),
    _reduce("prod", "Product over one axis (as torch's prod); bool counts as long.", dtype=_counting,
            shape=_prod_shape, call=_prod_call),
    _spread("var", "Variance over axes; correction=1 divides by n - 1 (torch's default), 0 by n."),
    _spread("std", "Standard deviation over axes; correction as for var."),
    _reduce("norm", "Vector p-norm over axes.", extra=(Arg("p", 2, number),)),
    OpDef("normalize", "function",
          (Arg("p", 2.0, positive_number), Arg("dim", 1, integer), Arg("eps", 1e-12, non_negative_number)),
          shape=_normalize_shape, call=_normalize_call, traits=frozenset({"norm"}), fx=("call_function:normalize",),
          doc="x / max(‖x‖_p, eps) along `dim`, as F.normalize (fvcore counts it as 0)."),
)
