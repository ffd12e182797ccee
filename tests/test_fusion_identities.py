"""The fusion identities behind MobileOne- and FastViT-style blocks hold on random small specs.

A BatchNorm-only branch in a sum (the BN of the identity), a conv with a bias then BatchNorm,
`x + f(x)` (a residual, or an expression), a per-channel layer scale (a block, an assignment, an
expression, over convs and linears), a difference of parallel maps, and all of them together
(`x + w * (mixer(x) - norm(x))`). As in test_fusion_rules, every deploy form must compute the
train form's function (float64 within 1e-10 of the output's scale, float32 within 1e-5), own the
tensors its IR counts, and report the rules it applied.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import max_diff, randomize
from test_fusion_rules import CONV_BN, PROPERTY, _spec, _write, check, ops, params_of

import archlang
from archlang.compiler import compile_spec, instantiate

UNITS = CONV_BN + """
block bn_only(d) {
  identity: batchnorm2d(d)
}
block layer_scale2d(d) {
  gamma = weight([d, 1, 1], init = 0.00001)
  x = x * gamma
}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fusion_identities")


def _conv(label: str, d: int, k: int, g: int, draw, bias: bool | None = None) -> str:
    """A conv of d -> d channels whose kernel is centred (stride 1, 'same' or explicit padding)."""
    padding = f", padding = {(k - 1) // 2}" if draw(st.booleans()) else ""
    bias = draw(st.booleans()) if bias is None else bias
    return f"{label}: conv2d({d}, {d}, {k}, groups = {g}{padding}, bias = {str(bias).lower()})"


# ---------------------------------------------------------------- MobileOne: k x k + 1 x 1 + BN-only


@pytest.mark.parametrize("k,depthwise", [(3, True), (5, False), (1, True)])
def test_mobileone_sum_with_a_batchnorm_branch_is_one_conv(workdir, k, depthwise):
    """`sum { conv_bn kxk | conv_bn 1x1 | batchnorm2d }` is one conv, named by `sum as`."""
    g = "d" if depthwise else "1"
    block = UNITS + f"""
block mobileone(d) {{
  sum as reparam_conv {{
    conv_kxk: cbn(d, d, {k}, 1, {g})
  | conv_scale: cbn(d, d, 1, 1, {g})
  | identity: batchnorm2d(d)
  }}
  act: gelu()
}}"""
    deploy = check(workdir, _spec("6, H, W", "  m: mobileone(6)", block), (6, 5, 5), seed=k,
                   rules=["parallel_conv_sum", "conv_bn_fold"], keys=["m.reparam_conv.weight", "m.reparam_conv.bias"])
    assert params_of(deploy) == {"m.reparam_conv"} and "batchnorm2d" not in ops(deploy)


@pytest.mark.parametrize("bias", [True, False])
def test_conv_with_bias_then_batchnorm(workdir, bias):
    """conv(x) + b then BN: the conv's own bias is scaled and shifted with the BN."""
    model = f"  c: conv2d(3, 5, 3, bias = {str(bias).lower()})\n  bn: batchnorm2d(5)\n  act: relu()"
    deploy = check(workdir, _spec("3, H, W", model), (3, 6, 6), seed=3, rules=["conv_bn_fold"],
                   keys=["c.weight", "c.bias"])
    assert params_of(deploy) == {"c"}


# ---------------------------------------------------------------- x + f(x)


