"""`archlang diff` opens with prose: FastViT against RepViT reads like a related-work paragraph.

The golden file holds the paragraphs for the two specs' default variants (the README shows them);
the other tests check what the sentences say against the compiled models: the mixers in words
and as the formulas their reparameterized convs were trained as, where SE gates sit, params and
GMACs per stage and in total, and what fusion removes, in the train-form and `--fuse` diffs.
"""

from __future__ import annotations

import json

from oracle import ROOT, check_golden, spec

import archlang
from archlang.cli import main

DOCS_HIERA = ROOT / "docs" / "sketches" / "hiera.arch"


def prose(capsys, *args) -> tuple[str, str]:
    """(the paragraphs as printed, the same joined into one line each)."""
    code, out, err = _run(capsys, *args)
    assert code == 1 and err == ""
    head, _, rest = out.partition("\n\n")
    text = rest.split("\nstem ")[0].rstrip("\n") + "\n"
    return text, " ".join(line for line in text.splitlines() if line).replace("  ", " ")


def _run(capsys, *args):
    code = main(["diff", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fastvit_vs_repvit_golden(capsys):
    text, flat = prose(capsys, spec("fastvit"), spec("repvit"))
    check_golden("diff_fastvit_repvit.txt", text)
    assert max(len(line) for line in text.splitlines()) <= 96


def test_fastvit_t8_vs_repvit_m0_9_says_what_each_stage_is(capsys):
    _, flat = prose(capsys, spec("fastvit") + ":t8", spec("repvit") + ":m0_9")
    a, b = (archlang.compile_spec(spec(s), v) for s, v in (("fastvit", "t8"), ("repvit", "m0_9")))
    for phrase in (
        "fastvit:t8 (A) and repvit:m0_9 (B), train forms.",
        f"A has {a.cost.params / 1e6:.2f} M parameters and costs {a.cost.macs / 1e9:.3f} GMACs at 3x256x256",
        f"B has {b.cost.params / 1e6:.2f} M and {b.cost.macs / 1e9:.3f} GMACs at 3x224x224",
        "Token mixing (every stage): A `repmixer`, a 3x3 depthwise conv, trained as "
        "x + γ·(BN(x) + BN(dwconv3x3(x)) + BN(dwconv1x1(x)) − BN(x)); "
        "B `repvgg_dw`, a 3x3 depthwise conv, trained as BN(x + BN(dwconv3x3(x)) + dwconv1x1(x)).",
        "Channel mixing (every stage): A `conv_mlp`, a 7x7 depthwise conv, batchnorm2d, a 3x MLP of 1x1 convs; "
        "B `repvit_mlp`, a 2x MLP of 1x1 convs, its BatchNorms folded.",
        "Downsampling (stages 1-3): A `patch_embed`, a 7x7 stride-2 depthwise conv with channel multiplier 2",
        "Gates (every stage): A none; B `squeeze_excite` after the token mixer in half of the blocks.",
        "Stage 2: A runs 4 blocks of 192 channels at 16x16 (1/16), B 14 blocks of 192 channels at 14x14 (1/16).",
        "`final_conv` (only in A): `mobileone`: a 3x3 depthwise conv with channel multiplier 2",
        "gated by `squeeze_excite`",
    ):
        assert phrase in flat, phrase
    stage = next(r for r in a.cost.rows if r.name == "stages.2")
    assert f"Cost: A {stage.params / 1e6:.2f} M parameters and {stage.macs / 1e9:.3f} GMACs" in flat


def test_fused_diff_compares_deploy_forms(capsys):
    _, flat = prose(capsys, spec("fastvit") + ":sa12", spec("repvit") + ":m0_9", "--fuse")
    a = archlang.compile_spec(spec("fastvit"), "sa12", fuse=True)
    assert "deploy (fused) forms" in flat
    assert f"A has {a.cost.params / 1e6:.2f} M parameters" in flat
    assert "Token mixing (stage 3): A `attention`, self-attention over 64 tokens, 32 channels per head" in flat
    assert "Before the blocks (stage 3): A `rep_cpe`, a 7x7 depthwise conv, trained as x + dwconv7x7(x)" in flat
    removed = a.unfused.cost.params - a.cost.params
    assert f"Compared to the train forms, fusion removes {removed / 1e3:.1f} k parameters" in flat


def test_json_carries_the_paragraphs(capsys):
    args = (spec("fastvit") + ":t8", spec("repvit") + ":m0_9")
    text, _ = prose(capsys, *args)
    code, out, _ = _run(capsys, *args, "--json")
    data = json.loads(out)
    assert "\n\n".join(data["summary"]) + "\n" == text
    assert data["input"] == [3, 256, 256] and data["input_b"] == [3, 224, 224]


def test_nothing_to_fuse_is_said_once(capsys):
    _, flat = prose(capsys, spec("convnext") + ":atto", spec("convnext") + ":femto")
    assert "trained as" not in flat and "Fusion removes" not in flat
    assert flat.endswith("fusion leaves convnext:atto as it is, and leaves convnext:femto as it is.")
    assert "Token mixing (every stage): both a 7x7 depthwise conv." in flat


# ---------------------------------------------------------------- attention in words


def test_maxvit_tf_vs_rw_says_padding_qkv_layout_bias_head_and_eps(capsys):
    """The differences between the TF port and Ross Wightman's MaxViT, each said in words."""
    _, flat = prose(capsys, spec("maxvit") + ":tiny_tf", spec("maxvit") + ":tiny_rw")
    tf = archlang.compile_spec(spec("maxvit"), "tiny_tf")
    asym = [n for n in tf.graph.nodes() if n.attr("padding") == "same" and
            (n.attr("stride") or n.attr("kernel_size")) != 1]  # the stem's conv1, per stage a dw conv and a pool
    assert len(asym) == 9
    for phrase in (
        "Their eps: A batchnorm2d 0.001, layernorm 1e-05, layernorm2d 1e-05; "
        "B batchnorm2d 1e-05, layernorm 1e-06, layernorm2d 1e-06.",
        f"Padding: A pads {len(asym)} strided or even-sized convs and pools TensorFlow-style",
        "B pads symmetrically (k // 2, PyTorch's).",
        "Attention (stages 0-2): both in windows of 7x7 tokens and on a grid of 7x7 tokens spread over the map.",
        "q, k, v (every stage): A [3, heads, head_dim] of one projection (q, k, v each a contiguous block); "
        "B [heads, 3, head_dim] of one projection (q, k, v interleaved per head).",
        "Logit bias (every stage): A `rel_pos_bias`, a learned [heads, 13, 13] table, read through 2 einsums "
        "with computed [7, 7, 13] lookups; B `rel_pos_bias`, a learned [169, heads] table, indexed by a "
        "computed [49, 49] index.",
        "Head: A: a global pool (adaptive_avgpool2d), layernorm2d, a linear to 512, tanh, a linear to 1000; "
        "B: layernorm2d, a global pool (adaptive_avgpool2d), a linear to 1000.",
        "Stem: A: a 3x3 stride-2 conv, gelu(tanh), a 3x3 conv, its BatchNorms folded; "
        "B: a 3x3 stride-2 conv, silu, a 3x3 conv, its BatchNorms folded.",
        "Token mixing (every stage): both a 3x3 depthwise conv, its BatchNorms folded (strided where the stage "
        "downsamples) and `attention`, self-attention over 49 tokens, 32 channels per head.",
    ):
        assert phrase in flat, phrase


def test_maxvit_rmlp_bias_is_an_mlp(capsys):
    _, flat = prose(capsys, spec("maxvit") + ":tiny_rw_256", spec("maxvit") + ":rmlp_tiny_rw")
    assert ("Logit bias (every stage): A `rel_pos_bias`, a learned [225, heads] table, indexed by a computed "
            "[64, 64] index; B `rel_pos_bias`, an MLP of 2 linears on a computed [15, 15, 2] tensor, indexed by "
            "a computed [64, 64] index.") in flat
    assert "Padding:" not in flat and "Their eps" not in flat  # both pad and normalize alike


# Not a family: windowed attention with three q/k/v layouts, three biases and both partitions.
WINDOWS = """family windows
param layout = "three_first"
param bias_kind = "none"
param grid = false
param heads = 2
param rotate = false
input [B, 3, 32, 32]

block attention(dim) {
  if layout == "separate" {
    q = q_proj: linear(dim, dim)(x)
    k = k_proj: linear(dim, dim)(x)
    v = v_proj: linear(dim, dim)(x)
    q = rearrange(q, "b n (h d) -> b h n d", h = heads)
    k = rearrange(k, "b n (h d) -> b h n d", h = heads)
    v = rearrange(v, "b n (h d) -> b h n d", h = heads)
  } elif layout == "head_first" {
    qkv: linear(dim, 3 * dim)
    q, k, v = rearrange(x, "b n (h three d) -> three b h n d", three = 3, h = heads)
  } else {
    qkv: linear(dim, 3 * dim)
    q, k, v = rearrange(x, "b n (three h d) -> three b h n d", three = 3, h = heads)
  }
  if rotate {   # a RoPE-like mix of q with a permutation of itself: still one projection's q
    q = q * 0.5 + flip(q, [-1]) * 0.5
    k = k * 0.5 + flip(k, [-1]) * 0.5
  }
  a = q @ transpose(k, -2, -1)
  if bias_kind == "table" {
    table = weight([heads, 16, 16], init = "zeros")
    a = a + table
  } elif bias_kind == "gathered" {
    i = arange(16)
    index = buffer(i[:, none] * 0 + i[none], persistent = false)
    table = weight([16, heads], init = "zeros")
    a = a + permute(table[index], [2, 0, 1])
  }
  x = rearrange(softmax(a, dim = -1) @ v, "b h n d -> b n (h d)")
}

model {
  @stem stem: conv2d(3, 16, 4, stride = 4, padding = 0)
  @stage stage: {
    rearrange("b c h w -> b h w c")
    if grid {
      rearrange("b (p nh) (q nw) c -> (b nh nw) (p q) c", p = 4, q = 4)
    } else {
      rearrange("b (nh p) (nw q) c -> (b nh nw) (p q) c", p = 4, q = 4)
    }
    @token_mixer attn: attention(16)
  }
  @head head: {
    x = mean(x, [1])
    fc: linear(16, 10)
  }
}
"""


def test_hiera_mask_units_are_windows_cut_after_the_projection():
    """Hiera projects the whole map, then cuts mask units (and q, k, v) in one rearrange; the
    token axis composed through it and the next reads as windows. A stage whose one window is
    the whole map (global attention) is not called windowed."""
    from archlang.diff.attention import phrases

    c = archlang.compile_spec(str(DOCS_HIERA))
    words = [phrases(c.graph, [n for n in c.graph.nodes() if n.scope.startswith(f"blocks.{i}.")]).get("Attention")
             for i in range(len(c.graph.settings["stages"]))]
    assert words[0] == "in windows of 8x8 tokens"
    assert "windows" not in (words[-1] or "")
    tiny = archlang.compile_spec(spec("hiera"), "tiny")  # stages [1, 2, 7, 2]: block 3 pools q into stage 2
    pooled = phrases(tiny.graph, [n for n in tiny.graph.nodes() if n.scope.startswith("blocks.3.")])
    assert pooled["Attention"] == "in windows of 4x4 tokens"  # read from the keys, not the pooled queries


def test_attention_words_of_a_spec_outside_the_families(tmp_path):
    from archlang.diff.attention import phrases

    path = tmp_path / "windows.arch"
    path.write_text(WINDOWS)

    def words(**settings) -> dict:
        c = archlang.compile_spec(str(path), None, settings)
        return phrases(c.graph, list(c.graph.nodes()))

    base = words()
    assert base["Attention"] == "in windows of 4x4 tokens"
    assert base["q, k, v"] == "[3, heads, head_dim] of one projection (q, k, v each a contiguous block)"
    assert base["Logit bias"] == ""
    assert words(grid=True)["Attention"] == "on a grid of 4x4 tokens spread over the map"
    assert words(layout="head_first")["q, k, v"].startswith("[heads, 3, head_dim]")
    assert words(layout="separate")["q, k, v"] == "separate q, k and v projections"
    assert words(rotate=True)["q, k, v"] == base["q, k, v"]
    assert words(rotate=True, layout="separate")["q, k, v"] == "separate q, k and v projections"
    assert words(bias_kind="table")["Logit bias"] == "a learned [heads, 16, 16] table"
    gathered = words(bias_kind="gathered")["Logit bias"]
    assert gathered == "a learned [16, heads] table, indexed by a computed [16, 16] index"
    assert words(heads=4, bias_kind="table")["Logit bias"] == "a learned [heads, 16, 16] table"


def test_a_mixer_fusion_folded_into_its_residual_is_said_from_the_enclosing_layer(capsys):
    """EfficientViT-MSRA's depthwise unit `dw0: residual { m: conv_norm }` fuses into one conv at
    `dw0`: the token mixer (`dw0.m`) is read there, with its train-form formula."""
    _, flat = prose(capsys, spec("efficientvit_msra") + ":m0", spec("repvit") + ":m0_9")
    assert "A `conv_norm`, a 3x3 depthwise conv, trained as x + BN(dwconv3x3(x))" in flat
    assert "no layers" not in flat and "linear(x)" not in flat and "W(x)" not in flat  # the downsample too
