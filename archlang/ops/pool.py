"""Pooling over NCHW maps: average and max windows, and adaptive average pooling.

Windows are ints or pairs; padding is a size, a pair, "valid" or "same" (TensorFlow's SAME, see
`padding.py`). "Same" follows timm's create_pool2d: where it is one constant PyTorch pads it
(`nn.AvgPool2d(3, 1, padding=1)`; count_include_pad applies), otherwise the input is padded in
forward, with zeros counted in the average (as timm's AvgPool2dSame) or with -inf for max
pooling. The emitted helpers `avg_pool2d_same` / `max_pool2d_same` (one torch.fx node each) and
the modules `AvgPool2dSame` / `MaxPool2dSame` (nn.AvgPool2d / nn.MaxPool2d with their arguments)
make that choice from their values, so it is the same whether the window is written as literals
or comes through a name. fvcore counts avg/max pooling as 0, adaptive average pooling as 1 per
input element.
"""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError, numel
from . import Arg, OpDef, boolean, omit_defaults, optional, register
from . import padding as win
from .conv import check_nchw


def _stride(a):
    return a.kernel_size if a.stride is None else a.stride


def _is_padded_in_forward(a) -> bool:
    return a.padding == "same" and not win.static_pool_same(a.kernel_size, _stride(a), a.get("dilation", 1))


def _pool_shape(what: str):
    def rule(a, ins):
        n, c, h, w = check_nchw(ins, what)
        k, s, d = win.pair(a.kernel_size), win.pair(_stride(a)), win.pair(a.get("dilation", 1))
        if _is_padded_in_forward(a):  # padded first, then pooled without padding
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


def _pool_op(name: str, cls: str, fn: str, args: tuple[Arg, ...], doc: str, aliases: tuple[str, ...]) -> OpDef:
    """One pooling op: its module (nn.cls) and function (F.fn) forms, with "same" padding."""

    def kwargs(a, padding: P.Code):
        kw = omit_defaults(op, {**a, "padding": padding})
        kw.pop("kernel_size")
        return kw

    def static(a) -> P.Code | None:
        """The constant "same" amounts to, for a literal window PyTorch can pad itself."""
        k, s = a["kernel_size"], a["stride"]
        s = k if s.is_const and s.const is None else s
        d = a.get("dilation", P.lit(1))
        if not (k.is_const and s.is_const and d.is_const) or not win.static_pool_same(k.const, s.const, d.const):
            return None
        return win.static_same({"kernel_size": k, "stride": s, "dilation": d})

    def init(a):
        pad = a["padding"]
        same = P.call(f"{cls}Same", a["kernel_size"], **kwargs(a, P.lit(0)))
        if not pad.is_const:  # a name may hold any padding form: choose when the module is built
            plain = P.call(f"nn.{cls}", a["kernel_size"], **kwargs(a, _sized(pad)))
            return P.cond(same, P.binop("==", pad, P.lit("same")), plain)
        if pad.const == "same":
            constant = static(a)
            return same if constant is None else P.call(f"nn.{cls}", a["kernel_size"], **kwargs(a, constant))
        return P.call(f"nn.{cls}", a["kernel_size"], **kwargs(a, _sized(pad)))

    def call(a, ins):
        pad, x = a["padding"], ins[0]
        stride = a["kernel_size"] if a["stride"].is_const and a["stride"].const is None else a["stride"]
        same = P.call(f"{fn}_same", x, a["kernel_size"], stride, **{k: v for k, v in kwargs(a, P.lit(0)).items()
                                                                      if k != "stride"})
        if not pad.is_const:
            plain = P.call(f"F.{fn}", x, a["kernel_size"], **kwargs(a, _sized(pad)))
            return P.cond(same, P.binop("==", pad, P.lit("same")), plain)
        if pad.const == "same":
            return same
        return P.call(f"F.{fn}", x, a["kernel_size"], **kwargs(a, _sized(pad)))

    def fx_of(a):
        function = f"{fn}_same" if a.padding == "same" else fn
        return (f"call_module:{cls}", f"call_function:{function}")

    op = OpDef(name, "act", args, shape=_pool_shape(name), init=init, call=call,
               helpers=(f"{cls}Same", f"{fn}_same", "pad_same"), doc=doc, traits=frozenset({"pool"}),
               channel_axis=1, fx=(f"call_module:{cls}", f"call_function:{fn}", f"call_function:{fn}_same"),
               fx_of=fx_of, aliases=aliases)
    return op


_WINDOW = (Arg("kernel_size", check=win.positive_pair), Arg("stride", None, optional(win.positive_pair)),
           Arg("padding", 0, win.padding_value(allow_none=False)))

AVGPOOL = _pool_op(
    "avgpool2d", "AvgPool2d", "avg_pool2d",
    (*_WINDOW, Arg("ceil_mode", False, boolean), Arg("count_include_pad", True, boolean)),
    doc="Average pooling (nn.AvgPool2d); kernel_size, stride (none: the kernel) and padding are ints or pairs, "
        "padding may be \"same\" (TensorFlow's; as timm, zeros added in forward are counted) or \"valid\"; "
        "ceil_mode and count_include_pad as in PyTorch. fvcore counts it as 0.",
    aliases=("AvgPool2d", "avg_pool2d", "avgpool", "avg_pool", "AvgPool2dSame"),
)

MAXPOOL = _pool_op(
    "maxpool2d", "MaxPool2d", "max_pool2d",
    (*_WINDOW, Arg("dilation", 1, win.positive_pair), Arg("ceil_mode", False, boolean)),
    doc="Max pooling (nn.MaxPool2d); kernel_size, stride (none: the kernel), padding and dilation are ints or "
        "pairs, padding may be \"same\" (TensorFlow's, padded with -inf) or \"valid\"; ceil_mode as in PyTorch. "
        "fvcore counts it as 0.",
    aliases=("MaxPool2d", "max_pool2d", "maxpool", "max_pool", "MaxPool2dSame"),
)


def _adaptive_shape(a, ins):
    n, c, h, w = check_nchw(ins, "adaptive_avgpool2d")
    return (n, c, *win.pair(a.output_size))


ADAPTIVE = OpDef(
    "adaptive_avgpool2d", "act", (Arg("output_size", 1, win.positive_pair),), shape=_adaptive_shape,
    cost=lambda a, ins, out: numel(ins[0]),
    init=lambda a: P.call("nn.AdaptiveAvgPool2d", a["output_size"]),
    call=lambda a, ins: P.call("F.adaptive_avg_pool2d", ins[0], a["output_size"]),
    doc="Adaptive average pooling to output_size (an int or a pair [h, w]); fvcore: 1 per input element.",
    traits=frozenset({"pool", "reduction"}), channel_axis=1,
    fx=("call_module:AdaptiveAvgPool2d", "call_function:adaptive_avg_pool2d"),
    aliases=("AdaptiveAvgPool2d", "adaptive_avg_pool2d", "global_pool", "global_avg_pool", "gap"),
)

register(ADAPTIVE, AVGPOOL, MAXPOOL)
