"""Invalid inputs: every user mistake is reported at its exact `file:line:col`, with the source
line, a caret under the offending text, the message and a hint; the CLI exits with status 2,
prints no traceback and leaves no output file behind.

Each case is a tiny spec (or command-line arguments). The expected position is found in the
text the case writes: `at` is the text the caret starts at (its `nth` occurrence) and the caret
is `width` long (default: `len(at)`), so the table stays readable while asserting exact values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import archlang
from archlang.cli import main

ROOT = Path(__file__).resolve().parent.parent
CMD = "<command line>"
END = object()  # the caret sits just past the end of the text (unexpected end of file)
IN = "input [B, 3, H, W]\n"


class Contains(str):
    """An expected hint that only has to contain this text (the rest depends on the op table)."""


def model(*lines: str) -> str:
    return "model {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


BLOCK_FOO = "block foo(d) {\n  c: conv2d(d, d, 1)\n}\n"
VARIANTS = "param width = 8\nparam depths = [1, 2]\nvariant tiny { width = 4 }\nvariant small { width = 16 }\n"


@dataclass(frozen=True)
class Case:
    src: str  # the spec, written to spec.arch
    at: object  # text the caret starts at, or END
    message: str
    hint: str | None = None
    nth: int = 0
    width: int | None = None
    args: tuple[str, ...] = ()  # extra command-line arguments
    where: tuple[str, str] | None = None  # (file, text) when the span is not in the spec
    note: tuple[str, str, int, int] | None = None  # (message, at, nth, width) of a note in the spec
    files: tuple[tuple[str, str], ...] = ()  # other files next to the spec


def case(id: str, *args, **kw):
    return pytest.param(Case(*args, **kw), id=id)


CASES = [
    # ------------------------------------------------------------------ syntax
    case("syntax-missing-closing-brace", IN + "model {\n  c: conv2d(3, 8, 3)\n", END,
         "unexpected end of file", "a closing '}' or ')' may be missing"),
    case("syntax-unexpected-token", IN + model("c: conv2d(3, 8, 3))"), ")", "unexpected ')'",
         Contains("expected "), nth=1),
    case("syntax-python-True-param", "param a = True\n" + IN + model("pass"), "True",
         "expected a constant value here", "booleans are written true and false"),
    case("syntax-python-True-argument", IN + model("c: conv2d(3, 8, 3, bias = True)"), "True",
         "unknown name 'True'", "booleans are written true and false"),
    case("syntax-python-None", "param a = None\n" + IN + model("pass"), "None",
         "expected a constant value here", "the empty value is written none"),
    case("syntax-python-def", IN + "def foo(d) {\n  pass\n}\n" + model("pass"), "def", "unexpected 'def'",
         "blocks are defined with `block name(...) { }`"),
    case("syntax-single-quoted-string", IN + model("rearrange('b c h w -> b h w c')"), "'",
         "unexpected character \"'\"", "strings use double quotes", width=1),
    case("syntax-stray-character", IN + model("c: conv2d(3, 8, 3) $"), "$", "unexpected character '$'"),
    case("syntax-unexpected-end-of-file", IN + "model {\n  c: conv2d(3, 8,", END, "unexpected end of file",
         "a closing '}' or ')' may be missing"),
    case("syntax-positional-after-keyword", IN + model("c: conv2d(3, 8, kernel_size = 3, 1)"), "1)",
         "a positional argument follows a keyword argument", "put positional arguments first", width=1),
    case("syntax-number-too-large", IN + model("x = x * 1e999"), "1e999", "the number 1e999 is too large",
         "floats go up to about 1e308"),
    # ------------------------------------------------------------------ names
    case("name-unknown-layer", IN + model("c: conv2dd(3, 8, 3)"), "conv2dd", "unknown layer 'conv2dd'",
         Contains("did you mean 'conv2d'")),
    case("name-unknown-function", IN + model("x = sigmoidd(x)"), "sigmoidd", "unknown function 'sigmoidd'",
         Contains("did you mean 'sigmoid'")),
    case("name-unknown-in-expression", "param width = 8\n" + IN + model("c: conv2d(3, widht, 3)"), "widht",
         "unknown name 'widht'", "did you mean 'width'?"),
    case("name-block-used-as-value", IN + BLOCK_FOO + model("c: conv2d(3, foo, 3)"), "foo", "'foo' is a layer, "
         "not a value", "apply it in a statement: `label: foo(...)`", nth=1),
    case("name-variant-sets-unknown-param", "param width = 8\nvariant small { widht = 4 }\n" + IN + model("pass"),
         "widht", "variant 'small' sets unknown param 'widht'", "did you mean 'width'?"),
    case("name-extends-unknown-variant", "param width = 8\nvariant small extends tiyn { width = 4 }\n"
         "variant tiny { width = 2 }\ndefault small\n" + IN + model("pass"), "tiyn",
         "variant 'small' extends unknown variant 'tiyn'", "did you mean 'tiny'?"),
    case("cli-unknown-variant", VARIANTS + IN + model("pass"), "tinyy", "no variant 'tinyy' in {spec}",
         "did you mean 'tiny'?", args=("--variant", "tinyy"), where=(CMD, "--variant tinyy")),
    case("cli-set-unknown-key", VARIANTS + IN + model("pass"), "widht", "unknown override 'widht'",
         "did you mean 'width'?", args=("--set", "widht=4"), where=(CMD, "--set widht=4")),
    case("cli-set-wrong-type", VARIANTS + IN + model("pass"), "width", "'width' is a number param, got a list",
         args=("--set", "width=[1, 2]"), where=(CMD, "--set width=[1, 2]"), note=("declared here", "width", 0, 5)),
    case("param-kind-unknown", "param w: number | pair = 64\n" + IN + model("pass"), "pair",
         "'pair' is not a kind of param value", "kinds are number, bool, string, list: `param w: number | list = 64`"),
    case("param-kind-default-mismatch", "param w: number | list = \"wide\"\n" + IN + model("pass"), '"wide"',
         "'w' is a number or list param, got a string", note=("declared here", "w", 0, 1)),
    case("cli-set-wrong-kind-of-union", "param w: number | list = 64\n" + IN + model("pass"), "w",
         "'w' is a number or list param, got a bool", args=("--set", "w=true"), where=(CMD, "--set w=true"),
         note=("declared here", "w", 0, 1)),
    case("builtin-to-pair-three-items", "param w: number | list = [1, 2, 3]\n" + IN +
         model("c: conv2d(3, to_pair(w)[0], 3)"), "to_pair(w)", "to_pair(...) failed: a pair has two items, got 3"),
    case("cli-set-without-value", VARIANTS + IN + model("pass"), "width", "--set expects KEY=VALUE, got 'width'",
         "for example --set num_classes=10", args=("--set", "width"), where=(CMD, "--set width")),
    case("cli-set-unreadable-value", VARIANTS + IN + model("pass"), END, "cannot read the value '[2, 2,'",
         Contains("values are numbers"), args=("--set", "depths=[2, 2,"), where=("<--set depths>", "[2, 2,")),
    case("cli-set-python-bool", VARIANTS + IN + model("pass"), "True", "expected a constant value here",
         "booleans are written true and false", args=("--set", "width=True"), where=("<--set width>", "True")),
    case("cli-bad-input-size", IN + model("pass"), "3xabcx224",
         "--input expects sizes like 3x224x224, got '3xabcx224'", args=("--input", "3xabcx224"),
         where=(CMD, "--input 3xabcx224")),
    case("cli-input-wrong-rank", IN + model("pass"), IN.strip(),
         "the model takes a rank-4 input, so give 3 sizes (got 3x224)", "for images: --input 3x224x224",
         args=("--input", "3x224")),
    # ------------------------------------------------------------------ arguments
    case("args-too-many-positional-op", IN + model("x = mean(x, [2, 3])", "fc: linear(3, 8, true, 5)"), "5",
         "linear takes at most 3 argument(s) besides tensors, got 4",
         "signature: linear(t, in_features, out_features, bias=true)"),
    case("args-too-many-positional-block", IN + BLOCK_FOO + model("f: foo(3, 4)"), "4",
         "block 'foo' takes 1 argument(s), got 2", "signature: foo(d)"),
    case("args-missing-required-op", IN + model("c: conv2d(3, 8)"), "c: conv2d(3, 8)",
         "conv2d is missing argument 'kernel_size'", Contains("signature: conv2d(t, in_channels, out_channels, "
                                                              "kernel_size")),
    case("args-missing-required-block", IN + "block foo(d, e) {\n  c: conv2d(d, e, 1)\n}\n" + model("f: foo(3)"),
         "f: foo(3)", "block 'foo' is missing argument 'e'", "signature: foo(d, e)"),
    case("args-unknown-keyword-op", IN + model("c: conv2d(3, 8, 3, strid = 2)"), "strid",
         "conv2d has no argument 'strid'", "did you mean 'stride'?"),
    case("args-unknown-keyword-block", IN + "block foo(dim) {\n  c: conv2d(dim, dim, 1)\n}\n"
         + model("f: foo(dimm = 3)"), "dimm", "block 'foo' has no parameter 'dimm'", "did you mean 'dim'?"),
    case("args-given-twice-op", IN + model("c: conv2d(3, 8, 3, in_channels = 3)"), "in_channels",
         "argument 'in_channels' is given twice"),
    case("args-given-twice-block", IN + BLOCK_FOO + model("f: foo(3, d = 3)"), "d = 3",
         "argument 'd' is given twice", width=1),
    # ------------------------------------------------------------------ structure
    case("struct-duplicate-label", IN + model("c: conv2d(3, 8, 3)", "c: conv2d(8, 8, 3)"), "c:",
         "'c' is already a module or tensor name in this scope", "labels name modules and must be unique",
         nth=1, note=("first used here", "c:", 0, 2)),
    case("struct-duplicate-block", IN + BLOCK_FOO + BLOCK_FOO + model("pass"), "foo", "block 'foo' is defined twice",
         nth=1, note=("first defined here", "foo", 0, 3)),
    case("struct-duplicate-param", "param a = 1\nparam a = 2\n" + IN + model("pass"), "a = 2",
         "param 'a' is declared twice", width=1, note=("first declared here", "a = 1", 0, 1)),
    case("struct-duplicate-block-parameter", IN + "block foo(d, d) {\n  pass\n}\n" + model("pass"), "d)",
         "parameter 'd' is declared twice", width=1, note=("first declared here", "d, d", 0, 1)),
    case("struct-duplicate-variant", "param a = 1\nvariant s { a = 1 }\nvariant s { a = 2 }\n" + IN + model("pass"),
         "s {", "variant 's' is defined twice", nth=1, width=1, note=("first defined here", "s {", 0, 1)),
    case("struct-default-not-defined", "param a = 1\nvariant small { a = 1 }\ndefault smal\n" + IN + model("pass"),
         "smal\n", "default variant 'smal' is not defined", "did you mean 'small'?", width=4),
    case("struct-import-missing-file", 'import "nope.arch"\n' + IN + model("pass"), 'import "nope.arch"',
         "cannot import 'nope.arch': no such file", "imports are relative to {dir}"),
    case("struct-import-declares-model", 'import "lib.arch"\n' + IN + model("pass"), 'import "lib.arch"',
         "'lib.arch' is not a library: it declares a model, params or variants",
         "imported files may only define blocks", files=(("lib.arch", model("pass")),)),
    case("struct-no-model-body", "param a = 1\n" + IN, "p", "the spec has no 'model { ... }' body",
         "a spec needs one model body that wires the stem, stages and head"),
    case("struct-statement-after-return", IN + model("return x", "c: conv2d(3, 8, 3)"), "c: conv2d(3, 8, 3)",
         "statement after return", "return must be the last statement"),
    case("struct-let-bound-to-tensor", IN + model("let y = x * 2"), "x * 2",
         "'let y' must be known at compile time, but it is a tensor"),
    case("struct-tensor-as-module-size", IN + model("c: conv2d(3, x, 3)"), "x, 3",
         "argument 'out_channels' of conv2d must be a value, not a tensor", width=1),
    case("struct-tensor-as-loop-bound", IN + model("repeat x {", "  pass", "}"), "x {",
         "a loop bound must be known at compile time, but it is a tensor", width=1),
    case("struct-loop-bound-not-int", IN + model("for i in 0..2.5 {", "  pass", "}"), "2.5",
         "loop bounds are ints, got float 2.5"),
    case("struct-list-index-out-of-range", "param dims = [8, 16]\n" + IN + model("c: conv2d(3, dims[2], 3)"), "2]",
         "index 2 is out of range for a list of 2 items", "the list is [8, 16]", width=1),
    case("struct-slice-step-zero", "param dims = [8, 16]\n" + IN + model("let d = dims[::0]"), "::0",
         "a slice step cannot be zero"),
    case("struct-sum-one-branch", IN + model("sum {", "  c: conv2d(3, 3, 3)", "}"), "sum {",
         "'sum' needs at least two branches separated by '|'",
         "`sum as NAME { ... }` may have one: it names the layer the branch fuses into"),
    case("struct-avg-optional-branch", IN + model("avg {", "  c: conv2d(3, 3, 3)", "| if true { identity() }", "}"),
         "if true { identity() }", "only a sum may have optional branches (a lone `if` without `else`)",
         "an average would divide by a count that depends on the build"),
    case("struct-sum-all-branches-optional",
         IN + model("sum {", "  if true { identity() }", "| if false { identity() }", "}"), "sum {",
         "every branch of this sum is optional",
         "give it at least one branch that is not a lone `if` without `else`"),
    case("struct-input-default-on-param", "param s = 32\ninput [B, 3, s = 64, s]\n" + model("pass"), "s = 64",
         "'s' is a param, so this input size is fixed and takes no default",
         "write `input [..., s, ...]`, or a run-time name with a default", width=1),
    case("struct-input-default-on-batch", "input [B = 2, 3, H, W]\n" + model("pass"), "B = 2",
         "the batch axis takes no default size", width=1),
    case("struct-input-default-not-int", "input [B, 3, H = 2.5, W]\n" + model("pass"), "2.5",
         "a default input size is a positive int, got float 2.5"),
    case("struct-label-is-module-attribute", IN + model("training: conv2d(3, 8, 3)"), "training:",
         "label 'training' cannot be a module attribute in PyTorch",
         "choose another label (it names the module's parameters)"),
    case("struct-weight-is-module-attribute", IN + model("forward = weight([3])", "x = x * forward[:, none, none]"),
         "forward", "weight 'forward' cannot be a module attribute in PyTorch",
         "choose another weight (it names the module's parameters)"),
    case("struct-param-is-python-keyword", "param class = 3\n" + IN + model("pass"), "class",
         "param 'class' clashes with a Python keyword",
         "rename it: params become keyword arguments of the emitted model"),
    case("struct-weight-two-targets", IN + model("a, b = weight([3])"), "a, b = weight([3])",
         "weight(...) makes one tensor; assign it to one name"),
    case("cli-variant-when-spec-has-none", IN + model("pass"), "tiny", "no variant 'tiny' in {spec}",
         "the spec declares no variants", args=("--variant", "tiny"), where=(CMD, "--variant tiny")),
    case("cli-set-when-spec-has-no-params", IN + model("pass"), "width", "unknown override 'width'",
         "the spec declares no params", args=("--set", "width=3"), where=(CMD, "--set width=3")),
    # ------------------------------------------------------------------ code this build does not run
    # Codegen emits every arm, loop body and called block, so they are checked even when not taken.
    case("untaken-arm-unknown-function", "param flag = false\n" + IN + model("if flag {", "  x = sigmoidd(x)", "}"),
         "sigmoidd", "unknown function 'sigmoidd'", Contains("did you mean 'sigmoid'")),
    case("untaken-arm-unknown-layer", IN + model("repeat 0 {", "  c: conv2dd(3, 8, 3)", "}"), "conv2dd",
         "unknown layer 'conv2dd'", Contains("did you mean 'conv2d'")),
    case("untaken-arm-block-missing-argument", "param flag = false\n" + IN + "block foo(d) {\n  c: conv2d(d, d)\n}\n"
         + model("if flag {", "  f: foo(3)", "}"), "c: conv2d(d, d)", "conv2d is missing argument 'kernel_size'",
         Contains("signature: conv2d(")),
    case("untaken-arm-bad-pattern", "param flag = false\n" + IN + model("if flag {", '  rearrange("b c h w")', "}"),
         'b c h w"', "a rearrange pattern needs exactly one '->'", 'write it like "b c h w -> b h w c"', width=1),
    case("untaken-arm-attribute", "param flag = false\n" + IN + model("if flag {", "  x = x.mean", "}"), "x.mean",
         "attribute access '.mean' is not part of the language", "use functions: shape(t), transpose(t, -2, -1)"),
    case("untaken-arm-module-op-in-expression", "param flag = false\n" + IN
         + model("if flag {", "  x = linear(x, 3, 8)", "}"), "linear(x, 3, 8)",
         "'linear' has parameters, so it needs a label to name them", "write `y = label: linear(...)(t)`"),
    case("args-size-given-twice", IN + model('rearrange("b c (h p) w -> b c h p w", p = 2, p = 4)'), "p = 4",
         "argument 'p' is given twice", width=1),
    case("runtime-size-axis-not-int", IN + model('n = shape(x)["h"]'), '"h"', "shape(t) takes an int axis, got str 'h'",
         width=3),
    case("param-named-x", "block foo(x) {\n  pass\n}\n" + IN + model("f: foo(1)"), "x)",
         "parameter 'x' would hide the block's tensor input x",
         "rename the parameter (x is the tensor a block takes unless it declares others)", width=1),
    # ------------------------------------------------------------------ shapes
    case("runtime-size-axis-out-of-range",
         IN + model("n = shape(x)[64]", 'x = rearrange(x, "b c h w -> b c (h w)", h = n)'), "rearrange(",
         "shape(t)[64] reads an axis t does not have: t is [B, 3, 224, 224]",
         Contains("t has 4 axes: 0 to 3, or -1 to -4"),
         width=len('rearrange(x, "b c h w -> b c (h w)", h = n)')),
    case("shape-conv-channel-mismatch", IN + model("a: conv2d(3, 8, 3)", "b: conv2d(16, 8, 3)"),
         "b: conv2d(16, 8, 3)", "conv2d expects 16 input channels, got 8 (input [B, 8, 224, 224])",
         "no square input from 16 to 1024 pixels works for this spec"),
    case("shape-linear-in-features-mismatch", IN + model("x = mean(x, [2, 3])", "fc: linear(4, 10)"),
         "fc: linear(4, 10)", "linear expects 4 features on the last axis, got [B, 3]",
         Contains("no square input from 16 to 1024 pixels works for this spec")),
    case("args-zero-size-output", IN + model("x = mean(x, [2, 3])", "fc: linear(3, 0)"), "0)",
         "argument 'out_features' of linear must be a positive int, got 0", width=1),
    case("args-zero-size-pool", IN + model("p: adaptive_avgpool2d(0)"), "0)",
         "argument 'output_size' of adaptive_avgpool2d must be a positive int or a pair [h, w] of them, got 0",
         width=1),
    case("shape-window-not-divisible", IN + model("stem: conv2d(3, 8, 32, stride = 32, padding = 0)",
                                                  'rearrange("b c (h p) (w q) -> b (h w) (p q c)", p = 7, q = 7)'),
         'rearrange("b c (h p) (w q) -> b (h w) (p q c)", p = 7, q = 7)',
         "cannot divide an axis of length 8 into parts of 7", Contains("input sizes that work: 224x224"),
         args=("--input", "3x256x256")),
    # ------------------------------------------------------------------ rearrange patterns (caret inside the string)
    case("pattern-missing-arrow", IN + model('rearrange("b c h w")'), 'b c h w"',
         "a rearrange pattern needs exactly one '->'", 'write it like "b c h w -> b h w c"', width=1),
    case("pattern-unclosed-parenthesis", IN + model('rearrange("b c (h w -> b c h w")'), "(h w",
         "'(' is not closed", width=1),
    case("pattern-unopened-parenthesis", IN + model('rearrange("b c h w) -> b c h w")'), ") ->",
         "')' without '('", width=1),
    case("pattern-axis-on-one-side", IN + model('rearrange("b c h w -> b h c")'), "w ->",
         "axis 'w' appears on only one side of '->'",
         "rearrange only reorders and regroups axes; both sides need the same names", width=1),
    case("pattern-axis-only-on-right", IN + model('rearrange("b c h w -> b (h w) c k")'), "k\"",
         "axis 'k' appears on only one side of '->'",
         "rearrange only reorders and regroups axes; both sides need the same names", width=1),
    case("pattern-two-unknown-sizes", IN + model('rearrange("b c (h p) w -> b c h p w")'), "(h p)",
         "cannot infer more than one size in (h p): h, p are unknown",
         "give all but one of them as keyword arguments, e.g. p=..."),
    case("pattern-with-quotes", IN + model('rearrange("b c h \'w\' -> b c h w")'), "'w'",
         "unexpected \"'\" in pattern", width=1),
]


def _locate(text: str, at, nth: int) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of `at` in `text` (or just past its end)."""
    if at is END:
        lines = text.splitlines() or [""]
        return len(lines), len(lines[-1]) + 1
    idx = -1
    for _ in range(nth + 1):
        idx = text.index(at, idx + 1)
    return text.count("\n", 0, idx) + 1, idx - text.rfind("\n", 0, idx)


