"""FastViT and the MobileCLIP towers (specs/fastvit.arch) against timm, train and deploy forms.

Every variant at its resolution (256, the spec's default input): the parameter counts from the IR
equal timm's at full size, before and after `reparameterize_model`; at the sizes of
oracle.FASTVIT (reduced depth for the largest) timm's state_dict loads strictly, logits agree to
1e-4 in float32 (seeded weights, BatchNorm statistics calibrated on a random batch at 128 x 128,
which is cheaper and as good as any non-trivial values, O(1) logits), the IR's MACs are within 1%
of fvcore's count of timm's model, and the module traces with fx. The deploy form (`--fuse`) is
timm's reparameterized model: the same tensors (its fused state_dict loads strictly), the same
logits as it and as our train form, the same MACs. Overrides use timm's constructor names and give
the model `timm.create_model` builds from them, in both forms.
"""
from __future__ import annotations

import copy

import pytest
import torch
from oracle import FASTVIT, FASTVIT_SIZE, fvcore_macs, max_diff, randomize, spec, timm_model
from timm.utils.model import reparameterize_model

import archlang

SPEC = spec("fastvit")
IDS = [v for v, _, _ in FASTVIT]
TOL = 1e-4
CALIBRATE = (3, 128, 128)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _logits_close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert 0.1 < ref.abs().max().item() < 100, "logits should be O(1); see oracle.randomize(calibrate=...)"
    assert max_diff(ours, ref) <= TOL


@pytest.mark.parametrize("variant,timm_name,_", FASTVIT, ids=IDS)
def test_param_count_full_size(variant, timm_name, _):
    ours = archlang.stats(SPEC, timm_name)  # the timm name selects the variant
    ref = timm_model(timm_name, meta=True)
    assert ours["variant"] == variant
    assert ours["params"] == _params(ref)
    # the spec's input line defaults to 256, the input size of timm's FastViT and MCi configs
    assert tuple(ours["input"]) == tuple(ref.pretrained_cfg["input_size"]) == FASTVIT_SIZE


@pytest.mark.parametrize("variant,timm_name,_", FASTVIT, ids=IDS)
def test_fused_param_count_full_size(variant, timm_name, _):
    with torch.device("meta"):  # timm's reparameterize makes new convs: on meta too, shapes only
        ref_fused = reparameterize_model(timm_model(timm_name, meta=True))
    assert archlang.stats(SPEC, variant, fuse=True)["params"] == _params(ref_fused)


@pytest.fixture(scope="module", params=FASTVIT, ids=IDS)
def case(request):
    """timm's model with seeded weights, ours loaded from it, and both deploy forms."""
    variant, timm_name, overrides = request.param
    overrides = overrides or {}
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=sum(map(ord, timm_name)), calibrate=CALIBRATE)
    ours = archlang.load_timm(archlang.build(SPEC, variant, overrides), state)
    ref_fused = reparameterize_model(copy.deepcopy(ref))
    x = torch.randn(1, *FASTVIT_SIZE, generator=torch.Generator().manual_seed(1))
    return dict(variant=variant, overrides=overrides, ref=ref, ours=ours, fused=archlang.fuse(ours),
                ref_fused=ref_fused, x=x)


def test_train_form(case):
    """Equal params, a strict load (in the fixture), logits within 1e-4, MACs within 1%, fx."""
    ref, ours, x = case["ref"], case["ours"], case["x"]
    assert _params(ours) == _params(ref)
    with torch.no_grad():
        _logits_close(ours(x), ref(x))
    ir_macs = archlang.stats(SPEC, case["variant"], case["overrides"])["macs"]
    ref_macs = fvcore_macs(ref, FASTVIT_SIZE)
    assert abs(ir_macs - ref_macs) <= 0.01 * ref_macs
    torch.fx.symbolic_trace(ours)


def test_deploy_form(case):
    """`--fuse` is timm's reparameterize_model: its params, its fused state_dict loads strictly,
    logits within 1e-4 of timm's fused model and of our train form, MACs within 1% of fvcore."""
    fused, ref_fused, x = case["fused"], case["ref_fused"], case["x"]
    assert _params(fused) == _params(ref_fused) < _params(case["ours"])
    deploy = archlang.load_timm(archlang.build(SPEC, case["variant"], case["overrides"], fuse=True),
                                ref_fused.state_dict())
    assert deploy.state_dict().keys() == fused.state_dict().keys()
    with torch.no_grad():
        want, got = ref_fused(x), fused(x)
        _logits_close(got, want)
        _logits_close(got, case["ours"](x))
        _logits_close(deploy(x), want)
    ir_macs = archlang.stats(SPEC, case["variant"], case["overrides"], fuse=True)["macs"]
    ref_macs = fvcore_macs(ref_fused, FASTVIT_SIZE)
    assert abs(ir_macs - ref_macs) <= 0.01 * ref_macs
    torch.fx.symbolic_trace(fused)


@pytest.mark.parametrize("timm_name,overrides", [
    ("fastvit_t8", {"layers": [1, 1, 2, 1], "mlp_ratios": [2, 2, 2, 2], "num_classes": 10}),
    ("fastvit_sa12", {"layers": [1, 1, 1, 1], "embed_dims": [32, 64, 128, 256], "repmixer_kernel_size": 5,
                      "down_patch_size": 5, "cls_ratio": 3.0}),
    ("fastvit_s12", {"layers": [1, 2, 1, 1], "embed_dims": [32, 32, 64, 128], "downsamples": [False, False, True, True],
                     "token_mixers": ["repmixer", "attention", "repmixer", "attention"], "in_chans": 1}),
    ("fastvit_mci0", {"layers": [1, 1, 1, 1], "embed_dims": [16, 32, 64, 64],
                      "se_downsamples": [False, True, False, True], "lkc_use_act": False,
                      "stem_use_scale_branch": False, "down_stride": 1}),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_overrides_match_timm_kwargs(timm_name, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    ref = timm_model(timm_name, **overrides)
    size = (overrides.get("in_chans", 3), 64, 64)
    state = randomize(ref, seed=5, calibrate=size)
    model = archlang.load_timm(archlang.build(SPEC, timm_name, overrides, input_size=size), state)
    x = torch.randn(1, *size, generator=torch.Generator().manual_seed(2))
    ref_fused = reparameterize_model(copy.deepcopy(ref))
    deploy = archlang.load_timm(archlang.build(SPEC, timm_name, overrides, fuse=True, input_size=size),
                                ref_fused.state_dict())
    with torch.no_grad():
        _logits_close(model(x), ref(x))
        _logits_close(deploy(x), ref_fused(x))
        _logits_close(archlang.fuse(model)(x), ref_fused(x))
    assert archlang.stats(SPEC, timm_name, overrides, input_size=size)["params"] == _params(ref)
    assert archlang.stats(SPEC, timm_name, overrides, input_size=size, fuse=True)["params"] == _params(ref_fused)
