"""Fully connected layer over the last axis."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError, fmt, numel
from . import Arg, OpDef, boolean, positive_int, register


def _shape(a, ins):
    (x,) = ins
    if not x or x[-1] != a.in_features:
        raise ShapeError(f"linear expects {a.in_features} features on the last axis, got {fmt(x)}",
                         hint="channels-first maps need rearrange(\"b c h w -> b h w c\") first")
    return (*x[:-1], a.out_features)


def _params(a):
    out = {"weight": (a.out_features, a.in_features)}
    if a.bias:
        out["bias"] = (a.out_features,)
    return out


def _init(a):
    kw = {} if a["bias"].is_const and a["bias"].const is True else {"bias": a["bias"]}
    return P.call("nn.Linear", a["in_features"], a["out_features"], **kw)


register(OpDef(
    "linear", "module", (Arg("in_features", check=positive_int), Arg("out_features", check=positive_int),
                          Arg("bias", True, boolean)),
    shape=_shape, params=_params,
    cost=lambda a, ins, out: numel(out) * a.in_features,
    init=_init,
    doc="Linear map of the last axis (nn.Linear).",
    traits=frozenset({"linear", "affine_map"}), channel_axis=-1, fx=("call_module:Linear",),
    aliases=("Linear", "fc", "dense"),
))
