"""Reparameterization is exact: RepViT's deploy form against timm's `reparameterize_model`.

For every RepViT variant: the fused build has timm's fused parameter count (full size, from the
IR), timm's fused state_dict loads strictly into `build(..., fuse=True)`, `archlang.fuse` gives
the logits of timm's fused model and of our unfused model, the fused IR's MACs match fvcore on
timm's fused model, and the fused module traces with torch.fx.

Checkpoints are randomized with BatchNorm statistics calibrated on a random batch and a classifier
scaled to O(1) logits (as training leaves them; see oracle.randomize), so logits are held to the
plain absolute bound max |Δ| <= 1e-4 in float32, and the same comparison in float64 too.
"""

from __future__ import annotations

import copy

import pytest
import torch
from oracle import VARIANTS, fvcore_macs, max_diff, randomize, spec, timm_model
from timm.utils.model import reparameterize_model

import archlang

REPVIT = [v for v in VARIANTS if v[0] == "repvit"]
IDS = [v for _, v, _, _ in REPVIT]
SPEC = spec("repvit")
TOL = 1e-4


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> float:
    """max |a - b| <= tol, on O(1) logits (checked, so the bound stays meaningful)."""
    assert 0.1 < b.abs().max().item() < 100, "logits should be O(1); see oracle.randomize(calibrate=...)"
    err = max_diff(a, b)
    assert err <= tol, f"max |Δ| = {err:.3g} on logits of size {b.abs().max().item():.3g}"
    return err


@pytest.fixture(scope="module", params=REPVIT, ids=IDS)
def case(request):
    _, variant, timm_name, overrides = request.param
    overrides = overrides or {}
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=sum(map(ord, timm_name)), calibrate=(3, 224, 224))
    ours = archlang.load_timm(archlang.build(SPEC, variant, overrides), state)
    fused = archlang.fuse(ours)
    ref_fused = reparameterize_model(copy.deepcopy(ref))
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = {k: m(x) for k, m in [("ref", ref), ("ours", ours), ("fused", fused), ("ref_fused", ref_fused)]}
    return dict(variant=variant, overrides=overrides, ref=ref, state=state, ours=ours, fused=fused,
                ref_fused=ref_fused, x=x, logits=logits)


@pytest.mark.parametrize("family,variant,timm_name,_", REPVIT, ids=IDS)
def test_fused_param_count_full_size(family, variant, timm_name, _):
    ref = timm_model(timm_name, meta=True)  # timm's fuse runs on meta tensors: shapes only
    unfused = _params(ref)
    fused = _params(reparameterize_model(ref))
    assert archlang.stats(SPEC, variant)["params"] == unfused
    assert archlang.stats(SPEC, variant, fuse=True)["params"] == fused < unfused


def test_fused_param_count(case):
    assert _params(case["fused"]) == _params(case["ref_fused"]) < _params(case["ours"])
    assert archlang.stats(SPEC, case["variant"], case["overrides"], fuse=True)["params"] == _params(case["fused"])


def test_timm_fused_state_dict_loads_strictly(case):
    deploy = archlang.build(SPEC, case["variant"], case["overrides"], fuse=True)
    archlang.load_timm(deploy, case["ref_fused"].state_dict())
    assert deploy.state_dict().keys() == case["fused"].state_dict().keys()
    with torch.no_grad():
        assert max_diff(deploy(case["x"]), case["logits"]["ref_fused"]) == 0.0


def test_fused_logits_float32(case):
    logits = case["logits"]
    assert max_diff(logits["ours"], logits["ref"]) == 0.0
    _close(logits["fused"], logits["ref_fused"])
    _close(logits["fused"], logits["ours"])


def test_fused_logits_float64(case):
    """In float64 the deploy form equals the train form to rounding, far inside the tolerance.

    (timm is not compared here: its fuse creates the fused convs and linears in float32.)
    """
    ours = archlang.load_timm(archlang.build(SPEC, case["variant"], case["overrides"]), case["state"]).double()
    fused = archlang.fuse(ours)
    assert {p.dtype for p in fused.parameters()} == {torch.float64}
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        assert max_diff(fused(x), ours(x)) <= TOL


def test_fused_macs_match_fvcore(case):
    ir = archlang.stats(SPEC, case["variant"], case["overrides"], fuse=True)["macs"]
    ref = fvcore_macs(case["ref_fused"])
    assert abs(ir - ref) <= 0.01 * ref
    assert ir < archlang.stats(SPEC, case["variant"], case["overrides"])["macs"]


def test_fused_module_traces_with_fx(case):
    traced = torch.fx.symbolic_trace(case["fused"])
    with torch.no_grad():
        assert max_diff(traced(case["x"]), case["fused"](case["x"])) == 0.0


SMALL = {"depth": [1, 2, 1, 1], "embed_dim": [16, 32, 48, 64], "num_classes": 10}


def _small_model(seed: int = 0):
    ref = timm_model("repvit_m0_9", **SMALL)
    return archlang.load_timm(archlang.build(SPEC, "m0_9", SMALL), randomize(ref, seed=seed, calibrate=(3, 64, 64)))


def test_fuse_in_train_mode_folds_running_statistics():
    model = _small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    fused = archlang.fuse(model)
    assert not fused.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # fusing reads only
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        _close(fused(x), model(x))
        batch_stats = model.train()(x)
    assert max_diff(fused(x), batch_stats) > 1e-2  # the fold did not use batch statistics


def test_fuse_is_idempotent_on_a_fused_model():
    fused = archlang.fuse(_small_model())
    assert archlang.fuse(fused) is fused


def test_unfused_checkpoint_into_fused_model_says_fused():
    deploy = archlang.build(SPEC, "m0_9", SMALL, fuse=True)
    state = randomize(timm_model("repvit_m0_9", **SMALL))
    with pytest.raises(ValueError, match="fused"):
        archlang.load_timm(deploy, state)
