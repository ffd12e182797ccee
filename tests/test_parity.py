"""timm is the oracle: every variant of every spec, against the timm model of the same name."""

from __future__ import annotations

import pytest
import torch
from oracle import VARIANTS, fvcore_macs, max_diff, randomize, spec, timm_model

import archlang

IDS = [f"{s}:{v}" for s, v, _, _ in VARIANTS]


@pytest.mark.parametrize("family,variant,timm_name,_", VARIANTS, ids=IDS)
def test_param_count_full_size(family, variant, timm_name, _):
    ours = archlang.stats(spec(family), variant)["params"]
    ref = sum(p.numel() for p in timm_model(timm_name, meta=True).parameters())
    assert ours == ref


@pytest.mark.parametrize("family,variant,timm_name,overrides", VARIANTS, ids=IDS)
def test_logits_state_dict_and_macs(family, variant, timm_name, overrides):
    overrides = overrides or {}
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=sum(map(ord, timm_name)))
    model = archlang.build(spec(family), variant, overrides)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    archlang.load_timm(model, state)  # strict: every tensor used, none missing
    ir = archlang.stats(spec(family), variant, overrides)
    size = tuple(ir["input"])  # the variant's own input size (MaxViT's partitions follow img_size)
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert max_diff(model(x), ref(x)) <= 1e-4
    fv = fvcore_macs(ref, size)
    assert abs(ir["macs"] - fv) <= 0.01 * fv
    torch.fx.symbolic_trace(model)


@pytest.mark.parametrize("family,variant,timm_name,overrides", [
    ("convnext", "tiny", "convnext_tiny", {"depths": [1, 2, 1, 1], "dims": [32, 64, 96, 128], "num_classes": 10}),
    ("convnext", "v2_nano", "convnextv2_nano", {"num_classes": 7, "depths": [1, 1, 2, 1]}),
    ("convnext", "atto", "convnext_atto", {"head_norm_first": True, "kernel_sizes": 5, "conv_bias": False}),
    ("deit", "small", "deit_small_patch16_224", {"depth": 2, "num_heads": 4, "mlp_ratio": 2.0, "num_classes": 5}),
    ("deit", "tiny_distilled", "deit_tiny_distilled_patch16_224", {"depth": 1, "qkv_bias": False}),
    ("repvit", "m0_9", "repvit_m0_9", {"depth": [1, 3, 2, 1], "num_classes": 3, "distillation": False}),
    ("repvit", "m1_1", "repvit_m1_1", {"embed_dim": [16, 32, 64, 128], "mlp_ratio": 3, "kernel_size": 5}),
], ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(v))
def test_overrides_match_timm_kwargs(family, variant, timm_name, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=3)
    model = archlang.build(spec(family), variant, overrides)
    archlang.load_timm(model, state)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert max_diff(model(x), ref(x)) <= 1e-4
    assert archlang.stats(spec(family), variant, overrides)["params"] == sum(p.numel() for p in ref.parameters())
