"""EfficientViT-MSRA (specs/efficientvit_msra.arch) against the installed timm, train and deploy forms.

Every variant's train form (full-size params, strict state_dict load, logits, MACs vs fvcore, fx)
runs in test_parity.py from the oracle table. Here: the deploy form (`--fuse`) against timm's
`reparameterize_model` (each ConvNorm's and the head's `fuse()`), the bias index tables against
timm's buffers, windows that pad the map, timm's constructor arguments as overrides, and the
errors of bad settings.

Random weights make this network chaotic in float32: with the BatchNorms that close each residual
branch at O(1) (timm starts them at zero), twenty residual units amplify rounding so much that
timm's own fused model differs from its train form by ~1e-3. `tame` gives those BatchNorms a
third of their random scale before calibrating (oracle.BRANCH_SCALE), so rounding stays at ~1e-6
and a 1e-4 tolerance means something. (test_parity's uncalibrated weights give logits of 1e4 to
1e5 here; it passes there only because our forward is timm's, operation for operation.)
"""

from __future__ import annotations

import copy
import re

import pytest
import torch
from oracle import BRANCH_SCALE, fvcore_macs, max_diff, randomize, refused_at_require, refused_input, spec, timm_model
from oracle import run_cli as run
from timm.utils.model import reparameterize_model

import archlang

SPEC = spec("efficientvit_msra")
NAMES = [f"m{i}" for i in range(6)]
TOL = 1e-4
# Depthwise residual units: the deploy form folds their identity into the kernel (timm keeps x + conv(x)).
RESIDUAL_DW = re.compile(r"(blocks\.\d+\.dw[01]|res[12]\.0)\.m\.(weight|bias)$")


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def tame(ref: torch.nn.Module, seed: int, size: tuple[int, ...]) -> dict:
    """Seeded weights, the BatchNorms closing the residual branches scaled by 0.3, BatchNorm
    statistics calibrated on a random batch and the classifier scaled to O(1) (oracle.randomize)."""
    return randomize(ref, seed=seed, calibrate=size, scale=BRANCH_SCALE["efficientvit_msra"])


def pair(variant: str, overrides: dict, seed: int = 0):
    """timm's model with tame weights, ours with its state_dict loaded strictly, and the input size."""
    size = tuple(archlang.stats(SPEC, variant, overrides)["input"])
    ref = timm_model(f"efficientvit_{variant}", **overrides)
    state = tame(ref, seed, size)
    return archlang.load_timm(archlang.build(SPEC, variant, overrides), state), ref, size


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert 0.1 < ref.abs().max().item() < 100, "outputs should be O(1): see tame()"
    assert max_diff(ours, ref) <= TOL


