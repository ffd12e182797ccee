"""Indexing, gathering, masks, selection and reductions on tensors, against plain torch.

Each spec is written the direct way (`table[index]`, comparisons and `where`, `roll`,
`sum(t, dim)`), built with archlang.build, run on random inputs and compared with the same
computation written in torch by hand; the IR's shapes and element types are checked against
what the emitted module produces, einsum's cost against fvcore, and every invalid input is
refused at its exact spec position.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracle import fvcore_macs

import archlang
from archlang.compiler import compile_spec, verify
from archlang.errors import ArchError

DTYPES = {"float": torch.float32, "long": torch.int64, "bool": torch.bool}


def build(tmp_path, text: str, size=(3, 8, 8)):
    """The emitted model and the compiled IR; the model is first validated node for node
    against the IR (torch.fx, archlang/validate.py)."""
    path = tmp_path / "t.arch"
    path.write_text(text)
    compiled = compile_spec(str(path), input_size=size)
    verify(compiled, full=True)
    return archlang.build(str(path), input_size=size), compiled


def run(model, x):
    """The model's output, and the same through torch.fx (the emitted module must trace)."""
    with torch.no_grad():
        y = model(x)
        assert torch.equal(torch.fx.symbolic_trace(model)(x), y)
    return y


def check_ir(compiled, y, batch: int):
    """The IR's output shape and element type are what the module produced."""
    out = compiled.graph.node(compiled.graph.output)
    assert tuple(y.shape) == tuple(batch * d.k if hasattr(d, "k") else d for d in out.shape)
    assert y.dtype == DTYPES[out.dtype]


def spec(body: str, params: str = "", inp: str = "[B, 3, H, W]") -> str:
    lines = "".join(f"  {ln}\n" for ln in body.strip().splitlines())
    return f"family t\n{params}input {inp}\nmodel {{\n{lines}}}\n"


def locate(text: str, at: str, nth: int = 0) -> tuple[int, int]:
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(at, pos + 1)
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


# ------------------------------------------------------------------ table[index]

# Swin-style relative position bias: an index table computed from coordinates inside the spec,
# then one lookup `table[index]` (the way timm registers and reads relative_position_index).
REL_POS = """
family relpos
param win = 4
param heads = 3
input [B, heads, N, N]
model {
  table = weight([(2 * win - 1) * (2 * win - 1), heads], init = "normal")
  c = arange(x, win, dtype = "long")
  rows = flatten(expand(rearrange(c, "(h one) -> h one", one = 1), [win, win]))
  cols = flatten(expand(rearrange(c, "(one w) -> one w", one = 1), [win, win]))
  dr = rearrange(rows, "(n one) -> n one", one = 1) - rearrange(rows, "(one n) -> one n", one = 1)
  dc = rearrange(cols, "(n one) -> n one", one = 1) - rearrange(cols, "(one n) -> one n", one = 1)
  index = (dr + win - 1) * (2 * win - 1) + dc + win - 1
  bias = table[index]
  flat = reshape(table[flatten(index)], [win * win, win * win, heads])
  x = x + permute(bias, [2, 0, 1]) + 0.0 * permute(flat, [2, 0, 1])
}
"""


def relative_index(win: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(win), torch.arange(win), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()])  # [2, n]
    rel = pos[:, :, None] - pos[:, None, :] + win - 1
    return rel[0] * (2 * win - 1) + rel[1]


