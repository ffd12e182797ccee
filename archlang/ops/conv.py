"""2-D convolution and pooling over NCHW tensors."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError, fmt, numel
from . import Arg, OpDef, boolean, non_negative_int, omit_defaults, optional, positive_int, register


def same_padding(k: int, stride: int = 1, dilation: int = 1) -> int:
    """The symmetric padding timm uses for 'same'-style convolutions."""
    return ((stride - 1) + dilation * (k - 1)) // 2


def padding_code(a) -> P.Code:
    """Emitted padding: explicit when given, else the same_padding formula, folded if literal."""
    if not (a["padding"].is_const and a["padding"].const is None):
        return a["padding"]
    s, d, k = a["stride"], a["dilation"], a["kernel_size"]
    if s.is_const and d.is_const and d.const == 1:
        # ((s - 1) + (k - 1)) // 2, written the way a person would: (k - 1) // 2, k // 2, ...
        shift = s.const - 2
        inner = P.binop("+", k, P.lit(shift)) if shift >= 0 else P.binop("-", k, P.lit(-shift))
    else:
        inner = P.binop("+", P.binop("-", s, P.lit(1)), P.binop("*", d, P.binop("-", k, P.lit(1))))
    return P.binop("//", inner, P.lit(2))


def _spatial(h: int, k: int, s: int, p: int, d: int, what: str) -> int:
    out = (h + 2 * p - d * (k - 1) - 1) // s + 1
    if out < 1:
        raise ShapeError(f"{what}: a {h}-pixel axis is too small for kernel {k} (stride {s}, padding {p})",
                         hint="use a larger input size")
    return out


def _pad(a) -> int:
    return same_padding(a.kernel_size, a.stride, a.dilation) if a.padding is None else a.padding


def _check_nchw(ins, what: str):
    (x,) = ins
    if len(x) != 4:
        raise ShapeError(f"{what} expects an NCHW tensor, got {fmt(x)}",
                         hint="rearrange channels-last tensors with rearrange(\"b h w c -> b c h w\")")
    return x


def _conv_shape(a, ins):
    n, c, h, w = _check_nchw(ins, "conv2d")
    if c != a.in_channels:
        raise ShapeError(f"conv2d expects {a.in_channels} input channels, got {c} (input {fmt(ins[0])})")
    for side in ("in_channels", "out_channels"):
        if a[side] % a.groups:
            raise ShapeError(f"conv2d {side}={a[side]} is not divisible by groups={a.groups}")
    p = _pad(a)
    oh = _spatial(h, a.kernel_size, a.stride, p, a.dilation, "conv2d")
    ow = _spatial(w, a.kernel_size, a.stride, p, a.dilation, "conv2d")
    return (n, a.out_channels, oh, ow)


def _conv_params(a):
    k = a.kernel_size
    out = {"weight": (a.out_channels, a.in_channels // a.groups, k, k)}
    if a.bias:
        out["bias"] = (a.out_channels,)
    return out


_TORCH_CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}


def _conv_init(a):
    given = {**a, "padding": padding_code(a)}
    kw = {k: given[k] for k, d in _TORCH_CONV_DEFAULTS.items()
          if not (given[k].is_const and given[k].const == d)}
    return P.call("nn.Conv2d", a["in_channels"], a["out_channels"], a["kernel_size"], **kw)


CONV2D = OpDef(
    "conv2d", "module",
    (Arg("in_channels", check=positive_int), Arg("out_channels", check=positive_int),
     Arg("kernel_size", check=positive_int), Arg("stride", 1, positive_int),
     Arg("padding", None, optional(non_negative_int)), Arg("dilation", 1, positive_int),
     Arg("groups", 1, positive_int), Arg("bias", True, boolean)),
    shape=_conv_shape, params=_conv_params,
    cost=lambda a, ins, out: numel(out) * (a.in_channels // a.groups) * a.kernel_size ** 2,
    init=_conv_init,
    doc="2-D convolution (nn.Conv2d). padding=none means timm's symmetric 'same' padding "
        "((stride - 1) + dilation * (kernel_size - 1)) // 2.",
    traits=frozenset({"conv", "affine_map"}), channel_axis=1, fx=("call_module:Conv2d",),
)


def _pool_shape(what):
    def rule(a, ins):
        n, c, h, w = _check_nchw(ins, what)
        s = a.stride if a.stride is not None else a.kernel_size
        return (n, c, _spatial(h, a.kernel_size, s, a.padding, 1, what),
                _spatial(w, a.kernel_size, s, a.padding, 1, what))
    return rule


def _pool_emit(cls: str, fn: str):
    def init(a):
        kw = omit_defaults(_POOLS[cls], a)
        k = kw.pop("kernel_size")
        return P.call(f"nn.{cls}", k, **kw)

    def call(a, ins):
        kw = omit_defaults(_POOLS[cls], a)
        k = kw.pop("kernel_size")
        return P.call(f"F.{fn}", ins[0], k, **kw)
    return init, call


_POOL_ARGS = (Arg("kernel_size", check=positive_int), Arg("stride", None, optional(positive_int)),
              Arg("padding", 0, non_negative_int))
_POOLS: dict[str, OpDef] = {}
for _name, _cls, _fn in (("avgpool2d", "AvgPool2d", "avg_pool2d"), ("maxpool2d", "MaxPool2d", "max_pool2d")):
    _init, _call = _pool_emit(_cls, _fn)
    _POOLS[_cls] = OpDef(_name, "act", _POOL_ARGS, shape=_pool_shape(_name), init=_init, call=_call,
                         doc=f"{_cls} over NCHW (fvcore counts it as 0).", traits=frozenset({"pool"}),
                         channel_axis=1, fx=(f"call_module:{_cls}", f"call_function:{_fn}"))


def _adaptive_shape(a, ins):
    n, c, h, w = _check_nchw(ins, "adaptive_avgpool2d")
    return (n, c, a.output_size, a.output_size)


ADAPTIVE = OpDef(
    "adaptive_avgpool2d", "act", (Arg("output_size", 1, positive_int),), shape=_adaptive_shape,
    cost=lambda a, ins, out: numel(ins[0]),
    init=lambda a: P.call("nn.AdaptiveAvgPool2d", a["output_size"]),
    call=lambda a, ins: P.call("F.adaptive_avg_pool2d", ins[0], a["output_size"]),
    doc="Adaptive average pooling to output_size x output_size (fvcore: 1 per input element).",
    traits=frozenset({"pool", "reduction"}), channel_axis=1,
    fx=("call_module:AdaptiveAvgPool2d", "call_function:adaptive_avg_pool2d"),
)

register(CONV2D, ADAPTIVE, *_POOLS.values())
