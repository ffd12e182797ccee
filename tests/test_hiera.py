"""Hiera (specs/hiera.arch) against the installed timm: what is Hiera's own.

Every variant's parity (full-size params from the IR, strict state_dict load, logits, MACs vs
fvcore, fx trace) runs in test_parity.py from the oracle table (tests/oracle.py). Here: the spec
keeps tokens in raster order where timm unrolls them, so its stage maps are checked against the
maps timm's forward_intermediates re-rolls; the abswin position table's resize (two matrices
computed from a formula) against F.interpolate; timm's constructor arguments as overrides; the
MACs the IR counts that fvcore does not; and what `archlang build` shows and refuses.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracle import fvcore_macs, max_diff, randomize, refused_at_require, refused_input, spec, timm_model
from oracle import run_cli as run

import archlang

HIERA = spec("hiera")
ONE_PER_STAGE = {"stages": [1, 1, 1, 1]}


def pair(variant: str, timm_name: str, overrides: dict, seed: int = 0):
    """timm's model with seeded weights, and ours with timm's state_dict loaded strictly."""
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=seed)
    model = archlang.load_timm(archlang.build(HIERA, variant, overrides), state)
    return model, ref


def image(model_input: list[int], batch: int = 1, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, *model_input, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("overrides", [
    {"stages": [1, 2, 2, 1], "embed_dim": 32},                 # timm's token order is raster at the end
    {"stages": [1, 1, 2, 1], "embed_dim": 32, "q_pool": 2},    # ... and unrolled here (one unroll left)
    {**ONE_PER_STAGE, "embed_dim": 32, "mask_unit_size": [4, 4]},  # 4x4 mask units: timm's windows interleave
], ids=["q_pool3", "q_pool2", "mu4"])
def test_stage_maps_are_timms_rerolled_intermediates(overrides):
    """timm keeps its tokens unrolled (each mask unit and pooling window a contiguous run) and
    re-rolls them for forward_intermediates; the spec keeps the raster map throughout. The maps
    after every stage are the same, and the final tokens are the same set whatever their order,
    so the mean-pooled logits agree."""
    model, ref = pair("tiny", "hiera_tiny_224", overrides, seed=4)
    ends = [sum(overrides["stages"][:i + 1]) - 1 for i in range(4)]
    maps = []
    hooks = [model.blocks[i].register_forward_hook(lambda _m, _i, out: maps.append(out)) for i in ends]
    x = image([3, 224, 224], batch=2)
    with torch.no_grad():
        logits = model(x)
        theirs = ref.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
        tokens = ref.forward_features(x)
    for h in hooks:
        h.remove()
    assert [tuple(m.shape) for m in maps] == [tuple(t.shape) for t in theirs]
    for mine, t in zip(maps, theirs):
        assert max_diff(mine, t) <= 1e-5
    raster = maps[-1].flatten(1, 2)
    in_order = max_diff(raster, tokens) <= 1e-5
    assert in_order == (overrides.get("q_pool", 3) == 3)  # with q_pool 2 timm's last tokens stay unrolled
    assert max_diff(raster.sort(dim=1).values, tokens.sort(dim=1).values) <= 1e-5
    with torch.no_grad():
        assert max_diff(logits, ref(x)) <= 1e-4


@pytest.mark.parametrize("img_size,global_pos_size", [
    (256, [16, 16]),  # hiera_small_abswin_256: 16 -> 64
    (224, [14, 14]),  # 14 -> 56: an integer scale
    (192, [16, 12]),  # 16 -> 48 and 12 -> 48, unequal axes
    (32, [14, 14]),   # 14 -> 8: shrinking, where antialiasing widens the kernel
])
def test_position_resize_is_antialiased_bicubic(img_size, global_pos_size):
    """The abswin global table is resized by F.interpolate(bicubic, antialias=True); the spec
    computes the same resize as two matrices when the module is built (non-persistent buffers)."""
    overrides = {**ONE_PER_STAGE, "embed_dim": 16, "img_size": img_size, "global_pos_size": global_pos_size}
    model = archlang.build(HIERA, "base_abswin", overrides)
    table = torch.randn(1, 16, *global_pos_size, generator=torch.Generator().manual_seed(0))
    grid = [img_size // 4] * 2
    want = F.interpolate(table, size=grid, mode="bicubic", antialias=True)
    with torch.no_grad():
        assert max_diff(model.pos_resize(table), want) <= 1e-5
    assert model.pos_resize.rows.shape == (grid[0], global_pos_size[0])
    assert not any(k.startswith("pos_resize") for k in model.state_dict())


def test_abswin_logits_with_a_strong_position_table():
    """Seeded weights leave the position tables small next to the patch embedding; scaled up, the
    resized global table and the tiled window table decide the logits, which still agree."""
    ref = timm_model("hiera_small_abswin_256", **ONE_PER_STAGE)
    randomize(ref, seed=6)
    with torch.no_grad():
        ref.pos_embed.mul_(200)
        ref.pos_embed_win.mul_(200)
    model = archlang.load_timm(archlang.build(HIERA, "small_abswin", ONE_PER_STAGE), ref.state_dict())
    x = image([3, 256, 256], batch=2)
    with torch.no_grad():
        assert max_diff(model(x), ref(x)) <= 1e-4


@pytest.mark.parametrize("variant,timm_name,overrides", [
    ("tiny", "hiera_tiny_224", {"stages": [1, 1, 2, 1], "num_classes": 10}),
    ("small", "hiera_small_224", {**ONE_PER_STAGE, "q_pool": 2, "mask_unit_attn": [True, True, True, False]}),
    ("base_plus", "hiera_base_plus_224", {**ONE_PER_STAGE, "embed_dim": 64, "mlp_ratio": 2.0, "global_pool": "max"}),
    ("tiny", "hiera_tiny_224", {**ONE_PER_STAGE, "mask_unit_size": [4, 4], "dim_mul": 1.5, "head_mul": 1.0,
                                "global_pool": "avgmax"}),
    ("tiny", "hiera_tiny_224", {**ONE_PER_STAGE, "img_size": 112, "patch_kernel": [3, 3], "patch_stride": [2, 2],
                                "patch_padding": [1, 1], "use_expand_proj": False, "init_values": 0.1}),
    ("small_abswin", "hiera_small_abswin_256", {**ONE_PER_STAGE, "img_size": 224, "num_classes": 7}),
    ("base_abswin", "hiera_base_abswin_256", {**ONE_PER_STAGE, "embed_dim": 32, "q_stride": [1, 2],
                                              "mask_unit_size": [1, 4], "global_pos_size": [10, 12]}),
], ids=["classes", "q_pool2", "narrow-max", "mu4-mul", "patch-noproj", "abswin224", "oblong"])
def test_overrides_match_timm_kwargs(variant, timm_name, overrides):
    """Override keys are timm's constructor arguments: the same kwargs give the same model."""
    model, ref = pair(variant, timm_name, overrides, seed=3)
    stats = archlang.stats(HIERA, variant, overrides)
    assert stats["params"] == sum(p.numel() for p in ref.parameters())
    x = image(stats["input"])
    with torch.no_grad():
        assert max_diff(model(x), ref(x)) <= 1e-4