def test_relative_position_bias_lookup(tmp_path):
    model, compiled = build(tmp_path, REL_POS, size=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    y = run(model, x)
    bias = model.table[relative_index(4).flatten()].reshape(16, 16, 3).permute(2, 0, 1)
    assert torch.equal(y, x + bias)
    check_ir(compiled, y, 2)
    index_node = next(n for n in compiled.graph.nodes() if n.op == "advanced_index")
    assert index_node.shape == (16, 16, 3) and compiled.graph.node(index_node.inputs[1]).dtype == "long"
    assert "self.table[index]" in compiled.source
    assert compiled.cost.macs == fvcore_macs(model, size=(3, 16, 16)) == 0  # fvcore counts no gather


ADVANCED = [  # (subscripts in the spec, the same in torch): ints, slices, none and index tensors mixed
    ("x[:, i]", lambda x, i, j: x[:, i]),
    ("x[:, 0, i]", lambda x, i, j: x[:, 0, i]),
    ("x[:, i, 1, j]", lambda x, i, j: x[:, i, 1, j]),
    ("x[:, i, :, i]", lambda x, i, j: x[:, i, :, i]),
    ("x[:, i, none, j]", lambda x, i, j: x[:, i, None, j]),
    ("x[:, none, i]", lambda x, i, j: x[:, None, i]),
    ("x[:, j, i]", lambda x, i, j: x[:, j, i]),
    ("x[:, 1:3, i, 0]", lambda x, i, j: x[:, 1:3, i, 0]),
    ("x[:, i, j]", lambda x, i, j: x[:, i, j]),
]


@pytest.mark.parametrize("expr,ref", ADVANCED, ids=[e for e, _ in ADVANCED])
def test_advanced_indexing_follows_torch(tmp_path, expr, ref):
    body = f"""
i = flip(arange(x, 3, dtype = "long"), 0)
j = rearrange(arange(x, 2, dtype = "long"), "(n one) -> n one", one = 1)
x = {expr}
"""
    model, compiled = build(tmp_path, spec(body, inp="[B, 4, 5, 6]"), size=(4, 5, 6))
    x = torch.randn(2, 4, 5, 6)
    y = run(model, x)
    assert torch.equal(y, ref(x, torch.tensor([2, 1, 0]), torch.tensor([[0], [1]])))
    check_ir(compiled, y, 2)


GATHERS = [
    ("gather(x, idx, 2)", lambda x, idx: x.gather(2, idx)),
    ("gather(x, idx, -1)", lambda x, idx: torch.gather(x, -1, idx)),
    ("take_along_dim(x, idx, 2)", lambda x, idx: torch.take_along_dim(x, idx, 2)),
    ("take_along_dim(x, idx[:, :, :, 0:1], 2)", lambda x, idx: torch.take_along_dim(x, idx[..., :1], 2)),
    ('index_select(x, flip(arange(x, 4, dtype = "long"), 0), 2)',
     lambda x, idx: x.index_select(2, torch.arange(4).flip(0))),
    ('index_select(x, arange(x, 2, dtype = "long") * 2, -1)', lambda x, idx: x.index_select(-1, torch.tensor([0, 2]))),
]


@pytest.mark.parametrize("expr,ref", GATHERS, ids=[e for e, _ in GATHERS])
def test_gather_ops_follow_torch(tmp_path, expr, ref):
    body = f"""
idx = to(x[:, :, 0:3] > 0, "long") * 4 + to(abs(x[:, :, 1:4]) > 1, "long")
x = {expr}
"""
    model, compiled = build(tmp_path, spec(body), size=(3, 6, 6))
    x = torch.randn(2, 3, 6, 6)
    idx = (x[:, :, :3] > 0).long() * 4 + (x[:, :, 1:4].abs() > 1).long()
    y = run(model, x)
    assert torch.equal(y, ref(x, idx))
    check_ir(compiled, y, 2)


# ------------------------------------------------------------------ einsum

EINSUMS = [  # (equation, operand shapes; b is the batch)
    ("bhid,bhjd->bhij", [(2, 5, 4), (2, 6, 4)]),  # attention logits
    ("bij,bjk->bik", [(5, 4), (4, 3)]),  # fvcore's batched matmul case
    ("bchw,bchw->bhw", [(3, 4, 5), (3, 4, 5)]),
    ("bi,bj->bij", [(4,), (5,)]),  # outer product, no summed letter
    ("bik,bkj->bij", [(23, 29), (29, 31)]),  # numpy's count, which fvcore reads to 4 digits
    ("bij,bjk,bkl->bil", [(3, 4), (4, 5), (5, 2)]),  # numpy's optimal path
    ("bji", [(3, 4)]),  # implicit output: the letters used once, sorted (a transpose here)
    ("b i j , b j k -> b i k", [(3, 4), (4, 2)]),  # spaces are ignored
]


def _einsum_spec(eq: str, shapes: list[tuple]) -> str:
    total = sum(torch.Size(s).numel() for s in shapes)
    lines = [f"flat = reshape(x, [B, {total}])"]
    names, start = [], 0
    for k, s in enumerate(shapes):
        n = torch.Size(s).numel()
        lines.append(f"t{k} = reshape(flat[:, {start}:{start + n}], [B, {', '.join(map(str, s))}])")
        names.append(f"t{k}")
        start += n
    lines.append(f'x = einsum("{eq}", {", ".join(names)})')
    return spec("\n".join(lines), inp=f"[B, {total}]")


class Einsum(torch.nn.Module):
    def __init__(self, eq, shapes):
        super().__init__()
        self.eq, self.shapes = eq, shapes

    def forward(self, x):
        parts, start = [], 0
        for s in self.shapes:
            n = torch.Size(s).numel()
            parts.append(x[:, start:start + n].reshape(x.shape[0], *s))
            start += n
        return torch.einsum(self.eq, *parts)


@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum_values_shapes_and_fvcore_cost(tmp_path, eq, shapes):
    total = sum(torch.Size(s).numel() for s in shapes)
    model, compiled = build(tmp_path, _einsum_spec(eq, shapes), size=(total,))
    ref = Einsum(eq, shapes)
    x = torch.randn(2, total)
    y = run(model, x)
    assert torch.allclose(y, ref(x), atol=1e-6)
    check_ir(compiled, y, 2)
    assert compiled.cost.macs == fvcore_macs(ref, size=(total,))


# ------------------------------------------------------------------ masks: comparisons, where, masked_fill

# A shifted-window attention mask (Swin's): region ids of a rolled map from comparisons with
# the window and shift boundaries, then -100 where two positions of a window differ in region.
SHIFT_MASK = """
family shiftmask
param size = 8
param win = 4
param shift = 2
input [B, C, H, W]
model {
  p = arange(x, size)
  band = to(p >= size - win, "long") + to(p >= size - shift, "long")
  region = rearrange(band, "(h one) -> h one", one = 1) * 3 + rearrange(band, "(one w) -> one w", one = 1)
  windows = rearrange(region, "(nh p) (nw q) -> (nh nw) (p q)", p = win, q = win)
  differ = rearrange(windows, "n (t one) -> n t one", one = 1) != rearrange(windows, "n (one t) -> n one t", one = 1)
  mask = where(differ, -100.0, 0.0)
  same = masked_fill(mask, differ, 0.0)
  x = roll(x, [-shift, -shift], [2, 3])
  x = rearrange(x, "b c (nh p) (nw q) -> b (nh nw) (p q) c", p = win, q = win)
  x = x @ transpose(x, -2, -1) + mask + same
}
"""


def swin_mask(size: int, win: int, shift: int) -> torch.Tensor:
    region = torch.zeros(size, size, dtype=torch.long)
    cuts = (slice(0, size - win), slice(size - win, size - shift), slice(size - shift, size))
    for a, rows in enumerate(cuts):
        for b, cols in enumerate(cuts):
            region[rows, cols] = 3 * a + b
    w = region.reshape(size // win, win, size // win, win).permute(0, 2, 1, 3).reshape(-1, win * win)
    return (w[:, :, None] != w[:, None, :]).float() * -100.0


def test_shifted_window_mask_with_comparisons_where_and_roll(tmp_path):
    model, compiled = build(tmp_path, SHIFT_MASK, size=(5, 8, 8))
    x = torch.randn(2, 5, 8, 8)
    y = run(model, x)
    t = torch.roll(x, (-2, -2), (2, 3)).reshape(2, 5, 2, 4, 2, 4).permute(0, 2, 4, 3, 5, 1).reshape(2, 4, 16, 5)
    mask = swin_mask(8, 4, 2)
    assert (mask != 0).any() and (mask == 0).any()
    assert torch.allclose(y, t @ t.transpose(-2, -1) + mask, atol=1e-5)
    check_ir(compiled, y, 2)
    dtypes = {n.op: n.dtype for n in compiled.graph.nodes()}
    assert dtypes["ne"] == "bool" and dtypes["ge"] == "bool" and dtypes["where"] == "float"
    assert compiled.cost.macs == fvcore_macs(model, size=(5, 8, 8)) > 0  # the matmul only


COMPARE = [
    ("to(x > 0, \"float\")", lambda x: (x > 0).float()),
    ("to(x >= y, \"float\") + to(x < y, \"float\") * 2",
     lambda x: (x >= x.flip(1)).float() + (x < x.flip(1)).float() * 2),
    ("to(x <= 0.5, \"long\")", lambda x: (x <= 0.5).long()),
    ("to((x < 0) == (y < 0), \"float\")", lambda x: ((x < 0) == (x.flip(1) < 0)).float()),
    ("where(x != y, x, y * 2)", lambda x: torch.where(x != x.flip(1), x, x.flip(1) * 2)),
    ("where(x > 0, 1, 0)", lambda x: torch.where(x > 0, 1, 0)),
    ("where(x > 0, x, 0.0)", lambda x: torch.where(x > 0, x, 0.0)),
    ("masked_fill(x, x[:, 0:1] > 0, -1.5)", lambda x: x.masked_fill(x[:, :1] > 0, -1.5)),
    ("x * to(x == x, \"float\")", lambda x: x),
]


@pytest.mark.parametrize("expr,ref", COMPARE, ids=[e for e, _ in COMPARE])
def test_comparisons_and_selection_follow_torch(tmp_path, expr, ref):
    model, compiled = build(tmp_path, spec(f"y = flip(x, 1)\nx = {expr}"))
    x = torch.randn(2, 3, 8, 8)
    y = run(model, x)
    want = ref(x)
    assert y.dtype == want.dtype and torch.equal(y, want)
    check_ir(compiled, y, 2)


# ------------------------------------------------------------------ element-wise, movement, reductions

ELEMENTWISE = [
    ("abs(x)", lambda x: x.abs()),
    ("clamp(x, min = -0.5)", lambda x: x.clamp(min=-0.5)),
    ("clamp(x, -0.5, 0.25)", lambda x: x.clamp(-0.5, 0.25)),
    ("clamp(x, max = 0.0)", lambda x: x.clamp(max=0.0)),
    ("roll(x, 3, 2)", lambda x: x.roll(3, 2)),
    ("roll(x, [-1, 2], [2, 3])", lambda x: torch.roll(x, (-1, 2), (2, 3))),
    ("flip(x, 1)", lambda x: x.flip(1)),
    ("flip(x, [2, 3])", lambda x: torch.flip(x, (2, 3))),
    ("x * shape(x)[3]", lambda x: x * x.shape[3]),
    ("x / (shape(x)[2] * 2) - shape(x)[1]", lambda x: x / (x.shape[2] * 2) - x.shape[1]),
]

REDUCTIONS = [
    ("sum(x, 1)", lambda x: x.sum(1)),
    ("sum(x, [2, 3], keepdim = true)", lambda x: x.sum((2, 3), keepdim=True)),
    ("sum(x > 0, [1, 2])", lambda x: (x > 0).sum((1, 2))),
    ("amax(x, [1, 3])", lambda x: x.amax((1, 3))),
    ("amin(x, -1, keepdim = true)", lambda x: x.amin(-1, keepdim=True)),
    ("prod(x, 2)", lambda x: x.prod(2)),
    ("prod(prod(x, 3), 1)", lambda x: x.prod(3).prod(1)),
    ("prod(x, [-1], keepdim = true)", lambda x: x.prod(3, keepdim=True)),
    ("var(x, [2, 3])", lambda x: x.var((2, 3))),
    ("var(x, 1, correction = 0, keepdim = true)", lambda x: x.var(1, correction=0, keepdim=True)),
    ("std(x, -1)", lambda x: x.std(-1)),
    ("std(x, [1, 2], correction = 0)", lambda x: x.std((1, 2), correction=0)),
    ("normalize(x)", lambda x: F.normalize(x)),
    ("normalize(x, dim = -1, eps = 1e-6)", lambda x: F.normalize(x, dim=-1, eps=1e-6)),
    ("normalize(x, 1.0, 2)", lambda x: F.normalize(x, 1.0, 2)),
]


@pytest.mark.parametrize("expr,ref", ELEMENTWISE + REDUCTIONS, ids=[e for e, _ in ELEMENTWISE + REDUCTIONS])
def test_ops_follow_torch(tmp_path, expr, ref):
    model, compiled = build(tmp_path, spec(f"x = {expr}"), size=(3, 6, 5))
    x = torch.randn(2, 3, 6, 5)
    y = run(model, x)
    want = ref(x)
    assert y.dtype == want.dtype and torch.allclose(y, want, atol=1e-6)
    check_ir(compiled, y, 2)


def test_run_time_sizes_scale_tensors_for_every_input_size(tmp_path):
    path = tmp_path / "t.arch"
    path.write_text(spec("x = x * shape(x)[3] + to(x > shape(x)[2], \"float\")"))
    for h, w in ((4, 6), (8, 3)):
        model = archlang.build(str(path), input_size=(3, h, w))
        x = torch.randn(2, 3, h, w) * 10
        assert torch.equal(run(model, x), x * w + (x > h).float())


def test_sum_and_abs_are_builtins_on_values_and_ops_on_tensors(tmp_path):
    text = spec("let n = sum([1, 2, 3]) + abs(-2)\nx = sum(abs(x), 1) * n + sum(x, [1], keepdim = true)[:, 0]")
    model, compiled = build(tmp_path, text)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(run(model, x), x.abs().sum(1) * 8 + x.sum(1), atol=1e-6)
    assert "n = sum((1, 2, 3)) + abs(-2)" in compiled.source  # the builtins, in __init__
    assert "abs(x).sum(1) * self.n + x.sum((1,), keepdim=True)" in compiled.source  # the ops


def test_negative_step_slices_are_refused_and_flip_reverses(tmp_path):
    text = spec("x = x[:, ::-1]")
    with pytest.raises(ArchError) as err:
        build(tmp_path, text)
    assert err.value.message == "tensor slices need a positive step"
    assert (err.value.span.line, err.value.span.col) == locate(text, "-1")
    assert "flip(x, 1)" in err.value.hint
    model, _ = build(tmp_path, spec("x = flip(x, 1)[:, ::2]"))
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(run(model, x), x.flip(1)[:, ::2])


def test_lists_still_take_negative_steps(tmp_path):
    model, compiled = build(tmp_path, spec("x = x * dims[::-1][0]", params="param dims = [2, 3, 5]\n"))
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(run(model, x), x * 5)


def test_comparison_operands_keep_their_parentheses(tmp_path):
    _, compiled = build(tmp_path, spec('x = to((x < 0) == (x > 1), "float")'))
    assert "((x < 0) == (x > 1)).float()" in compiled.source


# ------------------------------------------------------------------ invalid inputs, located

IDX = 'idx = arange(x, 3, dtype = "long")\n'
INVALID = [  # (spec body, text the caret starts at, message fragment)
    ("x = x[:, x]", "x[:, x]", "indexing needs long index tensors, got a float tensor"),
    ("x = x[:, x > 0]", "x[:, x > 0]", "with a bool mask would give a shape that depends on the data"),
    (IDX + "x = x[idx]", "x[idx]", "the batch axis can only be taken whole"),
    (IDX + "x = x[:, idx, 0, 0, 1]", "x[:, idx, 0, 0, 1]", "too many indices"),
    (IDX + "x = gather(x, idx, 1)", "gather(x, idx, 1)", "gather needs an index of the tensor's rank"),
    (IDX + "x = gather(x, 1, idx)", "1, idx", "expected a tensor here, got int 1"),
    ('x = gather(x, to(x > 0, "long"), 0)', "gather(", "cannot gather along the batch axis"),
    (IDX + "x = index_select(x, rearrange(idx, \"(a b) -> a b\", b = 1), 1)", "index_select(",
     "index_select needs a vector of indices"),
    (IDX + "x = index_select(x, idx, 0)", "index_select(", "cannot index_select along the batch axis"),
    (IDX + "x = take_along_dim(x, idx)", "take_along_dim(", "take_along_dim without dim flattens"),
    ("x = roll(x, [1, 2], 2)", "roll(", "roll needs one shift per axis"),
    ("x = roll(x, 1, 0)", "roll(", "cannot roll along the batch axis"),
    ("x = flip(x, [1, 1])", "flip(", "flip: the axes [1, 1] name one axis twice"),
    ("x = flip(x, 4)", "flip(", "axis 4 is out of range"),
    ('x = einsum("bchw,bchw->bc", x)', "einsum(", "has 2 operand(s), but 1 tensor(s) are given"),
    ('x = einsum("bchw,bcw->bc", x, x)', "einsum(", "einsum operand 1 has shape [B, 3, 8, 8] but 3 letters"),
    ('x = einsum("bchw,bcwh->bc", x, x[:, :, 0:4])', "einsum(", "einsum letter 'w' is 8 in one place and 4"),
    ('x = einsum("bchw->chw", x)', "einsum(", "einsum would sum over the batch axis"),
    ('x = einsum("bchw->bz", x)', "einsum(", "einsum output letter 'z' is not in any operand"),
    ('x = einsum("...hw->...h", x)', "einsum(", "'...' are not supported"),
    ('x = einsum(x, "bchw->bc")', '"bchw->bc"', "expected a tensor here, got str 'bchw->bc'"),
    ("x = einsum(\"bchw->bc\")", "einsum(", "einsum takes its equation and then tensors"),
    ("x = where(x, x, 0.0)", "where(", "where needs bool conditions, got a float tensor"),
    ("x = where(x > 0, x, x[:, :, 0:2])", "where(", "cannot broadcast"),
    ('x = where(x > 0, x, "no")', '"no"', "expected a tensor here, got str 'no'"),
    ("x = masked_fill(x, x, 0.0)", "masked_fill(", "masked_fill needs bool masks, got a float tensor"),
    ("x = masked_fill(x[:, :, :, 0:1], x > 0, 0.0)", "masked_fill(", "must broadcast to the tensor's shape"),
    ("x = clamp(x)", "clamp(", "clamp needs min, max or both"),
    ("x = clamp(x, 1.0, 0.0)", "clamp(", "clamp: min 1.0 is above max 0.0"),
    ('x = to(x > 0, "int8")', '"int8"', "argument 'dtype' of to must be \"float\" or \"long\" or \"bool\""),
    ('x = arange(x, 4, dtype = "bool")', '"bool"', "argument 'dtype' of arange must be"),
    ("x = -(x > 0)", "-(x > 0)", "cannot negate a bool mask"),
    ("x = (x > 0) - (x < 0)", "(x > 0) - (x < 0)", "'sub' of bool masks is not defined"),
    ('x = to(x > 0, "long") ** -1', 'to(x > 0, "long") ** -1', "a long tensor cannot take a negative integer power"),
    ('x = mean(to(x > 0, "long"), 1)', "mean(", "mean needs float tensors, got a long tensor"),
    ('y = to(x > 0, "long")\nx = c: conv2d(3, 3, 1)(y)', "x = c: conv2d", "conv2d needs float tensors, got a long"),
    ("x = x < \"a\"", 'x < "a"', "cannot apply '<' to a tensor and str 'a'"),
    ("x = x // 2", "x // 2", "'//' is not defined for tensors"),
    ("x = sum(x)", "sum(x)", "sum is missing argument 'dim'"),
    ("x = abs(x > 0)", "abs(x > 0)", "abs needs long or float tensors, got a bool tensor"),
    ("x = prod(x, 0)", "prod(", "cannot reduce over the batch axis"),
    ("x = prod(x, [1, 2])", "prod(", "prod reduces one axis at a time, got [1, 2]"),
    ("x = amax(x, [2, 2])", "amax(", "the axes [2, 2] name one axis twice"),
    ("x = std(x, 1, correction = true)", "true", "argument 'correction' of std must be a number >= 0, got true"),
    ("x = x * sum([1, 2], 1)", "[1, 2]", "expected a tensor here, got a list"),
    ("x = sum(x, [])", "sum(x, [])", "give the axes to reduce"),
    ("x = sum(x, [1, -3])", "sum(", "the axes [1, -3] name one axis twice"),
    ("x = amin(x, 0)", "amin(", "cannot reduce over the batch axis"),
    ("x = var(x, 1, correction = -1)", "-1", "argument 'correction' of var must be a number >= 0, got -1"),
    ("x = normalize(x, dim = 0)", "normalize(", "cannot normalize over the batch axis"),
    ("x = normalize(x, eps = -1.0)", "-1.0", "argument 'eps' of normalize must be a number >= 0, got -1.0"),
    ("x = advanced_index([x], [0])", "advanced_index", "'advanced_index' is written with its own syntax"),
    ("x = x + add(x, x)", "add", "'add' is written with its own syntax"),
]


@pytest.mark.parametrize("body,at,message", INVALID, ids=[m[:48] for _, _, m in INVALID])
def test_invalid_inputs_are_located(tmp_path, body, at, message):
    text = spec(body)
    with pytest.raises(ArchError) as err:
        build(tmp_path, text)
    assert message in err.value.message
    assert (err.value.span.line, err.value.span.col) == locate(text, at, text.count(at, 0, text.index("model")))
