"""Comparisons and selection: masks from `<` `==` ..., `where`, `masked_fill`, `abs`, `clamp`, `to`.

Comparisons of tensors (with each other, a number or a run-time size) give bool masks; `where`
and `masked_fill` pick elements by a mask, which is how attention masks are built
(`masked_fill(attn, mask, -100.0)`); `to` converts element types (`to(mask, "long")`). All are
element-wise and free in fvcore's count. Masks are checked to be bool at compile time.
"""

from __future__ import annotations

from .. import pycode as P
from ..dtypes import BOOL, CONVERT, FLOAT, LONG, check_name, need, promote, scalar_dtype
from ..shapes import ShapeError, broadcast, fmt
from . import Arg, OpDef, number, one_of, operands, optional, register
from .tensor import _binary

COMPARISONS = (("lt", "<"), ("le", "<="), ("eq", "=="), ("ne", "!="), ("gt", ">"), ("ge", ">="))


def _compare(name: str, sym: str) -> OpDef:
    return _binary(name, f"a {sym} b", name, commutative=name in ("eq", "ne"), dtype=lambda a, dtypes: BOOL,
                   traits={"compare"},
                   doc=f"Element-wise `a {sym} b` with broadcasting (b may be a number or a run-time "
                       "size): a bool mask.")


def _where_shape(a, ins):
    shapes = operands(a, ins, 3, lambda v: ())
    return broadcast(broadcast(shapes[0], shapes[1]), shapes[2])


def _where_dtype(a, dtypes):
    cond, x, y = operands(a, dtypes, 3, scalar_dtype)
    need("where", cond, (BOOL,), "conditions")
    return promote(x, y)


def _masked_fill_shape(a, ins):
    x, mask = ins
    if broadcast(x, mask) != x:
        raise ShapeError(f"masked_fill: the mask {fmt(mask)} must broadcast to the tensor's shape {fmt(x)}")
    return x


def _masked_fill_dtype(a, dtypes):
    need("masked_fill", dtypes[1], (BOOL,), "masks")
    return dtypes[0]


def _clamp_shape(a, ins):
    lo, hi = a.min, a.max  # numbers or none: their Arg checks
    if lo is None and hi is None:
        raise ShapeError("clamp needs min, max or both")
    if lo is not None and hi is not None and lo > hi:
        raise ShapeError(f"clamp: min {lo} is above max {hi}")
    return ins[0]


def _clamp_dtype(a, dtypes):
    need("clamp", dtypes[0], (LONG, FLOAT))
    return promote(dtypes[0], *(scalar_dtype(v) for v in (a.min, a.max) if v is not None))


def _clamp_call(a, ins):
    kw = {k: a[k] for k in ("min", "max") if not (a[k].is_const and a[k].const is None)}
    return P.call(P.attr(ins[0], "clamp"), **kw)


def _abs_dtype(a, dtypes):
    need("abs", dtypes[0], (LONG, FLOAT))
    return dtypes[0]


def _to_dtype(a, dtypes):
    return check_name(a.dtype)


def _to_call(a, ins):
    return P.call(P.attr(ins[0], CONVERT[a["dtype"].const]))  # a literal (OpDef.literal), checked


register(
    *(_compare(n, s) for n, s in COMPARISONS),
    OpDef("where", "function", (), shape=_where_shape, n_inputs=3, scalars=(1, 2), dtype=_where_dtype,
          call=lambda a, ins: P.call("torch.where", *ins), traits=frozenset({"select"}),
          fx=("call_function:where",),
          doc="where(mask, a, b): a where the bool mask holds, else b, with broadcasting; a and b "
              "may be numbers."),
    OpDef("masked_fill", "function", (Arg("value", check=number),), shape=_masked_fill_shape, n_inputs=2,
          dtype=_masked_fill_dtype, traits=frozenset({"select"}), fx=("call_method:masked_fill",),
          call=lambda a, ins: P.call(P.attr(ins[0], "masked_fill"), ins[1], a["value"]),
          doc="masked_fill(t, mask, value): t with `value` where the bool mask (broadcast to t) holds."),
    OpDef("abs", "function", (), shape=lambda a, ins: ins[0], dtype=_abs_dtype, traits=frozenset({"elementwise"}),
          fx=("call_function:abs",),
          call=lambda a, ins: P.call("abs", ins[0]),
          doc="Element-wise |t| (`abs` of a number is the builtin)."),
    OpDef("clamp", "function", (Arg("min", None, optional(number)), Arg("max", None, optional(number))),
          shape=_clamp_shape, dtype=_clamp_dtype, call=_clamp_call, traits=frozenset({"elementwise"}),
          fx=("call_method:clamp",),
          doc="Limit every element to [min, max]; either bound may be none."),
    OpDef("to", "function", (Arg("dtype", check=one_of(*CONVERT)),), shape=lambda a, ins: ins[0],
          dtype=_to_dtype, call=_to_call, traits=frozenset({"elementwise"}), literal={"dtype": tuple(CONVERT)},
          fx=tuple(f"call_method:{m}" for m in CONVERT.values()),
          fx_of=lambda a: (f"call_method:{CONVERT[a.dtype]}",),
          doc='Convert the element type: "float", "long" (int64, for indices) or "bool".'),
)
