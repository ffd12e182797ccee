"""MaxViT (specs/maxvit.arch) against the installed timm: what is MaxViT's own.

Every variant's parity (full-size params from the IR, strict state_dict load, logits, MACs vs
fvcore, fx trace) runs in test_parity.py from the oracle table (tests/oracle.py), at each
variant's own input size. Here: the relative position tables the spec computes equal timm's
buffers, timm's constructor arguments mean the same as overrides, the MACs the IR leaves out, and
what `archlang build`, `viz` and `diff` show for the family.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracle import max_diff, randomize, refused_at_require, refused_input, spec, timm_model
from oracle import run_cli as run

import archlang
from archlang.viz.view import build_view

MAXVIT = spec("maxvit")
# Narrow and shallow: one block per stage, one or two heads; the tables depend only on p.
NARROW = {"depths": [1, 1, 1, 1], "embed_dim": [32, 32, 64, 64], "stem_width": [8, 16]}


def pair(variant: str, timm_name: str, overrides: dict, seed: int = 0):
    """timm's model with seeded weights, and ours with timm's state_dict loaded strictly."""
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=seed)
    model = archlang.load_timm(archlang.build(MAXVIT, variant, overrides), state)
    return model, ref


def rel_pos(model, stage: int = 0):
    return model.stages[stage].blocks[0].attn_grid.attn.rel_pos


@pytest.mark.parametrize("img_size", [224, 256, 384, 512])
def test_relative_position_index_and_log_coords_are_timms_buffers(img_size):
    """Swin's index and the log-spaced offsets, computed in forward from arange, are timm's buffers."""
    ours, ref = pair("rmlp_pico_rw", "maxvit_rmlp_pico_rw_256", {**NARROW, "img_size": img_size})
    p, mine, theirs = img_size // 32, rel_pos(ours), rel_pos(ref)
    index = mine.relative_position_index(torch.zeros(1))
    assert index.dtype == torch.long and index.shape == (p * p, p * p)
    assert torch.equal(index, theirs.relative_position_index.view(p * p, p * p))
    assert torch.allclose(mine.rel_coords_log(torch.zeros(1)), theirs.rel_coords_log, atol=1e-6)
    swin, timm_swin = pair("nano_rw", "maxvit_nano_rw_256", {**NARROW, "img_size": img_size})
    assert torch.equal(rel_pos(swin).relative_position_index(torch.zeros(1)),
                       rel_pos(timm_swin).relative_position_index.view(p * p, p * p))


@pytest.mark.parametrize("img_size", [224, 384, 512])
def test_tf_lookups_are_timms_and_one_hots_of_the_index(img_size):
    """timm's RelPosBiasTf reads its [heads, 2p-1, 2p-1] table through one-hot height and width
    lookups; the spec computes them when the module is built (non-persistent buffers). They equal
    timm's, and they are the one-hots of Swin's relative position index, transposed (key - query)."""
    ours, ref = pair("tiny_tf", "maxvit_tiny_tf_224", {**NARROW, "img_size": img_size})
    p, mine, theirs = img_size // 32, rel_pos(ours), rel_pos(ref)
    span = 2 * p - 1
    assert torch.equal(mine.height_lookup, theirs.height_lookup)
    assert torch.equal(mine.width_lookup, theirs.width_lookup)
    assert "height_lookup" not in ours.state_dict() and mine.height_lookup.shape == (p, p, span)
    swin, _ = pair("nano_rw", "maxvit_nano_rw_256", {**NARROW, "img_size": img_size})
    read_at = rel_pos(swin).relative_position_index(torch.zeros(1)).T  # row-major (dy, dx) of key - query
    assert torch.equal(F.one_hot(read_at[::p, ::p] // span, span).float(), mine.height_lookup)
    assert torch.equal(F.one_hot(read_at[:p, :p] % span, span).float(), mine.width_lookup)


@pytest.mark.parametrize("variant,timm_name", [("tiny_tf", "maxvit_tiny_tf_224"), ("nano_rw", "maxvit_nano_rw_256"),
                                               ("rmlp_nano_rw", "maxvit_rmlp_nano_rw_256")])
def test_bias_equals_timms_for_each_kind(variant, timm_name):
    ours, ref = pair(variant, timm_name, NARROW, seed=5)
    for stage in range(4):
        mine, theirs = rel_pos(ours, stage), rel_pos(ref, stage)
        heads = ours.stages[stage].blocks[0].attn_grid.attn.heads
        n = (theirs.window_size[0]) ** 2
        with torch.no_grad():
            assert max_diff(mine(torch.zeros(1, heads, n, n)), theirs.get_bias()) <= 1e-6


@pytest.mark.parametrize("variant,timm_name,overrides", [
    ("tiny_tf", "maxvit_tiny_tf_224", {"depths": [1, 2, 1, 1], "num_classes": 10, "stem_width": 48}),  # int: [48, 48]
    ("nano_rw", "maxvit_nano_rw_256", {"img_size": 224, "depths": [1, 1, 1, 1]}),  # partitions 8 -> 7
    ("tiny_tf_384", "maxvit_tiny_tf_384", {"img_size": 192, "embed_dim": [32, 64, 96, 128], "head_hidden_size": 128,
                                           "depths": [1, 1, 1, 1]}),
    ("rmlp_pico_rw", "maxvit_rmlp_pico_rw_256", {"transformer_rel_pos_dim": 64, "transformer_dim_head": 16,
                                                 "num_classes": 5, "depths": [1, 1, 1, 1]}),
    ("tiny_pm", "maxvit_tiny_pm_256", {"depths": [1, 1, 1, 1], "stem_width": [16, 32], "conv_expand_ratio": 2.0}),
    ("tiny_rw", "maxvit_tiny_rw_224", {"depths": [1, 1, 1, 1], "conv_padding": "same", "head_hidden_size": 256,
                                       "transformer_rel_pos_type": "bias_tf", "transformer_init_values": 0.1}),
], ids=lambda v: "-".join(v) if isinstance(v, dict) else v)
def test_overrides_match_timm_kwargs(variant, timm_name, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    model, ref = pair(variant, timm_name, overrides, seed=3)
    stats = archlang.stats(MAXVIT, variant, overrides)
    assert stats["params"] == sum(p.numel() for p in ref.parameters())
    x = torch.randn(1, *stats["input"], generator=torch.Generator().manual_seed(2))  # batch 2: test_parity
    with torch.no_grad():
        assert max_diff(model(x), ref(x)) <= 1e-4


def test_macs_count_the_tf_lookup_einsums_as_fvcore_does():
    """fvcore counts the einsums through which RelPosBiasTf expands its table; the spec writes the
    same einsums, and the IR counts them the same way (at p = 16 their share is largest)."""
    from fvcore.nn import FlopCountAnalysis

    overrides = {**NARROW, "img_size": 512}  # p = 16: the lookup's share is largest here
    ref = timm_model("maxvit_tiny_tf_224", **overrides)
    flops = FlopCountAnalysis(ref, torch.randn(1, 3, 512, 512))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    assert flops.by_operator()["einsum"] > 0
    assert archlang.stats(MAXVIT, "tiny_tf", overrides)["macs"] == flops.total()


def test_build_defaults_to_tiny_tf_and_the_variants_own_size(tmp_path, capsys):
    code, out, _ = run(capsys, "build", MAXVIT, "-o", str(tmp_path / "m.py"))
    assert code == 0 and out.startswith(f"maxvit tiny_tf  [{MAXVIT}, train form, input 3x224x224]")
    assert f"{sum(p.numel() for p in timm_model('maxvit_tiny_tf_224', meta=True).parameters()):,}" in out
    code, out, _ = run(capsys, "build", MAXVIT, "--variant", "maxvit_base_tf_384", "--set", "depths=[1,1,1,1]",
                       "-o", str(tmp_path / "b.py"))
    assert code == 0 and "input 3x384x384]" in out and "stages.3  stage  [B, 768, 12, 12]" in out


def test_input_must_be_the_variants_size(tmp_path, capsys):
    refused_input(capsys, tmp_path, MAXVIT, ("--variant", "tiny_tf_384", "--input", "3x224x224"), 384)


@pytest.mark.parametrize("setting,message", [
    ("transformer_rel_pos_type=\"swin\"", "transformer_rel_pos_type is bias_tf, bias or mlp"),
    ("img_size=200", "img_size must be a multiple of transformer_partition_ratio"),
    ("block_type=\"C\"", "block_type is M (MaxViT) or PM (block and grid attention in parallel)"),
])
def test_bad_settings_are_refused_at_the_require(tmp_path, capsys, setting, message):
    refused_at_require(capsys, tmp_path, MAXVIT, setting, message)


def test_variant_list_names_every_timm_maxvit(capsys):
    import timm

    code, out, _ = run(capsys, "build", MAXVIT, "--help-variants")
    assert code == 0 and out.startswith(f"maxvit: 27 variants in {MAXVIT} (default tiny_tf)")
    for name in timm.list_models("maxvit_*"):
        assert f" {name} " in out
    assert "  tiny_tf_512        maxvit_tiny_tf_512        3x512x512  extends tiny_tf; img_size=512" in out


def test_viz_shows_block_and_grid_attention_and_folds_repeated_blocks():
    view = build_view(archlang.compile_spec(MAXVIT))
    stage2 = find(view.root, "stages.2.blocks")
    first, rest = stage2.items
    assert first.path == "stages.2.blocks.0" and first.title == "0: maxvit_block"
    assert (rest.kind, rest.title, rest.subtitle, rest.count) == ("fold", "1-4", "maxvit_block", 4)
    units = [u for u in first.items if getattr(u, "kind", None) == "module"]
    assert [(u.title, u.subtitle) for u in units] == [("conv", "mbconv"), ("attn_block", "partition_attention"),
                                                      ("attn_grid", "partition_attention")]


def test_viz_labels_the_two_partitions_by_their_patterns():
    """One level deeper, each attention's cut and paste are steps labelled with the spec's own
    pattern: the block partition tiles the map, the grid partition strides across it."""
    view = build_view(archlang.compile_spec(MAXVIT), depth=3)
    block = find(view.root, "stages.2.blocks.0.attn_block")
    grid = find(view.root, "stages.2.blocks.0.attn_grid")
    steps = [[u.subtitle for u in c.items if getattr(u, "kind", None) == "op" and u.title == "rearrange"]
             for c in (block, grid)]
    assert steps == [["b (nh p) (nw q) c -> (b nh nw) (p q) c", "(b nh nw) (p q) c -> b (nh p) (nw q) c"],
                     ["b (p nh) (q nw) c -> (b nh nw) (p q) c", "(b nh nw) (p q) c -> b (p nh) (q nw) c"]]


def find(cluster, path):
    if cluster.path == path:
        return cluster
    for item in getattr(cluster, "items", []):
        hit = find(item, path)
        if hit is not None:
            return hit
    return None


def test_diff_tf_against_rw_in_words(capsys):
    code, out, _ = run(capsys, "diff", f"{MAXVIT}:tiny_tf", f"{MAXVIT}:tiny_rw")
    assert code == 1
    assert "conv2d 3x3 stride 2 pad same, batchnorm2d(eps=0.001), conv2d 3x3" in out  # TF same padding
    assert "-> conv2d 3x3 stride 2, batchnorm2d(eps=1e-05), conv2d 3x3" in out
    assert "'b n (three h d) -> three b h n d' (three=3, h=2)" in out  # qkv as (three, heads, dim) ...
    assert "-> 'b n (h three d) -> three b h n d' (h=2, three=3)" in out  # ... against per-head [q k v]
    assert "layernorm(eps=1e-05)\n                   -> batchnorm2d(eps=1e-05), layernorm(eps=1e-06)" in out
    assert "adaptive_avgpool2d, layernorm2d(eps=1e-05), linear x2\n" \
           "                   -> layernorm2d(eps=1e-06), adaptive_avgpool2d, linear" in out  # the heads
    assert "attn.rel_pos.relative_position_bias_table [2, 13, 13] -> " \
           "stages.0.blocks.0.attn_block.attn.rel_pos.relative_position_bias_table [169, 2]" in out
