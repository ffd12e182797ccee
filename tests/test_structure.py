"""Structure and layout read from the IR: stages with and without `@stage`, the channel axis of
NCHW maps, channels-last maps and token sequences, and the build summary that shows them."""

from __future__ import annotations

import re

import pytest
from oracle import ROOT, spec

from archlang.axes import channel_axes, layout_name, resolved
from archlang.cli import main
from archlang.compiler import compile_spec
from archlang.einpattern import infer, parse_pattern
from archlang.ops import OPS, Attrs

SKETCHES = sorted((ROOT / "docs" / "sketches").glob("*.arch"))
HIERA = str(ROOT / "docs" / "sketches" / "hiera.arch")

# Channels-last stages ([B, H, W, C]) with roles, downsampled by a space-to-depth rearrange.
CHANNELS_LAST = """family cl
param dims = [8, 16]
param depths = [1, 2]
variant narrow { }
variant wide { dims = [8, 24] }
input [B, 3, H, W]

block mixer(dim) {
  residual {
    norm: layernorm(dim)
    @channel_mixer mlp: { fc1: linear(dim, 2 * dim); gelu(); fc2: linear(2 * dim, dim) }
  }
}

model {
  @stem stem: {
    proj: conv2d(3, dims[0], 4, stride = 4, padding = 0)
    rearrange("b c h w -> b h w c")
  }
  @stage stages: for i in 0..len(dims) {
    if i > 0 {
      @downsample down: {
        rearrange("b (h sy) (w sx) c -> b h w (sy sx c)", sy = 2, sx = 2)
        proj: linear(4 * dims[i - 1], dims[i])
      }
    }
    blocks: repeat depths[i] { mixer(dims[i]) }
  }
  @head head: {
    x = mean(x, [1, 2])
    fc: linear(dims[-1], 10)
  }
}
"""

# No roles at all: one flat list of blocks whose width and resolution change at block 1.
ROLE_FREE = """family rf
param widths = [8, 16, 16]
param strides = [1, 2, 1]
input [B, 3, H, W]

block unit(in_dim, dim, stride) {
  conv: conv2d(in_dim, dim, 3, stride = stride)
  bn: batchnorm2d(dim)
  relu()
}

model {
  patch: conv2d(3, widths[0], 4, stride = 4, padding = 0)
  layers: for i in 0..len(widths) {
    unit(widths[max(i - 1, 0)], widths[i], strides[i])
  }
  x = mean(x, [2, 3])
  fc: linear(widths[-1], 10)
}
"""


@pytest.fixture
def written(tmp_path):
    paths = {}
    for name, text in (("cl", CHANNELS_LAST), ("rf", ROLE_FREE)):
        paths[name] = tmp_path / f"{name}.arch"
        paths[name].write_text(text)
    return {k: str(v) for k, v in paths.items()}


def outputs(compiled):
    """Row name -> (output node, its channel axis)."""
    axes = channel_axes(compiled.graph)
    return {r.name: (compiled.graph.node(r.output), axes[r.output]) for r in compiled.cost.rows if r.output is not None}


def test_channel_axis_of_maps_channels_last_maps_and_tokens(written):
    cl = compile_spec(written["cl"])
    rows = outputs(cl)
    assert {name: layout_name(n.shape, a) for name, (n, a) in rows.items()} == {
        "stem": "BHWC", "stages.0": "BHWC", "stages.1": "BHWC", "head": "BC"}
    axes = channel_axes(cl.graph)
    conv = next(n for n in cl.graph.nodes() if n.path == "stem.proj")
    assert axes[conv.id] == 1 and axes[cl.graph.input.id] == 1  # the input: read by a conv on axis 1
    # DeiT: tokens [B, N, C]; inside attention, q/k/v [B, heads, N, head_dim] keep features last
    deit = compile_spec(spec("deit"), "tiny", {"depth": 1})
    axes = channel_axes(deit.graph)
    assert {layout_name(n.shape, axes[n.id]) for n in deit.graph.nodes() if n.scope == "blocks.0"} == {"BNC"}
    sdpa = next(n for n in deit.graph.nodes() if n.op == "sdpa")
    assert all(axes[i] == 3 for i in sdpa.inputs)
    # Hiera keeps [B, H, W, C] maps; its pos_embed weight takes the axis of the tokens it is added to
    hiera = compile_spec(HIERA)
    axes = channel_axes(hiera.graph)
    assert {name: a for name, (n, a) in outputs(hiera).items() if name.startswith("blocks")} == {
        "blocks.0": 3, "blocks.1": 3, "blocks.2-3": 3, "blocks.4": 3}
    pos = next(n for n in hiera.graph.nodes() if n.path == "pos_embed")
    assert axes[pos.id] == 2


