"""Small pieces on their own: rearrange patterns, emitted-expression folding, the op table."""

from __future__ import annotations

import re

import pytest
import torch

from archlang import pycode as P
from archlang.einpattern import PatternError, infer, lower, parse_pattern
from archlang.ops import OPS
from archlang.ops.tensor import emit_rearrange
from archlang.shapes import Batch, ShapeError


@pytest.mark.parametrize("pattern,shape,sizes,expected", [
    ("b c h w -> b h w c", (Batch(), 8, 4, 6), {}, (Batch(), 4, 6, 8)),
    ("b c h w -> b (h w) c", (Batch(), 8, 4, 6), {}, (Batch(), 24, 8)),
    ("b n (three h d) -> three b h n d", (Batch(), 5, 24), {"three": 3, "h": 2}, (3, Batch(), 2, 5, 4)),
    ("b (nh p) (nw q) c -> (b nh nw) (p q) c", (Batch(), 14, 21, 3), {"p": 7, "q": 7},
     (Batch(6), 49, 3)),
    ("b (p nh) (q nw) c -> (b nh nw) (p q) c", (Batch(), 14, 21, 3), {"p": 7, "q": 7},
     (Batch(6), 49, 3)),
    ("c -> 1 c 1 1", (5,), {}, (1, 5, 1, 1)),
])
def test_rearrange_shape_matches_torch(pattern, shape, sizes, expected):
    assert infer(parse_pattern(pattern), shape, sizes) == expected
    concrete = tuple(d.k * 2 if isinstance(d, Batch) else d for d in shape)
    x = torch.arange(torch.Size(concrete).numel()).reshape(concrete)
    code = emit_rearrange(P.name("x"), pattern, {k: P.lit(v) for k, v in sizes.items()})
    got = eval(code.text, {"x": x})  # noqa: S307 - our own emitted text, checked against einops
    import einops

    assert torch.equal(got, einops.rearrange(x, pattern, **sizes))


@pytest.mark.parametrize("pattern,message", [
    ("b c h w", "exactly one '->'"),
    ("b (c h w -> b c h w", "'(' is not closed"),
    ("b c -> b c d", "appears on only one side"),
    ("b b -> b", "appears twice"),
    ("b ((c)) -> b c", "cannot be nested"),
])
def test_bad_patterns(pattern, message):
    with pytest.raises(PatternError, match=re.escape(message)):
        parse_pattern(pattern)


def test_pattern_needs_all_but_one_size():
    with pytest.raises(ShapeError, match="give the size of all but one"):
        infer(parse_pattern("b (h w) -> b h w"), (Batch(), 12), {})
    with pytest.raises(ShapeError, match="cannot divide an axis of length 12 into parts of 5"):
        infer(parse_pattern("b (h w) -> b h w"), (Batch(), 12), {"h": 5})


def test_lowering_skips_identity_steps():
    assert lower(parse_pattern("b c -> b c"), {}) == []
    assert lower(parse_pattern("b h w c -> b c h w"), {}) == [("permute", [0, 3, 1, 2])]


@pytest.mark.parametrize("build,text", [
    (lambda: P.binop("//", P.binop("-", P.lit(7), P.lit(1)), P.lit(2)), "3"),
    (lambda: P.binop("//", P.binop("-", P.name("k"), P.lit(1)), P.lit(2)), "(k - 1) // 2"),
    (lambda: P.binop("*", P.lit(1), P.name("d")), "d"),
    (lambda: P.binop("-", P.name("a"), P.binop("-", P.name("b"), P.name("c"))), "a - (b - c)"),
    (lambda: P.binop("**", P.name("a"), P.unary("-", P.name("b"))), "a ** (-b)"),
    (lambda: P.cond(P.name("a"), P.lit(True), P.name("b")), "a"),
    (lambda: P.lit((3, 3)), "(3, 3)"),
    (lambda: P.lit((3,)), "(3,)"),
    (lambda: P.lit(1e-6), "1e-06"),
    (lambda: P.lit(4.0), "4.0"),
])
def test_emitted_expressions_fold_and_parenthesize(build, text):
    assert build().text == text


def test_every_op_has_shape_cost_and_emit_rules():
    for name, op in OPS.items():
        assert callable(op.shape) and callable(op.cost), name
        if op.kind == "module":
            assert op.init is not None, f"{name}: module ops need a constructor rule"
        elif op.kind == "act":
            assert op.init is not None and op.call is not None, f"{name}: needs module and function rules"
        elif op.kind == "source":
            assert op.init is not None or op.syntax, name
        else:
            assert op.call is not None or op.syntax, f"{name}: needs an emit rule or its syntax form"
        assert op.doc, f"{name}: document it"


def test_op_costs_follow_fvcore_conventions():
    from archlang.ops import Attrs

    conv = OPS["conv2d"]
    a = Attrs(in_channels=4, out_channels=8, kernel_size=3, stride=1, padding=None, dilation=1, groups=2,
              bias=True)
    out = conv.shape(a, [(Batch(), 4, 5, 5)])
    assert out == (Batch(), 8, 5, 5)
    assert conv.cost(a, [(Batch(), 4, 5, 5)], out) == 8 * 25 * 2 * 9
    ln = OPS["layernorm"]
    assert ln.cost(Attrs(normalized_shape=6, eps=1e-5, affine=True), [(Batch(), 10, 6)], None) == 5 * 60
