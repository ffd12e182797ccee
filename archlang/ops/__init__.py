"""The op table: every primitive the language knows, with its shape, cost and emit rules.

An `OpDef` says how many tensors the op takes, its arguments (like a Python signature), and:
- `shape(a, ins)`: the output shape from the bound arguments and the input shapes;
- `params(a)` / `buffers(a)`: the tensors a module of this op owns, by name and shape;
- `cost(a, ins, out)`: multiply-accumulates per sample, following fvcore's conventions (so
  counts can be checked against it): conv/linear/matmul MACs, 5/elem for LayerNorm, 2/elem for
  eval BatchNorm, 1/elem for adaptive average pooling; element-wise ops count 0;
- `init(a)`: the PyTorch constructor expression for module ops;
- `call(a, ins)`: the functional PyTorch expression for ops used inside expressions;
- `aliases`: other names a user may reach for (PyTorch's class and function names, common
  abbreviations: `GroupNorm`, `group_norm`, `gn`), so an unknown name gets a "did you mean"
  that follows its meaning, not only its spelling.

Kinds: "module" ops own parameters and are always modules; "act" ops (activations, pools) are
modules when written as a statement and functions inside expressions; "function" ops never
are modules; "source" ops (weight, buffer) create tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..pycode import Code

REQUIRED = object()

# What an op *is*, declared once here and read by viz, diff, the summary and fusion instead of
# lists of op names (a new op joins every tool by declaring its traits).
TRAITS = {
    "norm": "normalisation layer",
    "batchnorm": "affine map from running statistics in eval (foldable into a neighbouring conv/linear)",
    "conv": "convolution",
    "linear": "dense map of the last axis",
    "affine_map": "a linear map plus bias that fusion can compose, sum and fold (conv, linear)",
    "activation": "element-wise non-linearity",
    "attention": "attention (softmax(q k^T) v)",
    "matmul": "matrix product of two tensors",
    "reshape": "moves or regroups elements without computing (layout only)",
    "reduction": "reduces axes (mean, max, norm)",
    "pool": "spatial pooling window",
    "pad": "adds a border to axes (constant, reflected or replicated values)",
    "resize": "resamples spatial axes to another size (interpolation)",
    "elementwise": "element-wise arithmetic",
    "identity": "the identity map",
    "dropout": "identity in eval, random masking in training",
    "branch": "combines parallel branches of one input",
    "concat": "joins tensors along an axis",
    "source": "makes a tensor from nothing (weights, buffers, the input)",
    "generator": "computes a tensor from sizes alone (arange)",
}


@dataclass(frozen=True)
class Arg:
    name: str
    default: object = REQUIRED


class Attrs(dict):
    """Bound op arguments; attribute access for brevity in shape and cost rules."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _no_tensors(a):
    return {}


def _zero_cost(a, ins, out):
    return 0


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str  # "module" | "act" | "function" | "source"
    args: tuple[Arg, ...]
    shape: Callable
    n_inputs: int = 1  # -1: the first argument is a list of tensors
    params: Callable = _no_tensors
    buffers: Callable = _no_tensors
    cost: Callable = _zero_cost
    init: Callable[[dict[str, Code]], Code] | None = None
    call: Callable[[dict[str, Code], list[Code]], Code] | None = None
    helpers: tuple[str, ...] = ()
    varkw: bool = False  # accepts extra keyword arguments (rearrange axis sizes)
    syntax: str = ""  # for ops written as operators: the form codegen emits them as (`a + b`)
    doc: str = ""
    traits: frozenset[str] = field(default_factory=frozenset)  # what the op is; see TRAITS
    channel_axis: int | None = None  # the input axis holding channels/features, if the op has one
    aliases: tuple[str, ...] = ()  # other names that mean this op (for "did you mean" hints)

    def has(self, trait: str) -> bool:
        assert trait in TRAITS, trait
        return trait in self.traits

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)


OPS: dict[str, OpDef] = {}


def register(*ops: OpDef) -> None:
    for op in ops:
        assert op.name not in OPS, op.name
        OPS[op.name] = op


def meanings() -> dict[str, str]:
    """Every name that means an op (its own name and its aliases) -> the op's name."""
    out = {}
    for op in OPS.values():
        for alias in op.aliases:
            out.setdefault(alias, op.name)
        out[op.name] = op.name
    return out


def defaults(op: OpDef) -> dict[str, object]:
    return {a.name: a.default for a in op.args if a.default is not REQUIRED}


def omit_defaults(op: OpDef, a: dict[str, Code], keep: tuple[str, ...] = ()) -> dict[str, Code]:
    """Keyword arguments whose value is not the op's default (for tidy emitted constructors)."""
    dflt = defaults(op)
    out = {}
    for k, v in a.items():
        if k in keep or k not in dflt or not v.is_const or v.const != dflt[k]:
            out[k] = v
    return out


from . import act, conv, linear, math, norm, pool, resize, source, tensor  # noqa: E402,F401  (fills OPS)
