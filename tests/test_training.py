"""Training behaviour (issue 7): the emitted modules are trained, not only evaluated.

Dropout and drop-path act in training and are identities in eval; the specs take timm's
hyperparameter names (drop_rate, drop_path_rate, proj_drop_rate, attn_drop_rate, pos_drop_rate),
timm's module names and timm's drop-path schedule; weights start as the specs' init rules say.
Oracles: timm (one training step under the same seed, with drop rates 0 and above 0: outputs and
every gradient; the dropout and drop-path modules and their per-block rates; the statistics of a
freshly initialised model) and plain torch (drop-path masks, dropout, init rules).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from oracle import randomize, spec
from test_errors import IN, Case, build_fails_located, model, run_cli

import archlang

SIZE = (3, 32, 32)
# (spec, variant, timm model, small settings as timm's kwargs, drop rates > 0 under timm's names)
FAMILIES = {
    "convnext": ("atto", "convnext_atto", {"depths": [1, 1, 2, 1], "dims": [16, 32, 48, 64], "num_classes": 10},
                 {"drop_rate": 0.3, "drop_path_rate": 0.4}),
    "deit": ("tiny", "deit_tiny_patch16_224",
             {"depth": 3, "embed_dim": 48, "num_heads": 3, "img_size": 32, "num_classes": 10},
             {"drop_rate": 0.3, "pos_drop_rate": 0.1, "proj_drop_rate": 0.2, "attn_drop_rate": 0.25,
              "drop_path_rate": 0.4}),
    # the MIM-pretrained EVA-02 layout (separate q/k/v, sub-LN SwiGLU, RoPE), without a classifier
    # as timm builds it: the loss reads the pooled features as logits
    "eva": ("base", "eva02_base_patch14_224",
            {"depth": 3, "embed_dim": 48, "num_heads": 2, "img_size": 32, "patch_size": 8},
            {"drop_rate": 0.3, "pos_drop_rate": 0.1, "proj_drop_rate": 0.2, "attn_drop_rate": 0.25,
             "drop_path_rate": 0.4}),
    "repvit": ("m0_9", "repvit_m0_9", {"depth": [1, 1, 2, 1], "embed_dim": [16, 32, 48, 64], "num_classes": 10},
               {"drop_rate": 0.3}),
    "efficientvit_msra": ("m0", "efficientvit_m0",
                          {"img_size": 32, "depth": [1, 1, 1], "embed_dim": [16, 32, 48], "key_dim": [8, 8, 8],
                           "num_heads": [2, 2, 2], "num_classes": 10}, {"drop_rate": 0.3}),
}


def settings(family: str, drops: bool) -> dict:
    _, _, small, rates = FAMILIES[family]
    return {**small, **(rates if drops else {})}


@functools.cache
def _pair(family: str, drops: bool):
    import timm

    variant, name, _, _ = FAMILIES[family]
    kwargs = settings(family, drops)
    ref = timm.create_model(name, pretrained=False, **kwargs)
    ours = archlang.build(spec(family), variant, kwargs, input_size=SIZE)
    return ours, ref, {k: v.clone() for k, v in randomize(ref, seed=7).items()}


def pair(family: str, drops: bool):
    """Our module and timm's, built with the same settings, holding the same seeded weights."""
    ours, ref, state = _pair(family, drops)
    ref.load_state_dict(state)
    archlang.load_timm(ours, state)
    return ours, ref


def train_step(model, x, y, seed: int):
    """One training step's forward and backward under `seed`: the output and every gradient."""
    model.train()
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(x)
    F.cross_entropy(out, y).backward()
    return out.detach(), {n: p.grad for n, p in model.named_parameters()}


def inputs(seed: int = 0):
    x = torch.randn(4, *SIZE, generator=torch.Generator().manual_seed(seed))
    return x, torch.tensor([1, 2, 3, 4])


# ---------------------------------------------------------------------- one step against timm


