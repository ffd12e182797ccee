"""Tensor plumbing: arithmetic, matmul, rearrange, reshapes, basic indexing, concatenation.

These never own parameters. Arithmetic and indexing are written with operators in specs
(`a + b`, `q @ k`, `x[:, 0]`) and emitted as such; the named ones (`rearrange`, `cat`, `mean`,
...) are called like functions, with the tensor first.
"""

from __future__ import annotations

from .. import pycode as P
from ..dtypes import BOOL, FLOAT, LONG, DtypeError, promote, scalar_dtype
from ..einpattern import infer, lower, parse_pattern
from ..shapes import Batch, ShapeError, broadcast, dim_mul, fmt, norm_axis, numel, size
from . import Arg, Layout, OpDef, int_list, integer, number, optional, probability, register


def _binary(name: str, syntax: str, fx: str, commutative: bool = False, dtype=None, doc: str = "",
            traits=frozenset({"elementwise"})) -> OpDef:
    """Element-wise op of two tensors, or of a tensor and the constant (or run-time size) `scalar`
    (`fx`: the Python operator it is emitted as)."""

    def shape(a, ins):
        return ins[0] if len(ins) == 1 else broadcast(ins[0], ins[1])

    doc = doc or f"Element-wise `{syntax}` with broadcasting; b may be a number or a run-time size."
    traits = frozenset(traits) | ({"commutative"} if commutative else set())
    return OpDef(name, "function", (Arg("scalar", None), Arg("reverse", False)), shape=shape,
                 n_inputs=2, syntax=syntax, doc=doc, traits=traits, dtype=dtype or _arith_dtype(name),
                 fx=(f"call_function:{fx}",))


def binary_dtypes(a, dtypes: list[str]) -> list[str]:
    """The operand types of a binary op: two tensors, or a tensor and its scalar."""
    return dtypes if len(dtypes) == 2 else [dtypes[0], scalar_dtype(a.scalar)]


def _arith_dtype(name: str):
    """Torch's result types: `/` is always float; `-` and `**` refuse two masks; an integer
    tensor cannot take a negative integer power."""

    def rule(a, dtypes):
        if name == "div":
            return FLOAT
        out = promote(*binary_dtypes(a, dtypes))
        if out == BOOL and name in ("sub", "pow"):
            raise DtypeError(f"'{name}' of bool masks is not defined",
                             hint='convert with to(t, "long"), or combine masks with * and where')
        s = a.get("scalar")
        negative = isinstance(s, int) and not a.get("reverse") and s < 0
        if name == "pow" and out == LONG and negative:
            raise DtypeError("a long tensor cannot take a negative integer power",
                             hint="write the exponent as a float (-1.0)")
        return out
    return rule


def _neg_dtype(a, dtypes):
    if dtypes[0] == BOOL:
        raise DtypeError("cannot negate a bool mask", hint="use where(mask, 0, 1), or convert with to(t, \"long\")")
    return dtypes[0]


def keep_dtype(a, dtypes):
    return dtypes[0]


def _matmul_shape(a, ins):
    x, y = ins
    if len(x) < 2 or len(y) < 2:
        raise ShapeError(f"matmul needs two tensors of rank >= 2, got {fmt(x)} @ {fmt(y)}")
    if x[-1] != y[-2]:
        raise ShapeError(f"matmul inner sizes differ: {fmt(x)} @ {fmt(y)} ({x[-1]} vs {y[-2]})",
                         hint="transpose(k, -2, -1) turns [.., n, d] into [.., d, n]")
    return (*broadcast(x[:-2], y[:-2]), x[-2], y[-1])


def _matmul_cost(a, ins, out):
    return numel(out) * size(ins[0][-1])


def _sdpa_shape(a, ins):
    q, k, v = ins
    if min(len(q), len(k), len(v)) < 2 or q[-1] != k[-1] or k[-2] != v[-2]:
        raise ShapeError(f"sdpa needs q [.., n, d], k [.., m, d], v [.., m, e]; got {fmt(q)}, {fmt(k)}, {fmt(v)}")
    return (*broadcast(broadcast(q[:-2], k[:-2]), v[:-2]), q[-2], v[-1])


def _sdpa_cost(a, ins, out):
    """The two matmuls, q @ k^T and attn @ v, as fvcore counts them in unfused attention."""
    q, k, _ = ins
    return numel(out[:-1]) * size(k[-2]) * size(q[-1]) + numel(out) * size(k[-2])


def _sdpa_call(a, ins):
    kw = {}
    drop = a["dropout_p"]
    if not (drop.is_const and drop.const == 0):  # attention dropout acts in training only, as timm's
        kw["dropout_p"] = P.cond(drop, P.name("self.training"), P.lit(0.0))
    if not (a["scale"].is_const and a["scale"].const is None):
        kw["scale"] = a["scale"]
    return P.call("F.scaled_dot_product_attention", *ins, **kw)


