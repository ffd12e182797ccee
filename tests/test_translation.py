"""Translation validation: every build's emitted module is its IR, node for node (torch.fx on meta
tensors, archlang/validate.py), and owns the IR's tensors (the check `archlang build` always runs).
A deliberately broken emitter must fail validation with a message naming the IR node and its
spec line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from oracle import spec

from archlang import pycode as P
from archlang.cli import main
from archlang.compiler import compile_spec, verify
from archlang.ops import OPS
from archlang.program import load
from archlang.validate import LAYOUT_TARGETS, TranslationError, call_chain, module_form

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(str(p) for p in (ROOT / "specs").glob("*.arch"))
SKETCHES = sorted(str(p) for p in (ROOT / "docs" / "sketches").glob("*.arch"))
FUSED = {"repvit", "efficientvit_msra"}  # specs whose deploy form is checked too


def every_build():
    for path in SPECS:
        program = load(path)
        for variant in program.variants:
            for fuse in (False, True) if program.family in FUSED else (False,):
                yield pytest.param(path, variant, fuse, id=f"{program.family}:{variant}{':fused' * fuse}")


@pytest.mark.parametrize("path,variant,fuse", list(every_build()))
def test_every_variant_is_its_ir(path, variant, fuse):
    verify(compile_spec(path, variant, fuse=fuse), full=True)


@pytest.mark.parametrize("fuse", [False, True], ids=["train", "fused"])
@pytest.mark.parametrize("path", SKETCHES, ids=lambda p: Path(p).stem)
def test_sketches_are_their_ir(path, fuse):
    verify(compile_spec(path, fuse=fuse), full=True)


def test_language_constructs_are_their_ir(tmp_path):
    """Branch sums and averages, chunk, unbind, cat, indexing, a shortcut branch, a return."""
    path = tmp_path / "t.arch"
    path.write_text(CONSTRUCTS)
    verify(compile_spec(str(path), input_size=(3, 32, 32)), full=True)


CONSTRUCTS = """
family constructs
input [B, 3, H, W]
block down(cin, cout) {
  residual { a: conv2d(cin, cout, 3, stride = 2) } shortcut { pool: avgpool2d(2); proj: conv2d(cin, cout, 1) }
}
model {
  sum { b1: conv2d(3, 8, 3) | b2: conv2d(3, 8, 1) | b3: conv2d(3, 8, 1) }
  avg { c1: conv2d(8, 8, 1) | identity() }
  d: down(8, 16)
  y = rearrange(x, "b c h w -> b (h w) c")
  p, q = unbind(rearrange(y, "b n (two c) -> two b n c", two = 2), 0)
  s = softmax(p @ transpose(q, -2, -1), dim = -1)
  x = cat([s @ q, p], dim = 2)
  x = mean(x, 1)
  u, v = chunk(x, 2, dim = 1)
  return u * v + u * 0.5
}
"""


# ---------------------------------------------------------------------------- broken emitters
def where(compiled, op: str) -> str:
    """How the first IR node of `op` is named in a validation message."""
    n = next(n for n in compiled.graph.nodes() if n.op == op)
    return f"IR %{n.id} {op} @{n.path or '<top>'} ({compiled.program.where(n.span)})"


def broken(monkeypatch, op: str, **rules):
    monkeypatch.setitem(OPS, op, dataclasses.replace(OPS[op], **rules))


def validation_error(compiled) -> str:
    with pytest.raises(TranslationError) as err:
        verify(compiled, full=True)
    return str(err.value)


def test_gelu_emitted_as_relu_is_caught(monkeypatch):
    relu = OPS["relu"]
    broken(monkeypatch, "gelu", init=lambda a: relu.init({}), call=lambda a, ins: relu.call({}, ins))
    c = compile_spec(spec("repvit"), "m0_9", {"depth": [1, 1, 1, 1]})
    message = validation_error(c)
    assert f"{where(c, 'gelu')} differs: the IR has call_module:GELU 'stem.act1'" in message
    assert "the module has call_module:ReLU 'stem.act1' -> [2, 24, 112, 112]" in message
    assert "emitted: x = self.act1(x)  # specs/repvit.arch:" in message
    m = compile_spec(SKETCHES[-1])  # maxvit: gelu as a function inside a block
    assert "differs: the IR has call_function:gelu" in validation_error(m)


def test_wrong_conv_stride_is_caught_at_the_conv(monkeypatch):
    conv = OPS["conv2d"]
    broken(monkeypatch, "conv2d", init=lambda a: conv.init({**a, "stride": P.lit(1)}))
    c = compile_spec(spec("convnext"), "atto")
    message = validation_error(c)
    first = message.splitlines()[1]
    assert first.startswith(f"  {where(c, 'conv2d')} is built with other arguments: stride: IR 4, module (1, 1)")
    assert f"{where(c, 'conv2d')} has another output shape: the IR has call_module:Conv2d 'stem.0' -> " \
           "[2, 40, 56, 56], the module has call_module:Conv2d 'stem.0' -> [2, 40, 221, 221]" in message


def test_wrong_norm_eps_is_caught(monkeypatch):
    ln = OPS["layernorm"]
    broken(monkeypatch, "layernorm", init=lambda a: ln.init({**a, "eps": P.lit(1e-5)}))
    c = compile_spec(spec("deit"), "tiny", {"depth": 1})
    assert f"{where(c, 'layernorm')} is built with other arguments: eps: IR 1e-06, module 1e-05" in \
        validation_error(c)


def mutated(compiled, old: str, new: str):
    """The same build with its emitted source edited (an emitter bug, made by hand)."""
    assert old in compiled.source
    compiled.__dict__["source"] = compiled.source.replace(old, new, 1)
    return compiled


def test_dropped_residual_add_is_caught():
    c = mutated(compile_spec(spec("deit"), "tiny", {"depth": 2}), "x = x + shortcut", "x = x")
    message = validation_error(c)
    add = [n for n in c.graph.nodes() if n.op == "add"][-2]  # the last block's attention residual
    assert f"IR %{add.id} add @blocks.1 ({c.program.where(add.span)}) differs: the IR has " \
           "call_function:add -> [2, 197, 192] from 2 inputs, the module has call_module:DropPath " \
           "'blocks.1.drop_path1' -> [2, 197, 192] from 1 input" in message


SHARED = """
family shared
input [B, 8, H, W]
model {
  y = a: conv2d(8, 8, 1)(x)
  x = y * y
}
"""


@pytest.mark.parametrize("old,new,expected", [
    ("x = y * y", "x = y * self.a(x)", "is computed once in one and more than once in the other"),
    ("x = y * y", "x = y * y\n        _unused = torch.sigmoid(x)",
     "the module computes unused values that differ: call_function:sigmoid -> [2, 8, 16, 16]"),
    ("x = y * y", "x = y + y", "differs: the IR has call_function:mul -> [2, 8, 16, 16], "
                               "the module has call_function:add"),
], ids=["sharing", "dead-code", "operator"])
def test_other_mismatches_are_named(tmp_path, old, new, expected):
    path = tmp_path / "t.arch"
    path.write_text(SHARED)
    assert expected in validation_error(mutated(compile_spec(str(path), input_size=(8, 16, 16)), old, new))


def test_a_module_that_cannot_run_is_caught():
    c = mutated(compile_spec(SKETCHES[0]), "x[:, :, :1], t", "x[:, :, :2], t")  # eva02: one token too many
    message = validation_error(c)
    assert message.startswith("the emitted module of eva02:nano_sketch fails on the IR's input [2, 3, 224, 224]")
    assert "emitted: " in message and "# sketches/eva02.arch:" in message


# ------------------------------------------------------------------ the tensor check (always on)
def test_tensor_check_needs_no_weights_and_names_the_tensor():
    c = compile_spec(SKETCHES[0])
    verify(c)  # meta device: nothing allocated
    broken_c = mutated(compile_spec(SKETCHES[0]), ", persistent=False)", ")")
    with pytest.raises(AssertionError, match=r"buffer blocks\.0\.attn\.k_bias: IR absent, module \[64\]; "
                                             r".*non-persistent buffer blocks\.0\.attn\.k_bias: IR \[64\], "
                                             r"module absent"):
        verify(broken_c)


def test_tensor_check_catches_a_wrong_kernel(monkeypatch):
    conv = OPS["conv2d"]
    broken(monkeypatch, "conv2d", init=lambda a: conv.init({**a, "kernel_size": P.lit(1)}))
    with pytest.raises(AssertionError, match=r"parameter stages\.0\.blocks\.0\.conv_dw\.weight: IR \[40, 1, 7, 7\], "
                                             r"module \[40, 1, 1, 1\]; .* \(and 11 more\)"):
        verify(compile_spec(spec("convnext"), "atto"))


# ------------------------------------------------------------------------------ the command line
SMALL = ["--variant", "m0_9", "--set", "depth=[1, 1, 1, 1]"]


def test_build_checks_tensors_always_and_validates_on_request(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.py"
    assert main(["build", spec("repvit"), *SMALL, "--validate", "-o", str(out)]) == 0
    assert out.is_file()
    relu = OPS["relu"]
    broken(monkeypatch, "gelu", init=lambda a: relu.init({}), call=lambda a, ins: relu.call({}, ins))
    bad = tmp_path / "bad.py"
    assert main(["build", spec("repvit"), *SMALL, "-o", str(bad)]) == 0  # same tensors
    assert main(["build", spec("repvit"), *SMALL, "--validate", "-o", str(tmp_path / "x.py")]) == 70
    assert "does not compute the IR of repvit:m0_9" in capsys.readouterr().err
    assert not (tmp_path / "x.py").exists()
    monkeypatch.setenv("ARCHLANG_DEBUG", "1")
    with pytest.raises(TranslationError):
        main(["build", spec("repvit"), *SMALL, "-o", str(tmp_path / "y.py")])


# ------------------------------------------------------------------------------ the op table
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_declares_its_fx_form(name):
    op = OPS[name]
    if op.has("identity"):
        assert op.fx == ()
        return
    if op.kind in ("module", "act"):
        assert module_form(op), "a module op names its nn.Module class"
    if op.kind != "module":
        assert call_chain(op), "a functional op names the fx nodes it becomes"
    if not op.has("reshape"):
        assert not set(call_chain(op)) & LAYOUT_TARGETS, "a computing op must not look like a layout op"