def test_one_training_step_with_drops_matches_timm():
    """drop_rate and drop_path_rate are timm's: in training, under one seed, the same modules
    (names and per-block rates, timm's schedule) draw the same masks, so the output and every
    gradient agree; in eval they are identities."""
    overrides = {**ONE_PER_STAGE, "stages": [1, 2, 2, 1], "embed_dim": 32, "drop_rate": 0.3, "drop_path_rate": 0.4}
    model, ref = pair("tiny", "hiera_tiny_224", overrides, seed=7)

    def drops(m):
        return {n: float(getattr(x, "p", getattr(x, "drop_prob", 0.0))) for n, x in m.named_modules()
                if type(x).__name__ in ("Dropout", "DropPath") or n.rpartition(".")[2].startswith("drop_path")}
    mine, theirs = drops(model), drops(ref)
    assert set(mine) == set(theirs) and len(set(theirs.values())) > 2
    assert all(abs(mine[n] - theirs[n]) <= 1e-6 for n in theirs)
    x, y = image([3, 224, 224], batch=4), torch.tensor([1, 2, 3, 4])
    outs, grads = [], []
    for m in (model, ref):
        m.train()
        torch.manual_seed(5)
        out = m(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in m.named_parameters()})
    assert max_diff(*outs) <= 1e-5 * outs[1].abs().max()
    assert set(grads[0]) == set(grads[1])
    for name, g in grads[1].items():
        assert max_diff(grads[0][name], g) <= 1e-5 * (g.abs().max() + 1e-12), name
    model.eval()
    ref.eval()
    with torch.no_grad():
        assert max_diff(model(x), ref(x)) <= 1e-4


