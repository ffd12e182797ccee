"""`einsum(equation, a, b, ...)`: Einstein summation, checked against the equation, costed as
fvcore counts it.

The equation is torch's: one letter per axis, operands separated by commas, `->` then the
output letters (without `->`, the letters used once, in alphabetical order). Every operand has
one letter per axis; a letter has one size wherever it appears; the batch axis must reach the
output. `...` is not supported (name every axis).

fvcore's cost: two equations it reads as batched matmuls ("abc,abd->acd", "abc,adc->adb" after
renaming letters in order of appearance) count the product of all sizes; any other equation
counts half the "optimized FLOP count" numpy's `einsum_path(optimize="optimal")` prints (three
significant digits), floored. `einsum_path_flops` below reproduces numpy's count without numpy.
"""

from __future__ import annotations

import itertools
from math import prod

from .. import pycode as P
from ..shapes import Batch, ShapeError, fmt, size
from . import Arg, OpDef, register, text


def parse_equation(eq, n: int) -> tuple[list[str], str]:
    """(input terms, output term) of an einsum equation for n operands, or ShapeError."""
    if not isinstance(eq, str):
        raise ShapeError(f"an einsum equation is a string, got {eq!r}")
    text = eq.replace(" ", "")
    if "..." in text:
        raise ShapeError("einsum equations with '...' are not supported", hint="name every axis with a letter")
    lhs, arrow, out = text.partition("->")
    terms = lhs.split(",")
    for t in (*terms, out):
        bad = [c for c in t if not c.isascii() or not c.isalpha()]
        if bad:
            raise ShapeError(f"einsum axes are letters, got {bad[0]!r} in {eq!r}")
    if len(terms) != n:
        raise ShapeError(f"the einsum equation {eq!r} has {len(terms)} operand(s), but {n} tensor(s) are given")
    if not arrow:
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, out


def letter_sizes(terms: list[str], ins) -> dict[str, object]:
    sizes: dict[str, object] = {}
    for k, (term, shape) in enumerate(zip(terms, ins)):
        if len(term) != len(shape):
            raise ShapeError(f"einsum operand {k} has shape {fmt(shape)} but {len(term)} letters {term!r}")
        for c, d in zip(term, shape):
            if sizes.setdefault(c, d) != d:
                raise ShapeError(f"einsum letter {c!r} is {sizes[c]} in one place and {d} in another")
    return sizes


def _shape(a, ins):
    terms, out = parse_equation(a.equation, len(ins))
    sizes = letter_sizes(terms, ins)
    for c in out:
        if c not in sizes:
            raise ShapeError(f"einsum output letter {c!r} is not in any operand")
        if out.count(c) > 1:
            raise ShapeError(f"einsum output letter {c!r} appears twice")
    for c, d in sizes.items():
        if isinstance(d, Batch) and c not in out:
            raise ShapeError(f"einsum would sum over the batch axis (letter {c!r})")
    return tuple(sizes[c] for c in out)


def _flop_count(letters, inner: bool, num_terms: int, sizes: dict[str, int]) -> int:
    """numpy's count for one contraction step."""
    return prod(sizes[c] for c in letters) * (max(1, num_terms - 1) + (1 if inner else 0))


def _contract(positions, sets: list[set], out: set):
    """numpy's _find_contraction: (new term, remaining terms, summed letters, letters involved)."""
    involved, keep, remaining = set(), set(out), []
    for i, s in enumerate(sets):
        if i in positions:
            involved |= s
        else:
            remaining.append(s)
            keep |= s
    new = keep & involved
    return new, [*remaining, new], involved - new, involved


def _optimal_path(sets: list[set], out: set, sizes: dict, limit: int) -> list[tuple[int, ...]]:
    """numpy's exhaustive search for the cheapest pairwise order within the memory limit."""
    states = [(0, [], sets)]
    for it in range(len(sets) - 1):
        found = []
        for cost, path, current in states:
            for pair in itertools.combinations(range(len(sets) - it), 2):
                new, rest, removed, involved = _contract(pair, current, out)
                if prod(sizes[c] for c in new) > limit:
                    continue
                found.append((cost + _flop_count(involved, bool(removed), 2, sizes), [*path, pair], rest))
        if not found:
            best = min(states, key=lambda s: s[0])[1]
            return [*best, tuple(range(len(sets) - it))]
        states = found
    return min(states, key=lambda s: s[0])[1]


def einsum_path_flops(terms: list[str], out: str, sizes: dict[str, int]) -> int:
    """The "Optimized FLOP count" of numpy.einsum_path(..., optimize="optimal")."""
    sets, outset = [set(t) for t in terms], set(out)
    letters = set("".join(terms))
    if len(terms) in (1, 2) or letters == outset:
        path = [tuple(range(len(terms)))]
    else:
        limit = max(prod(sizes[c] for c in t) for t in (*terms, out))
        path = _optimal_path(sets, outset, sizes, limit)
    total = 0
    for step in path:
        _, sets, removed, involved = _contract(step, sets, outset)
        total += _flop_count(involved, bool(removed), len(step), sizes)
    return total + 1


def _cost(a, ins, out):
    terms, out_term = parse_equation(a.equation, len(ins))
    sizes = {c: size(d) for c, d in letter_sizes(terms, ins).items()}
    text = a.equation.replace(" ", "")
    order = {c: chr(97 + i) for i, c in enumerate(dict.fromkeys(c for c in text if c.isalpha()))}
    if "".join(order.get(c, c) for c in text) in ("abc,abd->acd", "abc,adc->adb"):
        return prod(sizes.values())
    return int(float(f"{einsum_path_flops(terms, out_term, sizes):.3e}") // 2)


register(
    OpDef("einsum", "function", (Arg("equation", check=text),), shape=_shape, n_inputs=-2, cost=_cost,
          call=lambda a, ins: P.call("torch.einsum", a["equation"], *ins), traits=frozenset({"matmul"}),
          fx=("call_function:einsum",),
          doc="einsum(\"bhid,bhjd->bhij\", q, k): Einstein summation in torch's notation (letters, no "
              "'...'); shapes checked per letter; cost as fvcore counts it (numpy's optimal path)."),
)
