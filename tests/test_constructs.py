"""Language constructs (issue 7): each is built from a small spec that is not one of the ten
families, run, and compared with the same computation written in plain torch with the module's
own weights (outputs equal); each has located invalid-input tests rendered by the CLI.

Constructs: blocks with several tensor inputs and outputs (and nn.ModuleList loop items),
build-time tensors and computed buffers, literal-list initialisers, computed labels, sequential
bodies with loops and ifs (timm's nested `blocks.i.j` names), bound groups, nested bound calls,
layers chosen by a parameter (`layer(act_layer)`), and the loop-item label messages.
"""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from test_errors import IN, Case, build_fails_located, model
from test_language import check_shapes_match_runtime

import archlang
from archlang.compiler import compile_spec, verify


def build(tmp_path, text: str, size=(3, 16, 16), overrides=None):
    """The emitted model and the spec's path; the module is first validated node for node against
    the IR (torch.fx, archlang/validate.py)."""
    path = tmp_path / "t.arch"
    path.write_text(text)
    verify(compile_spec(str(path), overrides=overrides, input_size=size), full=True)
    return archlang.build(str(path), overrides=overrides, input_size=size), str(path)


def traced_equal(m, x) -> torch.Tensor:
    """The module's output, checked against its torch.fx trace (the emitted code stays traceable)."""
    with torch.no_grad():
        y = m(x)
        assert torch.equal(torch.fx.symbolic_trace(m)(x), y)
    return y


# ---------------------------------------------------------------------- several tensors in and out

MULTI = """
family film
param dim = 8
input [B, 3, H, W]

# Two inputs: the map x and a per-channel scale from elsewhere in the model.
block modulate(dim) (x, scale) {
  proj: conv2d(dim, dim, 1)
  x = x * scale
}

# Two outputs: the spatial mean and what is left when it is taken away.
block split_mean(dim) {
  m = mean(x, [2, 3], keepdim = true)
  return m, x - m
}

model {
  stem: conv2d(3, dim, 3, stride = 2)
  g, x = sm: split_mean(dim)(x)
  blocks: repeat 2 { modulate(dim)(x, g) }
  one: modulate(dim)(x, sigmoid(g))
}
"""


def test_block_with_two_inputs_and_two_outputs(tmp_path):
    m, path = build(tmp_path, MULTI)
    assert isinstance(m.blocks, torch.nn.ModuleList)  # nn.Sequential could not pass `g`
    x = torch.randn(2, 3, 16, 16)
    s = F.conv2d(x, m.stem.weight, m.stem.bias, stride=2, padding=1)
    g = s.mean((2, 3), keepdim=True)
    rest = s - g  # the second output of split_mean
    for blk in m.blocks:
        rest = F.conv2d(rest, blk.proj.weight, blk.proj.bias) * g
    want = F.conv2d(rest, m.one.proj.weight, m.one.proj.bias) * torch.sigmoid(g)
    assert torch.allclose(traced_equal(m, x), want, atol=1e-6)
    assert "def forward(self, x, scale):" in compile_spec(path, input_size=(3, 16, 16)).source
    check_shapes_match_runtime(m, path, size=(3, 16, 16))


# ---------------------------------------------------------------------- build-time tensors, buffers

RELPOS = """
family relpos
param p = 7
param dim = 4
input [B, dim, H, W]

# timm's relative_position_index for a p x p window, computed when the module is built.
block rel_index(p) {
  let n = 2 * p - 1
  c = arange(p)
  rows = flatten(expand(c[:, none], [p, p]))
  cols = flatten(expand(c[none], [p, p]))
  dr = rows[:, none] - rows[none, :] + (p - 1)
  dc = cols[:, none] - cols[none, :] + (p - 1)
  relative_position_index = buffer(dr * n + dc, persistent = false)
  kept = buffer(stack([rows, cols]))
  x = x + relative_position_index[0, 0] * 0 + kept[1, 3]
}

model {
  idx: rel_index(p)
}
"""


