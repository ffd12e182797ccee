"""Language features end to end: each small spec is built, run, and checked against the same
computation written by hand with the module's own weights; IR shapes are checked against the
shapes the emitted module really produces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracle import spec

import archlang
from archlang.compiler import compile_spec


def build(tmp_path, text: str, variant=None, overrides=None, size=(3, 32, 32)):
    path = tmp_path / "t.arch"
    path.write_text(text)
    return archlang.build(str(path), variant, overrides, input_size=size), str(path)


def ir_module_shapes(path: str, variant=None, overrides=None, size=(3, 32, 32)) -> dict[str, tuple]:
    c = compile_spec(path, variant, overrides, input_size=size)
    return {n.path: n.shape for n in c.graph.nodes() if n.module}


def check_shapes_match_runtime(model, path, variant=None, overrides=None, size=(3, 32, 32)):
    """Every module's output shape in the IR equals what the emitted module produces (B = 2)."""
    expected = ir_module_shapes(path, variant, overrides, size)
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, tuple(o.shape)))
             for n, m in model.named_modules() if n in expected]
    with torch.no_grad():
        model(torch.randn(2, *size))
    for h in hooks:
        h.remove()
    assert seen.keys() == expected.keys()
    for name, shape in expected.items():
        want = tuple(2 * d.k if hasattr(d, "k") else d for d in shape)
        assert seen[name] == want, name


CASCADE = """
family cascade
param dim = 16
param heads = 4
input [B, 3, H, W]

block cascade(dim, heads) {
  let d = dim // heads
  parts = rearrange(x, "b (g c) h w -> g b c h w", g = heads)
  feat = x
  outs = x
  for i in 0..heads {
    feat = parts[i] if i == 0 else feat + parts[i]
    feat = qkvs[i]: conv2d(d, d, 3, groups = d)(feat)
    outs = feat if i == 0 else cat([outs, feat], dim = 1)
  }
  x = outs
}

model {
  stem: conv2d(3, dim, 2, stride = 2, padding = 0)
  mix: cascade(dim, heads)
}
"""


def test_cascaded_heads_with_indexed_labels(tmp_path):
    model, path = build(tmp_path, CASCADE)
    x = torch.randn(2, 3, 32, 32)
    stem = F.conv2d(x, model.stem.weight, model.stem.bias, stride=2)
    feats, feat = [], None
    for i, chunk in enumerate(stem.chunk(4, dim=1)):
        feat = chunk if i == 0 else feat + chunk
        conv = model.mix.qkvs[i]
        feat = F.conv2d(feat, conv.weight, conv.bias, padding=1, groups=4)
        feats.append(feat)
    with torch.no_grad():
        assert torch.allclose(model(x), torch.cat(feats, 1), atol=1e-6)
    assert [k for k in model.state_dict() if k.startswith("mix.")][:2] == ["mix.qkvs.0.weight", "mix.qkvs.0.bias"]
    check_shapes_match_runtime(model, path)


BRANCHES = """
family branches
input [B, 3, H, W]
block down(cin, cout) {
  residual {
    a: conv2d(cin, cout, 3, stride = 2)
  } shortcut {
    pool: avgpool2d(2)
    proj: conv2d(cin, cout, 1)
  }
}
model {
  sum { b1: conv2d(3, 8, 3) | b2: conv2d(3, 8, 1) }
  avg { c1: conv2d(8, 8, 1) | identity() }
  d: down(8, 16)
  x = mean(x, [2, 3], keepdim = false)
  u, v = chunk(x, 2, dim = 1)
  return u * v
}
"""


def test_residual_shortcut_sum_avg_chunk_return(tmp_path):
    model, path = build(tmp_path, BRANCHES)
    m = model
    x = torch.randn(2, 3, 32, 32)
    y = F.conv2d(x, m.b1.weight, m.b1.bias, padding=1) + F.conv2d(x, m.b2.weight, m.b2.bias)
    y = (F.conv2d(y, m.c1.weight, m.c1.bias) + y) / 2
    main = F.conv2d(y, m.d.a.weight, m.d.a.bias, stride=2, padding=1)
    short = F.conv2d(F.avg_pool2d(y, 2), m.d.proj.weight, m.d.proj.bias)
    z = (main + short).mean((2, 3))
    u, v = z.chunk(2, dim=1)
    with torch.no_grad():
        assert torch.allclose(model(x), u * v, atol=1e-6)
    check_shapes_match_runtime(model, path)


OPTIONAL = """
family opt
param img = 12
variant wide { img = 16 }
input [B, 4, H = img, W = img]
block rep(cin, cout, k, s = 1) {
  sum as fused {
    if cin == cout and s == 1 { identity: batchnorm2d(cin) }
  | conv: conv2d(cin, cout, k, stride = s)
  | if k > 1 { scale: conv2d(cin, cout, 1, stride = s) }
  }
}
model {
  a: rep(4, 4, 3)
  b: rep(4, 8, 3, s = 2)
  c: rep(8, 8, 1)
  d: { sum as one { conv: conv2d(8, 8, 3) } }
}
"""


