"""Fuzzing: random specs from the grammar and random mutations of the real specs never crash archlang.

Every case is compiled like `archlang build` does (load, settings, requires, elaborate, passes,
codegen; sometimes fused); when it compiles, the emitted source must be valid Python and the
module must be created and run on the meta device (no memory, no weights). The outcome is either
success or an ArchError that is located (`file:line:col`) and renders as clean terminal text. A
traceback of any other exception, or a case that runs past its deadline (a hang), fails the test.

The normal suite runs a few hundred derandomized cases. `make fuzz` sets ARCHLANG_FUZZ=N and
runs N cases of each kind with fresh randomness, and prints the counts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archlang.compiler import compile_spec, instantiate
from archlang.errors import ArchError
from archlang.ops import OPS
from archlang.values import BUILTINS

ROOT = Path(__file__).resolve().parent.parent
NIGHTLY = int(os.environ.get("ARCHLANG_FUZZ", "0"))
EXAMPLES = NIGHTLY or 150
CASE_DEADLINE = 20.0  # CPU seconds; far above the slowest legitimate case, however loaded the machine
CASE_WALL = 600.0  # seconds in all, for a case blocked on something
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not NIGHTLY, database=None,
                         suppress_health_check=list(HealthCheck))
STATS: Counter = Counter()

# ---------------------------------------------------------------- running one case


class Hang(BaseException):
    """Not an Exception, so nothing in archlang can catch it."""


def _expired(*_):
    raise Hang(f"a case used more than {CASE_DEADLINE} s of CPU (or {CASE_WALL} s in all)")


def run_case(path: Path, variant: str | None = None, fuse: bool = False) -> str:
    """Compile (and, when it compiles, create and run on meta) one spec; return the outcome."""
    old = [signal.signal(signal.SIGPROF, _expired), signal.signal(signal.SIGALRM, _expired)]
    signal.setitimer(signal.ITIMER_PROF, CASE_DEADLINE)
    signal.setitimer(signal.ITIMER_REAL, CASE_WALL)
    start = time.perf_counter()
    STATS["cases"] += 1
    try:
        outcome = _compile_and_run(path, variant, fuse)
    except Hang:
        STATS["hangs"] += 1
        raise
    except AssertionError:
        STATS["unlocated or unsafe errors"] += 1
        raise
    except Exception:  # what the CLI would report as an internal error, with a traceback
        STATS["internal errors"] += 1
        raise
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, old[0])
        signal.signal(signal.SIGALRM, old[1])
    STATS[outcome] += 1
    STATS["seconds"] += time.perf_counter() - start
    STATS[f"{outcome} seconds"] += time.perf_counter() - start
    return outcome


def _compile_and_run(path: Path, variant, fuse) -> str:
    try:
        compiled = compile_spec(str(path), variant, fuse=fuse)
        source = compiled.source
    except ArchError as err:
        check_located(err)
        return "error"
    compile(source, "<emitted>", "exec")  # the emitted module is valid Python
    if compiled.cost.params > 50_000_000:
        return "compiled"
    import torch

    with torch.device("meta"):
        model = instantiate(compiled)
        model(torch.empty(2, *compiled.input_size))
    return "ran"


def check_located(err: ArchError) -> None:
    assert err.span is not None, f"unlocated error: {err.message}"
    text = err.render()
    assert re.match(r"^\S.*:\d+:\d+: error: ", text), text[:200]
    assert not any(not c.isprintable() for c in text.replace("\n", "")), repr(text[:300])
    assert max(len(line) for line in text.splitlines()) < 800


# ---------------------------------------------------------------- specs from the grammar

NAMES = ["x", "d", "e", "i", "p0", "p1", "dims", "depths", "B", "H", "W", "foo", "bar", "q", "k", "v"]
LAYER_OPS = sorted(n for n, o in OPS.items() if o.kind != "source" and n != "input")
FUNCTIONS = sorted(BUILTINS) + ["shape", "rearrange", "cat", "mean", "softmax", "transpose", "reshape", "chunk"]
# Mostly ordinary values, so that many cases get past the parser into elaboration, shapes and
# codegen; the extreme ones are rarer.
INTS = st.one_of(st.sampled_from(["8", "1", "2", "3", "4", "16", "0", "-1"]), st.integers(0, 300).map(str))
FLOATS = st.sampled_from(["0.5", "1e-6", "2.0", ".5", "0.0"])
EXTREME = st.sampled_from(["2147483648", "9223372036854775807", "99999999999999999999", "1e308", "1e999"])
STRINGS = st.sampled_from(['"tanh"', '"none"', '"bogus"', '"b c h w -> b h w c"', '"b c (h p) w -> b c h p w"',
                           '"zeros"', '"trunc_normal"', '"%d"', '""', '"b c h w -> b (h w) c"', '"\u2028\x1b"'])
ATOMS = st.one_of(INTS, st.sampled_from(NAMES), INTS, st.sampled_from(NAMES), FLOATS, STRINGS,
                  st.sampled_from(["true", "false", "none"]), EXTREME)
BINOPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "@", "==", "!=", "<", "<=", ">", ">=", "and", "or"])


def _calls(inner):
    args = st.lists(inner | st.tuples(st.sampled_from(["dim", "p", "k", "stride", "groups", "approximate",
                                                       "eps", "init", "std", "bias", "keepdim"]), inner)
                    .map(lambda t: f"{t[0]} = {t[1]}" if isinstance(t, tuple) else t), max_size=4)
    return st.tuples(st.sampled_from(FUNCTIONS + LAYER_OPS), args).map(lambda t: f"{t[0]}({', '.join(t[1])})")


EXPRS = st.recursive(ATOMS, lambda inner: st.one_of(
    st.tuples(inner, BINOPS, inner).map(" ".join),
    inner.map(lambda e: f"({e})"),
    st.tuples(st.sampled_from(["-", "not ", "+"]), inner).map("".join),
    st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    _calls(inner),
    st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
    st.tuples(inner, st.sampled_from(["", "1", "-1"]), st.sampled_from(["", "2"])).map(
        lambda t: f"{t[0]}[{t[1]}:{t[2]}]"),
    st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
), max_leaves=10)
LABELS = st.sampled_from(["a", "b", "c", "fc", "norm", "blocks", "stem", "training", "qkvs[i]", "qkvs[0]", "x"])


def _layer(e):
    return st.tuples(st.sampled_from(LAYER_OPS + ["foo", "bar"]), st.lists(e, max_size=4)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})")


SIMPLE = st.one_of(
    st.tuples(st.sampled_from(NAMES), EXPRS).map(lambda t: f"let {t[0]} = {t[1]}"),
    st.tuples(LABELS, _layer(EXPRS)).map(lambda t: f"{t[0]}: {t[1]}"),
    _layer(EXPRS),
    st.tuples(st.sampled_from(NAMES), EXPRS).map(lambda t: f"{t[0]} = {t[1]}"),
    st.tuples(st.sampled_from(NAMES), LABELS, _layer(EXPRS), EXPRS).map(lambda t: f"{t[0]} = {t[1]}: {t[2]}({t[3]})"),
    st.tuples(st.sampled_from(NAMES), st.lists(INTS, min_size=1, max_size=3), STRINGS | FLOATS).map(
        lambda t: f"{t[0]} = weight([{', '.join(t[1])}], init = {t[2]})"),
    st.sampled_from(["pass", "return x", "x = x + 1", "c: conv2d(8, 8, 3)", 'rearrange("b c h w -> b h w c")',
                     "x = mean(x, [2, 3])", "fc: linear(8, 4)", "n: layernorm2d(8)", "a, b = chunk(x, 2, 1)"]),
)


def _body(stmts):
    return st.lists(stmts, max_size=4).map(lambda xs: "{\n" + "\n".join(xs) + "\n}")


STATEMENTS = st.recursive(SIMPLE, lambda inner: st.one_of(
    st.tuples(LABELS, _body(inner)).map(lambda t: f"{t[0]}: {t[1]}"),
    _body(inner).map(lambda b: f"residual {b}"),
    st.lists(st.lists(inner, min_size=1, max_size=2).map("\n".join), min_size=1, max_size=3).map(
        lambda bs: "sum {\n" + "\n|\n".join(bs) + "\n}"),
    st.tuples(EXPRS, _body(inner), _body(inner)).map(lambda t: f"if {t[0]} {t[1]} else {t[2]}"),
    st.tuples(EXPRS, EXPRS, _body(inner)).map(lambda t: f"for i in {t[0]}..{t[1]} {t[2]}"),
    st.tuples(LABELS, EXPRS, _body(inner)).map(lambda t: f"{t[0]}: repeat {t[1]} {t[2]}"),
), max_leaves=8)


@st.composite
def grammar_specs(draw) -> str:
    items = ["family fz"]
    for name in draw(st.lists(st.sampled_from(["p0", "p1", "dims", "depths", "d", "class"]), max_size=3, unique=True)):
        items.append(f"param {name} = {draw(EXPRS)}")
    if draw(st.booleans()):
        items.append(f"variant v0 {{ p0 = {draw(EXPRS)} }}")
    if draw(st.booleans()):
        items.append(f"require {draw(EXPRS)}, \"fuzz requirement\"")
    items.append(draw(st.sampled_from(["input [B, 3, H, W]", "input [B, 3, 32, 32]", "input [B, 8]", ""])))
    for name in draw(st.lists(st.sampled_from(["foo", "bar"]), max_size=2, unique=True)):
        params = draw(st.sampled_from(["d", "d, e = 2", "", "d, e", "d, d"]))
        items.append(f"block {name}({params}) {draw(_body(STATEMENTS))}")
    stem = "stem: conv2d(3, 8, 3)\n" if draw(st.booleans()) else ""
    body = draw(_body(STATEMENTS))
    items.append("model {\n" + stem + body[2:])
    return "\n".join(items) + "\n"


# ---------------------------------------------------------------- mutations of the real specs

REAL = {p.name: p.read_text().replace('import "../../specs/lib/', 'import "lib/')
        for p in [*(ROOT / "specs").glob("*.arch"), *(ROOT / "docs/sketches").glob("*.arch")]}
LIB = (ROOT / "specs/lib/layers.arch").read_text()
TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\"[^\"\n]*\"|\.\.|\*\*|//|[=!<>]=|\S")
NUMBERS = st.sampled_from(["0", "1", "2", "3", "5", "-1", "7", "12", "0.5", "1e-6", "64", "100000", "1e308"])
REPLACEMENTS = st.sampled_from([
    "0", "-1", "1", "3", "1000000000000", "9223372036854775808", "1e308", "1e-308", "0.0", '"bogus"', "none",
    "true", "x", "{", "}", "(", ")", "[", "]", "|", ":", ",", "=", "..", "if", "for", "repeat", "residual",
    "sum", "return", "let", "block", "model", "require", "import", "\x00", "\x1b[2J", "\u2028", "\f", "é",
    "'", '"', "#", ";", "\n", "[[[[[[[[", "- - - - -", "2 ** 62 ** 2", '"ab" * 99999',
])


@st.composite
def mutated_specs(draw) -> tuple[str, str, str, bool]:
    name = draw(st.sampled_from(sorted(REAL)))
    text, lib = REAL[name], LIB
    for _ in range(draw(st.integers(1, 4))):
        which = draw(st.sampled_from(["spec"] * 4 + ["lib"]))
        src = text if which == "spec" else lib
        tokens = list(TOKEN.finditer(src))
        if not tokens:
            continue
        tok = tokens[draw(st.integers(0, len(tokens) - 1))]
        kind = draw(st.sampled_from(["number", "number", "name", "name", "replace", "delete", "insert", "duplicate",
                                     "swap_lines", "truncate"]))
        names = [t.group() for t in tokens if t.group()[0].isalpha() or t.group()[0] == "_"]
        if kind == "number":  # syntax stays valid: elaboration, shapes and codegen see the change
            numbers = [t for t in tokens if t.group()[0].isdigit()] or [tok]
            tok = numbers[draw(st.integers(0, len(numbers) - 1))]
            src = src[:tok.start()] + draw(NUMBERS) + src[tok.end():]
        elif kind == "name" and names and (tok.group()[0].isalpha() or tok.group()[0] == "_"):
            src = src[:tok.start()] + draw(st.sampled_from(names)) + src[tok.end():]
        elif kind == "replace":
            src = src[:tok.start()] + draw(REPLACEMENTS) + src[tok.end():]
        elif kind == "delete":
            src = src[:tok.start()] + src[tok.end():]
        elif kind == "insert":
            src = src[:tok.start()] + draw(REPLACEMENTS) + " " + src[tok.start():]
        elif kind == "duplicate":
            src = src[:tok.end()] + " " + tok.group() + src[tok.end():]
        elif kind == "swap_lines":
            lines = src.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            src = "\n".join(lines)
        elif kind == "truncate":
            src = src[:tok.start()]
        text, lib = (src, lib) if which == "spec" else (text, src)
    variants = re.findall(r"^variant (\w+)", REAL[name], re.M)
    variant = draw(st.sampled_from([None, *variants])) if variants else None
    return text, lib, variant, draw(st.booleans())


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz")
    (path / "lib").mkdir()
    yield path
    if NIGHTLY:
        print(f"\nfuzz: {STATS['cases']} cases in {STATS['seconds']:.0f} s: {STATS['ran']} compiled and ran on meta, "
              f"{STATS['compiled']} compiled (too big to run), {STATS['error']} located errors; "
              f"{STATS['internal errors']} internal errors (tracebacks), {STATS['hangs']} hangs, "
              f"{STATS['unlocated or unsafe errors']} unlocated or unsafe errors")


@FUZZ_SETTINGS
@given(text=grammar_specs(), fuse=st.booleans())
def test_specs_from_the_grammar(folder, text, fuse):
    path = folder / "case.arch"
    path.write_text(text)
    run_case(path, fuse=fuse)


@FUZZ_SETTINGS
@given(case=mutated_specs())
def test_mutated_real_specs(folder, case):
    text, lib, variant, fuse = case
    (folder / "lib" / "layers.arch").write_text(lib)
    path = folder / "case.arch"
    path.write_text(text)
    run_case(path, variant, fuse)


def test_the_real_specs_pass_the_same_checks(folder):
    """The oracle itself: the unmutated specs compile, create and run on meta."""
    shutil.copy(ROOT / "specs/lib/layers.arch", folder / "lib" / "layers.arch")
    for name in ("convnext.arch", "deit.arch", "repvit.arch"):
        (folder / name).write_text(REAL[name])
        assert run_case(folder / name, fuse=name == "repvit.arch") == "ran"
