"""Normalization layers: BatchNorm (1d, 2d), LayerNorm (last axis), LayerNorm2d (channels) and
GroupNorm (groups of channels, over the channels and every axis after them)."""

from __future__ import annotations

from .. import pycode as P
from ..shapes import ShapeError, fmt, numel
from . import Arg, OpDef, boolean, omit_defaults, optional, positive_int, positive_number, probability, register


def _bn_shape(ranks: tuple[int, ...], what: str):
    def rule(a, ins):
        (x,) = ins
        if len(x) not in ranks or x[1] != a.num_features:
            want = " or ".join(f"rank {r}" for r in ranks)
            raise ShapeError(f"{what}({a.num_features}) expects {want} with {a.num_features} channels "
                             f"on axis 1, got {fmt(x)}")
        return x
    return rule


def _affine(name: str):
    def params(a):
        n = a[name]
        return {"weight": (n,), "bias": (n,)} if a.get("affine", True) else {}
    return params


def _bn_buffers(a):
    n = a.num_features
    return {"running_mean": (n,), "running_var": (n,), "num_batches_tracked": ()}


def _bn(name: str, cls: str, ranks: tuple[int, ...], aliases: tuple[str, ...]) -> OpDef:
    op_args = (Arg("num_features", check=positive_int), Arg("eps", 1e-5, positive_number),
               Arg("momentum", 0.1, optional(probability)), Arg("affine", True, boolean))

    def init(a):
        kw = omit_defaults(OPS_BY_NAME[name], a)
        return P.call(f"nn.{cls}", kw.pop("num_features"), **kw)

    return OpDef(
        name, "module", op_args, shape=_bn_shape(ranks, name), params=_affine("num_features"),
        buffers=_bn_buffers,
        cost=lambda a, ins, out: numel(ins[0]) * (2 if a.affine else 1),
        init=init, doc=f"{cls} in eval mode uses running statistics (fvcore: 2 per element).",
        traits=frozenset({"norm", "batchnorm"}), channel_axis=1, fx=(f"call_module:{cls}",),
        aliases=(cls, *aliases),
    )


def _ln_shape(a, ins):
    (x,) = ins
    if not x or x[-1] != a.normalized_shape:
        raise ShapeError(f"layernorm({a.normalized_shape}) normalizes the last axis, got {fmt(x)}",
                         hint="for NCHW maps use layernorm2d, or rearrange to channels-last first")
    return x


def _ln2d_shape(a, ins):
    (x,) = ins
    if len(x) != 4 or x[1] != a.num_channels:
        raise ShapeError(f"layernorm2d({a.num_channels}) expects NCHW with {a.num_channels} channels, "
                         f"got {fmt(x)}")
    return x


def _ln_cost(a, ins, out):
    return numel(ins[0]) * (5 if a.affine else 4)


def _ln_init(a):
    kw = omit_defaults(LAYERNORM, a)
    if "affine" in kw:
        kw["elementwise_affine"] = kw.pop("affine")
    return P.call("nn.LayerNorm", kw.pop("normalized_shape"), **kw)


LAYERNORM = OpDef(
    "layernorm", "module", (Arg("normalized_shape", check=positive_int), Arg("eps", 1e-5, positive_number),
                                 Arg("affine", True, boolean)),
    shape=_ln_shape, params=_affine("normalized_shape"), cost=_ln_cost, init=_ln_init,
    doc="LayerNorm over the last axis (fvcore: 5 per element with affine, else 4).",
    traits=frozenset({"norm"}), channel_axis=-1, fx=("call_module:LayerNorm",),
    aliases=("LayerNorm", "layer_norm", "ln"),
)

LAYERNORM2D = OpDef(
    "layernorm2d", "module", (Arg("num_channels", check=positive_int), Arg("eps", 1e-6, positive_number),
                                     Arg("affine", True, boolean)),
    shape=_ln2d_shape, params=_affine("num_channels"), cost=_ln_cost,
    init=lambda a: P.call("LayerNorm2d", a["num_channels"],
                          **omit_defaults(LAYERNORM2D, {"eps": a["eps"]}, keep=("eps",))),
    helpers=("LayerNorm2d",),
    doc="LayerNorm over the channel axis of an NCHW map (permute, layer_norm, permute back).",
    traits=frozenset({"norm"}), channel_axis=1, fx=("call_module:LayerNorm2d",),
    aliases=("LayerNorm2d", "layer_norm2d", "ln2d"),
)


def _gn_shape(a, ins):
    (x,) = ins
    g, c = a.num_groups, a.num_channels
    if c % g:
        raise ShapeError(f"groupnorm: {c} channels cannot be split into {g} groups",
                         hint="num_channels must be a multiple of num_groups")
    if len(x) < 2 or x[1] != c:
        raise ShapeError(f"groupnorm({g}, {c}) expects {c} channels on axis 1 (N, C, ...), got {fmt(x)}")
    return x


def _gn_init(a):
    kw = omit_defaults(GROUPNORM, a)
    return P.call("nn.GroupNorm", kw.pop("num_groups"), kw.pop("num_channels"), **kw)


GROUPNORM = OpDef(
    "groupnorm", "module",
    (Arg("num_groups", check=positive_int), Arg("num_channels", check=positive_int),
     Arg("eps", 1e-5, positive_number), Arg("affine", True, boolean)),
    shape=_gn_shape, params=_affine("num_channels"), cost=_ln_cost, init=_gn_init,
    doc="GroupNorm (nn.GroupNorm): channels (axis 1) in num_groups groups, each normalized over its channels "
        "and all later axes; num_groups=1 normalizes over C, H, W together. fvcore: 5 per element with affine, "
        "else 4.",
    traits=frozenset({"norm"}), channel_axis=1, fx=("call_module:GroupNorm",),
    aliases=("GroupNorm", "group_norm", "gn", "GroupNorm1"),
)

OPS_BY_NAME = {
    "batchnorm2d": _bn("batchnorm2d", "BatchNorm2d", (4,), ("batch_norm", "batchnorm", "bn", "bn2d")),
    "batchnorm1d": _bn("batchnorm1d", "BatchNorm1d", (2, 3), ("bn1d",)),
}
register(LAYERNORM, LAYERNORM2D, GROUPNORM, *OPS_BY_NAME.values())
