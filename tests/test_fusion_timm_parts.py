"""The general fusion rules reparameterize timm's MobileOne / FastViT building blocks exactly.

Each case is a small spec written with timm's module names, so timm's state_dict loads strictly
into our train form; `archlang.fuse` must then give timm's `reparameterize()` result: the same
fused tensor names, the same values, the same outputs. The rules are generic (no code knows these
blocks): a sum with a BatchNorm-only branch (MobileOneBlock), `x + conv(x)` (RepConditionalPosEnc)
and `x + gamma * (mixer(x) - norm(x))` (RepMixer).
"""

from __future__ import annotations

import copy

import pytest
import torch
from oracle import max_diff, randomize
from test_fusion_rules import _write
from timm.models.fastvit import MobileOneBlock, RepConditionalPosEnc, RepMixer

import archlang

PARTS = """
family fastvit_parts
param dim = 8
input [B, dim, H, W]

block conv_norm(d, k) {
  conv: conv2d(d, d, k, groups = d, bias = false)
  bn: batchnorm2d(d)
}

block mobileone(d, k, act = true) {
  sum as reparam_conv {
    conv_kxk[0]: conv_norm(d, k)
  | conv_scale: conv_norm(d, 1)
  | identity: batchnorm2d(d)
  }
  if act {
    act: gelu()
  }
}

block bn_only(d) {
  identity: batchnorm2d(d)
}

block layer_scale2d(d) {
  gamma = weight([d, 1, 1], init = 0.00001)
  x = x * gamma
}
"""

MODELS = {
    "mobileone": ("  sum as reparam_conv {\n    conv_kxk[0]: conv_norm(dim, 3)\n  | conv_scale: conv_norm(dim, 1)\n"
                  "  | identity: batchnorm2d(dim)\n  }\n  act: gelu()", lambda: MobileOneBlock(8, 8, 3, group_size=1)),
    "rep_cpe": ("  residual as reparam_conv {\n    pos_enc: conv2d(dim, dim, 7, groups = dim)\n  }",
                lambda: RepConditionalPosEnc(8, 8, spatial_shape=(7, 7))),
    "repmixer": ("  residual as reparam_conv {\n    m = mixer: mobileone(dim, 3, act = false)(x)\n"
                 "    n = norm: bn_only(dim)(x)\n    x = m - n\n    layer_scale: layer_scale2d(dim)\n  }",
                 lambda: RepMixer(8, kernel_size=3)),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fusion_timm_parts")


@pytest.mark.parametrize("name", MODELS)
def test_fuse_equals_timm_reparameterize(workdir, name):
    body, make = MODELS[name]
    path = _write(workdir, PARTS + f"\nmodel {{\n{body}\n}}\n")
    ref = make().eval()
    state = randomize(ref, seed=len(name))
    ours = archlang.build(path, input_size=(8, 9, 9))
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 8, 9, 9, generator=torch.Generator().manual_seed(0))
    fused = archlang.fuse(ours)
    ref_fused = copy.deepcopy(ref)
    ref_fused.reparameterize()
    with torch.no_grad():
        assert max_diff(ours(x), ref(x)) <= 1e-5  # float32: timm adds the branches in another order
        assert max_diff(fused(x), ref_fused(x)) <= 1e-5
        assert max_diff(fused(x), ours(x)) <= 1e-5
    got, want = fused.state_dict(), ref_fused.state_dict()
    assert sorted(got) == sorted(want) == ["reparam_conv.bias", "reparam_conv.weight"]
    for key in want:
        assert max_diff(got[key], want[key]) <= 1e-5, key
