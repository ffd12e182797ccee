"""Changing the size of spatial axes: explicit padding and interpolation.

`pad` is F.pad: amounts in F.pad's order (last axis first: [left, right, top, bottom, ...]),
asymmetric as written; mode "constant" (with `value`; negative amounts crop), "reflect",
"replicate" or "circular". `interpolate` is F.interpolate (nn.Upsample as a module): resizing
feature maps and position tables to a size or by a scale factor. fvcore counts padding as 0,
nearest upsampling of a map as 1 and bilinear as 4 per output element, the other modes as 0;
the cost rules follow it.
"""

from __future__ import annotations

import math

from .. import pycode as P
from ..shapes import Batch, ShapeError, fmt, numel
from ..values import show_value
from . import Arg, OpDef, boolean, int_list, number, one_of, optional, register

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _is_int(v) -> bool:
    return type(v) is int


def _pad_shape(a, ins):
    (x,) = ins
    amounts, mode = a.pad, a.mode
    if not amounts or len(amounts) % 2:
        raise ShapeError(f"pad takes an even-length list of ints (last axis first), got {show_value(amounts)}",
                         hint="[left, right] pads the last axis, [left, right, top, bottom] the last two")
    axes = len(amounts) // 2
    if axes > len(x):
        raise ShapeError(f"pad gives amounts for {axes} axes, but {fmt(x)} has {len(x)}")
    if mode != "constant":
        if a.value != 0:
            raise ShapeError(f"pad mode \"{mode}\" takes no value", hint="only mode \"constant\" fills with a value")
        if axes > 3 or len(x) not in (axes + 1, axes + 2):
            raise ShapeError(f"pad mode \"{mode}\" pads the last 1 to 3 axes of a tensor with one or two more "
                             f"axes; {axes} axes of {fmt(x)} cannot be padded so")
    out = list(x)
    for i in range(axes):
        axis = len(x) - 1 - i
        before, after = amounts[2 * i], amounts[2 * i + 1]
        if isinstance(x[axis], Batch):
            raise ShapeError("cannot pad the batch axis")
        if mode != "constant" and min(before, after) < 0:
            raise ShapeError(f"pad mode \"{mode}\" cannot crop (negative amounts)")
        if mode == "reflect" and max(before, after) >= x[axis]:
            raise ShapeError(f"reflect padding by {max(before, after)} needs an axis longer than that, "
                             f"but axis {axis} of {fmt(x)} has {x[axis]}")
        if mode == "circular" and max(before, after) > x[axis]:
            raise ShapeError(f"circular padding by {max(before, after)} wraps more than axis {axis} of {fmt(x)} holds")
        out[axis] = x[axis] + before + after
        if out[axis] < 1:
            raise ShapeError(f"pad crops axis {axis} of {fmt(x)} to nothing")
    return tuple(out)


def _pad_call(a, ins):
    kw = {}
    if not (a["mode"].is_const and a["mode"].const == "constant"):
        kw["mode"] = a["mode"]
    if not (a["value"].is_const and a["value"].const == 0):
        kw["value"] = a["value"]
    return P.call("F.pad", ins[0], a["pad"], **kw)


