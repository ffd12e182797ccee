"""The command line: what a user sees from `archlang build` (summary, JSON, IR dump, files)."""

from __future__ import annotations

import json

import pytest
from oracle import run_cli as run
from oracle import spec, timm_model

from archlang.cli import main


def test_build_writes_module_and_prints_summary(tmp_path, capsys):
    out_file = tmp_path / "cnx.py"
    code, out, err = run(capsys, "build", spec("convnext"), "-o", str(out_file))
    assert code == 0 and err == ""
    assert out_file.read_text().startswith('"""convnext (tiny)')
    assert "stages.3  stage  [B, 768, 7, 7]" in out
    assert f"{sum(p.numel() for p in timm_model('convnext_tiny', meta=True).parameters()):,}" in out
    assert f"wrote {out_file}" in out


def test_default_output_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "build", spec("repvit"), "--fuse")
    assert code == 0
    assert (tmp_path / "build" / "repvit_m1_1_fused.py").is_file()


def test_json_summary(tmp_path, capsys):
    code, out, _ = run(capsys, "build", spec("deit"), "--variant", "deit_small_distilled_patch16_224",
                       "--json", "-o", str(tmp_path / "d.py"))
    data = json.loads(out)
    assert code == 0
    assert data["variant"] == "small_distilled"
    assert data["params"] == sum(p.numel() for p in timm_model("deit_small_distilled_patch16_224",
                                                               meta=True).parameters())
    assert data["flops"] == 2 * data["macs"]
    assert sum(s["params"] for s in data["stages"]) == data["params"]
    assert sum(s["macs"] for s in data["stages"]) == data["macs"]
    assert [s["name"] for s in data["stages"]][:3] == ["patch_embed", "blocks", "norm"]


def test_overrides_and_input_size(tmp_path, capsys):
    code, out, _ = run(capsys, "build", spec("convnext"), "--variant", "atto", "--set", "num_classes=10",
                       "--set", "depths=[1, 1, 2, 1]", "--input", "3x160x160", "--json", "-o", str(tmp_path / "a.py"))
    data = json.loads(out)
    assert data["input"] == [3, 160, 160]
    assert data["stages"][-1]["output"] == "[B, 10]"
    assert data["stages"][-2]["output"] == "[B, 320, 5, 5]"


def test_dump_ir_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "build", spec("repvit"), "--variant", "m0_9", "--fuse", "--dump-ir")
    assert code == 0 and not (tmp_path / "build").exists()
    assert out.startswith("graph repvit[m0_9]\n")
    assert "@stages.0.blocks.0.token_mixer  # specs/repvit.arch:" in out
    assert "batchnorm2d" not in out  # every BN was folded away
    assert out.rstrip().splitlines()[-1].startswith("return %")


def test_fused_summary_is_smaller(tmp_path, capsys):
    _, plain, _ = run(capsys, "build", spec("repvit"), "--json", "-o", str(tmp_path / "a.py"))
    _, fused, _ = run(capsys, "build", spec("repvit"), "--json", "--fuse", "-o", str(tmp_path / "b.py"))
    assert json.loads(fused)["params"] < json.loads(plain)["params"]
    assert json.loads(fused)["fused"] is True


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"]])
def test_help_is_complete(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for word in (["build"] if args == ["--help"] else
                 ["--variant", "--set", "--input", "--fuse", "--output", "--dump-ir", "--json", "examples:"]):
        assert word in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: archlang" in capsys.readouterr().out


@pytest.mark.parametrize("flag", [["--help-variants"], ["--variant", "?"]])
def test_variant_list(tmp_path, capsys, monkeypatch, flag):
    """--help-variants (or --variant ?) lists every variant from the spec alone and writes nothing."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "build", spec("deit"), *flag)
    assert code == 0 and err == "" and not (tmp_path / "build").exists()
    lines = out.splitlines()
    assert lines[0] == f"deit: 6 variants in {spec('deit')} (default tiny)"
    assert lines[2].split() == ["variant", "aka", "input", "sets"]
    assert lines[3].split() == ["tiny", "*", "deit_tiny_patch16_224", "3x224x224", "embed_dim=192;", "num_heads=3"]
    assert "tiny_distilled   deit_tiny_distilled_patch16_224   3x224x224  extends tiny; distilled=true" in out


def test_variant_list_shows_run_time_sizes_and_bad_specs_fail(tmp_path, capsys):
    code, out, _ = run(capsys, "viz", spec("convnext"), "--help-variants")
    assert code == 0 and "  atto      convnext_atto     3xHxW  depths=[2, 2, 6, 2];" in out
    assert "A name in the input is a run-time size" in out
    bad = tmp_path / "bad.arch"
    bad.write_text("param w = 8\nvariant a extends b { w = 4 }\nmodel { pass }\n")
    code, _, err = run(capsys, "build", str(bad), "--help-variants")
    assert code == 2 and "variant 'a' extends unknown variant 'b'" in err and "bad.arch:2:" in err
