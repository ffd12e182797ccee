"""Element-wise activations, softmax, identity, dropout and drop-path: modules as statements, functions
in expressions (`act: gelu(approximate = "tanh")` is nn.GELU, `gelu(t, approximate = "tanh")` is F.gelu).
Names follow PyTorch's functions; each op's aliases hold its nn class name and common synonyms.

Dropout and drop-path act only in training: as modules they follow the module's train()/eval(), and
as functions they are emitted with the enclosing module's flag (`F.dropout(x, p=0.1,
training=self.training)`), so an emitted model in eval mode is deterministic."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import norm_axis
from . import Arg, OpDef, boolean, integer, omit_defaults, one_of, probability, register

TRAINING = P.name("self.training")  # the mode of the module whose forward the expression is in


def _same(a, ins):
    return ins[0]


def _act(name: str, cls: str, fn: str, args: tuple[Arg, ...] = (), doc: str = "",
         aliases: tuple[str, ...] = ()) -> OpDef:
    def init(a):
        return P.call(f"nn.{cls}", **given(a))

    def call(a, ins):
        if random:  # F.dropout drops whenever it is called unless told the module's mode
            return P.call(fn, ins[0], **given(a), training=TRAINING)
        return P.call(fn, ins[0], **given(a))

    def given(a):
        # torch's dropout defaults to p = 0.5, ours to 0: p is always written out
        return {"p": a["p"]} if random else omit_defaults(op, a)

    random = name == "dropout"
    traits = frozenset({"dropout"} if random else {"activation"})
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
    _act("dropout", "Dropout", "F.dropout", (Arg("p", 0.0, probability),),
         doc="Dropout: in training, zero each element with probability p and scale the rest by 1 / (1 - p); "
             "the identity in eval. As a function it follows the module's mode (training=self.training)."),
]


def _drop_path_call(a, ins):
    keep = {} if a["scale_by_keep"].is_const and a["scale_by_keep"].const is True else \
        {"scale_by_keep": a["scale_by_keep"]}
    return P.call("drop_path", ins[0], a["p"], TRAINING, **keep)


# Stochastic depth (Huang et al. 2016) per sample, as timm's DropPath: in a residual branch it drops
# the whole branch of a sample. Emitted as a small helper (DropPath / drop_path) in the file.
DROP_PATH = OpDef(
    "drop_path", "act", (Arg("p", 0.0, probability), Arg("scale_by_keep", True, boolean)), shape=_same,
    init=lambda a: P.call("DropPath", **omit_defaults(DROP_PATH, a)), call=_drop_path_call,
    helpers=("DropPath", "drop_path"),
    doc="Drop-path (stochastic depth): in training, zero the whole tensor of each sample with probability p "
        "and scale kept samples by 1 / (1 - p) (scale_by_keep); the identity in eval. Emitted as the "
        "helper module DropPath / function drop_path(x, p, training).",
    traits=frozenset({"dropout"}), fx=("call_module:DropPath", "call_function:drop_path"),
    aliases=("DropPath", "stochastic_depth"),
)


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

register(*ACTS, DROP_PATH, SOFTMAX, LOG_SOFTMAX, IDENTITY)
