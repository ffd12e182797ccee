"""Helpers for comparing compiled specs with the installed timm (the oracle) and fvcore."""

from __future__ import annotations

import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# (spec, variant, timm model, overrides used for the logits/FLOPs check: reduced depth for
# variants that are slow at full size on 2 CPU cores; params are always checked at full size).
# Inputs are each variant's own size: what the spec's input line fixes, else 3x224x224.
SMALL = None
ONE_PER_STAGE = {"depths": [1, 1, 1, 1]}
VARIANTS = [
    ("convnext", "atto", "convnext_atto", SMALL),
    ("convnext", "femto", "convnext_femto", SMALL),
    ("convnext", "pico", "convnext_pico", SMALL),
    ("convnext", "nano", "convnext_nano", SMALL),
    ("convnext", "tiny", "convnext_tiny", SMALL),
    ("convnext", "small", "convnext_small", {"depths": [1, 1, 3, 1]}),
    ("convnext", "base", "convnext_base", {"depths": [1, 1, 2, 1]}),
    ("convnext", "large", "convnext_large", {"depths": [1, 1, 1, 1]}),
    ("convnext", "v2_atto", "convnextv2_atto", SMALL),
    ("convnext", "v2_femto", "convnextv2_femto", SMALL),
    ("convnext", "v2_pico", "convnextv2_pico", SMALL),
    ("convnext", "v2_nano", "convnextv2_nano", SMALL),
    ("convnext", "v2_tiny", "convnextv2_tiny", SMALL),
    ("convnext", "v2_base", "convnextv2_base", {"depths": [1, 1, 2, 1]}),
    ("convnext", "v2_large", "convnextv2_large", {"depths": [1, 1, 1, 1]}),
    ("deit", "tiny", "deit_tiny_patch16_224", SMALL),
    ("deit", "small", "deit_small_patch16_224", SMALL),
    ("deit", "base", "deit_base_patch16_224", {"depth": 3}),
    ("deit", "tiny_distilled", "deit_tiny_distilled_patch16_224", SMALL),
    ("deit", "small_distilled", "deit_small_distilled_patch16_224", SMALL),
    ("deit", "base_distilled", "deit_base_distilled_patch16_224", {"depth": 3}),
    ("repvit", "m0_9", "repvit_m0_9", SMALL),
    ("repvit", "m1_0", "repvit_m1_0", SMALL),
    ("repvit", "m1_1", "repvit_m1_1", SMALL),
    ("repvit", "m1_5", "repvit_m1_5", {"depth": [2, 2, 4, 2]}),
    ("repvit", "m2_3", "repvit_m2_3", {"depth": [2, 2, 4, 2]}),
    # MaxViT at each variant's own resolution (the spec's input line), which fixes the partition size.
    # One block per stage runs MBConv, block and grid attention and the stride-2 first block at every
    # width and partition size; the pico variants run whole (stride-1 blocks, identity shortcuts).
    ("maxvit", "tiny_tf", "maxvit_tiny_tf_224", ONE_PER_STAGE),
    ("maxvit", "tiny_tf_384", "maxvit_tiny_tf_384", ONE_PER_STAGE),
    ("maxvit", "tiny_tf_512", "maxvit_tiny_tf_512", ONE_PER_STAGE),
    ("maxvit", "small_tf", "maxvit_small_tf_224", ONE_PER_STAGE),
    ("maxvit", "small_tf_384", "maxvit_small_tf_384", ONE_PER_STAGE),
    ("maxvit", "small_tf_512", "maxvit_small_tf_512", ONE_PER_STAGE),
    ("maxvit", "base_tf", "maxvit_base_tf_224", ONE_PER_STAGE),
    ("maxvit", "base_tf_384", "maxvit_base_tf_384", ONE_PER_STAGE),
    ("maxvit", "base_tf_512", "maxvit_base_tf_512", ONE_PER_STAGE),
    ("maxvit", "large_tf", "maxvit_large_tf_224", ONE_PER_STAGE),
    ("maxvit", "large_tf_384", "maxvit_large_tf_384", ONE_PER_STAGE),
    ("maxvit", "large_tf_512", "maxvit_large_tf_512", ONE_PER_STAGE),
    ("maxvit", "xlarge_tf", "maxvit_xlarge_tf_224", ONE_PER_STAGE),
    ("maxvit", "xlarge_tf_384", "maxvit_xlarge_tf_384", ONE_PER_STAGE),
    ("maxvit", "xlarge_tf_512", "maxvit_xlarge_tf_512", ONE_PER_STAGE),
    ("maxvit", "tiny_rw", "maxvit_tiny_rw_224", ONE_PER_STAGE),
    ("maxvit", "tiny_rw_256", "maxvit_tiny_rw_256", ONE_PER_STAGE),
    ("maxvit", "nano_rw", "maxvit_nano_rw_256", ONE_PER_STAGE),
    ("maxvit", "pico_rw", "maxvit_pico_rw_256", SMALL),
    ("maxvit", "tiny_pm", "maxvit_tiny_pm_256", ONE_PER_STAGE),
    ("maxvit", "rmlp_tiny_rw", "maxvit_rmlp_tiny_rw_256", ONE_PER_STAGE),
    ("maxvit", "rmlp_nano_rw", "maxvit_rmlp_nano_rw_256", ONE_PER_STAGE),
    ("maxvit", "rmlp_pico_rw", "maxvit_rmlp_pico_rw_256", SMALL),
    ("maxvit", "rmlp_small_rw", "maxvit_rmlp_small_rw_224", ONE_PER_STAGE),
    ("maxvit", "rmlp_small_rw_256", "maxvit_rmlp_small_rw_256", ONE_PER_STAGE),
    ("maxvit", "rmlp_base_rw", "maxvit_rmlp_base_rw_224", ONE_PER_STAGE),
    ("maxvit", "rmlp_base_rw_384", "maxvit_rmlp_base_rw_384", ONE_PER_STAGE),
    # Hiera: tiny runs whole; the others at two blocks in every stage (pooling first block and a
    # plain one, mask-unit and global attention), large and huge at one (their widths and heads);
    # the abswin models at their own 256, with the resized position table and layer scale.
    ("hiera", "tiny", "hiera_tiny_224", SMALL),
    ("hiera", "small", "hiera_small_224", {"stages": [1, 2, 2, 2]}),
    ("hiera", "base", "hiera_base_224", {"stages": [2, 2, 2, 2]}),
    ("hiera", "base_plus", "hiera_base_plus_224", {"stages": [2, 2, 2, 2]}),
    ("hiera", "large", "hiera_large_224", {"stages": [1, 1, 1, 1]}),
    ("hiera", "huge", "hiera_huge_224", {"stages": [1, 1, 1, 1]}),
    ("hiera", "small_abswin", "hiera_small_abswin_256", {"stages": [1, 2, 2, 2]}),
    ("hiera", "base_abswin", "hiera_base_abswin_256", {"stages": [2, 2, 2, 2]}),
    # EVA / EVA-02 at each variant's img_size; the wide ones at one or two blocks (their blocks are
    # all alike), tiny and small whole. The MIM-pretrained *_224 models have no classifier (timm's
    # default num_classes is 0 for them): their output is the pooled, normed features.
    ("eva", "tiny", "eva02_tiny_patch14_224", SMALL),
    ("eva", "small", "eva02_small_patch14_224", SMALL),
    ("eva", "base", "eva02_base_patch14_224", {"depth": 2}),
    ("eva", "large", "eva02_large_patch14_224", {"depth": 1}),
    ("eva", "tiny_336", "eva02_tiny_patch14_336", SMALL),
    ("eva", "small_336", "eva02_small_patch14_336", {"depth": 3}),
    ("eva", "base_448", "eva02_base_patch14_448", {"depth": 1}),
    ("eva", "large_448", "eva02_large_patch14_448", {"depth": 1}),
    ("eva", "base_clip", "eva02_base_patch16_clip_224", {"depth": 2}),
    ("eva", "large_clip", "eva02_large_patch14_clip_224", {"depth": 1}),
    ("eva", "large_clip_336", "eva02_large_patch14_clip_336", {"depth": 1}),
    ("eva", "enormous_clip", "eva02_enormous_patch14_clip_224", {"depth": 1}),
    ("eva", "giant", "eva_giant_patch14_224", {"depth": 1}),
    ("eva", "giant_336", "eva_giant_patch14_336", {"depth": 1}),
    ("eva", "giant_560", "eva_giant_patch14_560", {"depth": 1}),
    ("eva", "giant_clip", "eva_giant_patch14_clip_224", {"depth": 1}),
    # EfficientViT-MSRA at full size (0.08-0.53 GMACs); its windows pad, and its deploy form, are
    # tested in test_efficientvit_msra.py.
    ("efficientvit_msra", "m0", "efficientvit_m0", SMALL),
    ("efficientvit_msra", "m1", "efficientvit_m1", SMALL),
    ("efficientvit_msra", "m2", "efficientvit_m2", SMALL),
    ("efficientvit_msra", "m3", "efficientvit_m3", SMALL),
    ("efficientvit_msra", "m4", "efficientvit_m4", SMALL),
    ("efficientvit_msra", "m5", "efficientvit_m5", SMALL),
]