def test_stages_are_found_where_the_spec_marks_none(written):
    rf = compile_spec(written["rf"])
    rows = [(r.name, r.roles, r.found, r.blocks) for r in rf.cost.rows]
    assert rows == [("patch", (), False, None), ("layers.0", ("stage",), True, 1),
                    ("layers.1-2", ("stage",), True, 2), ("fc", (), False, None)]
    assert sum(r.params for r in rf.cost.rows) == rf.cost.params
    assert sum(r.macs for r in rf.cost.rows) == rf.cost.macs
    # Hiera's one list of blocks falls into the variant's four stages
    tiny = compile_spec(HIERA, "tiny")
    found = [r for r in tiny.cost.rows if r.found]
    assert [r.blocks for r in found] == list(tiny.settings["stages"]) == [1, 2, 7, 2]
    assert [r.name for r in found] == ["blocks.0", "blocks.1-2", "blocks.3-9", "blocks.10-11"]
    # declared stages are rows as written, with their block counts
    cl = compile_spec(written["cl"])
    assert [(r.name, r.found, r.blocks) for r in cl.cost.rows if "stage" in r.roles] == [
        ("stages.0", False, 1), ("stages.1", False, 2)]


def columns(out: str, row: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith(f"  {row} "))
    return re.split(r"\s{2,}", line.strip())


def test_summary_shows_layout_blocks_and_found_stages(written, tmp_path, capsys):
    assert main(["build", written["rf"], "-o", str(tmp_path / "rf.py")]) == 0
    out = capsys.readouterr().out
    assert columns(out, "module") == ["module", "role", "output", "layout", "blocks", "params", "GMACs"]
    assert columns(out, "layers.1-2")[:5] == ["layers.1-2", "stage*", "[B, 16, 28, 28]", "BCHW", "2"]
    assert columns(out, "patch")[:4] == ["patch", "[B, 8, 56, 56]", "BCHW", "392"]
    assert "* stage found from the structure (the spec has no @stage)" in out
    assert main(["build", written["cl"], "-o", str(tmp_path / "cl.py")]) == 0
    out = capsys.readouterr().out
    assert columns(out, "stages.1")[:5] == ["stages.1", "stage", "[B, 28, 28, 16]", "BHWC", "2"]
    assert "found from the structure" not in out
    assert main(["build", HIERA, "-o", str(tmp_path / "h.py")]) == 0
    out = capsys.readouterr().out
    assert [columns(out, f"blocks.{i}")[1:5] for i in ("0", "1", "2-3", "4")] == [
        ["stage*", "[B, 56, 56, 16]", "BHWC", "1"], ["stage*", "[B, 28, 28, 32]", "BHWC", "1"],
        ["stage*", "[B, 14, 14, 64]", "BHWC", "2"], ["stage*", "[B, 7, 7, 128]", "BHWC", "1"]]


@pytest.mark.parametrize("path", [spec("convnext"), spec("deit"), *map(str, SKETCHES)])
def test_layout_rules_agree_with_the_shape_rules(path):
    """Each layout op's einops pattern, applied to its input, gives the shape its shape rule
    gave (after the unpacked leading axes), so tools may read data movement from it."""
    c = compile_spec(path)
    seen = set()
    for n in c.graph.nodes():
        op = OPS[n.op]
        src = c.graph.node(n.inputs[0]) if n.inputs else None
        lay = op.layout(Attrs(n.attr_dict), len(src.shape)) if op.layout and src else None
        if lay is None or lay.pattern is None:
            continue
        sizes = {k: resolved(c.graph, v) for k, v in lay.sizes}
        out = infer(parse_pattern(lay.pattern), src.shape, sizes)
        assert out[lay.unpacked:] == n.shape, (n.op, n.attrs, src.shape)
        seen.add(n.op)
    assert seen