@st.composite
def residual_cases(draw):
    d = draw(st.integers(1, 4)) * 2
    g = draw(st.sampled_from([1, 2, d]))
    k = draw(st.sampled_from([1, 3, 5, 7]))
    body = draw(st.sampled_from(["conv", "cbn", "group"]))
    if body == "conv":
        inner = _conv("pos_enc", d, k, g, draw)
    elif body == "cbn":
        inner = f"pos_enc: cbn({d}, {d}, {k}, 1, {g})"
    else:
        inner = f"pos_enc: {{\n      {_conv('c', d, k, g, draw, bias=False)}\n      bn: batchnorm2d({d})\n    }}"
    form = draw(st.sampled_from(["residual", "residual as", "x + y", "y + x"]))
    if form.startswith("residual"):
        text = f"  {form}{' reparam_conv' if form.endswith('as') else ''} {{\n    {inner}\n  }}"
        name = "reparam_conv" if form.endswith("as") else "pos_enc"
    else:
        bound = inner.replace("pos_enc: ", "y = pos_enc: ", 1)
        text = f"  {bound}(x)\n  x = {form}" if body != "group" else None
        name = "pos_enc"
    if text is None:  # a group is not a bound layer: use the residual form
        text, name = f"  residual {{\n    {inner}\n  }}", "pos_enc"
    keep = draw(st.booleans())
    if keep:
        text += "\n  act: relu()"
    key = f"r.{name}" if keep or form == "residual as" else "r"
    size = (d, draw(st.integers(4, 7)), draw(st.integers(4, 7)))
    return _spec(f"{d}, H, W", "  r: rep()", UNITS + f"block rep() {{\n{text}\n}}"), size, key


@PROPERTY
@given(residual_cases(), st.integers(0, 2**16))
def test_residual_identity_fold(workdir, case, seed):
    text, size, key = case
    deploy = check(workdir, text, size, seed, ["residual_identity_fold"], [f"{key}.weight", f"{key}.bias"])
    assert params_of(deploy) == {key} and not ops(deploy) & {"add", "batchnorm2d"}


# ---------------------------------------------------------------- w * f(x)


@st.composite
def scale_cases(draw):
    d = draw(st.integers(1, 5))
    form = draw(st.sampled_from(["block", "assign", "assign_view", "expr", "linear"]))
    conv = _conv("c", d, draw(st.sampled_from([1, 3])), 1, draw)
    if form == "block":
        text = f"  {conv}\n  layer_scale: layer_scale2d({d})"
    elif form == "assign":
        text = f"  g = weight([{d}, 1, 1])\n  {conv}\n  x = x * g"
    elif form == "assign_view":
        text = f"  g = weight([{d}])\n  {conv}\n  x = g[:, none, none] * x"
    elif form == "expr":
        text = f"  g = weight([{d}])\n  y = {conv}(x)\n  x = y * g[:, none, none]"
    else:
        text = f'  x = rearrange(x, "b c h w -> b (h w) c")\n  g = weight([{d}])\n  c: linear({d}, {d})\n  x = x * g'
    text += "\n  act: relu()"
    size = (d, draw(st.integers(3, 5)), draw(st.integers(3, 5)))
    return _spec(f"{d}, H, W", text, UNITS), size


@PROPERTY
@given(scale_cases(), st.integers(0, 2**16))
def test_layer_scale_fold(workdir, case, seed):
    text, size = case
    deploy = check(workdir, text, size, seed, ["layer_scale_fold"], ["c.weight", "c.bias"])
    assert params_of(deploy) == {"c"} and "mul" not in ops(deploy)
    assert not {n.op for n in deploy.graph.nodes()} & {"weight"}  # the scale is folded away


# ---------------------------------------------------------------- f(x) - g(x)


def _operand(name: str, kind: str, d: int, k: int, g: int, draw) -> str:
    if kind == "conv":
        return f"{name} = {_conv(name + '_m', d, k, g, draw)}(x)"
    if kind == "cbn":
        return f"{name} = {name}_m: cbn({d}, {d}, {k}, 1, {g})(x)"
    if kind == "bn_unit":
        return f"{name} = {name}_m: bn_only({d})(x)"
    return f"{name} = {name}_m: batchnorm2d({d})(x)"


@st.composite
def difference_cases(draw):
    d = draw(st.integers(1, 3)) * 2
    g = draw(st.sampled_from([1, d]))
    kinds = [draw(st.sampled_from(["conv", "cbn", "bn_unit", "bn"])) for _ in range(2)]
    if all(kind.startswith("bn") for kind in kinds):
        kinds[draw(st.integers(0, 1))] = "conv"
    a = _operand("a", kinds[0], d, draw(st.sampled_from([1, 3, 5])), g, draw)
    b = _operand("b", kinds[1], d, draw(st.sampled_from([1, 3])), g, draw)
    text = f"  {a}\n  {b}\n  x = a - b\n  act: relu()"
    size = (d, draw(st.integers(3, 6)), draw(st.integers(3, 6)))
    return _spec(f"{d}, H, W", text, UNITS), size