# FastViT is evaluated at 256 x 256 (timm's default input for every FastViT and MCi model).
# (variant, timm model, overrides for the logits/FLOPs check): t8 and sa12 (a RepMixer model and
# one with attention) at full size; the others differ from them in depth, width and flags, so
# they are checked one block per stage (their full-size params from the IR), MCi3/4 narrower.
FASTVIT_SIZE = (3, 256, 256)
ONE_BLOCK = {"layers": [1, 1, 1, 1]}
FASTVIT = [
    ("t8", "fastvit_t8", SMALL),
    ("t12", "fastvit_t12", ONE_BLOCK),
    ("s12", "fastvit_s12", ONE_BLOCK),
    ("sa12", "fastvit_sa12", SMALL),
    ("sa24", "fastvit_sa24", ONE_BLOCK),
    ("sa36", "fastvit_sa36", ONE_BLOCK),
    ("ma36", "fastvit_ma36", ONE_BLOCK),
    ("mci0", "fastvit_mci0", ONE_BLOCK),
    ("mci1", "fastvit_mci1", ONE_BLOCK),
    ("mci2", "fastvit_mci2", ONE_BLOCK),
    ("mci3", "fastvit_mci3", {"layers": [1, 1, 1, 1, 1], "embed_dims": [32, 64, 128, 256, 512]}),
    ("mci4", "fastvit_mci4", {"layers": [1, 1, 1, 1, 1], "embed_dims": [16, 32, 64, 128, 256]}),
]


