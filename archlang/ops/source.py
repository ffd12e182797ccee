"""Ops that create tensors: the model input, learned weights and buffers."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError
from . import Arg, OpDef, boolean, number, one_of, register, sizes

INITS = ("zeros", "ones", "normal", "trunc_normal")


def _shape(a, ins):
    if any((not isinstance(d, int)) or d < 1 for d in a.shape):
        raise ShapeError(f"a weight's shape must be positive ints, got {list(a.shape)}")
    return tuple(a.shape)


def init_tensor(a: dict[str, P.Code]) -> P.Code:
    """Emitted expression for a freshly initialised tensor of the given shape."""
    shape, init, std = a["shape"], a["init"], a["std"]
    value = init.const if init.is_const else None
    if value == "zeros" or value == 0:
        return P.call("torch.zeros", shape)
    if value == "ones" or (value == 1 and not isinstance(value, bool)):
        return P.call("torch.ones", shape)
    if value == "normal":
        return P.binop("*", P.call("torch.randn", shape), std)
    if value == "trunc_normal":
        return P.call("nn.init.trunc_normal_", P.call("torch.empty", shape), std=std)
    if isinstance(value, tuple):  # a literal list of values (ints stay ints: index tables)
        values = P.call("torch.tensor", init)
        flat = shape.is_const and len(shape.const) == 1 and not any(isinstance(v, tuple) for v in value)
        return values if flat else P.call(P.attr(values, "reshape"), shape)
    return P.call("torch.full", shape, init)


def _numbers(v) -> bool:
    return type(v) in (int, float) or (type(v) is tuple and all(_numbers(x) for x in v))


def _init(v):
    """A named initialiser, a number, or a (nested) list of numbers, one per element."""
    named = one_of(*INITS, numbers=True)(v)
    return None if named is None or (type(v) is tuple and _numbers(v)) else named + ", or a list of numbers"


_ARGS = (Arg("shape", check=sizes), Arg("init", "zeros", _init), Arg("std", 0.02, number))

register(
    OpDef("weight", "source", _ARGS, shape=_shape, n_inputs=0,
          params=lambda a: {"": tuple(a.shape)},
          init=lambda a: P.call("nn.Parameter", P.call(P.attr(init_tensor(a), "float"))
                                if a["init"].is_const and isinstance(a["init"].const, tuple) else init_tensor(a)),
          doc="A learned tensor (nn.Parameter) named by the variable it is assigned to. "
              "init: a number, or \"zeros\", \"ones\", \"normal\", \"trunc_normal\" (with std).",
          traits=frozenset({"source", "state", "learned"}), fx=("get_attr",)),
    OpDef("buffer", "source", (*_ARGS, Arg("persistent", True, boolean)), shape=_shape, n_inputs=0,
          buffers=lambda a: {"": tuple(a.shape)} if a.persistent else {},
          init=init_tensor,
          doc="A tensor that is state but not learned (register_buffer); `buffer(expr)` with a build-time "
              "tensor (arange, lists, arithmetic) computes its values in __init__.",
          traits=frozenset({"source", "state"}), fx=("get_attr",)),
    OpDef("input", "source", (Arg("shape"),), shape=_shape, n_inputs=0, syntax="input [B, C, H, W]",
          doc="The model input (the forward argument).", traits=frozenset({"source", "model_input"}),
          fx=("placeholder",)),
)
