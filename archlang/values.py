"""Values during elaboration: compile-time constants, tensors (IR node refs) and run-time sizes.

Compile-time values are plain Python ints, floats, bools, strings, None and tuples. A `Tensor`
names the IR node that produces it. A `Sym` is a size known only at run time (the batch `B`,
input `H`/`W`, or `shape(t)[i]`): it may size a reshape, but never a module's structure.
Builtin functions are a closed table; nothing from a spec is ever eval'd.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from .shapes import Batch, ShapeError, dim_div, dim_mul, fmt


@dataclass(frozen=True)
class Tensor:
    node: int


@dataclass(frozen=True)
class ShapeOf:
    """`shape(t)`: indexing it gives the run-time size of one axis of t."""

    node: int


@dataclass(frozen=True)
class Sym:
    """A run-time size: ('input', axis) | ('dim', node, axis) | (op, left, right)."""

    kind: str
    a: object
    b: object = None

    def __str__(self) -> str:
        if self.kind == "input":
            return self.b or f"input.shape[{self.a}]"
        if self.kind == "dim":
            return f"%{self.a}.shape[{self.b}]"
        return f"({self.a} {self.kind} {self.b})"


SYM_OPS = {"+": operator.add, "-": operator.sub, "*": dim_mul, "//": dim_div}


def sym_binop(op: str, a, b):
    if op not in SYM_OPS:
        raise TypeError(op)
    return Sym(op, a, b)


def resolve(value, input_shape, shapes):
    """Replace run-time sizes in `value` by concrete dims, given the shapes computed so far."""
    if isinstance(value, Sym):
        if value.kind == "input":
            return input_shape[value.a]
        if value.kind == "dim":
            shape = shapes[value.a]
            if not -len(shape) <= value.b < len(shape):
                raise ShapeError(f"shape(t)[{value.b}] reads an axis t does not have: t is {fmt(shape)}",
                                 hint=f"t has {len(shape)} axes: 0 to {len(shape) - 1}, or -1 to -{len(shape)}")
            return shape[value.b]
        a, b = resolve(value.a, input_shape, shapes), resolve(value.b, input_shape, shapes)
        if value.kind == "*":
            return dim_mul(a, b)
        if value.kind == "//":
            return dim_div(a, b) if isinstance(a, Batch) else a // b
        if isinstance(a, Batch) or isinstance(b, Batch):
            raise TypeError("cannot add to the batch size")
        return SYM_OPS[value.kind](a, b)
    if isinstance(value, tuple):
        return tuple(resolve(v, input_shape, shapes) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, input_shape, shapes) for k, v in value.items()}
    return value


def has_sym(value) -> bool:
    if isinstance(value, Sym):
        return True
    if isinstance(value, tuple):
        return any(has_sym(v) for v in value)
    return False


def show_value(v) -> str:
    """A value as it would be written in a spec."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "[" + ", ".join(show_value(x) for x in v) + "]"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """Round a channel count to a multiple of `divisor`, never dropping by more than 10%."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def linspace(start, stop, n):
    """n evenly spaced numbers from start to stop, both included (torch.linspace(...).tolist(),
    in double precision): a schedule, such as drop-path rates rising over the blocks."""
    if type(n) is not int or n < 0:
        raise ValueError(f"the number of points must be an int >= 0, got {n!r}")
    if n == 1:
        return (float(start),)
    return tuple(start + (stop - start) * (i / (n - 1)) for i in range(n))  # the last one is stop


def to_pair(v):
    """An int or a pair [a, b] as a pair: a size given either way (timm's to_2tuple)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"a pair has two items, got {len(v)}")
        return tuple(v)
    return (v, v)


# name -> (function, emitted helper name or Python builtin, doc)
BUILTINS = {
    "len": (len, "len", "number of items in a list"),
    "int": (int, "int", "truncate to an integer"),
    "float": (float, "float", "convert to a float"),
    "min": (min, "min", "smallest argument"),
    "max": (max, "max", "largest argument"),
    "abs": (abs, "abs", "absolute value (`abs(t)` of a tensor is the op)"),
    "round": (round, "round", "round to the nearest integer"),
    "sqrt": (math.sqrt, "math.sqrt", "square root"),
    "sum": (sum, "sum", "sum of a list (`sum(t, dim)` of a tensor is the op)"),
    "make_divisible": (make_divisible, "make_divisible",
                       "make_divisible(v, divisor = 8, min_value = none, round_limit = 0.9): v rounded to the "
                       "nearest multiple of divisor, at least min_value (none: divisor), one divisor more when "
                       "rounding lost over 1 - round_limit of v (timm's rule)"),
    "linspace": (linspace, "linspace",
                 "linspace(start, stop, n): a list of n evenly spaced numbers from start to stop, both "
                 "included (torch.linspace as a list): per-block schedules such as drop-path rates"),
    "to_pair": (to_pair, "to_pair",
                "to_pair(v): a pair [v, v] from a number, a pair as it is: a size a param may give either way "
                "(`to_pair(stem_width)[0]`)"),
}