PAD = OpDef(
    "pad", "function", (Arg("pad", check=int_list), Arg("mode", "constant", one_of(*PAD_MODES)),
                        Arg("value", 0.0, number)),
    shape=_pad_shape, call=_pad_call,
    doc="F.pad: amounts [before, after] per axis, last axis first ([left, right, top, bottom] for a map), "
        "asymmetric as given; mode \"constant\" (fill with value; negative amounts crop), \"reflect\", "
        "\"replicate\" or \"circular\". fvcore counts it as 0.",
    traits=frozenset({"pad"}), fx=("call_function:pad",),
    aliases=("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "padding"),
)


# ---------------------------------------------------------------- interpolate

MODES = {"nearest": (3, 4, 5), "linear": (3,), "bilinear": (4,), "bicubic": (4,)}
_COST = {("nearest", 4): 1, ("bilinear", 4): 4}  # fvcore: upsample_nearest2d, upsample_bilinear2d


def _per_axis(numbers: bool):
    """Arg check: a positive int (number) or a list of them, one per spatial axis."""
    def ok(e):
        return (type(e) in (int, float) if numbers else _is_int(e)) and e > 0

    def check(v):
        if ok(v) or (isinstance(v, tuple) and v and all(map(ok, v))):
            return None
        return f"a positive {'number' if numbers else 'int'} or a list of them (one per spatial axis)"
    return check


def _spatial_list(v, n: int, what: str, numbers: bool):
    """An int (number) for every spatial axis, or a list of one per axis."""
    ok = (lambda e: type(e) in (int, float) and e > 0) if numbers else (lambda e: _is_int(e) and e > 0)
    items = v if isinstance(v, tuple) else (v,) * n
    if len(items) != n or not all(ok(e) for e in items):
        kind = "a positive number" if numbers else "a positive int"
        raise ShapeError(f"interpolate {what} must be {kind} or a list of {n} (one per spatial axis), "
                         f"got {show_value(v)}")
    return items


def _interp_shape(a, ins):
    (x,) = ins
    if len(x) not in MODES[a.mode]:
        ranks = " or ".join(str(r) for r in MODES[a.mode])
        raise ShapeError(f"interpolate mode \"{a.mode}\" takes a tensor of rank {ranks} ([N, C, ...spatial]), "
                         f"got {fmt(x)}")
    if a.align_corners is not None and a.mode == "nearest":
        raise ShapeError("align_corners is only for modes \"linear\", \"bilinear\" and \"bicubic\"",
                         hint="drop align_corners, or choose an interpolating mode")
    if (a.size is None) == (a.scale_factor is None):
        raise ShapeError("interpolate takes either size or scale_factor (exactly one)")
    n = len(x) - 2
    if any(isinstance(d, Batch) for d in x[2:]):
        raise ShapeError("cannot interpolate along the batch axis")
    if a.size is not None:
        sizes = _spatial_list(a.size, n, "size", numbers=False)
    else:
        # PyTorch truncates size * scale_factor (both positive: the floor)
        scales = _spatial_list(a.scale_factor, n, "scale_factor", numbers=True)
        sizes = tuple(math.floor(d * s) for d, s in zip(x[2:], scales))
        if min(sizes) < 1:
            raise ShapeError(f"interpolate by {show_value(a.scale_factor)} leaves no pixels of {fmt(x)}")
    return (*x[:2], *sizes)


def _interp_kwargs(a) -> dict[str, P.Code]:
    kw = {}
    for name in ("size", "scale_factor", "align_corners"):
        if not (a[name].is_const and a[name].const is None):
            kw[name] = a[name]
    if not (a["mode"].is_const and a["mode"].const == "nearest"):
        kw["mode"] = a["mode"]
    return {k: kw[k] for k in ("size", "scale_factor", "mode", "align_corners") if k in kw}


INTERPOLATE = OpDef(
    "interpolate", "act", (Arg("size", None, optional(_per_axis(False))),
                           Arg("scale_factor", None, optional(_per_axis(True))), Arg("mode", "nearest", one_of(*MODES)),
                           Arg("align_corners", None, optional(boolean))),
    shape=_interp_shape,
    cost=lambda a, ins, out: _COST.get((a.mode, len(out)), 0) * numel(out),
    init=lambda a: P.call("nn.Upsample", **_interp_kwargs(a)),
    call=lambda a, ins: P.call("F.interpolate", ins[0], **_interp_kwargs(a)),
    doc="Resize the spatial axes of [N, C, ...] to `size` or by `scale_factor` (ints/numbers or one per axis; "
        "PyTorch floors size * scale_factor), mode \"nearest\", \"linear\", \"bilinear\" or \"bicubic\", "
        "align_corners for the last three (F.interpolate; nn.Upsample as a module). fvcore: nearest 1 and "
        "bilinear 4 per output element of a map, other modes 0.",
    traits=frozenset({"resize"}), channel_axis=1, fx=("call_module:Upsample", "call_function:interpolate"),
    aliases=("Upsample", "upsample", "resize", "upsample_bilinear", "upsample_nearest"),
)

register(PAD, INTERPOLATE)