@pytest.mark.parametrize("drops", [False, True], ids=["rates-0", "rates-above-0"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_training_step_matches_timm(family, drops):
    """Same weights, input, loss and seed: timm's output and every gradient. With drop rates above
    0 the random masks agree too, as both draw them in the same order from the same generator."""
    ours, ref = pair(family, drops)
    x, y = inputs()
    out, grads = train_step(ours, x, y, seed=5)
    want, ref_grads = train_step(ref, x, y, seed=5)
    assert set(grads) == set(ref_grads)
    assert (out - want).abs().max() <= 1e-5 * want.abs().max()
    for name, g in ref_grads.items():
        assert (grads[name] - g).abs().max() <= 1e-5 * (g.abs().max() + 1e-12), name
    assert any(g.abs().max() > 0 for g in grads.values())
    again, _ = train_step(ours, x, y, seed=6)
    assert torch.equal(again, out) != drops  # the masks depend on the seed only when something drops


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_eval_is_the_identity_of_every_drop(family):
    """In eval, a model with drop rates above 0 computes what the one without drops does (and timm)."""
    ours, ref = pair(family, drops=True)
    plain, _ = pair(family, drops=False)
    x, _ = inputs(1)
    for m in (ours, ref, plain):
        m.eval()
    with torch.no_grad():
        out = ours(x)
        assert torch.equal(out, ours(x)) and torch.equal(out, plain(x))
        assert (out - ref(x)).abs().max() <= 1e-5


# ---------------------------------------------------------------------- module names and schedule


def drop_modules(model) -> dict[str, float]:
    """Dropout and drop-path modules by name, with their rates (timm's drop_path at rate 0 is an
    nn.Identity named drop_path*)."""
    out = {}
    for name, m in model.named_modules():
        kind = type(m).__name__
        if kind in ("Dropout", "DropPath"):
            out[name] = float(getattr(m, "p", getattr(m, "drop_prob", 0.0)))
        elif kind == "Identity" and name.rpartition(".")[2].startswith("drop_path"):
            out[name] = 0.0
    return out


# timm modules our specs do not have, and why (each must exist in timm, so a stale entry fails).
NOT_MODULES = {
    # timm's fused attention reads this module's p and passes it to F.scaled_dot_product_attention;
    # ours passes attn_drop_rate to sdpa(..., dropout_p) directly (the same draws: see the step test)
    "deit": re.compile(r"blocks\.\d+\.attn\.attn_drop"),
    "eva": re.compile(r"blocks\.\d+\.attn\.attn_drop"),  # the same as DeiT's
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_drop_modules_have_timms_names(family):
    ours, ref = pair(family, drops=True)
    skip = NOT_MODULES.get(family)
    theirs = drop_modules(ref)
    left_out = {n for n in theirs if skip is not None and skip.fullmatch(n)}
    assert left_out or skip is None
    assert set(drop_modules(ours)) == set(theirs) - left_out


@pytest.mark.parametrize("family", ["convnext", "deit", "eva"])
def test_drop_path_rates_follow_timms_schedule(family):
    """The rate of every block's drop-path rises linearly from 0 to drop_path_rate (torch.linspace
    in timm, computed in the spec language in ours), read from both models' modules."""
    ours, ref = pair(family, drops=True)
    theirs = {n: r for n, r in drop_modules(ref).items() if "drop_path" in n}
    mine = {n: r for n, r in drop_modules(ours).items() if "drop_path" in n}
    assert set(mine) == set(theirs) and len(set(theirs.values())) > 2
    assert all(abs(mine[n] - theirs[n]) <= 1e-6 for n in theirs)
    rates = sorted(mine.values())
    assert rates[0] == 0.0 and rates[-1] == FAMILIES[family][3]["drop_path_rate"]


# ---------------------------------------------------------------------- masks against plain torch


def drop_path_module():
    ours, _ = pair("convnext", drops=True)
    m = ours.stages[3].blocks[0].drop_path
    assert type(m).__name__ == "DropPath" and m.p == pytest.approx(0.4)
    return m


def test_drop_path_masks_per_sample_keep_rate_and_scaling():
    m = drop_path_module()
    p, n = m.p, 20000
    x = torch.ones(n, 3, 2, 2)
    m.train()
    torch.manual_seed(0)
    y = m(x)
    per_sample = y.flatten(1)
    assert torch.equal(per_sample, per_sample[:, :1].expand_as(per_sample))  # one decision per sample
    kept = per_sample[:, 0] != 0
    assert torch.allclose(per_sample[kept, 0], torch.full((int(kept.sum()),), 1 / (1 - p)))  # scale_by_keep
    sigma = ((1 - p) * p / n) ** 0.5
    assert abs(kept.float().mean().item() - (1 - p)) <= 4 * sigma
    assert abs(y.mean().item() - 1.0) <= 4 * sigma / (1 - p)  # the expected value is kept
    # plain torch under the same seed: a Bernoulli(1 - p) draw per sample, divided by 1 - p
    torch.manual_seed(0)
    mask = torch.empty(n, 1, 1, 1).bernoulli_(1 - p) / (1 - p)
    assert torch.equal(y, x * mask)
    m.eval()
    assert m(x) is x


FUNCTIONS = """
family fn
param p = 0.5
input [B, C]

model {
  a = drop_path(x, p)
  b = drop_path(x, p, scale_by_keep = false)
  c = dropout(x, p)
  return cat([a, b, c], dim = 1)
}
"""


def test_drop_path_and_dropout_functions_follow_the_module_mode(tmp_path):
    """Inside expressions they are functions of the module's mode (training=self.training)."""
    path = tmp_path / "fn.arch"
    path.write_text(FUNCTIONS)
    m = archlang.build(str(path), input_size=(64,))
    x = torch.ones(2000, 64)
    assert torch.equal(m(x), torch.cat([x, x, x], dim=1))  # built in eval: three identities
    m.train()
    torch.manual_seed(3)
    a, b, c = m(x).split(64, dim=1)
    torch.manual_seed(3)
    assert torch.equal(a, x * (torch.empty(2000, 1).bernoulli_(0.5) / 0.5))
    assert torch.equal(b, x * torch.empty(2000, 1).bernoulli_(0.5))  # scale_by_keep = false
    assert torch.equal(c, F.dropout(x, 0.5, training=True))
    assert torch.fx.symbolic_trace(m)(x).shape == (2000, 192)  # traceable in training mode too


def test_dropout_with_the_default_or_zero_rate_keeps_everything_in_training(tmp_path):
    """`dropout()` and `dropout(0.0)` mean p = 0 in the spec; torch's own default is 0.5, so the
    emitted code must say p, as a module and as a function."""
    path = tmp_path / "zero.arch"
    path.write_text("input [B, C]\nmodel {\n  a: dropout()\n  b: dropout(0.0)\n  x = dropout(x) + dropout(x, 0.0)\n}\n")
    m = archlang.build(str(path), input_size=(64,)).train()
    x = torch.randn(100, 64)
    assert torch.equal(m(x), 2 * x)


# ---------------------------------------------------------------------- initialisation


def init_stats(model) -> dict[str, list[torch.Tensor]]:
    """Tensors of a fresh model grouped by kind: the name with block indices dropped."""
    out = defaultdict(list)
    for name, t in model.state_dict().items():
        if t.dtype.is_floating_point:
            out[re.sub(r"\.\d+(?=\.)", ".*", name)].append(t.detach().flatten())
    return {k: torch.cat(v) for k, v in out.items()}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fresh_weights_have_timms_statistics(family):
    """A freshly built model starts as timm's does, tensor kind by kind: constants (zero biases,
    BatchNorm weights, layer-scale values, RepViT's zero-init BN) equal, random tensors
    (truncated normal std .02, PyTorch's defaults, a scaled head) with the same mean and std."""
    import timm

    variant, name, small, _ = FAMILIES[family]
    extra = {"head_init_scale": 0.25} if family == "convnext" else {}
    torch.manual_seed(0)
    ours = init_stats(archlang.build(spec(family), variant, {**small, **extra}, input_size=SIZE))
    theirs = init_stats(timm.create_model(name, pretrained=False, **small, **extra))
    assert set(ours) == set(theirs)
    for kind, want in theirs.items():
        got = ours[kind]
        if want.std() == 0 or want.numel() == 1:
            assert torch.equal(got, want), kind
            continue
        n = min(got.numel(), want.numel())
        spread = want.std().item()
        assert abs(got.mean().item() - want.mean().item()) <= 5 * spread * (2 / n) ** 0.5, kind
        assert abs(got.std().item() / spread - 1) <= max(0.05, 6 / n ** 0.5), kind


RULES = """
family rules
param head_scale = 0.5
input [B, 3, H, W]

block unit(d) {
  conv: conv2d(d, d, 3)
  bn: batchnorm2d(d)
  lnc: layernorm2d(d)
  init batchnorm2d { weight(init = 0); bias(init = 0.25) }
  init layernorm2d { weight(init = 3.0); bias(init = -1.0) }
}

model {
  stem: conv2d(3, 64, 4, stride = 4, bias = false)
  blocks: repeat 2 { unit(64) }
  free: batchnorm2d(64, affine = false)
  x = rearrange(x, "b c h w -> b h w c")
  ln: layernorm(64)
  x = mean(x, [1, 2])
  head: { fc: linear(64, 4000) }
  init conv2d, linear { weight(init = "trunc_normal", std = 0.02); bias(init = 0) }
  init batchnorm2d { weight(init = 1) }
  init layernorm { weight(init = 2.0) }
  init linear in head { weight(init = "normal", std = 0.1, scale = head_scale) }
}
"""


def test_init_rules_set_what_they_name(tmp_path):
    """Each rule reaches the modules of its ops in its body (under `in LABEL` only there), block
    rules first and the model's last; layernorm is not layernorm2d; absent parameters are skipped."""
    path = tmp_path / "rules.arch"
    path.write_text(RULES)
    m = archlang.build(str(path), input_size=(3, 16, 16))
    for unit in m.blocks:
        # the block's rule set both; the model's, which runs last, set the weight again
        assert torch.equal(unit.bn.weight, torch.ones(64)) and torch.equal(unit.bn.bias, torch.full((64,), 0.25))
        assert torch.equal(unit.lnc.weight, torch.full((64,), 3.0)) and torch.equal(unit.lnc.bias, -torch.ones(64))
        assert torch.equal(unit.conv.bias, torch.zeros(64))
        assert abs(unit.conv.weight.std().item() - 0.02) < 0.002 and unit.conv.weight.abs().max() <= 2.0
    assert m.free.weight is None and torch.equal(m.ln.weight, torch.full((64,), 2.0))
    assert m.stem.bias is None and abs(m.stem.weight.std().item() - 0.02) < 0.002
    assert abs(m.head.fc.weight.std().item() - 0.05) < 0.002 and abs(m.head.fc.weight.mean().item()) < 0.001
    source = m.archlang.source
    assert source.count("for m in self.modules()") == 5 and source.count("for m in self.head.modules()") == 1


# ---------------------------------------------------------------------- mistakes, located


def bad(id: str, src: str, at: str, message: str, hint=None, **kw):
    return pytest.param(Case(src, at, message, hint, **kw), id=id)


RULE = "block u(d) {\n  c: conv2d(d, d, 1)\n}\n"
CASES = [
    bad("drop-path-above-1", IN + model("c: conv2d(3, 8, 3)", "d: drop_path(1.5)"), "1.5",
        "argument 'p' of drop_path must be a number from 0 to 1, got 1.5"),
    bad("negative-dropout", IN + model("c: conv2d(3, 8, 3)", "x = dropout(x, -0.1)"), "-0.1",
        "argument 'p' of dropout must be a number from 0 to 1, got -0.1"),
    bad("attention-dropout-above-1", "input [B, N, C]\n" + model("x = sdpa(x, x, x, dropout_p = 2)"), "2)",
        "argument 'dropout_p' of sdpa must be a number from 0 to 1, got 2", width=1),
    bad("dropout-at-build-time", IN + model("t = buffer(dropout(arange(4) * 1.0, 0.5), persistent = false)"),
        "dropout(arange(4) * 1.0, 0.5)",
        "dropout is random in training and the identity in eval, but this tensor is computed once, when the "
        "module is built", "apply dropout in forward, to a tensor forward computes"),
    bad("linspace-count", IN + model("let r = linspace(0.0, 1.0, -2)", "c: conv2d(3, 8, 3)"),
        "linspace(0.0, 1.0, -2)",
        "linspace(...) failed: the number of points must be an int >= 0, got -2"),
    bad("init-unknown-layer", IN + model("c: conv2d(3, 8, 3)", "init Conv2d { weight(init = 0) }"), "Conv2d",
        "unknown layer 'Conv2d'", "did you mean 'conv2d'?"),
    bad("init-op-without-parameters", IN + model("c: conv2d(3, 8, 3)", "init gelu { weight(init = 0) }"), "gelu",
        "an init rule sets the parameters of modules, and gelu owns none",
        "name module ops such as conv2d, linear, batchnorm2d, layernorm"),
    bad("init-parameter-not-owned", IN + model("c: conv2d(3, 8, 3)", "init conv2d { wieght(init = 0) }"),
        "wieght", "conv2d owns no parameter 'wieght'", "did you mean 'weight'?"),
    bad("init-parameter-of-one-op-only", IN + model("c: conv2d(3, 8, 3)",
                                                    "init conv2d, batchnorm2d { running_mean(init = 0) }"),
        "running_mean", "conv2d owns no parameter 'running_mean'", "its parameters: bias, weight"),
    bad("init-bad-initialiser", IN + model("c: conv2d(3, 8, 3)", 'init conv2d { weight(init = "bogus") }'),
        '"bogus"', "argument 'init' of weight must be a number or one of \"zeros\", \"ones\", \"normal\", "
                   "\"trunc_normal\", got \"bogus\""),
    bad("init-initialiser-in-a-param", 'param how = "zeros"\n' + IN + model("c: conv2d(3, 8, 3)",
                                                                          "init conv2d { weight(init = how) }"),
        "how) }", "write a named initialiser as a string literal", 'init = "zeros"', width=3),
    bad("init-std-of-a-constant", IN + model("c: conv2d(3, 8, 3)", "init conv2d { bias(init = 0, std = 0.1) }"),
        "0.1", "'std' applies to init = \"normal\" or \"trunc_normal\", not 0", "drop 'std'"),
    bad("init-std-not-a-number", IN + model("c: conv2d(3, 8, 3)",
                                            'init conv2d { weight(init = "normal", std = "wide") }'),
        '"wide"', "argument 'std' of weight must be a number, got \"wide\""),
    bad("init-set-twice", IN + model("c: conv2d(3, 8, 3)", "init conv2d { bias(init = 0); bias(init = 1) }"),
        "bias(init = 1)", "'bias' is set twice in this rule", width=4),
    bad("init-in-a-conditional-module", IN + model("if true {", "  c: conv2d(3, 8, 3)", "}",
                                                  "init conv2d in c { bias(init = 0) }"), "c {",
        "'c' is not a module this body always builds",
        "`in NAME` names a label written in this body, outside any if or loop item", width=1),
    bad("init-inside-an-if", IN + model("c: conv2d(3, 8, 3)", "if true {", "  init conv2d { bias(init = 0) }", "}"),
        "init conv2d { bias(init = 0) }", "an init rule belongs at the top of a block or the model body",
        "it applies to the modules that whole body builds (`in NAME` narrows it)"),
    bad("init-is-a-keyword", IN + model("init = weight([8])"), "= weight", "unexpected '='",
        "'init' is a keyword of the language; name this something else", width=1),
    bad("init-with-a-role", IN + model("c: conv2d(3, 8, 3)", "@head init conv2d { bias(init = 0) }"), "head",
        "a role says what a module is for; an init rule makes no module"),
]


@pytest.mark.parametrize("c", CASES)
def test_training_mistake_is_located(c: Case, tmp_path, capsys):
    build_fails_located(c, tmp_path, capsys)


@pytest.mark.parametrize("family,override,at,message", [
    ("convnext", "drop_path_rate=1.5", "drop_path)", "argument 'p' of drop_path must be a number from 0 to 1, got 1.5"),
    ("deit", "drop_rate=-0.1", "drop_rate)", "argument 'p' of dropout must be a number from 0 to 1, got -0.1"),
    ("deit", "attn_drop_rate=2.0", "attn_drop)",
     "argument 'dropout_p' of sdpa must be a number from 0 to 1, got 2.0"),
])
def test_bad_training_rates_stop_at_their_use(family, override, at, message, tmp_path, capsys):
    """A rate outside [0, 1] set on the command line stops the build where the spec uses it, and
    the note names the override."""
    settings_ = ["--set", override, "--set", "depths=[1,1,1,1]"] if family == "convnext" else ["--set", override]
    code, out, err = run_cli(capsys, "build", spec(family), *settings_, "-o", str(tmp_path / "out.py"))
    assert code == 2 and out == "" and "Traceback" not in err
    header, source, caret = err.splitlines()[:3]
    assert header.startswith(f"{spec(family).rpartition('/')[0]}") and header.endswith(f"error: {message}")
    assert caret.index("^") == source.index(at)  # the caret is under the rate's use
    assert f"--set {override}" in err
