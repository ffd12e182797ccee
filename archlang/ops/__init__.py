"""The op table: every primitive the language knows, with its shape, cost and emit rules.

An `OpDef` says how many tensors the op takes, its arguments (like a Python signature), and:
- `shape(a, ins)`: the output shape from the bound arguments and the input shapes;
- `params(a)` / `buffers(a)`: the tensors a module of this op owns, by name and shape;
- `cost(a, ins, out)`: multiply-accumulates per sample, following fvcore's conventions (so
  counts can be checked against it): conv/linear/matmul MACs, 5/elem for LayerNorm, 2/elem for
  eval BatchNorm, 1/elem for adaptive average pooling; element-wise ops count 0;
- `init(a)`: the PyTorch constructor expression for module ops;
- `call(a, ins)`: the functional PyTorch expression for ops used inside expressions;
- `fx`: what those emit rules become in a `torch.fx` trace, written as fx node kinds and targets:
  "call_module:Conv2d" (the module class, for ops emitted as modules), "call_function:gelu",
  "call_method:mean", "get_attr", "placeholder". Translation validation (archlang/validate.py)
  checks the emitted module against these, so they are declared here, not derived from the
  emit rules. Functional entries are the chain of nodes one op becomes, input to output
  (`avg {a | b}` is `(a + b) / 2`: add, truediv); for layout-only ops (trait "reshape") they
  are the set of nodes any run of them may use. Where the chain depends on the arguments
  (a pool with "same" padding pads first), `fx_of(a)` gives it; `fx` then lists every form;
- `aliases`: other names a user may reach for (PyTorch's class and function names, common
  abbreviations: `GroupNorm`, `group_norm`, `gn`), so an unknown name gets a "did you mean"
  that follows its meaning, not only its spelling;
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
from ..errors import ArchError
from ..limits import MAX_SIZE
from ..pycode import Code
from ..values import has_sym, show_value

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
    "product": "element-wise product: a gate or a scale applied to a tensor",
    "identity": "the identity map",
    "dropout": "identity in eval, random masking in training",
    "branch": "combines parallel branches of one input",
    "commutative": "inputs may be reordered and nested uses merged (a + (b + c) = c + b + a)",
    "concat": "joins tensors along an axis",
    "source": "makes a tensor from nothing (weights, buffers, the input)",
    "state": "a named tensor the model owns, not a module (a learned weight or a buffer)",
    "learned": "a tensor trained by the optimizer (nn.Parameter), not a buffer",
    "model_input": "the model's input tensor",
    "generator": "computes a tensor from sizes alone (arange)",
    "distribution": "turns scores into weights that sum to 1 along an axis (softmax)",
    "gather": "reads elements at positions an index tensor gives (table[index], gather)",
    "compare": "element-wise comparison, giving a bool mask",
    "select": "picks elements by a mask (where, masked_fill)",
    "movement": "moves elements without computing, keeping the shape (roll, flip)",
}


@dataclass(frozen=True)
class Layout:
    """What a layout-only op does, as an einops pattern over its input's axes, so tools can
    compose a run of them (rearrange, permute, unbind, ...) into one step.

    `pattern` None means a row-major reshape to the output shape. `sizes` are elementary axis
    sizes the pattern needs (run-time sizes unresolved). The first `unpacked` output axes are
    unpacked rather than kept: the op returns one slice along them (select, chunk, t[0]).
    `named`: the pattern's axis names are the spec's own (rearrange), not placeholders."""

    pattern: str | None
    sizes: tuple[tuple[str, object], ...] = ()
    unpacked: int = 0
    named: bool = False


@dataclass(frozen=True)
class Arg:
    """One argument of an op. `check` says what values it takes: it returns what the value should
    have been ("a positive int") or None, so a bad value stops the build at its own span instead of
    crashing the emitted module when it is created or run."""

    name: str
    default: object = REQUIRED
    check: Callable[[object], str | None] | None = None


# ---------------------------------------------------------------- argument checks (Arg.check)


def _is_int(v) -> bool:
    return type(v) is int


def _is_number(v) -> bool:
    return type(v) in (int, float)


def positive_int(v):
    if not _is_int(v) or v < 1:
        return "a positive int"
    return None if v <= MAX_SIZE else f"at most {MAX_SIZE:,}"


def non_negative_int(v):
    return None if _is_int(v) and 0 <= v <= MAX_SIZE else "an int >= 0"


def integer(v):
    return None if _is_int(v) else "an int"


def ints(v):
    """An axis or a list of axes (reductions)."""
    ok = _is_int(v) or (type(v) is tuple and all(_is_int(d) for d in v))
    return None if ok else "an int or a list of ints"


def int_list(v):
    return None if type(v) is tuple and all(_is_int(d) for d in v) else "a list of ints"


def sizes(v):
    """A tensor shape given in a spec: positive ints, and not more elements than memory holds."""
    if type(v) is not tuple or not all(_is_int(d) and 1 <= d <= MAX_SIZE for d in v):
        return "a list of positive ints"
    n = 1
    for d in v:
        n *= d
    return None if n <= MAX_SIZE else f"a shape of at most {MAX_SIZE:,} elements"


def text(v):
    return None if type(v) is str else "a string"


def boolean(v):
    return None if type(v) is bool else "true or false"


def number(v):
    return None if _is_number(v) else "a number"


def positive_number(v):
    return None if _is_number(v) and v > 0 else "a number > 0"


def non_negative_number(v):
    return None if _is_number(v) and v >= 0 else "a number >= 0"


def probability(v):
    return None if _is_number(v) and 0 <= v <= 1 else "a number from 0 to 1"


def one_of(*choices: str, numbers: bool = False):
    words = ", ".join(f'"{c}"' for c in choices)

    def check(v):
        if (type(v) is str and v in choices) or (numbers and _is_number(v)):
            return None
        return ("a number or one of " if numbers else "one of ") + words
    return check


def optional(check):
    def wrapped(v):
        return None if v is None else (check(v) and check(v) + " or none")
    return wrapped


def check_args(op: OpDef, values: dict, spans: dict, span) -> None:
    """Every bound argument of `op` is a value its `Arg.check` accepts (run-time sizes, which only
    reshapes take, are checked by the shape rules instead)."""
    for arg in op.args:
        value = values.get(arg.name, REQUIRED)  # absent: not bound here (a computed buffer's shape)
        if arg.check is None or value is REQUIRED or has_sym(value):
            continue
        want = arg.check(value)
        if want:
            raise ArchError(f"argument '{arg.name}' of {op.name} must be {want}, got {show_value(value)}",
                            spans.get(arg.name, span))


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
    fx: tuple[str, ...] = ()  # the torch.fx nodes the emit rules produce (see the module docstring)
    fx_of: Callable | None = None  # bound arguments -> fx, where the emitted form depends on them
    # layout-only ops: (bound arguments, input rank) -> Layout, or None where the op is not a pure
    # regrouping for these arguments (a partial slice, a broadcast)
    layout: Callable | None = None
    aliases: tuple[str, ...] = ()  # other names that mean this op (for "did you mean" hints)
    dtype: Callable | None = None  # output element type; None: see `infer_dtype`
    scalars: tuple[int, ...] = ()  # tensor positions a plain number may take (where(m, x, 0.0))
    literal: dict[str, tuple[str, ...]] = field(default_factory=dict)  # argument -> the strings it
    #   may be; written as a literal, because it chooses the emitted code (to(t, "long"))

    def has(self, trait: str) -> bool:
        assert trait in TRAITS, trait
        return trait in self.traits

    def fx_forms(self, a) -> tuple[str, ...]:
        """The fx nodes this op becomes with bound arguments `a` (see `fx` and `fx_of`)."""
        return self.fx_of(a) if self.fx_of is not None else self.fx

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


def infer_dtype(op: OpDef, a: Attrs, dtypes: list[str]) -> str:
    """The element type of an op's output (DtypeError when an input has a type it refuses)."""
    if op.dtype is not None:
        return op.dtype(a, dtypes)
    if op.kind == "source":  # a computed buffer keeps its value's type; a weight is float
        if dtypes and not op.has("learned"):
            return dtypes[0]
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


from . import act, conv, einsum, index, linear, math, norm, pool, reduce, resize, select, source, tensor  # noqa: E402,F401,I001
