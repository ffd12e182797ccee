"""`archlang diff` opens with prose: FastViT against RepViT reads like a related-work paragraph.

The golden file holds the paragraphs for the two specs' default variants (the README shows them);
the other tests check what the sentences say against the compiled models: the mixers in words
and as the formulas their reparameterized convs were trained as, where SE gates sit, params and
GMACs per stage and in total, and what fusion removes, in the train-form and `--fuse` diffs.
"""

from __future__ import annotations

import json

from oracle import check_golden, spec

import archlang
from archlang.cli import main


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
    assert "Token mixing (stage 3): A `attention`, self-attention (16 heads of 32 channels over 64 tokens)" in flat
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
