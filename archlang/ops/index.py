"""Indexing by tensors and fixed data movement: `table[index]`, gather, index_select,
take_along_dim, roll and flip.

`t[i]` with a long index tensor is torch's advanced indexing, the way relative-position tables
are read (`table[index]` turns a [(2w-1)^2, heads] table and a [w^2, w^2] index into
[w^2, w^2, heads]). Shapes follow torch exactly: integer subscripts drop their axes first;
the index tensors broadcast together, and their shape takes the place of the indexed axes when
those are adjacent, or comes first when slices or `none` separate them. A bool mask as an index
would give a shape that depends on the data, so it is refused (use `where` or `masked_fill`).
None of these ops counts in fvcore (0 MACs), and none may index, roll or flip the batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import pycode as P
from ..dtypes import BOOL, LONG, DtypeError, need
from ..shapes import Batch, ShapeError, broadcast, fmt, norm_axis, numel
from . import Arg, OpDef, integer, ints, optional, register


@dataclass(frozen=True)
class IndexTensor:
    """In the `subs` of `t[...]`: the k-th index tensor (the node's input k)."""

    k: int

    def __str__(self) -> str:
        return f"tensor{self.k}"


_ADV = object()  # the place of an index tensor among the output axes


def _sub_axes(x, subs) -> list:
    """Output axes of `t[subs]` before the index tensors are placed: sizes, and _ADV where an
    index tensor stands (ints drop their axis, as torch applies them first)."""
    slots, axis = [], 0
    for sub in subs:
        if sub is None:
            slots.append(1)
            continue
        if axis >= len(x):
            raise ShapeError(f"too many indices for a tensor of shape {fmt(x)}")
        d = x[axis]
        if isinstance(d, Batch) and sub != (None, None, None):
            raise ShapeError("the batch axis can only be taken whole (':')")
        if isinstance(sub, IndexTensor):
            slots.append(_ADV)
        elif isinstance(sub, tuple):
            if sub[2] is not None and sub[2] <= 0:
                raise ShapeError("tensor slices need a positive step", hint="flip(t, dims) reverses axes")
            slots.append(d if isinstance(d, Batch) else len(range(*slice(*sub).indices(d))))
        elif not -d <= sub < d:
            raise ShapeError(f"index {sub} is out of range for an axis of length {d}")
        axis += 1
    return slots + list(x[axis:])


def _advanced_shape(a, ins):
    x, idx = ins[0], ins[1:]
    if not idx:
        raise ShapeError("advanced indexing needs an index tensor")
    adv = idx[0]
    for s in idx[1:]:
        adv = broadcast(adv, s)
    slots = _sub_axes(x, a.subs)
    where = [i for i, s in enumerate(slots) if s is _ADV]
    rest = [s for s in slots if s is not _ADV]
    first = where[0] if where == list(range(where[0], where[0] + len(where))) else 0
    return (*rest[:first], *adv, *rest[first:])


def _index_dtypes(name: str, positions: slice):
    """Index tensors must be long; the result has the indexed tensor's type."""

    def rule(a, dtypes):
        for d in dtypes[positions]:
            if d == BOOL:
                raise DtypeError(f"{name} with a bool mask would give a shape that depends on the data",
                                 hint="select with where(mask, a, b) or masked_fill(t, mask, value)")
            need(name, d, (LONG,), "index tensors")
        return dtypes[0]
    return rule


def _not_batch(x, axis: int, what: str) -> None:
    if isinstance(x[axis], Batch):
        raise ShapeError(f"cannot {what} along the batch axis")


def _gather_shape(a, ins):
    x, idx = ins
    if len(idx) != len(x):
        raise ShapeError(f"gather needs an index of the tensor's rank: {fmt(idx)} for {fmt(x)}")
    axis = norm_axis(a.dim, len(x))
    _not_batch(x, axis, "gather")
    for i, (have, want) in enumerate(zip(x, idx)):
        if i == axis:
            continue
        if isinstance(have, Batch) or isinstance(want, Batch):
            if have != want:
                raise ShapeError(f"gather: axis {i} is {have} in the tensor but {want} in the index")
        elif want > have:
            raise ShapeError(f"gather: the index has {want} entries on axis {i}, the tensor only {have}")
    return idx


def _index_select_shape(a, ins):
    x, idx = ins
    if len(idx) > 1 or any(isinstance(d, Batch) for d in idx):
        raise ShapeError(f"index_select needs a vector of indices, got a tensor of shape {fmt(idx)}")
    axis = norm_axis(a.dim, len(x))
    _not_batch(x, axis, "index_select")
    return (*x[:axis], idx[0] if idx else 1, *x[axis + 1:])


def _take_along_shape(a, ins):
    x, idx = ins
    if a.dim is None:
        if any(isinstance(d, Batch) for d in (*x, *idx)):
            raise ShapeError("take_along_dim without dim flattens the tensor, batch axis included",
                             hint="give the axis: take_along_dim(t, index, dim)")
        return (numel(idx),)
    if len(idx) != len(x):
        raise ShapeError(f"take_along_dim needs an index of the tensor's rank: {fmt(idx)} for {fmt(x)}")
    axis = norm_axis(a.dim, len(x))
    _not_batch(x, axis, "take_along_dim")
    out = list(broadcast(tuple(1 if i == axis else d for i, d in enumerate(x)), idx))
    out[axis] = idx[axis]
    return tuple(out)


def _axes(value, rank: int, what: str) -> list[int]:
    dims = list(value) if isinstance(value, tuple) else [value]
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise ShapeError(f"{what} needs axes as ints, got {value!r}")
    axes = [norm_axis(d, rank) for d in dims]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{what}: the axes {dims} name one axis twice")
    return axes


def _roll_shape(a, ins):
    (x,) = ins
    axes = _axes(a.dims, len(x), "roll")
    shifts = list(a.shifts) if isinstance(a.shifts, tuple) else [a.shifts]
    if isinstance(a.shifts, tuple) != isinstance(a.dims, tuple) or len(shifts) != len(axes):
        raise ShapeError(f"roll needs one shift per axis: shifts {a.shifts!r}, dims {a.dims!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in shifts):
        raise ShapeError(f"roll shifts are ints, got {a.shifts!r}")
    for axis in axes:
        _not_batch(x, axis, "roll")
    return x


def _flip_shape(a, ins):
    (x,) = ins
    for axis in _axes(a.dims, len(x), "flip"):
        _not_batch(x, axis, "flip")
    return x


def _take_along_call(a, ins):
    dim = a["dim"]
    args = [] if dim.is_const and dim.const is None else [dim]
    return P.call(P.attr(ins[0], "take_along_dim"), ins[1], *args)


GATHER = frozenset({"gather"})
MOVES = frozenset({"movement"})
# `t[index]` is Python's subscript with a tensor among the subscripts: in a torch.fx trace, a
# getitem node with more than one tensor input (archlang/validate.py tells it from basic indexing).
TENSOR_GETITEM = "call_function:getitem[tensor]"

register(
    OpDef("advanced_index", "function", (Arg("subs"),), shape=_advanced_shape, n_inputs=-1, syntax="t[index]",
          dtype=_index_dtypes("indexing", slice(1, None)), traits=GATHER, fx=(TENSOR_GETITEM,),
          doc="Indexing with long index tensors (torch's advanced indexing), mixed with ints, slices "
              "and none: table[index] reads a row of table per entry of index."),
    OpDef("gather", "function", (Arg("dim", check=integer),), shape=_gather_shape, n_inputs=2,
          dtype=_index_dtypes("gather", slice(1, 2)), traits=GATHER, fx=("call_method:gather",),
          call=lambda a, ins: P.call(P.attr(ins[0], "gather"), a["dim"], ins[1]),
          doc="gather(t, index, dim): out[..i..] = t[..index[..i..]..] along dim (torch.gather with the "
              "tensors first); the index has t's rank and gives the output shape."),
    OpDef("index_select", "function", (Arg("dim", check=integer),), shape=_index_select_shape, n_inputs=2,
          dtype=_index_dtypes("index_select", slice(1, 2)), traits=GATHER, fx=("call_method:index_select",),
          call=lambda a, ins: P.call(P.attr(ins[0], "index_select"), a["dim"], ins[1]),
          doc="index_select(t, index, dim): the entries of axis dim that the vector index lists."),
    OpDef("take_along_dim", "function", (Arg("dim", None, optional(integer)),), shape=_take_along_shape, n_inputs=2,
          dtype=_index_dtypes("take_along_dim", slice(1, 2)), traits=GATHER, call=_take_along_call,
          fx=("call_method:take_along_dim",),
          doc="take_along_dim(t, index, dim): gather with broadcasting of the other axes; without dim, "
              "from the flattened tensor."),
    OpDef("roll", "function", (Arg("shifts", check=ints), Arg("dims", check=ints)), shape=_roll_shape,
          call=lambda a, ins: P.call(P.attr(ins[0], "roll"), a["shifts"], a["dims"]),
          traits=MOVES, dtype=lambda a, dtypes: dtypes[0], fx=("call_method:roll",),
          doc="Rotate entries along axes: roll(t, [-3, -3], [1, 2]) is a cyclic shift (Swin's shifted windows)."),
    OpDef("flip", "function", (Arg("dims", check=ints),), shape=_flip_shape,
          call=lambda a, ins: P.call(P.attr(ins[0], "flip"), a["dims"]), traits=MOVES,
          dtype=lambda a, dtypes: dtypes[0], fx=("call_method:flip",),
          doc="Reverse the order of entries along axes (what a negative slice step would do)."),
)