def test_optional_branches_and_a_one_branch_sum(tmp_path):
    """A lone `if` without `else` as a branch is left out where its condition is false."""
    model, path = build(tmp_path, OPTIONAL, overrides={"img": 12}, size=(4, 12, 12))
    m = model
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in m.state_dict()} >= {"a.identity", "a.scale"}
    assert not hasattr(m.b, "identity") and not hasattr(m.c, "scale")
    x = torch.randn(2, 4, 12, 12)
    conv = lambda c, t, s=1: F.conv2d(t, c.weight, c.bias, stride=s, padding=(c.kernel_size[0] - 1) // 2 if s == 1  # noqa: E731
                                      else ((s - 1) + c.kernel_size[0] - 1) // 2)
    y = m.a.identity(x) + conv(m.a.conv, x) + conv(m.a.scale, x)
    y = conv(m.b.conv, y, 2) + conv(m.b.scale, y, 2)
    y = m.c.identity(y) + conv(m.c.conv, y)
    y = conv(m.d.conv, y)
    with torch.no_grad():
        assert torch.allclose(model(x), y, atol=1e-6)
    check_shapes_match_runtime(model, path, overrides={"img": 12}, size=(4, 12, 12))


def test_input_line_default_sizes(tmp_path):
    """`H = img`: the size builds use when given none, per variant; any other size still runs."""
    path = tmp_path / "t.arch"
    path.write_text(OPTIONAL)
    assert compile_spec(str(path), overrides={"img": 12}).input_size == (4, 12, 12)
    assert compile_spec(str(path)).input_size == (4, 16, 16)  # the default variant, `wide`
    assert compile_spec(str(path), "wide", input_size=(4, 20, 20)).input_size == (4, 20, 20)
    assert archlang.stats(str(path), "wide")["input"] == [4, 16, 16]
    with torch.no_grad():
        assert archlang.build(str(path))(torch.randn(1, 4, 20, 20)).shape == (1, 8, 10, 10)


VARIANTS = """
family v
param width = 8
param depth = 1
param tag = "a"
variant small aka "v_small" { width = 4 }
variant deep extends small { depth = 3 }
default deep
input [B, 3, H, W]
model {
  stem: conv2d(3, width, 1)
  blocks: repeat depth { conv2d(width, width, 3) }
}
"""


@pytest.mark.parametrize("variant,width,depth", [(None, 4, 3), ("small", 4, 1), ("v_small", 4, 1), ("deep", 4, 3)])
def test_variants_extends_aka_default(tmp_path, variant, width, depth):
    model, path = build(tmp_path, VARIANTS, variant)
    assert model.stem.out_channels == width and len(model.blocks) == depth
    stats = archlang.stats(path, variant)
    assert stats["params"] == sum(p.numel() for p in model.parameters())


def test_overrides_win_over_variants(tmp_path):
    model, _ = build(tmp_path, VARIANTS, "deep", {"width": 6})
    assert model.stem.out_channels == 6 and len(model.blocks) == 3


WEIGHTS = """
family w
param dim = 8
input [B, 3, H, W]
model {
  stem: conv2d(3, dim, 1)
  scale = weight([dim], init = 0.5)
  table = buffer([dim], init = "ones", persistent = false)
  x = x * (scale + table)[:, none, none]
  @head head: { flatten(1); fc: linear(dim * 4 * 4, 2) }
}
"""


def test_weights_buffers_and_roles(tmp_path):
    model, path = build(tmp_path, WEIGHTS, size=(3, 4, 4))
    assert torch.equal(model.scale.detach(), torch.full((8,), 0.5))
    assert "table" not in model.state_dict() and torch.equal(model.table, torch.ones(8))
    c = compile_spec(path, input_size=(3, 4, 4))
    assert c.graph.roles_of("head.fc") == ("head",)
    assert c.cost.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("family,variant", [("convnext", "atto"), ("convnext", "v2_femto"), ("deit", "tiny_distilled"),
                                            ("repvit", "m0_9")])
def test_ir_shapes_equal_runtime_shapes(family, variant):
    overrides = {"depth": 2} if family == "deit" else None
    model = archlang.build(spec(family), variant, overrides)
    check_shapes_match_runtime(model, spec(family), variant, overrides, size=(3, 224, 224))


@pytest.mark.parametrize("variant", ["conv", "pool"])
def test_example_spec_builds_and_threads_hyperparameters_through_groups(variant):
    """examples/tiny_mixer.arch: a loop-item group whose blocks read a hyperparameter."""
    path = str(spec("convnext")).replace("specs/convnext.arch", "examples/tiny_mixer.arch")
    model = archlang.build(path, variant)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    check_shapes_match_runtime(model, path, variant, size=(3, 64, 64))
