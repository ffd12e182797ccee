"""Element-wise activations, identity and dropout: modules as statements, functions in expressions."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import norm_axis
from . import Arg, OpDef, integer, omit_defaults, one_of, probability, register


def _same(a, ins):
    return ins[0]


def _act(name: str, cls: str, fn: str, args: tuple[Arg, ...] = (), doc: str = "") -> OpDef:
    def init(a):
        return P.call(f"nn.{cls}", **omit_defaults(op, a))

    def call(a, ins):
        return P.call(fn, ins[0], **omit_defaults(op, a))

    traits = frozenset({"dropout"} if name == "dropout" else {"activation"})
    fx = (f"call_module:{cls}", f"call_function:{fn.rpartition('.')[2]}")
    op = OpDef(name, "act", args, shape=_same, init=init, call=call, doc=doc or f"{cls} activation.",
               traits=traits, fx=fx)
    return op


def _softmax_shape(a, ins):
    norm_axis(a.dim, len(ins[0]))
    return ins[0]


ACTS = [
    _act("gelu", "GELU", "F.gelu", (Arg("approximate", "none", one_of("none", "tanh")),),
         doc="GELU; approximate=\"tanh\" selects the tanh form."),
    _act("relu", "ReLU", "F.relu"),
    _act("silu", "SiLU", "F.silu"),
    _act("hardswish", "Hardswish", "F.hardswish"),
    _act("hardsigmoid", "Hardsigmoid", "F.hardsigmoid"),
    _act("sigmoid", "Sigmoid", "torch.sigmoid"),
    _act("tanh", "Tanh", "torch.tanh"),
    _act("dropout", "Dropout", "F.dropout", (Arg("p", 0.0, probability),), doc="Dropout (identity in eval)."),
]

SOFTMAX = OpDef(
    "softmax", "act", (Arg("dim", -1, integer),), shape=_softmax_shape,
    init=lambda a: P.call("nn.Softmax", dim=a["dim"]),
    call=lambda a, ins: P.call(P.attr(ins[0], "softmax"), dim=a["dim"]),
    doc="Softmax along one axis.", traits=frozenset({"distribution"}),
    fx=("call_module:Softmax", "call_method:softmax"),
)

IDENTITY = OpDef(
    "identity", "function", (), shape=_same, call=lambda a, ins: ins[0], syntax="identity()",
    doc="Pass the input through; as a branch it is the identity map fusion turns into a centred kernel.",
    traits=frozenset({"identity"}),
)

register(*ACTS, SOFTMAX, IDENTITY)