def _rearrange_shape(a, ins):
    return infer(parse_pattern(a.pattern), ins[0], dict(a.sizes))


def emit_rearrange(t: P.Code, pattern: str, sizes: dict[str, P.Code]) -> P.Code:
    """Chain of tensor methods implementing the pattern (see einpattern.lower)."""
    out = t
    for step in lower(parse_pattern(pattern), sizes):
        kind = step[0]
        if kind == "unflatten":
            out = P.call(P.attr(out, "unflatten"), P.lit(step[1]), P.tuple_of(
                [s if isinstance(s, P.Code) else P.lit(s) for s in step[2]]))
        elif kind == "permute":
            out = P.call(P.attr(out, "permute"), *[P.lit(i) for i in step[1]])
        else:
            out = P.call(P.attr(out, kind), *[P.lit(i) for i in step[1:]])
    return out


def _reshape_shape(a, ins):
    (x,) = ins
    dims = list(a.shape)
    if dims.count(-1) > 1:
        raise ShapeError("reshape accepts at most one -1")
    known = 1
    for d in dims:
        if d != -1:
            known = dim_mul(known, d)
    total = numel(x)
    has_batch = any(isinstance(d, Batch) for d in x)
    if -1 in dims:
        k = known.k if isinstance(known, Batch) else known
        if total % k:
            raise ShapeError(f"cannot reshape {fmt(x)} into {fmt(tuple(dims))}")
        rest = total // k
        fill = Batch(rest) if has_batch and not isinstance(known, Batch) else rest
        dims[dims.index(-1)] = fill
    elif numel(tuple(dims)) != total:
        raise ShapeError(f"cannot reshape {fmt(x)} ({total} elements) into {fmt(tuple(dims))}")
    return tuple(dims)


def _transpose_shape(a, ins):
    x = list(ins[0])
    i, j = norm_axis(a.dim0, len(x)), norm_axis(a.dim1, len(x))
    x[i], x[j] = x[j], x[i]
    return tuple(x)


def _permute_shape(a, ins):
    (x,) = ins
    if sorted(norm_axis(d, len(x)) for d in a.dims) != list(range(len(x))):
        raise ShapeError(f"permute({list(a.dims)}) is not a permutation of the {len(x)} axes of {fmt(x)}")
    return tuple(x[d] for d in a.dims)


def _flatten_shape(a, ins):
    (x,) = ins
    s, e = norm_axis(a.start_dim, len(x)), norm_axis(a.end_dim, len(x))
    merged = 1
    for d in x[s:e + 1]:
        merged = dim_mul(merged, d)
    return (*x[:s], merged, *x[e + 1:])


def _expand_shape(a, ins):
    (x,) = ins
    sizes = list(a.sizes)
    if len(sizes) != len(x):
        raise ShapeError(f"expand needs {len(x)} sizes for {fmt(x)}, got {len(sizes)}")
    out = []
    for have, want in zip(x, sizes):
        if want == -1 or want == have:
            out.append(have)
        elif have == 1:
            out.append(want)
        else:
            raise ShapeError(f"cannot expand an axis of length {have} to {want}")
    return tuple(out)


def _cat_shape(a, ins):
    first = ins[0]
    axis = norm_axis(a.dim, len(first))
    total = 0
    for s in ins:
        if len(s) != len(first) or any(s[i] != first[i] for i in range(len(s)) if i != axis):
            raise ShapeError(f"cat along axis {a.dim}: shapes {', '.join(fmt(t) for t in ins)} differ elsewhere")
        if isinstance(s[axis], Batch):
            raise ShapeError("cannot concatenate along the batch axis")
        total += s[axis]
    out = list(first)
    out[axis] = total
    return tuple(out)


def _index_shape(a, ins):
    """Numpy basic indexing: ints drop an axis, slices keep it, none inserts one."""
    (x,) = ins
    out, axis = [], 0
    for sub in a.subs:
        if sub is None:
            out.append(1)
            continue
        if axis >= len(x):
            raise ShapeError(f"too many indices for a tensor of shape {fmt(x)}")
        d = x[axis]
        if isinstance(sub, tuple):  # a slice (lo, hi, step)
            if isinstance(d, Batch):
                if sub != (None, None, None):
                    raise ShapeError("the batch axis can only be taken whole (':')")
                out.append(d)
            else:
                out.append(len(range(*slice(*sub).indices(d))))
        else:
            if isinstance(d, Batch):
                raise ShapeError("cannot index into the batch axis")
            if not -d <= sub < d:
                raise ShapeError(f"index {sub} is out of range for an axis of length {d}")
        axis += 1
    return (*out, *x[axis:])


