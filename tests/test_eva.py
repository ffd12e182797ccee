"""EVA and EVA-02 (specs/eva.arch) against the installed timm: what is EVA's own.

Every variant's parity (full-size params from the IR, strict state_dict load, logits, MACs vs
fvcore, fx trace) runs in test_parity.py from the oracle table (tests/oracle.py), at each
variant's own input size. Here: the rotary table the spec computes equals timm's `rope.pos_embed`
buffer, the zero k bias is timm's non-persistent buffer, timm's constructor arguments mean the
same as overrides, and what `archlang build` shows and refuses for the family.
"""

from __future__ import annotations

import pytest
import torch
from oracle import max_diff, randomize, refused_at_require, refused_input, spec, timm_model
from oracle import run_cli as run

import archlang

EVA = spec("eva")


def pair(variant: str, timm_name: str, overrides: dict, seed: int = 0):
    """timm's model with seeded weights, and ours with timm's state_dict loaded strictly."""
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=seed)
    size = tuple(archlang.stats(EVA, variant, overrides)["input"])
    model = archlang.load_timm(archlang.build(EVA, variant, overrides, input_size=size), state)
    return model, ref


@pytest.mark.parametrize("variant,timm_name,overrides", [
    ("tiny", "eva02_tiny_patch14_224", {"depth": 1}),                                  # grid 16 = ref 16
    ("tiny_336", "eva02_tiny_patch14_336", {"depth": 1}),                              # grid 24 read as 16
    ("base_clip", "eva02_base_patch16_clip_224", {"depth": 1}),                        # patch 16: grid 14
    ("giant", "eva_giant_patch14_224", {"depth": 1, "embed_dim": 256, "num_heads": 4, "img_size": 168,
                                        "use_rot_pos_emb": True}),                     # no ref: the grid itself
    ("small", "eva02_small_patch14_224", {"depth": 1, "ref_feat_shape": [12, 20], "rope_temperature": 100.0}),
    ("giant", "eva_giant_patch14_224", {"depth": 1, "embed_dim": 352, "num_heads": 4,   # head_dim 88: 22 bands
                                        "use_rot_pos_emb": True, "ref_feat_shape": [16, 16]}),
    ("tiny_336", "eva02_tiny_patch14_336", {"depth": 1, "ref_feat_shape": 12}),     # an int, as timm takes
], ids=["tiny", "tiny_336", "base_clip", "no-ref", "ref-12x20", "giant-rope", "ref-int"])
def test_rope_table_is_timms_buffer(variant, timm_name, overrides):
    """The sin/cos table, computed from its formula when the module is built, equals timm's cached
    rope.pos_embed exactly: row angles in the first half of each head, column angles in the second,
    positions rescaled to ref_feat_shape. Like timm's, it stays out of the state_dict."""
    ours, ref = pair(variant, timm_name, overrides)
    assert torch.equal(ours.rope, ref.rope.pos_embed)  # the same float32 operations, bit for bit
    assert "rope" not in ours.state_dict() and "rope.pos_embed" not in ref.state_dict()


def test_k_bias_is_a_zero_buffer_out_of_the_state_dict():
    """EVA packs q, k, v in one linear whose bias is [q_bias, 0, v_bias]: the k part is timm's
    non-persistent zero buffer, so checkpoints hold q_bias and v_bias only."""
    ours, ref = pair("giant", "eva_giant_patch14_224", {"depth": 1, "embed_dim": 64, "num_heads": 2})
    attn, theirs = ours.blocks[0].attn, ref.blocks[0].attn
    assert torch.equal(attn.k_bias, theirs.k_bias) and not attn.k_bias.any()
    keys = set(ours.state_dict())
    assert {"blocks.0.attn.q_bias", "blocks.0.attn.v_bias"} <= keys and "blocks.0.attn.k_bias" not in keys


