"""The documentation is checked: the worked sketches compile, build, run and trace; every
```arch block of docs/language.md parses (complete specs are also built and run, or must fail
with the error the page shows); the generated op table is current; the math ops the sketches
use compute what torch computes; and the two sketches the page calls exact match timm."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import torch

import archlang
from archlang.cli import main
from archlang.compiler import compile_spec
from archlang.errors import ArchError
from archlang.parser import parse
from archlang.program import load, resolve_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC = DOCS / "language.md"
SKETCHES = sorted((DOCS / "sketches").glob("*.arch"))


def _gen_ops():
    spec = importlib.util.spec_from_file_location("gen_ops", DOCS / "gen_ops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------- sketches


@pytest.mark.parametrize("path", SKETCHES, ids=lambda p: p.stem)
def test_sketch_compiles_builds_runs_and_traces(path, tmp_path):
    assert main(["build", str(path), "-o", str(tmp_path / "out.py")]) == 0  # the documented command
    compiled = compile_spec(str(path))  # default (small) variant, 3x224x224, shapes checked
    model = archlang.build(str(path))
    assert sum(p.numel() for p in model.parameters()) == compiled.cost.params
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    out_shape = compiled.graph.node(compiled.graph.output).shape
    assert tuple(y.shape) == (2, *out_shape[1:]) and torch.isfinite(y).all()
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        assert torch.equal(traced(x), y)


@pytest.mark.parametrize("path", SKETCHES, ids=lambda p: p.stem)
def test_sketch_full_size_variants_check(path):
    """The timm-sized variants elaborate and shape-check too (no model is built)."""
    program = load(str(path))
    for name in program.variants:
        size = resolve_settings(program, name, None)[1].get("img_size", 224)
        assert compile_spec(str(path), name, input_size=(3, size, size)).cost.params > 0


@pytest.mark.parametrize("sketch,variant,timm_name,overrides", [
    ("hiera", "tiny", "hiera_tiny_224", {"embed_dim": 16, "num_heads": 2, "stages": [1, 2, 2, 1]}),
    ("eva02", "tiny", "eva02_tiny_patch14_224", {"embed_dim": 128, "num_heads": 2, "depth": 2, "num_classes": 10}),
    ("maxvit", "tiny", "maxvit_tiny_tf_224", {"depths": [1, 1, 1, 1], "num_classes": 10}),
], ids=["hiera", "eva02", "maxvit"])
def test_sketch_matches_timm(sketch, variant, timm_name, overrides):
    """Hiera (mask units as spatial windows), EVA-02 (RoPE) and MaxViT (the tf relative position
    bias, TF 'same' padding) give timm's logits with its weights."""
    import timm

    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    ref = timm.create_model(timm_name, **kw).eval()
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=gen) * 0.2 if v.is_floating_point() else v
             for k, v in ref.state_dict().items()}
    state = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in state.items()}  # BN: var > 0
    ref.load_state_dict(state)
    model = archlang.build(str(DOCS / "sketches" / f"{sketch}.arch"), variant, overrides)
    model.load_state_dict(state)  # strict: the same names and shapes
    x = torch.randn(1, 3, 224, 224, generator=gen)
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max() <= 1e-4


# ---------------------------------------------------------------------------------- language.md

_FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>arch|text)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S)
_CHECK = re.compile(r"<!--\s*check:(?P<what>.*?)-->")


def doc_blocks() -> list[tuple[int, str, str, str, str]]:
    """(line, code, check directive, section, the ```text block right after) of every ```arch
    block in language.md."""
    text = DOC.read_text()
    fences = list(_FENCE.finditer(text))
    out = []
    for k, m in enumerate(fences):
        if m.group("lang") != "arch":
            continue
        indent = len(m.group("indent"))
        code = "\n".join(line[indent:] for line in m.group("body").splitlines()) + "\n"
        before = text[:m.start()].rstrip().splitlines()
        check = _CHECK.search(before[-1]) if before else None
        section = ([line for line in before if line.startswith("## ")] or [""])[-1][3:]
        after = fences[k + 1] if k + 1 < len(fences) else None
        shown = after.group("body") if after is not None and after.group("lang") == "text" else ""
        out.append((text[:m.start()].count("\n") + 1, code, check.group("what") if check else "", section, shown))
    return out


BLOCKS = doc_blocks()


def code_lines(text: str) -> list[str]:
    """Lines without comments and indentation, blank lines dropped."""
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def test_language_md_has_examples():
    assert len(BLOCKS) >= 20 and sum("model {" in code for _, code, *_ in BLOCKS) >= 5


