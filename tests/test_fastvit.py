"""FastViT and the MobileCLIP towers (specs/fastvit.arch) against timm, in the train form.

Every variant at its resolution (256): the parameter count from the IR equals timm's at full size;
at the sizes of oracle.FASTVIT (reduced depth for the largest) timm's state_dict loads strictly,
logits agree to 1e-4 in float32 (seeded weights, BatchNorm statistics calibrated on a random batch
at 128 x 128, which is cheaper and as good as any non-trivial values, O(1) logits),
the IR's MACs are within 1% of fvcore's count of timm's model, and the module traces with fx.
Overrides use timm's constructor names and give the model `timm.create_model` builds from them.
"""

from __future__ import annotations

import pytest
import torch
from oracle import FASTVIT, FASTVIT_SIZE, fvcore_macs, max_diff, randomize, spec, timm_model

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
    ours = archlang.stats(SPEC, timm_name, input_size=FASTVIT_SIZE)  # the timm name selects the variant
    assert ours["variant"] == variant
    assert ours["params"] == _params(timm_model(timm_name, meta=True))


@pytest.mark.parametrize("variant,timm_name,overrides", FASTVIT, ids=IDS)
def test_logits_state_dict_and_macs(variant, timm_name, overrides):
    overrides = overrides or {}
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=sum(map(ord, timm_name)), calibrate=CALIBRATE)
    model = archlang.build(SPEC, variant, overrides, input_size=FASTVIT_SIZE)
    assert _params(model) == _params(ref)
    archlang.load_timm(model, state)  # strict: every tensor used, none missing
    x = torch.randn(1, *FASTVIT_SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _logits_close(model(x), ref(x))
    ir_macs = archlang.stats(SPEC, variant, overrides, input_size=FASTVIT_SIZE)["macs"]
    ref_macs = fvcore_macs(ref, FASTVIT_SIZE)
    assert abs(ir_macs - ref_macs) <= 0.01 * ref_macs
    torch.fx.symbolic_trace(model)


@pytest.mark.parametrize("timm_name,overrides", [
    ("fastvit_t8", {"layers": [1, 1, 2, 1], "mlp_ratios": [2, 2, 2, 2], "num_classes": 10}),
    ("fastvit_sa12", {"layers": [1, 1, 1, 1], "embed_dims": [32, 64, 128, 256], "repmixer_kernel_size": 5,
                      "down_patch_size": 5, "cls_ratio": 3.0}),
    ("fastvit_s12", {"layers": [1, 2, 1, 1], "embed_dims": [32, 32, 64, 128], "downsamples": [False, False, True, True],
                     "token_mixers": ["repmixer", "attention", "repmixer", "attention"], "in_chans": 1}),
    ("fastvit_mci0", {"layers": [1, 1, 1, 1], "se_downsamples": [False, True, False, True], "lkc_use_act": False,
                      "stem_use_scale_branch": False, "down_stride": 1}),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_overrides_match_timm_kwargs(timm_name, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    ref = timm_model(timm_name, **overrides)
    size = (overrides.get("in_chans", 3), 128, 128)
    state = randomize(ref, seed=5, calibrate=size)
    model = archlang.load_timm(archlang.build(SPEC, timm_name, overrides, input_size=size), state)
    x = torch.randn(1, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _logits_close(model(x), ref(x))
    assert archlang.stats(SPEC, timm_name, overrides, input_size=size)["params"] == _params(ref)