@PROPERTY
@given(difference_cases(), st.integers(0, 2**16))
def test_parallel_difference(workdir, case, seed):
    text, size = case
    deploy = check(workdir, text, size, seed, ["parallel_difference"])
    assert len(params_of(deploy)) == 1 and not ops(deploy) & {"sub", "batchnorm2d"}


# ---------------------------------------------------------------- all together: x + w * (f(x) - g(x))


MIXER = """
block mobileone(d, k, act = true) {
  sum as reparam_conv {
    conv_kxk: cbn(d, d, k, 1, d)
  | conv_scale: cbn(d, d, 1, 1, d)
  | identity: batchnorm2d(d)
  }
  if act {
    act: gelu()
  }
}
"""


@st.composite
def mixer_cases(draw):
    """A RepMixer-like token mixer: x + w * (mixer(x) - norm(x)), written as a residual or as one
    expression, with or without the layer scale; the same mobileone block also appears with an
    activation elsewhere, so whether it is one term depends on the call."""
    d, k = draw(st.integers(1, 4)) * 2, draw(st.sampled_from([3, 5]))
    scale = draw(st.booleans())
    operands = ["m = mixer: mobileone(d, k, act = false)(x)", "n = norm: bn_only(d)(x)"]
    if draw(st.booleans()):
        lines = operands + ["x = m - n"] + (["layer_scale: layer_scale2d(d)"] if scale else [])
        body = "  residual as reparam_conv {\n" + "".join(f"    {line}\n" for line in lines) + "  }"
        key = "mix.reparam_conv"
    else:
        lines = (["gamma = weight([d])"] if scale else []) + operands
        lines.append("x = x + gamma[:, none, none] * (m - n)" if scale else "x = x + (m - n)")
        body = "\n".join(f"  {line}" for line in lines)
        key = "mix"
    blocks = UNITS + MIXER + f"block repmixer(d, k) {{\n{body}\n}}"
    model = f"  stem: mobileone({d}, 3)\n  mix: repmixer({d}, {k})"
    size = (d, draw(st.integers(4, 7)), draw(st.integers(4, 7)))
    return _spec(f"{d}, H, W", model, blocks), size, key, scale


@PROPERTY
@given(mixer_cases(), st.integers(0, 2**16))
def test_repmixer_like_token_mixer_is_one_conv(workdir, case, seed):
    text, size, key, scale = case
    rules = ["parallel_difference", "residual_identity_fold", "parallel_conv_sum"] + ["layer_scale_fold"] * scale
    deploy = check(workdir, text, size, seed, rules, [f"{key}.weight", f"{key}.bias"])
    assert params_of(deploy) == {"stem.reparam_conv", key}


def test_difference_of_unaligned_maps_stays_and_computes_the_same(workdir):
    """Groups differ: nothing fuses, the train form's modules stay, outputs are unchanged."""
    text = _spec("4, H, W", "  a = p: conv2d(4, 4, 3, groups = 4)(x)\n  b = q: conv2d(4, 4, 1)(x)\n  x = a - b", UNITS)
    deploy = check(workdir, text, (4, 6, 6), seed=4)
    assert params_of(deploy) == {"p", "q"} and not deploy.fusion.fired
    why = [(e.rule, e.reason) for e in deploy.fusion.unfused]
    assert why == [("parallel_difference", "`b`: groups differ (1 vs 4)")]


def test_operand_used_twice_is_not_consumed(workdir):
    """`a` feeds the difference and the output: folding it away would lose the second use."""
    text = _spec("4, H, W", "  a = p: conv2d(4, 4, 3)(x)\n  b = q: conv2d(4, 4, 1)(x)\n  y = a - b\n  x = y + a", UNITS)
    path = _write(workdir, text)
    deploy = compile_spec(path, input_size=(4, 5, 5), fuse=True)
    assert params_of(deploy) == {"p", "q"}
    model = instantiate(compile_spec(path, input_size=(4, 5, 5))).double()
    randomize(model, 1)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        assert max_diff(archlang.fuse(model)(x), model(x)) <= 1e-12
