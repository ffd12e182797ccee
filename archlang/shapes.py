"""Tensor shapes with a symbolic batch dimension.

Spatial and channel sizes are plain ints (shape inference runs for one concrete input size);
the batch is kept symbolic as `Batch(k)` (= k*B), so printouts read `[B, 96, 56, 56]` and
window partitions read `[B*64, 49, 96]`. Costs are per sample: `Batch(k)` counts as k.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


class ShapeError(Exception):
    """Raised by shape rules; the shape pass re-raises it as an ArchError at the node's span."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Batch:
    """k times the batch size B."""

    k: int = 1

    def __str__(self) -> str:
        return "B" if self.k == 1 else f"B*{self.k}"

    def __mul__(self, other):
        if isinstance(other, Batch):
            raise ShapeError("two axes both carry the batch dimension")
        return Batch(self.k * other)

    __rmul__ = __mul__

    def __floordiv__(self, other: int):
        if self.k % other:
            raise ShapeError(f"cannot split the batch axis {self} by {other}")
        return Batch(self.k // other)


Dim = int | Batch
Shape = tuple[Dim, ...]


def fmt(shape: Shape | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def size(d: Dim) -> int:
    """Per-sample size of one axis."""
    return d.k if isinstance(d, Batch) else d


def numel(shape: Shape) -> int:
    """Per-sample element count (B = 1)."""
    return prod(size(d) for d in shape)


def dim_mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, Batch):
        return a * b
    if isinstance(b, Batch):
        return b * a
    return a * b


def dim_div(a: Dim, b: int) -> Dim:
    if isinstance(a, Batch):
        return a // b
    if b == 0 or a % b:
        raise ShapeError(f"cannot divide an axis of length {a} into parts of {b}")
    return a // b


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank


def broadcast(a: Shape, b: Shape) -> Shape:
    """Numpy broadcasting, with the batch symbol treated as a size that only matches itself or 1."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeError(f"cannot broadcast {fmt(a)} with {fmt(b)}: axis -{i} is {x} vs {y}")
    return tuple(reversed(out))