def spec(name: str) -> str:
    return str(SPECS / f"{name}.arch")


def timm_model(name: str, meta: bool = False, **kwargs):
    import timm

    if meta:
        return timm.create_model(name, pretrained=False, device="meta", **kwargs)
    return timm.create_model(name, pretrained=False, **kwargs).eval()


# Families whose random weights need their residual branches scaled down (a pattern of state_dict
# keys and a factor) for float32 to resolve 1e-4: with the BatchNorms that close each branch at O(1)
# (timm starts them at zero), EfficientViT-MSRA's twenty residual units amplify rounding ~1e4-fold.
BRANCH_SCALE = {
    "efficientvit_msra": (r"(blocks\.\d+\.dw[01]\.m|pw2|proj\.1)\.bn\.(weight|bias)$", 0.3),
}


def randomize(model: torch.nn.Module, seed: int = 0, calibrate: tuple[int, ...] | None = None,
              scale: tuple[str, float] | None = None) -> dict:
    """Give every float tensor seeded, non-trivial values (BN statistics and layer scales too).

    With `calibrate` (an input size), BatchNorm statistics are then measured on one random batch
    and jittered, as training would leave them, and the classifier is scaled so logits are O(1)
    as a trained model's are: random statistics on a deep residual CNN make activations grow to
    ~1e7, and at logits of ~1e2 float32 alone cannot resolve a 1e-4 difference. `scale` (a key
    pattern and a factor, see BRANCH_SCALE) multiplies the matching tensors before calibrating."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() <= 1:  # norm affines, biases, layer scales, GRN
                centre = 1.0 if name.endswith(("weight", "gamma")) else 0.0
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1 + centre)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) / fan_in ** 0.5)
        if scale is not None:
            for name, t in model.state_dict().items():
                if re.search(scale[0], name):
                    t.mul_(scale[1])
    if calibrate is not None:
        calibrate_batchnorm(model, calibrate, gen)
        scale_classifier(model, calibrate, gen)
    return model.state_dict()


def scale_classifier(model: torch.nn.Module, size: tuple[int, ...], gen: torch.Generator) -> None:
    """Scale the classifier's linear layers so logits on a random batch have unit spread."""
    heads = [m for name, m in model.named_modules() if name.split(".")[0].startswith("head")
             and isinstance(m, torch.nn.Linear)]
    if not heads:
        return
    with torch.no_grad():
        spread = model(torch.randn(4, *size, generator=gen)).abs().max().item()
        for m in heads:
            m.weight.div_(max(spread, 1.0))
            if m.bias is not None:
                m.bias.div_(max(spread, 1.0))


def calibrate_batchnorm(model: torch.nn.Module, size: tuple[int, ...], gen: torch.Generator) -> None:
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(torch.randn(4, *size, generator=gen))
        for m in norms:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.1 * m.running_var.sqrt())
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=gen) * 0.4 + 0.8)
    model.eval()


def fvcore_macs(model: torch.nn.Module, size=(3, 224, 224)) -> int:
    from fvcore.nn import FlopCountAnalysis

    flops = FlopCountAnalysis(model, torch.randn(1, *size))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    return int(flops.total())


GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; ARCHLANG_UPDATE_GOLDEN=1 rewrites the file instead."""
    import os

    path = GOLDEN / name
    if os.environ.get("ARCHLANG_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with ARCHLANG_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; if intended, regenerate with ARCHLANG_UPDATE_GOLDEN=1"


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ---------------------------------------------------------------------------------- the CLI


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """`archlang ARGS` in-process: (exit status, stdout, stderr)."""
    from archlang.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refused_at_require(capsys, tmp_path, path, setting: str, message: str) -> None:
    """`--set SETTING` stops the build at one of the spec's requires: its message, located in the
    spec, with the values of the params it read as the hint."""
    code, _, err = run_cli(capsys, "build", str(path), "--set", setting, "-o", str(tmp_path / "m.py"))
    assert code == 2 and f"error: {message}" in err and f"{Path(path).name}:" in err and "hint: here" in err


def refused_input(capsys, tmp_path, path, args: tuple[str, ...], size: int) -> None:
    """A build at another input size than the variant's fixed one stops at the input line."""
    code, _, err = run_cli(capsys, "build", str(path), *args, "-o", str(tmp_path / "m.py"))
    assert code == 2 and "input [B, in_chans, img_size, img_size]" in err and str(size) in err