def test_macs_count_the_position_resize_that_fvcore_does_not():
    """fvcore counts no MACs for the antialiased bicubic resize; the spec's two matrix products
    count theirs, and that is the whole difference (a tiny share at full depth)."""
    overrides = {**ONE_PER_STAGE, "embed_dim": 32}
    ref = timm_model("hiera_small_abswin_256", **overrides)
    ours = archlang.stats(HIERA, "small_abswin", overrides)["macs"]
    grid, table, dim = 64, 16, 32
    resize = dim * grid * table * table + dim * grid * table * grid  # rows @ table, then @ cols
    assert ours - fvcore_macs(ref, (3, 256, 256)) == resize


def test_build_defaults_to_tiny_and_the_variants_own_size(tmp_path, capsys):
    code, out, _ = run(capsys, "build", HIERA, "-o", str(tmp_path / "m.py"))
    assert code == 0 and out.startswith(f"hiera tiny  [{HIERA}, train form, input 3x224x224]")
    assert f"{sum(p.numel() for p in timm_model('hiera_tiny_224', meta=True).parameters()):,}" in out
    assert "blocks.10-11  stage*  [B, 7, 7, 768]" in out
    code, out, _ = run(capsys, "build", HIERA, "--variant", "hiera_base_abswin_256", "--set", "stages=[1,1,1,1]",
                       "-o", str(tmp_path / "b.py"))
    resize = next(line.split() for line in out.splitlines() if line.strip().startswith("pos_resize"))
    assert code == 0 and "input 3x256x256]" in out and resize[1:5] == ["[1,", "96,", "64,", "64]"]


def test_input_must_be_the_variants_size(tmp_path, capsys):
    refused_input(capsys, tmp_path, HIERA, ("--variant", "small_abswin", "--input", "3x224x224"), 256)


@pytest.mark.parametrize("setting,message", [
    ("q_pool=4", "q_pool must be smaller than the number of stages"),
    ("img_size=200", "the token grid (img_size // patch_stride) must be a multiple of q_stride ** (len(stages) - 1)"),
    ("mask_unit_size=[6,6]", "mask_unit_size must divide q_stride ** (len(stages) - 1)"),
    ("mask_unit_attn=[true,false]", "mask_unit_attn needs one entry per stage"),
    ("global_pool=\"token\"", "global_pool is avg, max or avgmax"),
])
def test_bad_settings_are_refused_at_the_require(tmp_path, capsys, setting, message):
    refused_at_require(capsys, tmp_path, HIERA, setting, message)


def test_variant_list_names_every_model_of_timms_hiera_module(capsys):
    import timm

    code, out, _ = run(capsys, "build", HIERA, "--help-variants")
    names = timm.list_models(module="hiera")
    assert code == 0 and out.startswith(f"hiera: {len(names)} variants in {HIERA} (default tiny)")
    for name in names:
        assert f" {name} " in out
