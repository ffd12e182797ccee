"""einops-style rearrange patterns: parsing, shape inference and lowering to torch methods.

A pattern such as ``"b (nh p) (nw q) c -> (b nh nw) (p q) c"`` is a list of axis groups on
each side. `infer` computes the output shape (one unknown size per group is solved, like
einops), and `lower` turns the pattern into `unflatten` / `permute` / `flatten` steps, so
emitted code needs neither einops nor run-time shape lookups and stays fx-traceable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .shapes import Batch, Dim, ShapeError, dim_div, dim_mul, fmt

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<one>1)|(?P<open>\()|(?P<close>\)))")


class PatternError(Exception):
    """A malformed pattern; `offset` and `width` locate the offending text inside it."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None, width: int = 1):
        super().__init__(message)
        self.message, self.offset, self.hint, self.width = message, offset, hint, width


@dataclass(frozen=True)
class Pattern:
    text: str
    lhs: tuple[tuple[str, ...], ...]
    rhs: tuple[tuple[str, ...], ...]

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(a for g in self.lhs for a in g)


def parse_pattern(text: str) -> Pattern:
    if text.count("->") != 1:
        raise PatternError("a rearrange pattern needs exactly one '->'", 0,
                           hint='write it like "b c h w -> b h w c"')
    arrow = text.index("->")
    lhs = _side(text[:arrow], 0)
    rhs = _side(text[arrow + 2:], arrow + 2)
    left = [a for g in lhs for a in g if a != "1"]
    right = [a for g in rhs for a in g if a != "1"]
    for names, base in ((left, 0), (right, arrow + 2)):
        dup = {a for a in names if names.count(a) > 1}
        if dup:
            name = sorted(dup)[0]
            raise PatternError(f"axis '{name}' appears twice on one side",
                               _find_axis(text, name, base, nth=1), width=len(name))
    if set(left) != set(right):
        name = sorted(set(left) ^ set(right))[0]
        raise PatternError(f"axis '{name}' appears on only one side of '->'",
                           _find_axis(text, name, 0 if name in left else arrow + 2), width=len(name),
                           hint="rearrange only reorders and regroups axes; both sides need the same names")
    return Pattern(text, lhs, rhs)


def _find_axis(text: str, name: str, start: int, nth: int = 0) -> int:
    """Offset of the nth whole-word occurrence of axis `name` from `start`."""
    hits = list(re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text[start:]))
    return start + hits[min(nth, len(hits) - 1)].start() if hits else start


def check_sizes(text: str, sizes) -> None:
    """Each input group may leave one axis size to be inferred (the same rule as `infer`)."""
    lhs = text.split("->", 1)[0]
    for m in re.finditer(r"\(([^()]*)\)", lhs):
        free = [a for a in m.group(1).split() if a != "1" and a not in sizes]
        if len(free) > 1:
            raise PatternError(f"cannot infer more than one size in ({' '.join(m.group(1).split())}): "
                               f"{', '.join(free)} are unknown", m.start(), width=m.end() - m.start(),
                               hint=f"give all but one of them as keyword arguments, e.g. {free[-1]}=...")


def _side(text: str, base: int) -> tuple[tuple[str, ...], ...]:
    groups: list[tuple[str, ...]] = []
    current: list[str] | None = None
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            at = len(text) - len(text[pos:].lstrip())
            raise PatternError(f"unexpected {text[at]!r} in pattern", base + at)
        pos = m.end()
        if m.group("open"):
            if current is not None:
                raise PatternError("groups cannot be nested", base + m.start("open"))
            current = []
        elif m.group("close"):
            if current is None:
                raise PatternError("')' without '('", base + m.start("close"))
            groups.append(tuple(current) or ("1",))  # "()" is a unit axis, like "1"
            current = None
        else:
            name = m.group("name") or "1"
            if name == "1" and current is not None:
                raise PatternError("'1' cannot be inside a group", base + m.start())
            (current.append(name) if current is not None else groups.append((name,)))
    if current is not None:
        raise PatternError("'(' is not closed", base + text.rindex("("))
    return tuple(groups)


def infer(p: Pattern, shape: tuple[Dim, ...], sizes: dict[str, int]) -> tuple[Dim, ...]:
    """Output shape of `p` applied to `shape`, given known elementary axis sizes."""
    unknown_kw = set(sizes) - set(p.axes)
    if unknown_kw:
        raise ShapeError(f"size given for '{sorted(unknown_kw)[0]}', which is not an axis of \"{p.text}\"")
    if len(p.lhs) != len(shape):
        raise ShapeError(f"pattern \"{p.text}\" expects a rank-{len(p.lhs)} tensor, got {fmt(shape)}")
    known: dict[str, Dim] = {}
    for group, dim in zip(p.lhs, shape):
        if group == ("1",):
            if dim != 1:
                raise ShapeError(f"pattern axis '1' matches a tensor axis of length {dim}")
            continue
        free = [a for a in group if a not in sizes]
        if len(free) > 1:
            raise ShapeError(f"cannot split an axis of length {dim} into {' '.join(group)}: "
                             f"give the size of all but one of {', '.join(free)}",
                             hint="pass sizes as keyword arguments, e.g. h=num_heads")
        product = 1
        for a in group:
            if a in sizes:
                product *= sizes[a]
                known[a] = sizes[a]
        if free:
            known[free[0]] = dim_div(dim, product)
        elif dim_mul(product, 1) != dim:
            raise ShapeError(f"axis of length {dim} does not match {' * '.join(str(sizes[a]) for a in group)}"
                             f" = {product} in \"{p.text}\"")
    out = []
    for group in p.rhs:
        total: Dim = 1
        for a in group:
            if a != "1":
                total = dim_mul(total, known[a])
        out.append(total)
    if sum(isinstance(d, Batch) for d in out) > 1:
        raise ShapeError("the batch axis may end up in only one output axis")
    return tuple(out)


def lower(p: Pattern, sizes: dict[str, object]) -> list[tuple]:
    """Steps ('unflatten', dim, [size or -1, ...]) / ('permute', perm) / ('flatten', a, b) /
    ('squeeze', dim) / ('unsqueeze', dim) that implement `p` on a torch tensor."""
    steps: list[tuple] = []
    elem: list[str] = []
    for group in p.lhs:
        elem.extend(group)
    # Split composite input axes, last first, so earlier axis indices stay valid.
    for i in reversed(range(len(p.lhs))):
        group = p.lhs[i]
        if len(group) > 1:
            steps.append(("unflatten", i, [sizes.get(a, -1) for a in group]))
    # Drop unit axes of the input.
    for j in reversed(range(len(elem))):
        if elem[j] == "1":
            steps.append(("squeeze", j))
    names = [a for a in elem if a != "1"]
    order = [a for g in p.rhs for a in g if a != "1"]
    perm = [names.index(a) for a in order]
    if perm != list(range(len(perm))):
        steps.append(("permute", perm))
    # Merge output groups, last first; then insert unit axes.
    starts = []
    pos = 0
    for group in p.rhs:
        width = len([a for a in group if a != "1"])
        starts.append((pos, width))
        pos += width
    for start, width in reversed(starts):
        if width > 1:
            steps.append(("flatten", start, start + width - 1))
    pos = 0
    for group in p.rhs:
        if group == ("1",):
            steps.append(("unsqueeze", pos))
        pos += 1
    return steps