def _excerpt(text: str, line: int, col: int, width: int) -> list[str]:
    gutter = " " * len(str(line))
    return [f" {line} | {text.splitlines()[line - 1]}", f" {gutter} | {' ' * (col - 1)}{'^' * width}"]


def _fill(text: str, spec: Path) -> str:
    return text.replace("{spec}", str(spec)).replace("{dir}", str(spec.parent))


def expected_render(c: Case, spec: Path) -> list[str]:
    file, text = c.where or (str(spec), c.src)
    line, col = _locate(text, c.at, c.nth)
    width = c.width or (1 if c.at is END else len(c.at))
    message = _fill(c.message, spec)
    lines = [f"{file}:{line}:{col}: error: {message}", *_excerpt(text, line, col, width)]
    if c.note:
        msg, at, nth, nwidth = c.note
        nline, ncol = _locate(c.src, at, nth)
        lines += [f"{spec}:{nline}:{ncol}: note: {msg}", *_excerpt(c.src, nline, ncol, nwidth)]
    return lines


def check_render(text: str, c: Case, spec: Path) -> None:
    lines = text.rstrip("\n").splitlines()
    want = expected_render(c, spec)
    assert lines[:len(want)] == want
    hints = lines[len(want):]
    if c.hint is None:
        assert hints == []
    elif isinstance(c.hint, Contains):
        assert len(hints) == 1 and hints[0].startswith("hint: ") and c.hint in hints[0]
    else:
        assert hints == ["hint: " + _fill(c.hint, spec)]


