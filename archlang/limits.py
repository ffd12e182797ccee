"""Resource limits: what a spec may ask of the compiler before it is stopped with a located error.

A spec is a program, and a careless or hostile one can ask for a loop of 10**12 iterations, an
integer of a million digits or a string of a terabyte. Every such request stops at the span that
crossed a limit, quickly (well under a second) and in little memory. The limits are far above what
any real architecture needs: the largest family elaborates to a few thousand IR nodes, in a few
thousand steps, with integers far below 2**63 and lists of tens of items.

`Budget` is one elaboration's allowance: every statement and every loop iteration is a step, and
every value an expression produces is measured (`value`). The module-level checks serve the
parser and the constant folder, which run before any elaboration.
"""

from __future__ import annotations

import math

from .errors import ArchError, Span

MAX_SOURCE_BYTES = 65_536  # a spec and its imports together; the largest real pair is about 8 KB
MAX_FILES = 100  # a spec and everything it imports
MAX_NESTING = 100  # levels of the syntax tree: brackets, operators, bodies inside bodies
MAX_INT = 2**63 - 1  # integers are sizes, counts and indices: int64 is what torch can hold
MAX_ITEMS = 100_000  # characters of a string, items of a list (nested items included)
MAX_VALUE_DEPTH = 16  # lists inside lists
MAX_STEPS = 100_000  # statements run plus loop iterations, in one elaboration
MAX_NODES = 20_000  # IR nodes; ViT-g/14 has about 1,000
MAX_SIZE = 2**31 - 1  # one axis of a module's tensor (channels, features, kernel size)

_LOOP_HINT = "is a repeat count or loop bound far larger than intended?"


class Budget:
    """The steps and values one elaboration may use."""

    def __init__(self) -> None:
        self.steps = 0
        self._measured: dict[int, tuple[object, int, int]] = {}  # id -> (tuple, depth, items)

    def step(self, span: Span, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise ArchError(f"elaboration would take more than {MAX_STEPS:,} steps (statements and loop "
                            "iterations) here", span, hint=_LOOP_HINT)

    def loop(self, stmt, bounds: list) -> None:
        """A `for`/`repeat` about to run: a negative repeat count is a mistake, and every iteration
        is charged up front, so `repeat 10 ** 12 { }` stops before it starts."""
        start, stop = bounds
        if stmt.var is None and stop < 0:
            raise ArchError(f"a repeat count cannot be negative, got {stop}", stmt.stop.span,
                            hint="repeat 0 { ... } runs nothing")
        n = max(0, stop - start)
        if self.steps + n > MAX_STEPS:
            raise ArchError(f"this loop would run {n:,} times, more than the {MAX_STEPS:,} steps elaboration "
                            "may take", stmt.stop.span, hint=_LOOP_HINT)
        self.step(stmt.span, n)

    def value(self, v, span: Span):
        """`v`, once it is known to be a value the compiler can hold; else a located error."""
        t = type(v)
        if t is int:
            if -MAX_INT <= v <= MAX_INT:
                return v
            raise too_large(span)
        if t is float:
            return check_float(v, span)
        if t is str:
            check_length(len(v), span)
        elif t is tuple:
            self._measure(v, span)
        elif t is complex:  # (-8) ** 0.5
            raise ArchError(f"this value is not a real number ({v})", span)
        return v

    def _measure(self, v: tuple, span: Span) -> tuple[int, int]:
        """(nesting depth, items) of a list; lists seen before are remembered, so building a list
        from big lists costs the size of the new list, not of everything inside it."""
        known = self._measured.get(id(v))
        if known is not None and known[0] is v:
            return known[1], known[2]
        depth, items = 1, len(v)
        for item in v:
            if type(item) is tuple:
                d, n = self._measure(item, span)
                depth, items = max(depth, d + 1), items + n
        if depth > MAX_VALUE_DEPTH:
            raise ArchError(f"lists nest more than {MAX_VALUE_DEPTH} levels deep here", span)
        check_length(items, span)
        if items > 64:
            self._measured[id(v)] = (v, depth, items)
        return depth, items


def too_large(span: Span) -> ArchError:
    return ArchError(f"this integer is too large: the limit is {MAX_INT:,} (2**63 - 1)", span,
                     hint="sizes, counts and indices fit in 64 bits")


def check_float(v: float, span: Span) -> float:
    if math.isfinite(v):
        return v
    raise ArchError(f"this value is not a finite number ({v})", span,
                    hint="floats go up to about 1e308; inf and nan are not values")


def check_length(n: int, span: Span) -> None:
    if n > MAX_ITEMS:
        raise ArchError(f"this value would hold {n:,} items or characters; the limit is {MAX_ITEMS:,}", span)


def check_value(v, span: Span):
    """`Budget.value` for values made outside an elaboration (constants, overrides)."""
    return Budget().value(v, span)


def check_operands(op: str, a, b, span: Span) -> None:
    """Refuse an operation whose result the compiler cannot afford before computing it
    (`2 ** 2 ** 40`, `"ab" * 10 ** 12`, `"%999999999d" % 1`)."""
    if op == "**" and type(a) is int and type(b) is int and abs(a) > 1 and b > 0:
        if b * math.log2(abs(a)) > 64:
            raise ArchError(f"the power {a} ** {b} is too large to compute", span,
                            hint=f"integers stop at {MAX_INT:,} (2**63 - 1)")
    if op == "*" and any(isinstance(v, (str, tuple)) for v in (a, b)):
        count, seq = (b, a) if isinstance(a, (str, tuple)) else (a, b)
        if isinstance(count, int) and count * max(1, len(seq)) > MAX_ITEMS:
            raise ArchError(f"this repetition would make more than {MAX_ITEMS:,} items", span)
    if op == "%" and isinstance(a, str):
        raise ArchError("'%' is not defined for strings", span, hint="strings are written whole, as literals")


def check_int_literal(text: str, span: Span) -> None:
    """Digits beyond what any int64 has are refused before Python converts them (which is slow)."""
    if len(text.lstrip("0")) > 19:
        raise too_large(span)