def _select_shape(a, ins):
    x = ins[0]
    axis = norm_axis(a.dim, len(x))
    if isinstance(x[axis], Batch) or (a.count is not None and x[axis] != a.count):
        raise ShapeError(f"cannot unpack axis {axis} of {fmt(x)} into {a.count} tensors")
    if not -x[axis] <= a.index < x[axis]:
        raise ShapeError(f"index {a.index} is out of range for axis {axis} of {fmt(x)}")
    return x[:axis] + x[axis + 1:]


def _chunk_shape(a, ins):
    x = list(ins[0])
    axis = norm_axis(a.dim, len(x))
    if isinstance(x[axis], Batch) or x[axis] % a.chunks:
        raise ShapeError(f"cannot split an axis of length {x[axis]} into {a.chunks} equal chunks")
    x[axis] = x[axis] // a.chunks
    return tuple(x)


def _branches_shape(a, ins):
    for s in ins[1:]:
        if s != ins[0]:
            raise ShapeError(f"branches end in different shapes: {', '.join(fmt(t) for t in ins)}",
                             hint="every branch of sum/avg must produce the same shape")
    return ins[0]


def _names(rank: int) -> list[str]:
    return [f"a{i}" for i in range(rank)]


def _moved(order, rank: int, unpacked: int = 0) -> Layout:
    """Layout of an op that puts input axes in `order` (first `unpacked` of them unpacked)."""
    names = _names(rank)
    return Layout(f"{' '.join(names)} -> {' '.join(names[i] for i in order)}", unpacked=unpacked)


def _transpose_layout(a, rank):
    order = list(range(rank))
    i, j = norm_axis(a.dim0, rank), norm_axis(a.dim1, rank)
    order[i], order[j] = order[j], order[i]
    return _moved(order, rank)


def _flatten_layout(a, rank):
    s, e = norm_axis(a.start_dim, rank), norm_axis(a.end_dim, rank)
    names = _names(rank)
    merged = names[:s] + ["(" + " ".join(names[s:e + 1]) + ")"] + names[e + 1:]
    return Layout(f"{' '.join(names)} -> {' '.join(merged)}")


def _select_layout(a, rank):
    d = norm_axis(a.dim, rank)
    return _moved([d] + [i for i in range(rank) if i != d], rank, unpacked=1)


def _chunk_layout(a, rank):
    d = norm_axis(a.dim, rank)
    names = _names(rank)
    lhs = [f"(k {n})" if i == d else n for i, n in enumerate(names)]
    return Layout(f"{' '.join(lhs)} -> k {' '.join(names)}", (("k", a.chunks),), unpacked=1)


def _index_layout(a, rank):
    """Ints unpack an axis, none inserts a unit axis, ':' keeps one; a partial slice is no layout."""
    names, taken, out, axis = _names(rank), [], [], 0
    for sub in a.subs:
        if sub is None:
            out.append("1")
            continue
        if isinstance(sub, tuple):
            if sub != (None, None, None):
                return None
            out.append(names[axis])
        else:
            taken.append(names[axis])
        axis += 1
    out += names[axis:]
    return Layout(f"{' '.join(names)} -> {' '.join(taken + out)}", unpacked=len(taken))


def _method(name: str, *arg_names: str, defaults: dict | None = None):
    """Emit `t.name(args...)`, dropping trailing arguments equal to their defaults."""
    defaults = defaults or {}

    def call(a, ins):
        args = [a[n] for n in arg_names]
        while args and arg_names[len(args) - 1] in defaults and args[-1].is_const \
                and args[-1].const == defaults[arg_names[len(args) - 1]]:
            args.pop()
        return P.call(P.attr(ins[0], name), *args)
    return call