def write_case(tmp_path: Path, c: Case) -> Path:
    for name, text in c.files:
        (tmp_path / name).write_text(text)
    spec = tmp_path / "spec.arch"
    spec.write_text(c.src)
    return spec


def build_fails_located(c: Case, tmp_path: Path, capsys) -> None:
    """`archlang build` of the case's spec exits 2 with its located message and no traceback."""
    spec = write_case(tmp_path, c)
    code, out, err = run_cli(capsys, "build", str(spec), "-o", str(tmp_path / "out.py"))
    assert code == 2 and out == "" and "Traceback" not in err, err
    check_render(err, c, spec)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("ARCHLANG_DEBUG", raising=False)


@pytest.mark.parametrize("c", CASES)
def test_cli_reports_mistake(c: Case, tmp_path, capsys):
    spec = write_case(tmp_path, c)
    out_file = tmp_path / "out.py"
    code, out, err = run_cli(capsys, "build", str(spec), *c.args, "-o", str(out_file))
    assert code == 2, err
    assert "Traceback" not in err and out == ""
    assert not out_file.exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    check_render(err, c, spec)


@pytest.mark.parametrize("c", [p for p in CASES if not p.values[0].args])
def test_api_raises_arch_error(c: Case, tmp_path):
    spec = write_case(tmp_path, c)
    with pytest.raises(archlang.ArchError) as info:
        archlang.compile_spec(str(spec)).source  # noqa: B018 - codegen errors surface here
    check_render(info.value.render(), c, spec)


