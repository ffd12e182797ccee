"""2-D convolution over NCHW tensors, with windows as ints or pairs and padding as the models have it.

Padding (see `padding.py`): none is timm's symmetric padding (the default, kept for every existing
spec), an int or pair is symmetric, "valid" is none at all, and "same" is TensorFlow's SAME:
static padding in nn.Conv2d when it is one constant, else the emitted `Conv2dSame` module pads
from the input size in forward (the state_dict keys are nn.Conv2d's, as with timm's Conv2dSame).
"""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError, fmt, numel
from . import Arg, OpDef, boolean, positive_int, register
from .padding import padding_value, pads, pair, positive_pair, static_same, symmetric_code, window_out
from .padding import same_padding as same_padding  # re-exported: where fusion and its tests look


def check_nchw(ins, what: str):
    (x,) = ins
    if len(x) != 4:
        raise ShapeError(f"{what} expects an NCHW tensor, got {fmt(x)}",
                         hint="rearrange channels-last tensors with rearrange(\"b h w c -> b c h w\")")
    return x


def _conv_shape(a, ins):
    n, c, h, w = check_nchw(ins, "conv2d")
    if c != a.in_channels:
        raise ShapeError(f"conv2d expects {a.in_channels} input channels, got {c} (input {fmt(ins[0])})")
    for side in ("in_channels", "out_channels"):
        if a[side] % a.groups:
            raise ShapeError(f"conv2d {side}={a[side]} is not divisible by groups={a.groups}")
    k, s, d = pair(a.kernel_size), pair(a.stride), pair(a.dilation)
    (top, bottom), (left, right) = pads(a.padding, (h, w), a.kernel_size, a.stride, a.dilation)
    return (n, a.out_channels, window_out(h, k[0], s[0], d[0], top, bottom, what="conv2d"),
            window_out(w, k[1], s[1], d[1], left, right, what="conv2d"))


def _conv_params(a):
    kh, kw = pair(a.kernel_size)
    out = {"weight": (a.out_channels, a.in_channels // a.groups, kh, kw)}
    if a.bias:
        out["bias"] = (a.out_channels,)
    return out


def _conv_cost(a, ins, out):
    kh, kw = pair(a.kernel_size)
    return numel(out) * (a.in_channels // a.groups) * kh * kw


_TORCH_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}


def _ctor(cls: str, a: dict[str, P.Code], padding: P.Code) -> P.Code:
    given = {**a, "padding": padding}
    kw = {k: given[k] for k, d in _TORCH_DEFAULTS.items() if not (given[k].is_const and given[k].const == d)}
    return P.call(cls, a["in_channels"], a["out_channels"], a["kernel_size"], **kw)


def _conv_init(a: dict[str, P.Code]) -> P.Code:
    pad = a["padding"]
    if not pad.is_const:
        # a name may hold any padding form: choose when the module is built
        plain = _ctor("nn.Conv2d", a, P.cond(symmetric_code(a), P.binop("is", pad, P.lit(None)), pad))
        return P.cond(_ctor("Conv2dSame", a, P.lit(0)), P.binop("==", pad, P.lit("same")), plain)
    if pad.const == "same":
        static = static_same(a)
        return _ctor("nn.Conv2d", a, static) if static is not None else _ctor("Conv2dSame", a, P.lit(0))
    if pad.const == "valid":
        return _ctor("nn.Conv2d", a, P.lit(0))
    return _ctor("nn.Conv2d", a, symmetric_code(a) if pad.const is None else pad)


CONV2D = OpDef(
    "conv2d", "module",
    (Arg("in_channels", check=positive_int), Arg("out_channels", check=positive_int),
     Arg("kernel_size", check=positive_pair), Arg("stride", 1, positive_pair),
     Arg("padding", None, padding_value(allow_none=True)), Arg("dilation", 1, positive_pair),
     Arg("groups", 1, positive_int), Arg("bias", True, boolean)),
    shape=_conv_shape, params=_conv_params, cost=_conv_cost, init=_conv_init,
    helpers=("Conv2dSame", "pad_same", "symmetric_padding"),
    doc="2-D convolution (nn.Conv2d); kernel_size, stride, dilation and padding are ints or pairs [h, w]. "
        "padding: none (timm's symmetric ((stride - 1) + dilation * (kernel_size - 1)) // 2), a size, "
        "\"valid\" (0) or \"same\" (TensorFlow's SAME: ceil(size / stride) outputs, the odd pixel padded "
        "after; computed from the input size in forward unless stride 1 makes it constant). "
        "Cost: out elements * in_channels / groups * kh * kw.",
    traits=frozenset({"conv", "affine_map"}), channel_axis=1, fx=("call_module:Conv2d",),
    aliases=("Conv2d", "conv", "conv_2d", "convolution", "Conv2dSame"),
)

register(CONV2D)
