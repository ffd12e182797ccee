"""Emitted source: golden text, determinism, standalone (torch only) and fx-traceable."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from oracle import ROOT, check_golden, spec

import archlang
from archlang.compiler import compile_spec


def test_golden_source_convnext_v2_atto():
    check_golden("convnext_v2_atto.py", compile_spec(spec("convnext"), "v2_atto").source)


def test_golden_source_repvit_fused():
    check_golden("repvit_m0_9_fused.py", compile_spec(spec("repvit"), "m0_9", fuse=True).source)


def test_golden_ir_dump_deit():
    c = compile_spec(spec("deit"), "tiny_distilled", {"depth": 1})
    check_golden("deit_tiny_distilled_depth1.ir", c.graph.dump(c.program.where))


@pytest.mark.parametrize("family,variant", [("convnext", "nano"), ("deit", "small_distilled"), ("repvit", "m1_0")])
def test_two_builds_give_identical_bytes(family, variant):
    a = compile_spec(spec(family), variant).source
    b = compile_spec(spec(family), variant).source
    assert a == b


def test_source_does_not_depend_on_working_directory(tmp_path, monkeypatch):
    a = compile_spec(spec("repvit"), "m0_9").source
    monkeypatch.chdir(tmp_path)
    b = compile_spec(os.path.relpath(spec("repvit"), tmp_path), "m0_9").source
    assert a == b


@pytest.mark.parametrize("family,variant,fuse", [("convnext", "v2_pico", False), ("deit", "tiny", False),
                                                 ("repvit", "m0_9", True)])
def test_emitted_module_is_standalone(tmp_path, family, variant, fuse):
    """Imports only torch, and runs in a fresh interpreter where archlang cannot be imported."""
    source = compile_spec(spec(family), variant, fuse=fuse).source
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"torch", "math"}
    path = tmp_path / "model.py"
    path.write_text(source)
    code = ("import sys; sys.modules['archlang'] = None; import runpy, torch; "
            f"m = runpy.run_path({str(path)!r})['create_model']().eval(); "
            "print(tuple(m(torch.randn(1, 3, 224, 224)).shape))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == "(1, 1000)"


def test_provenance_comments_point_at_spec_lines():
    source = compile_spec(spec("convnext"), "tiny").source
    lines = (ROOT / "specs" / "convnext.arch").read_text().splitlines()
    for line in source.splitlines():
        if "# specs/convnext.arch:" in line and "self.conv_dw = " in line:
            number = int(line.rsplit(":", 1)[1].split()[0])
            assert "conv_dw:" in lines[number - 1]
            break
    else:
        raise AssertionError("no provenance comment for conv_dw")


def test_create_model_accepts_overrides():
    model = archlang.build(spec("convnext"), "atto")
    module = sys.modules[type(model).__module__]
    small = module.create_model(num_classes=3, depths=(1, 1, 1, 1)).eval()
    assert small(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_fx_trace_matches_eager():
    model = archlang.build(spec("repvit"), "m0_9", {"depth": [1, 1, 1, 1]})
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(traced(x), model(x))


LETS = """
family lets
param widths = [4, 8, 12]
input [B, 3, H, W]

model {
  let total = [3]
  for i in 0..len(widths) {
    let total = total + [total[-1] + widths[i]]
  }
  let scale = 1
  for i in 0..3 {
    let scale = scale * 2
    x = x * scale
  }
  proj: conv2d(3, total[-1], 1)
}
"""


def test_lets_forward_does_not_read_stay_out_of_forward(tmp_path):
    """Lets bound again in a loop are recomputed in forward only where forward reads them: the
    loop accumulating `total` (a module size) is __init__'s alone, and `widths`, read only there,
    is not stored; `scale`, which forward multiplies by, is recomputed as before. Values against
    plain torch."""
    path = tmp_path / "lets.arch"
    path.write_text(LETS)
    source = compile_spec(str(path), input_size=(3, 8, 8)).source
    forward = source.split("def forward")[1]
    assert "total" not in forward and "scale = scale * 2" in forward
    assert "self.widths" not in source and "total = total + (total[-1] + widths[i],)" in source
    model = archlang.build(str(path), input_size=(3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    assert model.proj.weight.shape == (27, 3, 1, 1)
    with torch.no_grad():
        assert torch.equal(model(x), F.conv2d(x * 2 * 4 * 8, model.proj.weight, model.proj.bias))