def test_deit_input_must_match_img_size(tmp_path, capsys, monkeypatch):
    """DeiT's position table is sized for img_size, and its input line says so: another --input is
    an error at that line (before, it surfaced as a broadcast error deep in the model)."""
    monkeypatch.chdir(ROOT)
    out_file = tmp_path / "deit.py"
    code, out, err = run_cli(capsys, "build", "specs/deit.arch", "--input", "3x256x256", "-o", str(out_file))
    text = (ROOT / "specs/deit.arch").read_text()
    line, col = _locate(text, "input [B, in_chans, img_size, img_size]", 0)
    assert code == 2 and out == "" and "Traceback" not in err
    assert not out_file.exists()
    lines = err.rstrip("\n").splitlines()
    assert lines[0] == f"specs/deit.arch:{line}:{col}: error: the model takes 224 on input axis 2, got 256"
    assert lines[-1] == "hint: pass --input with 224 there, or override the param that sets it"


def test_missing_spec_file_has_no_span(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "build", "specs/nope.arch", "-o", "out.py")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.splitlines() == ["error: cannot read 'specs/nope.arch': no such file",
                                "hint: check the path to the .arch file"]
    assert not (tmp_path / "out.py").exists()


def test_case_count():
    assert len(CASES) >= 35


@pytest.mark.parametrize("body,message", [
    ("  let n = 2 ** 2 ** 40", "the power 2 ** 1099511627776 is too large to compute"),
    ('  let s = "ab" * 1000000', "this repetition would make more than 100,000 items"),
    ("  blocks: repeat 10 ** 9 { relu() }",
     "this loop would run 1,000,000,000 times, more than the 100,000 steps elaboration may take"),
], ids=["huge-power", "huge-repetition", "runaway-repeat"])
def test_runaway_constants_and_loops_stop_with_a_located_error(tmp_path, body, message):
    path = tmp_path / "big.arch"
    path.write_text(f"family big\ninput [B, 3, H, W]\nmodel {{\n  stem: conv2d(3, 4, 1)\n{body}\n}}\n")
    with pytest.raises(archlang.ArchError) as err:
        archlang.compile_spec(str(path))
    assert err.value.message == message and err.value.span.line == 5


def test_plain_label_after_indexed_labels_of_the_same_name(tmp_path):
    """`bn[i]:` makes a ModuleList named bn; a later `bn:` would replace it in emitted code."""
    spec = tmp_path / "clash.arch"
    spec.write_text("model {\n  for i in 0..2 {\n    bn[i]: batchnorm2d(3)\n  }\n  bn: batchnorm2d(3)\n}\n")
    from archlang.compiler import compile_spec
    from archlang.errors import ArchError

    with pytest.raises(ArchError) as err:
        compile_spec(str(spec))
    assert "'bn' is already a module or tensor name" in err.value.message
    assert err.value.span.line == 5
