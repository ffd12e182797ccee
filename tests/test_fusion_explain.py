"""`archlang build --fuse --explain`: golden text for RepViT (everything fuses) and for a spec
whose candidates cannot fuse (tests/golden/explain_unfused.arch, one reason each); the rule table
is complete and documented."""

from __future__ import annotations

from pathlib import Path

from oracle import GOLDEN, ROOT, check_golden, spec

from archlang import cli
from archlang.compiler import compile_spec
from archlang.passes.fusion_explain import format_explain
from archlang.passes.fusion_rules import RULES

UNFUSED = GOLDEN / "explain_unfused.arch"


def test_explain_repvit_m0_9():
    check_golden("explain_repvit_m0_9.txt", format_explain(compile_spec(spec("repvit"), "m0_9", fuse=True)))


def test_explain_a_spec_whose_candidates_do_not_fuse():
    compiled = compile_spec(str(UNFUSED), input_size=(4, 8, 8), fuse=True)
    text = format_explain(compiled)
    check_golden("explain_unfused.txt", text)
    assert "branch 2: stride differs (2 vs 1)" in text  # the sum that cannot fuse
    assert "branch 2: it is marked @unfused" in text  # @unfused keeps a branch: its sum cannot fuse
    assert len(compiled.fusion.unfused) == 9


def test_cli_explain_prints_after_the_summary(tmp_path, capsys):
    code = cli.main(["build", str(UNFUSED), "--input", "4x8x8", "--explain", "-o", str(tmp_path / "u.py")])
    out = capsys.readouterr().out
    assert code == 0 and (tmp_path / "u.py").is_file()
    assert "fused (deploy) form" in out  # --explain implies --fuse
    assert out.index("GFLOPs") < out.index("did not fuse:") < out.index("wrote")


def test_every_rule_is_documented():
    doc = (ROOT / "docs" / "fusion.md").read_text()
    for rule in RULES:
        assert f"`{rule.name}`" in doc, rule.name
    assert "collapse_block" in doc
    assert Path(ROOT / "passes" / "fusion_rules.py").is_file()


def test_explain_says_when_there_is_nothing_to_fuse(tmp_path):
    path = tmp_path / "plain.arch"
    path.write_text("input [B, 3, H, W]\nmodel {\n  c: conv2d(3, 8, 3)\n  act: relu()\n}\n")
    text = format_explain(compile_spec(str(path), fuse=True))
    assert text == "fusion of plain: nothing to fuse (no branch sums, conv/BN pairs or other candidates)\n"
    deit = format_explain(compile_spec(spec("deit"), "tiny", fuse=True))  # only its dropouts go
    assert deit.startswith("fusion of deit:tiny: 1 rule(s) fired") and "\neval_identity_drop: " in deit