def swin_index(p: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (p - 1)
    return rel[:, :, 0] * (2 * p - 1) + rel[:, :, 1]


def test_computed_buffer_is_timms_relative_position_index(tmp_path):
    m, path = build(tmp_path, RELPOS, size=(4, 7, 7))
    assert torch.equal(m.idx.relative_position_index, swin_index(7))
    assert m.idx.relative_position_index.dtype == torch.int64
    assert "idx.relative_position_index" not in m.state_dict() and "idx.kept" in m.state_dict()
    x = torch.randn(2, 4, 7, 7)
    assert torch.equal(traced_equal(m, x), x + 3)  # kept[1, 3] is column 3 of row 0
    c = compile_spec(path, input_size=(4, 7, 7))
    init = [n for n in c.graph.nodes() if n.init]
    assert init and all(c.cost.node_macs[n.id] == 0 for n in init) and not any(n.module for n in init)
    buf = next(n for n in c.graph.nodes() if n.name == "relative_position_index")
    assert buf.shape == (49, 49) and c.graph.node(buf.inputs[0]).init
    # computed in __init__ from the formula, not pasted: no literal row of the 49x49 table
    assert "torch.arange(p)" in c.source and "84, 83" not in c.source and len(c.source) < 6000
    other = archlang.build(path, overrides={"p": 3}, input_size=(4, 6, 6))
    assert torch.equal(other.idx.relative_position_index, swin_index(3))


SINCOS = """
family sincos
param dim = 8
param tokens = 6
input [B, tokens, dim]
model {
  let half = dim // 2
  freqs = 1.0 / 10000.0 ** (arange(half) / half)
  ang = arange(tokens)[:, none] * freqs[none]
  table = buffer(cat([sin(ang), cos(ang)], dim = -1), persistent = false)
  pos_embed = weight(table[none])          # a learned copy starts from the table
  x = x + table + pos_embed
}
"""


def test_sin_cos_table_buffer_and_weight_from_a_build_time_tensor(tmp_path):
    m, path = build(tmp_path, SINCOS, size=(6, 8))
    freqs = 1.0 / 10000.0 ** (torch.arange(4) / 4)
    ang = torch.arange(6)[:, None] * freqs[None]
    table = torch.cat([ang.sin(), ang.cos()], dim=-1)
    assert torch.equal(m.table, table) and torch.equal(m.pos_embed.detach(), table[None])
    assert isinstance(m.pos_embed, torch.nn.Parameter) and m.pos_embed.dtype == torch.float32
    x = torch.randn(2, 6, 8)
    assert torch.allclose(traced_equal(m, x), x + 2 * table, atol=1e-6)
    assert compile_spec(path, input_size=(6, 8)).cost.params == 48


LITERAL = """
family lit
input [B, 8]
model {
  m = buffer([8], init = [0, 1, 2, 3, 4, 5, 6, 7], persistent = false)
  grid = buffer([2, 2], init = [[1, 2], [3, 4]])
  w = weight([4], init = [1, 0, 2, 0])
  x = x * m + grid[1, 1] * 0 + cat([w, w]) * 0
}
"""


def test_literal_list_initialisers(tmp_path):
    m, _ = build(tmp_path, LITERAL, size=(8,))
    assert torch.equal(m.m, torch.arange(8)) and "m" not in m.state_dict()
    assert torch.equal(m.grid, torch.tensor([[1, 2], [3, 4]]))
    assert m.w.dtype == torch.float32 and torch.equal(m.w.detach(), torch.tensor([1.0, 0, 2, 0]))
    x = torch.randn(2, 8)
    assert torch.equal(traced_equal(m, x), x * torch.arange(8))


# ---------------------------------------------------------------------- names and structure

NAMES = """
family names
param dims = [4, 8]
param depths = [1, 2]
param act_layer = "hardswish"
input [B, 3, H, W]

model {
  stem: { conv2d(3, dims[0], 3); layer(act_layer) }
  for i in 0..2 {
    layer{i + 1}: conv2d(dims[0], dims[0], 1)
  }
  # timm's blocks.i.j: a downsample first in every stage but the first, then depth units
  blocks: for i in 0..len(dims) {
    if i > 0 { conv2d(dims[i - 1], dims[i], 2, stride = 2, padding = 0) }
    for j in 0..depths[i] { conv2d(dims[i], dims[i], 3, groups = dims[i]) }
  }
  y = q: { a: conv2d(dims[1], dims[1], 1) }(x)
  x = x + y
  a: conv2d(dims[1], dims[1], 1)(b: conv2d(dims[1], dims[1], 3)(x))
  act: layer(act_layer)
}
"""


def test_computed_labels_sequential_items_bound_groups_nested_calls_chosen_layers(tmp_path):
    m, path = build(tmp_path, NAMES)
    names = [k for k in m.state_dict() if k.endswith("weight")]
    assert names == ["stem.0.weight", "layer1.weight", "layer2.weight", "blocks.0.0.weight", "blocks.1.0.weight",
                     "blocks.1.1.weight", "blocks.1.2.weight", "q.a.weight", "b.weight", "a.weight"]
    assert isinstance(m.stem[1], torch.nn.Hardswish) and isinstance(m.act, torch.nn.Hardswish)
    x = torch.randn(2, 3, 16, 16)

    def conv(t, c, **kw):
        return F.conv2d(t, c.weight, c.bias, stride=c.stride, padding=c.padding, groups=c.groups, **kw)

    y = F.hardswish(conv(x, m.stem[0]))
    y = conv(conv(y, m.layer1), m.layer2)
    for stage in m.blocks:
        for c in stage:
            y = conv(y, c)
    y = y + conv(y, m.q.a)
    want = F.hardswish(conv(conv(y, m.b), m.a))
    assert torch.allclose(traced_equal(m, x), want, atol=1e-6)
    check_shapes_match_runtime(m, path, size=(3, 16, 16))
    source = compile_spec(path, input_size=(3, 16, 16)).source
    assert "LAYERS[act_layer]()" in source and 'self.add_module(f"layer{i + 1}"' in source
    assert "*([nn.Conv2d(" in source and "for j in range(depths[i])]" in source


def test_chosen_layer_follows_the_parameter_in_the_emitted_module(tmp_path):
    m, _ = build(tmp_path, NAMES, overrides={"act_layer": "gelu"})
    assert isinstance(m.act, torch.nn.GELU)
    module = sys.modules[type(m).__module__]
    assert isinstance(module.create_model(act_layer="relu").act, torch.nn.ReLU)
    assert set(module.LAYERS) >= {"gelu", "relu", "hardswish", "layernorm", "batchnorm2d"}


NORM = """
family norms
param norm_layer = "batchnorm2d"
input [B, 4, H, W]
model {
  norm: layer(norm_layer, 4, eps = 0.001)
}
"""


def test_chosen_norm_takes_arguments(tmp_path):
    m, _ = build(tmp_path, NORM, size=(4, 8, 8))
    assert isinstance(m.norm, torch.nn.BatchNorm2d) and m.norm.eps == 0.001
    x = torch.randn(2, 4, 8, 8)
    want = F.batch_norm(x, m.norm.running_mean, m.norm.running_var, m.norm.weight, m.norm.bias, eps=0.001)
    assert torch.allclose(traced_equal(m, x), want, atol=1e-6)
    m2, _ = build(tmp_path, NORM, size=(4, 8, 8), overrides={"norm_layer": "layernorm2d"})
    assert m2.norm.eps == 0.001 and tuple(m2.norm.weight.shape) == (4,)


def test_computed_label_in_a_block_differs_per_instance(tmp_path):
    text = """
family stages
input [B, 4, H, W]
block stage(i) {
  conv{i}: conv2d(4, 4, 1)
}
model {
  s0: stage(0)
  s1: stage(1)
}
"""
    m, _ = build(tmp_path, text, size=(4, 8, 8))
    assert list(m.state_dict())[::2] == ["s0.conv0.weight", "s1.conv1.weight"]
    x = torch.randn(2, 4, 8, 8)
    want = F.conv2d(F.conv2d(x, m.s0.conv0.weight, m.s0.conv0.bias), m.s1.conv1.weight, m.s1.conv1.bias)
    assert torch.allclose(traced_equal(m, x), want, atol=1e-6)


# ---------------------------------------------------------------------- invalid inputs, located

TWO_IN = "block two_in(d) (x, rope) {\n  c: conv2d(d, d, 1)\n  x = x * rope\n}\n"
TWO_OUT = "block two_out(d) {\n  return x, x * 2\n}\n"


def bad(id: str, src: str, at: str, message: str, hint=None, **kw):
    return pytest.param(Case(src, at, message, hint, **kw), id=id)


CASES = [
    bad("block-missing-tensor-input", IN + TWO_IN + model("f: two_in(3)"), "f: two_in(3)",
        "block 'two_in' takes 2 tensor input(s) (x, rope), got 1",
        "pass them after the call: `label: two_in(...)(x, rope)`"),
    bad("multi-input-block-in-a-plain-sequence", IN + TWO_IN + model("s: { two_in(3) }"), "two_in(3)",
        "block 'two_in' takes 2 tensor input(s) (x, rope), got 1",
        "pass them after the call: `label: two_in(...)(x, rope)`"),
    bad("explicit-inputs-in-a-group-are-not-a-sequence", IN + TWO_IN + model("s: {\n    conv2d(3, 3, 1)\n"
        "    two_in(3)(x, x)\n  }"), "conv2d(3, 3, 1)",
        "this conv2d needs a label: group 's' is not a plain sequence of unlabelled layers, so its modules "
        "cannot be numbered like nn.Sequential entries",
        "label it (`name: conv2d(...)`), or keep only unlabelled layers, and loops and ifs of them, in the body",
        note=("this layer takes explicit inputs", "two_in(3)(x, x)", 0, 15)),
    bad("multi-output-block-as-x", IN + TWO_OUT + model("f: two_out(3)"), "f: two_out(3)",
        "block 'two_out' returns 2 tensors, so its result cannot become x", "bind them: `a, b = label: ...(x)`"),
    bad("multi-output-wrong-count", IN + TWO_OUT + model("a, b, c = f: two_out(3)(x)"), "a, b, c",
        "block 'two_out' returns 2 tensors, but 3 name(s) are bound", width=len("a, b, c = f: two_out(3)(x)")),
    bad("returns-disagree", IN + "block r(d) {\n  if d > 1 {\n    return x, x\n  }\n  return x\n}\n" + model("f: r(1)"),
        "return x\n}", "this return gives 1 tensor(s), an earlier one 2",
        "every return of a body gives the same number of tensors", width=8,
        note=("the earlier return", "return x, x", 0, 11)),
    bad("model-returns-two", IN + model("return x, x"), "return x, x", "the model returns one tensor",
        "return the logits"),
    bad("tensor-input-twice", IN + "block t(d) (x, x) {\n  pass\n}\n" + model("pass"), "x)",
        "tensor input 'x' is declared twice", width=1, note=("first declared here", "x, x", 0, 1)),
    bad("forward-reads-build-time-tensor", IN + model("c = arange(4)", "x = x + c"), "c\n",
        "'c' is computed when the module is built, so forward cannot read it directly",
        "make it a buffer, which forward reads: `c_buf = buffer(c, persistent = false)`", width=1),
    bad("build-time-generator-in-forward", IN + model("x = x * arange(16)"), "arange(16)",
        "arange(...) without a tensor is computed when the module is built, so forward cannot use it directly",
        "make it a buffer (`t = buffer(arange(...))`), or give arange a tensor first to compute it in forward: "
        "arange(x, ...)"),
    bad("buffer-from-forward-tensor", IN + model("b = buffer(x * 2)"), "x * 2",
        "the values of a buffer are computed when the module is built, but this expression reads a forward tensor",
        "build it from arange(n), lists and compile-time values"),
    bad("computed-buffer-with-init", IN + model('b = buffer(arange(4), init = "ones")'), '"ones"',
        "a computed buffer takes its values from its first argument, so 'init' has no meaning here",
        "drop 'init'"),
    bad("build-time-tensor-as-x", IN + model("x = arange(4)"), "x = arange(4)",
        "x is the tensor forward computes; a build-time tensor cannot become x",
        "name it, and make it a buffer forward reads: `t = buffer(...)`"),
    bad("build-time-size-from-input", IN + model("c = arange(shape(x)[2])", "b = buffer(c)"), "shape(x)[2]",
        "argument 'end' of arange depends on the input size", "module sizes must be known at compile time"),
    bad("build-time-size-from-a-run-time-size", IN + model("h = shape(x)[2]", "c = expand(arange(4)[none], [h, 4])",
                                                          "b = buffer(c)"), "expand(arange(4)[none], [h, 4])",
        "a build-time tensor's sizes must be known at compile time, not from the input",
        "shape(t) and input sizes are run-time sizes"),
    bad("build-time-and-forward-on-two-paths", "param f = true\n" + IN + model(
        "if f {", "  t = arange(3)", "} else {", "  t = x", "}", "y = t"), "t\n",
        "'t' is a build-time tensor on one path here and a forward tensor on another",
        "use a different name for each", width=1),
    bad("literal-init-count", IN + model("b = buffer([3], init = [1, 2])"), "[1, 2]",
        "the initialiser has 2 values, but shape [3] holds 3",
        "give one value per element (nested lists are read in row-major order)"),
    bad("computed-label-twice", IN + model("for i in 0..2 {", "  layer{0}: conv2d(3, 3, 1)", "}"), "layer{0}:",
        "'layer0' is already a module or tensor name in this scope", "labels name modules and must be unique",
        note=("first used here", "layer{0}:", 0, 9)),
    bad("computed-label-not-a-name", IN + model('layer{"a b"}: conv2d(3, 3, 1)'), 'layer{"a b"}:',
        "'layera b' is not a valid module name", "labels are letters, digits and '_'"),
    bad("computed-label-negative", IN + model("layer{-1}: conv2d(3, 3, 1)"), "-1",
        "a computed label continues a name with an int >= 0 or a string, got int -1"),
    bad("bound-group-two-inputs", IN + model("y = q: { a: conv2d(3, 3, 1) }(x, x)"),
        "y = q: { a: conv2d(3, 3, 1) }(x, x)", "a group takes one tensor input (its x), got 2",
        "a block can take several: `block name(...) (x, y) { ... }`"),
    bad("nested-layer-without-label", IN + model("a: conv2d(3, 3, 1)(conv2d(3, 3, 1)(x))"),
        "conv2d(3, 3, 1)(x)", "'conv2d' is applied to inputs here, which makes it a layer: it needs a label",
        "write `name: conv2d(...)(...)` (a nested layer takes a label)"),
    bad("chosen-layer-misspelt", 'param act_layer = "hardswsh"\n' + IN + model("act: layer(act_layer)"),
        "act_layer)", "'hardswsh' is not a layer a parameter can choose", "did you mean 'hardswish'?",
        width=len("act_layer")),
    bad("chosen-layer-not-choosable", IN + model('c: layer("conv2d", 3, 3, 1)'), '"conv2d"',
        "'conv2d' is not a layer a parameter can choose",
        "choices: batchnorm1d, batchnorm2d, gelu, groupnorm, hardsigmoid, hardswish, layernorm, layernorm2d, mish, "
        "relu, relu6, sigmoid, silu, tanh"),
    bad("chosen-layer-bad-argument", IN + model('a: layer("relu", inplace = true)'), "inplace",
        "relu has no argument 'inplace'", "signature: relu(t)"),
    bad("loop-item-needs-label", IN + model("blocks: repeat 2 {", "  conv2d(3, 3, 3)", "  flatten(1)", "}"),
        "conv2d(3, 3, 3)", "this conv2d needs a label: the body of loop 'blocks' is not a plain sequence of "
        "unlabelled layers, so its modules cannot be numbered like nn.Sequential entries",
        "label it (`name: conv2d(...)`), or keep only unlabelled layers, and loops and ifs of them, in the body",
        note=("'flatten' is a function, not a module", "flatten(1)", 0, 10)),
    bad("class-body-needs-label", IN + model("conv2d(3, 8, 3)"), "conv2d(3, 8, 3)",
        "this conv2d needs a label: the model body becomes a class whose modules are named by their labels (only "
        "a group or loop item made of unlabelled layers alone is an nn.Sequential numbered 0, 1, ...)",
        "write `name: conv2d(...)`"),
]


@pytest.mark.parametrize("c", CASES)
def test_construct_mistake_is_located(c: Case, tmp_path, capsys):
    build_fails_located(c, tmp_path, capsys)


def test_nested_sequences_load_into_the_same_torch_structure(tmp_path):
    """`blocks.i.j` as timm builds it: an nn.Sequential per stage, entries numbered in order."""
    text = """
family nested
param dims = [8, 16]
param depths = [1, 3]
input [B, 8, H, W]
model {
  blocks: for i in 0..len(dims) {
    if i > 0 { conv2d(dims[i - 1], dims[i], 2, stride = 2, padding = 0) }
    for j in 0..depths[i] { conv2d(dims[i], dims[i], 3, groups = dims[i]) }
    gelu()
  }
  proj[0]: { c: conv2d(16, 4, 1) }
  proj[1]: conv2d(4, 4, 1)
}
"""
    m, _ = build(tmp_path, text, size=(8, 16, 16))
    nn = torch.nn

    def dw(d):
        return nn.Conv2d(d, d, 3, padding=1, groups=d)

    class Proj0(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(16, 4, 1)

        def forward(self, x):
            return self.c(x)

    class Ref(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(nn.Sequential(dw(8), nn.GELU()),
                                        nn.Sequential(nn.Conv2d(8, 16, 2, stride=2), dw(16), dw(16), dw(16), nn.GELU()))
            self.proj = nn.ModuleList([Proj0(), nn.Conv2d(4, 4, 1)])

        def forward(self, x):
            return self.proj[1](self.proj[0](self.blocks(x)))

    ref = Ref().eval()
    ref.load_state_dict(m.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        assert torch.allclose(traced_equal(m, x), ref(x), atol=1e-6)


BUILD_OPS = """
family ops
input [B, 6]
model {
  t = arange(6)
  a = rearrange(t, "(h w) -> h w", h = 2) * 1.0
  b = softmax(a, dim = -1)
  c = transpose(b, 0, 1) @ b
  d = mean(c, 0) + amax(c, 1)
  u, v = chunk(repeat_interleave(d, 2, dim = 0), 2, 0)
  f = cat([exp(-u) * sin(v), cos(v) ** 2])
  table = buffer(stack([f, flatten(a)]), persistent = false)
  x = x + table[0]
}
"""


def test_function_ops_work_at_build_time(tmp_path):
    """Any function op (layout, activations as functions, matmul, reductions, splits) can build a
    buffer; the matmul done in __init__ costs no MACs."""
    m, path = build(tmp_path, BUILD_OPS, size=(6,))
    a = torch.arange(6).reshape(2, 3) * 1.0
    b = a.softmax(-1)
    c = b.T @ b
    d = c.mean(0) + c.amax(1)
    u, v = d.repeat_interleave(2).chunk(2)
    f = torch.cat([torch.exp(-u) * torch.sin(v), torch.cos(v) ** 2])
    assert torch.allclose(m.table, torch.stack([f, a.flatten()]))
    x = torch.randn(2, 6)
    assert torch.allclose(traced_equal(m, x), x + f)
    c = compile_spec(path, input_size=(6,))
    assert c.cost.macs == 0 and any(n.op == "matmul" and n.init for n in c.graph.nodes())
