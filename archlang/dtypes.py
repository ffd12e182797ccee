"""Element types of tensors: float, long (int64) and bool, and how they combine.

Most tensors are float; comparisons make bool masks and index tables are long. The check-shapes
pass gives every IR node one of the three, from its op's dtype rule, before it computes shapes:
a type the emitted op would refuse at run time (a float index, a long tensor into a conv,
`-` of two masks) becomes a compile-time error at the spec line. Promotion follows torch's
categories, bool < long < float, with plain numbers taking part as torch's "weak" scalars: a
number only raises the category (`mask * 1.5` is float, `idx * 2` stays long).
"""

from __future__ import annotations

from .shapes import ShapeError

FLOAT, LONG, BOOL = "float", "long", "bool"
ORDER = (BOOL, LONG, FLOAT)  # promotion order
CONVERT = {FLOAT: "float", LONG: "long", BOOL: "bool"}  # the tensor method that converts to each


class DtypeError(ShapeError):
    """A tensor of the wrong element type; it does not depend on the input size."""


def scalar_dtype(v) -> str:
    """The category of a plain number (a run-time size counts as an int)."""
    if isinstance(v, bool):
        return BOOL
    return FLOAT if isinstance(v, float) else LONG


def promote(*dtypes: str) -> str:
    """The result type of an element-wise op on these operands (torch's promotion by category)."""
    return max(dtypes, key=ORDER.index) if dtypes else FLOAT


def need(op: str, got: str, allowed: tuple[str, ...], what: str = "tensors") -> None:
    """Refuse an operand whose type the op does not take."""
    if got not in allowed:
        names = " or ".join(allowed)
        raise DtypeError(f"{op} needs {names} {what}, got a {got} tensor",
                         hint=f'convert it with to(t, "{allowed[-1]}")')


def check_name(dtype) -> str:
    if dtype not in ORDER:
        raise DtypeError(f"unknown dtype {dtype!r}", hint='dtypes are "float", "long" and "bool"')
    return dtype
