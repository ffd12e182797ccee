"""Element-wise activations, softmax, identity and dropout: modules as statements, functions in
expressions (`act: gelu(approximate = "tanh")` is nn.GELU, `gelu(t, approximate = "tanh")` is F.gelu).
Names follow PyTorch's functions; each op's aliases hold its nn class name and common synonyms."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import norm_axis
from . import Arg, OpDef, integer, omit_defaults, one_of, probability, register


def _same(a, ins):
    return ins[0]


def _act(name: str, cls: str, fn: str, args: tuple[Arg, ...] = (), doc: str = "",
         aliases: tuple[str, ...] = ()) -> OpDef:
    def init(a):
        return P.call(f"nn.{cls}", **omit_defaults(op, a))

    def call(a, ins):
        return P.call(fn, ins[0], **omit_defaults(op, a))

    traits = frozenset({"dropout"} if name == "dropout" else {"activation"})
    fx = (f"call_module:{cls}", f"call_function:{fn.rpartition('.')[2]}")
    op = OpDef(name, "act", args, shape=_same, init=init, call=call, doc=doc or f"{cls} activation ({fn}).",
               traits=traits, fx=fx, aliases=(cls, *aliases))
    return op


ACTS = [
    _act("gelu", "GELU", "F.gelu", (Arg("approximate", "none", one_of("none", "tanh")),),
         doc="GELU (nn.GELU / F.gelu); approximate=\"tanh\" selects the tanh form.", aliases=("gelu_tanh",)),
    _act("relu", "ReLU", "F.relu"),
    _act("relu6", "ReLU6", "F.relu6", doc="min(max(x, 0), 6) (nn.ReLU6 / F.relu6)."),
    _act("silu", "SiLU", "F.silu", aliases=("swish",)),
    _act("mish", "Mish", "F.mish", doc="x * tanh(softplus(x)) (nn.Mish / F.mish)."),
    _act("hardswish", "Hardswish", "F.hardswish", aliases=("hard_swish", "h_swish")),
    _act("hardsigmoid", "Hardsigmoid", "F.hardsigmoid", aliases=("hard_sigmoid", "h_sigmoid")),
    _act("sigmoid", "Sigmoid", "torch.sigmoid"),
    _act("tanh", "Tanh", "torch.tanh"),
    _act("dropout", "Dropout", "F.dropout", (Arg("p", 0.0, probability),), doc="Dropout (identity in eval)."),
]


def _softmax(name: str, cls: str, what: str) -> OpDef:
    def shape(a, ins):
        norm_axis(a.dim, len(ins[0]))
        return ins[0]

    return OpDef(
        name, "act", (Arg("dim", -1, integer),), shape=shape,
        init=lambda a: P.call(f"nn.{cls}", dim=a["dim"]),
        call=lambda a, ins: P.call(P.attr(ins[0], name), dim=a["dim"]),
        doc=f"{what} along any one axis `dim` (nn.{cls} / t.{name}(dim)).", traits=frozenset({"distribution"}),
        fx=(f"call_module:{cls}", f"call_method:{name}"), aliases=(cls,),
    )


SOFTMAX = _softmax("softmax", "Softmax", "Softmax")
LOG_SOFTMAX = _softmax("log_softmax", "LogSoftmax", "Log of the softmax")

IDENTITY = OpDef(
    "identity", "function", (), shape=_same, call=lambda a, ins: ins[0], syntax="identity()",
    doc="Pass the input through; as a branch it is the identity map fusion turns into a centred kernel.",
    traits=frozenset({"identity"}), aliases=("Identity",),
)

register(*ACTS, SOFTMAX, LOG_SOFTMAX, IDENTITY)
