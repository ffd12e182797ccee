"""Element-wise math and tensor construction: what position tables (RoPE, sin-cos) are made of.

`arange` makes a position vector inside forward; its tensor argument only lends a device and a
dtype, so a table built from it follows the model across devices and needs no buffer. `sin`,
`cos`, `exp` and `log` are element-wise; `outer` makes a table from two vectors (positions times
frequencies); `stack` and `repeat_interleave` lay tables out (interleaved rotary pairs). None of
them owns parameters, and fvcore counts them as 0.
"""

from __future__ import annotations

from .. import pycode as P
from ..dtypes import LONG
from ..shapes import Batch, ShapeError, dim_mul, fmt, norm_axis
from . import Arg, OpDef, integer, one_of, optional, positive_int, register


def _arange_shape(a, ins):
    n = a.end
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ShapeError(f"arange needs a positive int length, got {n!r}")
    return (n,)


_TORCH_DTYPES = {"float": "torch.float32", "long": "torch.long"}


def _arange_call(a, ins):
    d = a["dtype"]
    named = None if d.is_const and d.const is None else P.name(_TORCH_DTYPES[d.const])
    if not ins:  # arange(n): a build-time tensor (long unless dtype says), computed in __init__
        return P.call("torch.arange", a["end"], **({"dtype": named} if named else {}))
    return P.call("torch.arange", a["end"], device=P.attr(ins[0], "device"), dtype=named or P.attr(ins[0], "dtype"))


def _unary(name: str, doc: str) -> OpDef:
    return OpDef(name, "function", (), shape=lambda a, ins: ins[0],
                 call=lambda a, ins: P.call(f"torch.{name}", ins[0]), doc=doc, traits=frozenset({"elementwise"}),
                 fx=(f"call_function:{name}",))


def _outer_shape(a, ins):
    u, v = ins
    if len(u) != 1 or len(v) != 1:
        raise ShapeError(f"outer takes two vectors (rank 1), got {fmt(u)} and {fmt(v)}",
                         hint="for batched tensors, broadcast instead: u[:, :, none] * v[:, none, :]")
    if isinstance(u[0], Batch) or isinstance(v[0], Batch):
        raise ShapeError("outer takes vectors without the batch axis")
    return (u[0], v[0])


def _stack_shape(a, ins):
    first = ins[0]
    for s in ins[1:]:
        if s != first:
            raise ShapeError(f"stack needs tensors of one shape, got {', '.join(fmt(t) for t in ins)}")
    axis = norm_axis(a.dim, len(first) + 1)
    return (*first[:axis], len(ins), *first[axis:])


def _stack_call(a, ins):
    items = P.Code("[" + ", ".join(str(i) for i in ins) + "]")
    if a["dim"].is_const and a["dim"].const == 0:
        return P.call("torch.stack", items)
    return P.call("torch.stack", items, dim=a["dim"])


def _repeat_shape(a, ins):
    x = list(ins[0])
    r = a.repeats
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ShapeError(f"repeat_interleave needs a positive int count, got {r!r}")
    axis = norm_axis(a.dim, len(x))
    if isinstance(x[axis], Batch):
        raise ShapeError("cannot repeat along the batch axis")
    x[axis] = dim_mul(x[axis], r)
    return tuple(x)


register(
    OpDef("arange", "function", (Arg("end", check=positive_int), Arg("dtype", None, optional(one_of(*_TORCH_DTYPES)))),
          shape=_arange_shape, call=_arange_call,
          doc="The vector [0, 1, ..., end - 1]: arange(x, 16) is computed in forward on the device of x "
              "(which lends nothing else) and its dtype; arange(16) is a build-time tensor (long) for "
              "buffers; dtype=\"long\" or \"float\" chooses the element type (long for indices).",
          traits=frozenset({"generator"}), literal={"dtype": tuple(_TORCH_DTYPES)},
          dtype=lambda a, dtypes: a.dtype or (dtypes[0] if dtypes else LONG), fx=("call_function:arange",)),
    _unary("sin", "Element-wise sine."),
    _unary("cos", "Element-wise cosine."),
    _unary("exp", "Element-wise exponential."),
    _unary("log", "Element-wise natural logarithm."),
    OpDef("outer", "function", (), shape=_outer_shape, n_inputs=2,
          call=lambda a, ins: P.call("torch.outer", *ins),
          doc="Outer product of two vectors: outer(u, v)[i, j] = u[i] * v[j] (torch.outer; fvcore counts 0).",
          traits=frozenset({"elementwise"}), fx=("call_function:outer",), aliases=("ger",)),
    OpDef("stack", "function", (Arg("dim", 0, integer),), shape=_stack_shape, n_inputs=-1, call=_stack_call,
          doc="Stack a list of same-shaped tensors along a new axis.", traits=frozenset({"concat"}),
          fx=("call_function:stack",)),
    OpDef("repeat_interleave", "function", (Arg("repeats", check=positive_int), Arg("dim", check=integer)),
          shape=_repeat_shape,
          call=lambda a, ins: P.call(P.attr(ins[0], "repeat_interleave"), a["repeats"], a["dim"]),
          doc="Repeat each entry of an axis `repeats` times in place: [a, b] -> [a, a, b, b].",
          traits=frozenset({"reshape"}), fx=("call_method:repeat_interleave",)),
)
