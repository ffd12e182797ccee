"""Pooling over NCHW maps: average and max windows, and adaptive average pooling.

Windows are ints or pairs; padding is a size, a pair, "valid" or "same" (TensorFlow's SAME, see
`padding.py`). With "same" that depends on the input size the emitted module pads first, with
zeros for average pooling (counted in the average whatever count_include_pad says, as timm's
AvgPool2dSame does) and with -inf for max pooling, then pools without padding; the helper
modules AvgPool2dSame / MaxPool2dSame keep nn.AvgPool2d / nn.MaxPool2d's arguments.
fvcore counts avg/max pooling as 0 and adaptive average pooling as 1 per input element.
"""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError, numel
from . import Arg, OpDef, omit_defaults, register
from . import padding as win
from .conv import check_nchw


def _stride(a):
    return a.kernel_size if a.stride is None else a.stride


def _pool_shape(what: str):
    def rule(a, ins):
        n, c, h, w = check_nchw(ins, what)
        for name in ("kernel_size", "dilation") if "dilation" in a else ("kernel_size",):
            win.check(a, name, win.positive_pair, what)
        if a.stride is not None:
            win.check(a, "stride", win.positive_pair, what)
        win.check(a, "padding", win.padding_value(allow_none=False), what)
        k, s, d = win.pair(a.kernel_size), win.pair(_stride(a)), win.pair(a.get("dilation", 1))
        if a.padding == "same" and not win.is_static_same(k, s, d):
            # padded in forward, then pooled without padding
            sizes = [size + sum(win.tf_same(size, kk, ss, dd)) for size, kk, ss, dd in zip((h, w), k, s, d)]
            return (n, c, *(win.window_out(size, kk, ss, dd, 0, 0, a.ceil_mode, what)
                            for size, kk, ss, dd in zip(sizes, k, s, d)))
        if a.padding == "same":
            p = tuple((dd * (kk - 1)) // 2 for kk, dd in zip(k, d))
        else:
            p = (0, 0) if a.padding == "valid" else win.pair(a.padding)
        for pp, kk in zip(p, k):
            if pp > kk // 2:  # PyTorch refuses it when the module runs
                raise ShapeError(f"{what} padding {pp} is more than half the kernel size {kk}",
                                 hint="pad with pad(...) first, or use a larger kernel")
        return (n, c, *(win.window_out(size, kk, ss, dd, pp, pp, a.ceil_mode, what)
                        for size, kk, ss, dd, pp in zip((h, w), k, s, d, p)))
    return rule


def _sized(pad: P.Code) -> P.Code:
    """A padding name's value as PyTorch's pools take it ("valid" is 0)."""
    return P.cond(P.lit(0), P.binop("==", pad, P.lit("valid")), pad)


def _pool_ops(name: str, cls: str, fn: str, args: tuple[Arg, ...], fill: P.Code | None, doc: str,
              aliases: tuple[str, ...]) -> OpDef:
    """One pooling op: its module (cls) and function (F.fn) forms, with "same" padding."""

    def settled(a):
        """The arguments with stride given and "same" made static when it can be."""
        s = a["kernel_size"] if a["stride"].is_const and a["stride"].const is None else a["stride"]
        return {**a, "stride": s, "dilation": a.get("dilation", P.lit(1))}

    def kwargs(a, padding: P.Code):
        kw = omit_defaults(op, {**a, "padding": padding})
        kw.pop("kernel_size")
        if padding.is_const and padding.const == "valid":
            kw.pop("padding", None)
        return kw

    def init(a):
        pad = a["padding"]
        same = P.call(f"{cls}Same", a["kernel_size"], **kwargs(a, P.lit(0)))
        if not pad.is_const:  # a name may hold any padding form: choose when the module is built
            plain = P.call(f"nn.{cls}", a["kernel_size"], **kwargs(a, _sized(pad)))
            return P.cond(same, P.binop("==", pad, P.lit("same")), plain)
        if pad.const == "same":
            static = win.static_same(settled(a))
            return same if static is None else P.call(f"nn.{cls}", a["kernel_size"], **kwargs(a, static))
        return P.call(f"nn.{cls}", a["kernel_size"], **kwargs(a, pad))

    def call(a, ins):
        pad, x = a["padding"], ins[0]
        full = settled(a)
        fill_kw = {} if fill is None else {"value": fill}
        extra = [full["dilation"]] if not (full["dilation"].is_const and full["dilation"].const == 1) else []
        padded = P.call("pad_same", x, a["kernel_size"], full["stride"], *extra, **fill_kw)
        same = P.call(f"F.{fn}", padded, a["kernel_size"], **kwargs(a, P.lit(0)))
        if not pad.is_const:
            plain = P.call(f"F.{fn}", x, a["kernel_size"], **kwargs(a, _sized(pad)))
            return P.cond(same, P.binop("==", pad, P.lit("same")), plain)
        if pad.const == "same":
            static = win.static_same(full)
            return same if static is None else P.call(f"F.{fn}", x, a["kernel_size"], **kwargs(a, static))
        return P.call(f"F.{fn}", x, a["kernel_size"], **kwargs(a, pad))

    op = OpDef(name, "act", args, shape=_pool_shape(name), init=init, call=call,
               helpers=(f"{cls}Same", "pad_same"), doc=doc, traits=frozenset({"pool"}), channel_axis=1,
               aliases=aliases)
    return op


AVGPOOL = _pool_ops(
    "avgpool2d", "AvgPool2d", "avg_pool2d",
    (Arg("kernel_size"), Arg("stride", None), Arg("padding", 0), Arg("ceil_mode", False),
     Arg("count_include_pad", True)), None,
    doc="Average pooling (nn.AvgPool2d); kernel_size, stride (none: the kernel) and padding are ints or pairs, "
        "padding may be \"same\" (zeros, counted, as timm's AvgPool2dSame) or \"valid\"; ceil_mode and "
        "count_include_pad as in PyTorch. fvcore counts it as 0.",
    aliases=("AvgPool2d", "avg_pool2d", "avgpool", "avg_pool", "AvgPool2dSame"),
)

MAXPOOL = _pool_ops(
    "maxpool2d", "MaxPool2d", "max_pool2d",
    (Arg("kernel_size"), Arg("stride", None), Arg("padding", 0), Arg("dilation", 1), Arg("ceil_mode", False)),
    P.call("float", P.lit("-inf")),
    doc="Max pooling (nn.MaxPool2d); kernel_size, stride (none: the kernel), padding and dilation are ints or "
        "pairs, padding may be \"same\" (padded with -inf) or \"valid\"; ceil_mode as in PyTorch. "
        "fvcore counts it as 0.",
    aliases=("MaxPool2d", "max_pool2d", "maxpool", "max_pool", "MaxPool2dSame"),
)


def _adaptive_shape(a, ins):
    n, c, h, w = check_nchw(ins, "adaptive_avgpool2d")
    win.check(a, "output_size", win.size_pair, "adaptive_avgpool2d")  # 0 is reported as an empty output
    return (n, c, *win.pair(a.output_size))


ADAPTIVE = OpDef(
    "adaptive_avgpool2d", "act", (Arg("output_size", 1),), shape=_adaptive_shape,
    cost=lambda a, ins, out: numel(ins[0]),
    init=lambda a: P.call("nn.AdaptiveAvgPool2d", a["output_size"]),
    call=lambda a, ins: P.call("F.adaptive_avg_pool2d", ins[0], a["output_size"]),
    doc="Adaptive average pooling to output_size (an int or a pair [h, w]); fvcore: 1 per input element.",
    traits=frozenset({"pool", "reduction"}), channel_axis=1,
    aliases=("AdaptiveAvgPool2d", "adaptive_avg_pool2d", "global_pool", "global_avg_pool", "gap"),
)

register(ADAPTIVE, AVGPOOL, MAXPOOL)
