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
    return P.call("torch.full", shape, init)


_ARGS = (Arg("shape", check=sizes), Arg("init", "zeros", one_of(*INITS, numbers=True)), Arg("std", 0.02, number))

register(
    OpDef("weight", "source", _ARGS, shape=_shape, n_inputs=0,
          params=lambda a: {"": tuple(a.shape)},
          init=lambda a: P.call("nn.Parameter", init_tensor(a)),
          doc="A learned tensor (nn.Parameter) named by the variable it is assigned to. "
              "init: a number, or \"zeros\", \"ones\", \"normal\", \"trunc_normal\" (with std).",
          traits=frozenset({"source", "state", "learned"}), fx=("get_attr",)),
    OpDef("buffer", "source", (*_ARGS, Arg("persistent", True, boolean)), shape=_shape, n_inputs=0,
          buffers=lambda a: {"": tuple(a.shape)} if a.persistent else {},
          init=init_tensor,
          doc="A tensor that is state but not learned (register_buffer).", traits=frozenset({"source", "state"}),
          fx=("get_attr",)),
    OpDef("input", "source", (Arg("shape"),), shape=_shape, n_inputs=0, syntax="input [B, C, H, W]",
          doc="The model input (the forward argument).", traits=frozenset({"source", "model_input"}),
          fx=("placeholder",)),
)