def with_identity_folded(state: dict) -> dict:
    """timm's fused state_dict as our deploy form holds it: a depthwise unit x + conv(x) is one conv
    whose kernel has the identity added at its centre, under the unit's own name."""
    out = {}
    for key, value in state.items():
        if RESIDUAL_DW.search(key):
            key = key.replace(".m.", ".")
            if key.endswith("weight"):
                value = value.clone()
                value[:, 0, value.shape[2] // 2, value.shape[3] // 2] += 1
        out[key] = value
    return out


@pytest.mark.parametrize("variant", NAMES)
def test_fused_param_count_full_size(variant):
    with torch.device("meta"):  # timm's fuse() makes new modules: on meta too, shapes only
        ref_fused = reparameterize_model(timm_model(f"efficientvit_{variant}", meta=True))
    fused = archlang.stats(SPEC, variant, fuse=True)["params"]
    assert fused == _params(ref_fused) < archlang.stats(SPEC, variant)["params"]


@pytest.fixture(scope="module", params=["m0", "m2"])
def case(request):
    """m0 (kernels 5, four heads) and m2 (kernels 7, 5, 3; two to four heads) at full size."""
    ours, ref, size = pair(request.param, {}, seed=sum(map(ord, request.param)))
    x = torch.randn(1, *size, generator=torch.Generator().manual_seed(1))
    return dict(variant=request.param, ours=ours, ref=ref, x=x, size=size,
                fused=archlang.fuse(ours), ref_fused=reparameterize_model(copy.deepcopy(ref)))


def test_train_form_on_tame_weights(case):
    with torch.no_grad():
        _close(case["ours"](case["x"]), case["ref"](case["x"]))


def test_deploy_form(case):
    """`--fuse` folds every ConvNorm and the head's BatchNorm1d with the shared rule table: timm's
    fused params and logits; timm's fused tensors, with the depthwise units' identity added, load
    strictly and are the tensors archlang.fuse computes; MACs within 1% of fvcore's count."""
    fused, ref_fused, x = case["fused"], case["ref_fused"], case["x"]
    assert _params(fused) == _params(ref_fused) < _params(case["ours"])
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    theirs = with_identity_folded(ref_fused.state_dict())
    deploy = archlang.load_timm(archlang.build(SPEC, case["variant"], fuse=True), theirs)
    mine = fused.state_dict()
    assert max(max_diff(mine[k], t) for k, t in theirs.items()) <= 1e-5
    with torch.no_grad():
        want = ref_fused(x)
        _close(fused(x), want)
        _close(fused(x), case["ours"](x))
        _close(deploy(x), want)
    ir_macs = archlang.stats(SPEC, case["variant"], fuse=True)["macs"]
    ref_macs = fvcore_macs(ref_fused, case["size"])
    assert abs(ir_macs - ref_macs) <= 0.01 * ref_macs
    torch.fx.symbolic_trace(fused)


NARROW = {"embed_dim": [32, 32, 64], "num_heads": [2, 2, 2], "depth": [1, 1, 1]}


@pytest.mark.parametrize("img_size,windows", [(224, [7, 7, 4]), (200, [7, 6, 3]), (160, [7, 5, 3])])
def test_attention_bias_idxs_are_timms_buffers(img_size, windows):
    """The index of offset (|dy|, |dx|) in each window, computed from arange when the module is
    built, is timm's non-persistent buffer at the same path, for every window size."""
    overrides = {**NARROW, "img_size": img_size}
    ours = archlang.build(SPEC, "m0", overrides)
    ref = timm_model("efficientvit_m0", **overrides)
    mine = {k: v for k, v in ours.named_buffers() if k.endswith("attention_bias_idxs")}
    theirs = {k: v for k, v in ref.named_buffers() if k.endswith("attention_bias_idxs")}
    assert mine.keys() == theirs.keys() and len(mine) == 3
    for key, index in mine.items():
        assert index.dtype == torch.long and torch.equal(index, theirs[key])
    assert [int(v.shape[0] ** 0.5) for v in mine.values()] == windows
    assert not any(k.endswith("attention_bias_idxs") for k in ours.state_dict())
    assert not any(k.endswith("attention_bias_idxs") for k in ref.state_dict())


@pytest.mark.parametrize("variant,overrides", [
    # 16 x 16 and 8 x 8 maps padded to 21 x 21 and 14 x 14 for 7 x 7 windows
    ("m0", {"img_size": 256, "depth": [1, 1, 1], "num_classes": 10}),
    # timm sizes windows from 200 // 16 = 12 but the map is 13: 7, 6 and 3 windows, each padding
    ("m1", {"img_size": 200, "depth": [1, 1, 2]}),
    ("m2", {"embed_dim": [32, 64, 96], "key_dim": [8, 16, 8], "num_heads": [2, 4, 4], "depth": [1, 1, 1],
            "kernels": [3, 5, 7, 9], "window_size": [5, 4, 3]}),
    # a downsample opening stage 0 and none in stage 2
    ("m3", {"down_ops": [["subsample", 2], ["subsample", 2], ["", 1]], "embed_dim": [32, 64, 64],
            "depth": [1, 2, 1], "num_heads": [2, 2, 2], "in_chans": 1, "drop_rate": 0.1}),
    ("m4", {"num_classes": 0, "global_pool": "", "depth": [1, 1, 1]}),  # NCHW features
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_overrides_match_timm_kwargs(variant, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    model, ref, size = pair(variant, overrides, seed=3)
    assert archlang.stats(SPEC, variant, overrides)["params"] == _params(ref)
    x = torch.randn(1, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert ours.shape == theirs.shape
    if overrides.get("num_classes") == 0:
        assert max_diff(ours, theirs) <= TOL * theirs.abs().max().item()  # features, not O(1) logits
    else:
        _close(ours, theirs)


def test_timm_names_select_variants_at_their_size(tmp_path, capsys):
    import timm

    code, out, _ = run(capsys, "build", SPEC, "--help-variants")
    assert code == 0 and out.startswith(f"efficientvit_msra: 6 variants in {SPEC} (default m0)")
    for name in timm.list_models("efficientvit_m*"):
        assert f" {name} " in out
    code, out, _ = run(capsys, "build", SPEC, "--variant", "efficientvit_m5", "--set", "img_size=256",
                       "-o", str(tmp_path / "m5.py"))
    assert code == 0 and "input 3x256x256]" in out  # img_size sets the input: 16 x 16 patches, 4 x 4 last
    assert re.search(r"stages\.2 +stage +\[B, 384, 4, 4\]", out)
    assert f"{_params(timm_model('efficientvit_m5', meta=True)):,}" in out


def test_input_must_be_the_variants_size(tmp_path, capsys):
    """The windows follow img_size, so the input is fixed: another size is refused at the input line."""
    refused_input(capsys, tmp_path, SPEC, ("--input", "3x256x256"), 224)


@pytest.mark.parametrize("setting,message", [
    ("num_heads=[4,4]", "num_heads needs one entry per stage"),
    ("down_ops=[[\"\",1]]", "down_ops needs one entry per stage"),
    ("kernels=[5,5]", "kernels needs one entry per head"),
    ("global_pool=\"max\"", "global_pool is avg (empty: num_classes = 0)"),
])
def test_bad_settings_are_refused_at_the_require(tmp_path, capsys, setting, message):
    refused_at_require(capsys, tmp_path, SPEC, setting, message)


def test_fused_source_names_each_role_once():
    """A call and the layer it collapsed to may carry the same role: the emitted comment says it once."""
    source = archlang.compile_spec(SPEC, "m0", fuse=True).source
    assert "(token_mixer)" in source and "token_mixer, token_mixer" not in source