register(
    _binary("add", "a + b", "add", commutative=True),
    _binary("sub", "a - b", "sub"),
    _binary("mul", "a * b", "mul", commutative=True, traits=frozenset({"elementwise", "product"})),
    _binary("div", "a / b", "truediv"),
    _binary("pow", "a ** b", "pow"),
    OpDef("neg", "function", (), shape=lambda a, ins: ins[0], syntax="-a", doc="Negation.",
          traits=frozenset({"elementwise"}), dtype=_neg_dtype, fx=("call_function:neg",)),
    OpDef("matmul", "function", (), shape=_matmul_shape, n_inputs=2, cost=_matmul_cost, syntax="a @ b",
          doc="Matrix product, batched over leading axes (fvcore counts its MACs).", traits=frozenset({"matmul"}),
          fx=("call_function:matmul",)),
    OpDef("sdpa", "function", (Arg("scale", None, optional(number)), Arg("dropout_p", 0.0, probability)),
          shape=_sdpa_shape, n_inputs=3, cost=_sdpa_cost,
          call=_sdpa_call, doc="softmax(q @ k^T * scale) @ v, emitted as F.scaled_dot_product_attention "
                               "(scale none: 1/sqrt(d)); dropout_p drops attention weights in training only "
                               "(dropout_p=p if self.training else 0.0); costs the two matmuls.",
          traits=frozenset({"attention"}),
          fx=("call_function:scaled_dot_product_attention",)),
    OpDef("rearrange", "function", (Arg("pattern"), Arg("sizes", ())), shape=_rearrange_shape,
          varkw=True, call=lambda a, ins: emit_rearrange(ins[0], a["pattern"].const, a["sizes"]),
          doc="einops-style axis regrouping, lowered to unflatten/permute/flatten in emitted code.",
          traits=frozenset({"reshape"}), layout=lambda a, rank: Layout(a.pattern, tuple(a.sizes), named=True),
          fx=tuple(f"call_method:{m}" for m in ("unflatten", "squeeze", "permute", "flatten", "unsqueeze"))),
    OpDef("reshape", "function", (Arg("shape", check=int_list),), shape=_reshape_shape,
          call=lambda a, ins: P.call(P.attr(ins[0], "reshape"), a["shape"]), doc="Reshape; one -1 allowed.",
          traits=frozenset({"reshape"}), layout=lambda a, rank: Layout(None), fx=("call_method:reshape",)),
    OpDef("transpose", "function", (Arg("dim0", check=integer), Arg("dim1", check=integer)), shape=_transpose_shape,
          call=_method("transpose", "dim0", "dim1"), doc="Swap two axes.", traits=frozenset({"reshape"}),
          layout=_transpose_layout, fx=("call_method:transpose",)),
    OpDef("permute", "function", (Arg("dims", check=int_list),), shape=_permute_shape,
          call=lambda a, ins: P.call(P.attr(ins[0], "permute"), a["dims"]), doc="Reorder axes.",
          traits=frozenset({"reshape"}), layout=lambda a, rank: _moved([norm_axis(d, rank) for d in a.dims], rank),
          fx=("call_method:permute",)),
    OpDef("flatten", "function", (Arg("start_dim", 0, integer), Arg("end_dim", -1, integer)),
          shape=_flatten_shape,
          call=_method("flatten", "start_dim", "end_dim", defaults={"start_dim": 0, "end_dim": -1}),
          doc="Merge axes start_dim..end_dim.", traits=frozenset({"reshape"}), layout=_flatten_layout,
          fx=("call_method:flatten",)),
    OpDef("expand", "function", (Arg("sizes", check=int_list),), shape=_expand_shape,
          call=lambda a, ins: P.call(P.attr(ins[0], "expand"), a["sizes"]),
          doc="Broadcast unit axes to the given sizes (-1 keeps an axis).", traits=frozenset({"reshape"}),
          fx=("call_method:expand",)),
    OpDef("cat", "function", (Arg("dim", 0, integer),), shape=_cat_shape, n_inputs=-1,
          call=lambda a, ins: P.call("torch.cat", P.Code("[" + ", ".join(str(i) for i in ins) + "]"),
                                     dim=a["dim"]),
          doc="Concatenate a list of tensors along one axis.", traits=frozenset({"concat"}),
          fx=("call_function:cat",)),
    OpDef("index", "function", (Arg("subs"),), shape=_index_shape, syntax="t[...]",
          doc="Basic indexing with ints, slices and none.", traits=frozenset({"reshape"}),
          layout=_index_layout, fx=("call_function:getitem",)),
    OpDef("select", "function", (Arg("dim"), Arg("index"), Arg("count", None)), shape=_select_shape,
          syntax="a, b = t", doc="One slice along an axis (what unpacking and unbind(t, dim) take).",
          traits=frozenset({"reshape"}), layout=_select_layout, fx=("call_method:unbind", "call_function:getitem")),
    OpDef("chunk_part", "function", (Arg("dim"), Arg("chunks"), Arg("index")), shape=_chunk_shape,
          syntax="a, b = chunk(t, 2, dim)", doc="One of `chunks` equal pieces of an axis.",
          traits=frozenset({"reshape"}), layout=_chunk_layout, fx=("call_method:chunk", "call_function:getitem")),
    OpDef("branch_sum", "function", (Arg("fused_name", None),), shape=_branches_shape, n_inputs=-1,
          syntax="sum { a | b }", doc="Sum of parallel branches.", traits=frozenset({"branch", "commutative"}),
          fx=("call_function:add",)),
    OpDef("branch_avg", "function", (Arg("fused_name", None),), shape=_branches_shape, n_inputs=-1,
          syntax="avg { a | b }", doc="Average of parallel branches.", traits=frozenset({"branch", "commutative"}),
          fx=("call_function:add", "call_function:truediv")),
)
