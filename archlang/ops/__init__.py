"""The op table: every primitive the language knows, with its shape, cost and emit rules.

An `OpDef` says how many tensors the op takes, its arguments (like a Python signature), and:
- `shape(a, ins)`: the output shape from the bound arguments and the input shapes;
- `params(a)` / `buffers(a)`: the tensors a module of this op owns, by name and shape;
- `cost(a, ins, out)`: multiply-accumulates per sample, following fvcore's conventions (so
  counts can be checked against it): conv/linear/matmul MACs, 5/elem for LayerNorm, 2/elem for
  eval BatchNorm, 1/elem for adaptive average pooling; element-wise ops count 0;
- `init(a)`: the PyTorch constructor expression for module ops;
- `call(a, ins)`: the functional PyTorch expression for ops used inside expressions;
- `dtype(a, dtypes)`: the output's element type (`archlang.dtypes`) from the inputs' types, or
  a DtypeError; when absent, reshapes and concatenations keep their inputs' type, sources are
  float (or their `dtype` argument) and every other op takes and gives float.

Kinds: "module" ops own parameters and are always modules; "act" ops (activations, pools) are
modules when written as a statement and functions inside expressions; "function" ops never
are modules; "source" ops (weight, buffer) create tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..dtypes import FLOAT, check_name, need, promote
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
    "elementwise": "element-wise arithmetic",
    "identity": "the identity map",
    "dropout": "identity in eval, random masking in training",
    "branch": "combines parallel branches of one input",
    "concat": "joins tensors along an axis",
    "source": "makes a tensor from nothing (weights, buffers, the input)",
    "generator": "computes a tensor from sizes alone (arange)",
    "gather": "reads elements at positions an index tensor gives (table[index], gather)",
    "compare": "element-wise comparison, giving a bool mask",
    "select": "picks elements by a mask (where, masked_fill)",
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
    n_inputs: int = 1  # -1: the first argument is a list of tensors; -2: the op's arguments
    #                    come first, then any number of tensors (einsum("ij,jk->ik", a, b))
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
    dtype: Callable | None = None  # output element type; None: see `infer_dtype`
    scalars: tuple[int, ...] = ()  # tensor positions a plain number may take (where(m, x, 0.0))
    literal: dict[str, tuple[str, ...]] = field(default_factory=dict)  # argument -> the strings it
    #   may be; written as a literal, because it chooses the emitted code (to(t, "long"))

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


def infer_dtype(op: OpDef, a: Attrs, dtypes: list[str]) -> str:
    """The element type of an op's output (DtypeError when an input has a type it refuses)."""
    if op.dtype is not None:
        return op.dtype(a, dtypes)
    if op.kind == "source":
        return check_name(a.get("dtype") or FLOAT)
    if op.traits & {"reshape", "concat", "identity"}:
        return promote(*dtypes)
    for got in dtypes:
        need(op.name, got, (FLOAT,))
    return FLOAT


def operands(a: Attrs, ins: list, n: int, fill) -> list:
    """All `n` operands of an op whose `scalars` positions may hold plain numbers: the tensors'
    entries from `ins`, and `fill(number)` where a number stands (attribute `scalars`)."""
    given = dict(a.get("scalars", ()))
    it = iter(ins)
    return [fill(given[i]) if i in given else next(it) for i in range(n)]


from . import act, conv, einsum, index, linear, math, norm, reduce, select, source, tensor  # noqa: E402,F401,I001