@pytest.mark.parametrize("variant,timm_name,overrides", [
    ("tiny", "eva02_tiny_patch14_224", {"depth": 2, "num_classes": 10, "img_size": 112}),
    ("base_448", "eva02_base_patch14_448", {"depth": 1, "img_size": 224, "num_classes": 0}),
    ("small_336", "eva02_small_patch14_336", {"depth": 1, "qkv_fused": False, "scale_attn_inner": True,
                                              "init_values": 0.1, "swiglu_align_to": 64, "num_classes": 7}),
    ("large_clip", "eva02_large_patch14_clip_224", {"depth": 1, "embed_dim": 128, "num_heads": 2,
                                                    "global_pool": "avgmax", "img_size": 98}),
    ("giant", "eva_giant_patch14_224", {"depth": 2, "embed_dim": 128, "num_heads": 2, "global_pool": "max",
                                        "mlp_ratio": 3.0, "scale_mlp": True}),
    ("giant_clip", "eva_giant_patch14_clip_224", {"depth": 1, "embed_dim": 96, "num_heads": 3, "swiglu_mlp": True,
                                                  "qkv_bias": False, "global_pool": "", "patch_size": 16}),
    ("tiny_336", "eva02_tiny_patch14_336", {"depth": 2, "use_post_norm": True, "img_size": 224, "num_classes": 3,
                                            "swiglu_align_to": 64}),      # post-norm: packed fc1, not aligned
    ("tiny", "eva02_tiny_patch14_224", {"depth": 1, "use_post_norm": True, "scale_mlp": True, "swiglu_align_to": 48}),
], ids=lambda v: "-".join(v) if isinstance(v, dict) else v)
def test_overrides_match_timm_kwargs(variant, timm_name, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    model, ref = pair(variant, timm_name, overrides, seed=3)
    stats = archlang.stats(EVA, variant, overrides)
    assert stats["params"] == sum(p.numel() for p in ref.parameters())
    x = torch.randn(2, *stats["input"], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got, want = model(x), ref(x)
    assert got.shape == want.shape and max_diff(got, want) <= 1e-4


def test_mim_models_output_their_features():
    """timm builds the MIM-pretrained *_224 models without a classifier (num_classes 0): the
    output is the mean of the patch tokens after fc_norm, embed_dim wide."""
    model, ref = pair("base", "eva02_base_patch14_224", {"depth": 1})
    assert ref.num_classes == 0 and not hasattr(model, "head")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert model(x).shape == (1, 768) and max_diff(model(x), ref(x)) <= 1e-4


def test_fresh_blocks_start_as_timms():
    """timm's init: linears truncated normal (std .02), zero biases, and the projections that
    close each residual branch (attn.proj, mlp.fc2) divided by sqrt(2 * (layer + 1))."""
    settings = {"depth": 3, "embed_dim": 256, "num_heads": 4, "img_size": 56}
    torch.manual_seed(0)
    ours = archlang.build(EVA, "base", settings).state_dict()
    theirs = timm_model("eva02_base_patch14_224", **settings).state_dict()
    for name, want in theirs.items():
        if ".blocks." in f".{name}" and want.dim() == 2:
            got = ours[name]
            assert abs(got.std().item() / want.std().item() - 1) < 0.03, name
        elif name.endswith("bias") and name.startswith("blocks."):
            assert not ours[name].any() and not want.any(), name


def test_build_defaults_to_tiny_and_the_variants_own_size(tmp_path, capsys):
    code, out, _ = run(capsys, "build", EVA, "-o", str(tmp_path / "m.py"))
    assert code == 0 and out.startswith(f"eva tiny  [{EVA}, train form, input 3x224x224]")
    assert f"{sum(p.numel() for p in timm_model('eva02_tiny_patch14_224', meta=True).parameters()):,}" in out
    code, out, _ = run(capsys, "build", EVA, "--variant", "eva02_large_patch14_448", "--set", "depth=1",
                       "-o", str(tmp_path / "l.py"))
    assert code == 0 and "input 3x448x448]" in out and "blocks       stage*  [B, 1025, 1024]" in out


def test_input_must_be_the_variants_size(tmp_path, capsys):
    refused_input(capsys, tmp_path, EVA, ("--variant", "tiny_336", "--input", "3x224x224"), 336)


@pytest.mark.parametrize("setting,message", [
    ('global_pool="map"', "global_pool is avg, token, max, avgmax or empty"),
    ("img_size=230", "img_size must be a multiple of patch_size"),
    ("num_heads=5", "embed_dim must split evenly into num_heads heads"),
    ("embed_dim=198", "RoPE needs a head_dim that is a multiple of 4"),        # 3 heads of 66
])
def test_bad_settings_are_refused_at_the_require(tmp_path, capsys, setting, message):
    refused_at_require(capsys, tmp_path, EVA, setting, message)


def test_ref_feat_shape_of_three_sizes_is_refused_where_it_is_read(tmp_path, capsys):
    code, _, err = run(capsys, "build", EVA, "--set", "ref_feat_shape=[16, 16, 16]", "-o", str(tmp_path / "m.py"))
    assert code == 2 and "error: to_pair(...) failed: a pair has two items, got 3" in err
    assert "note: this build sets ref_feat_shape = [16, 16, 16]" in err


def test_variant_list_names_every_timm_eva_model(capsys):
    """Every timm `Eva` model of the EVA and EVA-02 papers (eva_large_* are VisionTransformers in
    timm's vision_transformer.py, not EVA's architecture: full qkv bias, no RoPE, like DeiT)."""
    import timm

    code, out, _ = run(capsys, "build", EVA, "--help-variants")
    assert code == 0 and out.startswith(f"eva: 16 variants in {EVA} (default tiny)")
    names = set(timm.list_models("eva*")) - set(timm.list_models("eva_large_*"))
    assert len(names) == 16
    for name in names:
        assert f" {name} " in out


def test_diff_tiny_against_base_in_words(capsys):
    """Tiny packs q/k/v and the SwiGLU input projections; base splits both and norms the hidden
    units (sub-LN): the diff says so in its channel-mixing line and its label changes."""
    code, out, _ = run(capsys, "diff", f"{EVA}:tiny", f"{EVA}:base")
    assert code == 1
    assert "A `eva_mlp`, a linear x2; B `eva_mlp`, a linear x2,\nlayernorm, a linear." in out
    assert "labels         qkv -> q_proj, fc1 -> fc1_g" in out
    assert "'b n (three h d) -> three b h n d' (three=3, h=3)" in out and "-> 'b n (h d) -> b h n d' (h=12)" in out