@pytest.mark.parametrize("line,code,check,section,shown", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_doc_example(line, code, check, section, shown, tmp_path):
    path = tmp_path / "doc.arch"
    path.write_text(code)
    os.symlink(ROOT / "specs" / "lib", tmp_path / "lib")  # `import "lib/layers.arch"` works
    try:
        spec = parse(code, str(path))
    except ArchError as file_error:
        try:  # a fragment of statements: it must parse as a model body
            spec = parse("model {\n" + code + "}\n", str(path))
        except ArchError as body_error:
            pytest.fail(f"language.md:{line} parses neither as a file ({file_error.message}) "
                        f"nor as statements ({body_error.message})")
        assert spec.model is not None
        return
    if section.startswith("Worked sketches"):  # excerpts must be what the sketch files say
        lines = code_lines(code)
        sources = [code_lines(p.read_text()) for p in SKETCHES]
        assert any(src[i:i + len(lines)] == lines for src in sources for i in range(len(src))), \
            f"language.md:{line} is not an excerpt of a sketch in docs/sketches"
    if spec.model is None:
        return  # params, variants and blocks: parsing is the check
    size = re.search(r"input\s+(\d+)x(\d+)x(\d+)", check)
    input_size = tuple(int(g) for g in size.groups()) if size else (3, 224, 224)
    expected = re.search(r'error\s+"([^"]*)"', check)
    if expected:
        with pytest.raises(ArchError) as err:
            archlang.build(str(path), input_size=input_size)
        assert expected.group(1) in err.value.message
        if shown:  # the rendered error shown below the spec: message, position and hint
            got = err.value
            assert f"{got.span.line}:{got.span.col}: error: {got.message}" in shown
            assert (f"hint: {got.hint}" in shown) if got.hint else "hint:" not in shown
        return
    model = archlang.build(str(path), input_size=input_size)
    x = torch.randn(2, *input_size)
    with torch.no_grad():
        y = model(x)
        if re.search(r"^\s*(sum|avg)\b", code, re.M):  # the deploy form computes the same function
            assert torch.allclose(archlang.fuse(model)(x), y, atol=1e-5)


def test_op_table_is_current():
    text = DOC.read_text()
    assert _gen_ops().render(text) == text, "docs/language.md is out of date: run python docs/gen_ops.py"


# ---------------------------------------------------------------------------------- math ops

MATH = """
family m
param n = 6
input [B, 4, 6]
model {
  p = arange(x, n)                                        # [6]
  a = stack([sin(p), cos(p), exp(-p)], dim = -1)           # [6, 3]
  b = repeat_interleave(a, 2, dim = 0)                     # [12, 3]
  x = rearrange(x, "b c (n one) -> b c n one", one = 1) * a  # [B, 4, 6, 3]
  x = cat([x, x], dim = 2) + b
}
"""


def test_math_ops_shapes_and_values(tmp_path):
    path = tmp_path / "m.arch"
    path.write_text(MATH)
    compiled = compile_spec(str(path), input_size=(4, 6))
    assert tuple(compiled.graph.node(compiled.graph.output).shape)[1:] == (4, 12, 3)
    model = archlang.build(str(path), input_size=(4, 6))
    x = torch.randn(2, 4, 6)
    p = torch.arange(6, dtype=torch.float32)
    a = torch.stack([p.sin(), p.cos(), (-p).exp()], dim=-1)
    want = torch.cat([x[..., None] * a] * 2, dim=2) + a.repeat_interleave(2, dim=0)
    with torch.no_grad():
        assert torch.allclose(model(x), want)
        assert torch.allclose(torch.fx.symbolic_trace(model)(x), want)
    assert "torch.arange(self.n, device=x.device, dtype=x.dtype)" in compiled.source


def test_math_op_errors(tmp_path):
    path = tmp_path / "m.arch"
    path.write_text("input [B, 4]\nmodel {\n  x = stack([x, x[:, :2]])\n}\n")
    with pytest.raises(ArchError, match="stack needs tensors of one shape"):
        compile_spec(str(path), input_size=(4,))
    path.write_text("input [B, 4]\nmodel {\n  x = repeat_interleave(x, 2, dim = 0)\n}\n")
    with pytest.raises(ArchError, match="cannot repeat along the batch axis"):
        compile_spec(str(path), input_size=(4,))


def test_internals_references_exist():
    """docs/internals.md names the files each kind of change touches: they must exist."""
    text = (DOCS / "internals.md").read_text()
    paths = set(re.findall(r"`((?:archlang|passes|specs|docs|tests)/[\w/.<>-]*)`", text))
    assert len(paths) > 15
    for path in paths:
        if "<" in path:  # a pattern such as specs/<family>.arch: its folder must exist
            path = path.rsplit("/", 1)[0]
        assert (ROOT / path).exists(), path
