"""Hostile and careless inputs (issue 8): one test per row of the table, numbered as there.

Every case runs the reproducer and checks the message, where it points, the exit status (2 for
a mistake, never 70), that no traceback is printed and that nothing is left behind: no output
file, no temporary file, no changed input. Cases that used to hang run under a deadline that
fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from oracle import spec

import archlang
from archlang.cli import main
from archlang.limits import MAX_INT, MAX_NESTING, MAX_SOURCE_BYTES, MAX_STEPS

ROOT = Path(__file__).resolve().parent.parent
HEAD = "family t\ninput [B, 3, H, W]\n"
SPEC = HEAD + "model {\n  c: conv2d(3, 8, 3)\n}\n"


def model(*lines: str, head: str = HEAD) -> str:
    return head + "model {\n  c: conv2d(3, 8, 3)\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


class Hang(BaseException):
    """Not an Exception, so the CLI's catch-all cannot turn it into an exit status."""


@contextlib.contextmanager
def deadline(cpu: float = 30, wall: float = 600):
    """Fail (instead of hanging the suite) when the block uses `cpu` seconds of processor time (a
    busy loop, however loaded the machine) or `wall` seconds in all (a blocked read)."""
    def expired(*_):
        raise Hang(f"still running after {cpu} s of CPU or {wall} s: a hang")
    timers = ((signal.SIGPROF, signal.ITIMER_PROF, cpu), (signal.SIGALRM, signal.ITIMER_REAL, wall))
    old = [signal.signal(sig, expired) for sig, _, _ in timers]
    for _, timer, seconds in timers:
        signal.setitimer(timer, seconds)
    try:
        yield
    finally:
        for (sig, timer, _), handler in zip(timers, old):
            signal.setitimer(timer, 0)
            signal.signal(sig, handler)


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
            for p in sorted(folder.rglob("*"))}


class Run:
    """One CLI invocation in `folder`; `.clean()` asserts it changed nothing there."""

    def __init__(self, folder: Path, capsys, *argv: str):
        self.folder = folder
        self.before = listing(folder)
        with deadline():
            self.code = main(list(argv))
        self.out, self.err = capsys.readouterr()

    @property
    def lines(self) -> list[str]:
        return self.err.rstrip("\n").splitlines()

    def error(self, header: str, *rest: str) -> Run:
        """Exit 2, no traceback, nothing on stdout, and stderr starting with these lines."""
        assert self.code == 2, self.err
        assert "Traceback" not in self.err and "internal error" not in self.err
        assert self.out == ""
        assert self.lines[:1 + len(rest)] == [header, *rest], self.err
        return self

    def hint(self, text: str) -> Run:
        assert self.lines[-1] == f"hint: {text}", self.err
        return self

    def clean(self) -> Run:
        assert listing(self.folder) == self.before
        return self


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARCHLANG_DEBUG", raising=False)
    return tmp_path


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def caret(line: int, col: int, width: int, text: str) -> list[str]:
    gutter = " " * len(str(line))
    return [f" {line} | {text}", f" {gutter} | {' ' * (col - 1)}{'^' * width}"]


# ---------------------------------------------------------------- 1: -o onto an input


@pytest.mark.parametrize("target", ["t.arch", "lib.arch", "./sub/../t.arch", "link.py"])
def test_row01_output_never_replaces_an_input(work, capsys, target):
    write(work, "t.arch", 'import "lib.arch"\n' + SPEC)
    write(work, "lib.arch", "block foo(d) {\n  c: conv2d(d, d, 1)\n}\n")
    (work / "link.py").symlink_to("t.arch")
    real = os.path.normpath(target) if target != "link.py" else "t.arch"
    Run(work, capsys, "build", "t.arch", "-o", target).error(
        f"<command line>:1:4: error: -o {target} would overwrite '{real}', an input of this build",
        *caret(1, 4, len(target), f"-o {target}")).hint("choose another output path").clean()


# ---------------------------------------------------------------- 2: runaway loops


@pytest.mark.parametrize("body,at", [
    ("repeat 1000000000000 { pass }", "1000000000000"),
    ("for i in 0..1000000000000 { let a = i }", "1000000000000"),
    ("repeat 1000 { repeat 1000 { pass } }", "1000 { pass"),
])
def test_row02_runaway_loops_stop_at_the_loop(work, capsys, body, at):
    write(work, "t.arch", model(body))
    col = body.index(at) + 3
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 2 and run.lines[0].startswith(f"t.arch:5:{col}: error: this loop would run ")
    assert f"more than the {MAX_STEPS:,} steps elaboration may take" in run.lines[0]
    run.hint("is a repeat count or loop bound far larger than intended?").clean()


def test_row02_many_cheap_statements_stop_too(work, capsys):
    write(work, "t.arch", model("for i in 0..90000 { let a = i", "let b = a }"))
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 2 and "steps (statements and loop iterations) here" in run.lines[0]
    run.clean()


# ---------------------------------------------------------------- 3: huge values


@pytest.mark.parametrize("lines,at,message", [
    (["let a = 2 ** 4096"], "2 ** 4096", "the power 2 ** 4096 is too large to compute"),
    (["let a = 2 ** 62", "let b = a ** 4096"], "a ** 4096",
     "the power 4611686018427387904 ** 4096 is too large to compute"),
    (["let n = 3", "for i in 0..40 { let n = n * n }"], "n * n",
     f"this integer is too large: the limit is {MAX_INT:,} (2**63 - 1)"),
    (['let s = "ab"', "for i in 0..40 { let s = s + s }"], "s + s",
     "this value would hold 131,072 items or characters; the limit is 100,000"),
    (["let s = [1]", "for i in 0..40 { let s = s + s }"], "s + s",
     "this value would hold 131,072 items or characters; the limit is 100,000"),
    (["let s = [1]", "for i in 0..40 { let s = [s, s] }"], "[s, s]", "lists nest more than 16 levels deep here"),
    (['let s = "ab" * 1000000'], '"ab" * 1000000', "this repetition would make more than 100,000 items"),
    (['let s = "%999999999d" % 1'], '"%999999999d" % 1', "'%' is not defined for strings"),
    (["let a = (-8) ** 0.5"], "(-8) ** 0.5", "this value is not a real number"),
])
def test_row03_huge_values_stop_where_they_are_made(work, capsys, lines, at, message):
    text = write(work, "t.arch", model(*lines)).read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if at in t)
    col = text.splitlines()[line - 1].index(at) + 1
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 2 and run.lines[0].startswith(f"t.arch:{line}:{col}: error: {message}"), run.err
    assert "internal error" not in run.err
    run.clean()


# ---------------------------------------------------------------- 4: the module cache


def test_row04_no_module_file_to_plant(work, monkeypatch):
    """archlang.build compiles the emitted module from memory: a file planted where the old cache
    looked is never imported, and nothing is written to any cache folder."""
    monkeypatch.setenv("ARCHLANG_CACHE", str(work / "cache"))
    path = write(work, "t.arch", SPEC)
    source = archlang.compile_spec(str(path)).source
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    planted = f"import pathlib\npathlib.Path({str(work / 'pwned')!r}).write_text('x')\n"
    write(work / "cache", f"archlang_{digest}.py", planted)
    model_ = archlang.build(str(path))
    assert not (work / "pwned").exists()
    assert sorted(p.name for p in (work / "cache").iterdir()) == [f"archlang_{digest}.py"]
    assert type(model_).__module__.startswith("archlang_generated_")
    import inspect

    assert "class " in inspect.getsource(type(model_))  # tracebacks and getsource still see the code


# ---------------------------------------------------------------- 5: predictable temp names


def test_row05_temp_file_name_cannot_be_planted(work, capsys):
    write(work, "t.arch", SPEC)
    victim = write(work, "victim.txt", "precious\n")
    for pid in {os.getpid(), os.getppid()}:
        (work / f".out.py.{pid}.tmp").symlink_to(victim)
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 0, run.err
    assert victim.read_text() == "precious\n"
    assert (work / "out.py").read_text().startswith('"""t (default)')
    assert sorted(p.name for p in work.iterdir() if p.name.endswith(".tmp")) == \
        sorted(f".out.py.{pid}.tmp" for pid in {os.getpid(), os.getppid()})


def test_row05_failed_write_leaves_nothing(work, capsys, monkeypatch):
    write(work, "t.arch", SPEC)
    write(work, "out.py", "old\n")

    def broken(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", broken)
    Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        "<command line>:1:4: error: cannot write 'out.py': No space left on device").hint(
        "choose another -o path").clean()


# ---------------------------------------------------------------- 6: load_timm is atomic


def test_row06_load_timm_changes_nothing_on_a_mismatch():
    import torch
    from oracle import randomize, timm_model

    model_ = archlang.build(spec("convnext"), "atto", {"depths": [1, 1, 1, 1]})
    before = {k: v.clone() for k, v in model_.state_dict().items()}
    state = randomize(timm_model("convnext_femto"))  # wider: every shape differs
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as info:
        archlang.load_timm(model_, state)
    message = str(info.value)
    assert message.startswith("checkpoint does not match convnext:atto; nothing was loaded: ")
    assert re.search(r"\d+ unexpected: extra\.weight, ", message)
    assert ", ... (" in message and " more)" in message and len(message) < 1500
    assert all(torch.equal(v, before[k]) for k, v in model_.state_dict().items())


# ---------------------------------------------------------------- 7: op arguments


@pytest.mark.parametrize("line,at,message", [
    ('x = gelu(x, approximate = "bogus")', '"bogus"',
     "argument 'approximate' of gelu must be one of \"none\", \"tanh\", got \"bogus\""),
    ('g = weight([8], init = "bogus")', '"bogus"',
     "argument 'init' of weight must be a number or one of \"zeros\", \"ones\", \"normal\", \"trunc_normal\", "
     "or a list of numbers, got \"bogus\""),
    ("d: dropout(p = 2.0)", "2.0", "argument 'p' of dropout must be a number from 0 to 1, got 2.0"),
    ("d: drop_path(p = 1.5)", "1.5", "argument 'p' of drop_path must be a number from 0 to 1, got 1.5"),
    ("c2: conv2d(8, int(1e308) ** 20, 3)", "int(1e308)",
     f"this integer is too large: the limit is {MAX_INT:,} (2**63 - 1)"),
    ("c2: conv2d(8, 8, 3, groups = 0)", "0)", "argument 'groups' of conv2d must be a positive int, got 0"),
    ("c2: conv2d(8, 8, 3, stride = -1)", "-1",
     "argument 'stride' of conv2d must be a positive int or a pair [h, w] of them, got -1"),
    ("c2: conv2d(8, 8, 3.0)", "3.0",
     "argument 'kernel_size' of conv2d must be a positive int or a pair [h, w] of them, got 3.0"),
    ("n: batchnorm2d(8, eps = 0)", "0)", "argument 'eps' of batchnorm2d must be a number > 0, got 0"),
    ("c2: conv2d(8, 8, 3, bias = 1)", "1)", "argument 'bias' of conv2d must be true or false, got 1"),
])
def test_row07_op_arguments_are_checked_at_compile_time(work, capsys, line, at, message):
    write(work, "t.arch", model(line))
    Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        f"t.arch:5:{line.index(at) + 3}: error: {message}").clean()


def test_row07_every_op_argument_declares_its_check():
    """One place: each op's Arg says what it takes (internal arguments set by the compiler aside)."""
    from archlang.ops import OPS

    internal = {("rearrange", "pattern"), ("rearrange", "sizes"), ("index", "subs"), ("advanced_index", "subs"),
                ("select", "dim"), ("select", "index"), ("select", "count"),
                ("chunk_part", "dim"), ("chunk_part", "chunks"), ("chunk_part", "index"), ("input", "shape"),
                ("input", "default"),
                ("branch_sum", "fused_name"), ("branch_avg", "fused_name")}
    operators = [o.name for o in OPS.values() if o.n_inputs == 2 and o.syntax.startswith("a ")]  # a + b
    internal |= {(op, a) for op in operators for a in ("scalar", "reverse")}
    unchecked = sorted((o.name, a.name) for o in OPS.values() for a in o.args
                       if a.check is None and (o.name, a.name) not in internal)
    assert unchecked == []


# ---------------------------------------------------------------- 8: deep nesting


@pytest.mark.parametrize("text", [
    model("let a = " + " + ".join(["1"] * 500)),
    model("let a = " + "-" * 500 + "1"),
    model("let a = " + "[" * 300 + "]" * 300),
    model(*["if true {"] * 300, *["}"] * 300),
    model(*["g: {"] * 2000, *["}"] * 2000),
], ids=["sum-500", "minus-500", "brackets-300", "if-300", "groups-2000"])
def test_row08_deep_nesting_is_refused_at_the_spot(work, capsys, text):
    write(work, "t.arch", text)
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 2 and "internal error" not in run.err and "Traceback" not in run.err
    assert run.lines[0].startswith("t.arch:") and \
        run.lines[0].endswith(f"error: the spec nests more than {MAX_NESTING} levels deep here")
    assert len(run.err) < 2000
    run.clean()


def test_row08_recursion_through_blocks_is_located(work, capsys):
    nest = "  " + "if d > 0 { " * 20 + "r: rec(d - 1)" + " }" * 20
    write(work, "t.arch", HEAD + "block rec(d) {\n  c: conv2d(3, 3, 1)\n" + nest + "\n}\n"
          + "model {\n  r: rec(100)\n}\n")
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 2 and "internal error" not in run.err
    col = nest.index("r: rec(d - 1)") + 1
    assert run.lines[0] == f"t.arch:5:{col}: error: blocks nest deeper than 64 levels; is 'rec' recursive?"


# ---------------------------------------------------------------- 9: inf and nan


@pytest.mark.parametrize("text,at,message", [
    ("param e = 1e308 * 10\n" + model("n: layernorm2d(8, eps = e)"), "1e308 * 10", "not a finite number (inf)"),
    (model('let a = float("nan")'), 'float("nan")', "not a finite number (nan)"),
    (model("let a = round(1e308 * 10)"), "1e308 * 10", "not a finite number (inf)"),
    (model("let a = 10.0 ** 400"), "10.0 ** 400", "the result of '**' is too large"),
    (model("let a = make_divisible(1e308, 1e-308)"), "make_divisible(", "not a finite number"),
])
def test_row09_non_finite_numbers_are_refused(work, capsys, text, at, message):
    write(work, "t.arch", text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if at in t)
    col = text.splitlines()[line - 1].index(at) + 1
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py")
    assert run.code == 2 and run.lines[0].startswith(f"t.arch:{line}:{col}: error: ") and message in run.lines[0]
    run.clean()


# ---------------------------------------------------------------- 10: long integers


def test_row10_a_5000_digit_literal(work, capsys):
    write(work, "t.arch", "param n = " + "7" * 5000 + "\n" + SPEC)
    run = Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        f"t.arch:1:11: error: this integer is too large: the limit is {MAX_INT:,} (2**63 - 1)")
    assert max(len(line) for line in run.lines) < 200
    run.clean()


def test_row10_a_huge_override(work, capsys):
    write(work, "t.arch", "param num_classes = 3\n" + SPEC)
    Run(work, capsys, "build", "t.arch", "--set", "num_classes=((10**64)**64)**64", "-o", "out.py").error(
        "<--set num_classes>:1:3: error: the power 10 ** 64 is too large to compute",
        *caret(1, 3, 6, "((10**64)**64)**64")).clean()


# ---------------------------------------------------------------- 11: -o DIR


@pytest.mark.parametrize("argv,flag,default", [
    (("build", "t.arch", "-o", "outdir"), "-o", "model.py"),
    (("viz", "t.arch", "-o", "outdir"), "-o", "model.svg"),
    (("diff", "t.arch", "t.arch", "--viz", "outdir"), "--viz", "diff.svg"),
], ids=["build", "viz", "diff"])
def test_row11_output_onto_a_directory(work, capsys, argv, flag, default):
    write(work, "t.arch", SPEC)
    (work / "outdir").mkdir()
    Run(work, capsys, *argv).error(
        f"<command line>:1:{len(flag) + 2}: error: {flag} outdir: is a directory",
        *caret(1, len(flag) + 2, 6, f"{flag} outdir")).hint(
        f"name the file to write, e.g. {flag} outdir/{default}").clean()


# ---------------------------------------------------------------- 12: line breaks Python counts but the parser does not


def test_row12_form_feed_and_line_separator_keep_the_right_line(work, capsys):
    text = "# a\f b \u2028 c\n" + model("", "", "", "bad $")
    write(work, "t.arch", text)
    Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        "t.arch:9:7: error: unexpected character '$'", *caret(9, 7, 1, "  bad $")).clean()


# ---------------------------------------------------------------- 13: files that are not UTF-8


@pytest.mark.parametrize("data,where,shown,message", [
    ("family t # caf\xe9\n".encode("latin-1"), (1, 15, 15), "family t # caf\ufffd",
     "byte 0xe9 at offset 14 does not decode"),
    ("family t\n".encode("utf-16"), (1, 1, 1), "\ufffd\ufffdf\\x00a\\x00m\\x00i\\x00l\\x00y\\x00 \\x00t\\x00",
     "byte 0xff at offset 0 does not decode"),
    (b"family t\nmodel {\x00\x9c\n}\n", (2, 9, 12), "model {\\x00\ufffd", "byte 0x9c at offset 17 does not decode"),
], ids=["latin-1", "utf-16", "binary"])
def test_row13_not_utf8(work, capsys, data, where, shown, message):
    """The error points at the first bad byte (the caret sits under it as displayed: a NUL before it
    is shown escaped, four characters wide)."""
    write(work, "bad.arch", data)
    line, col, shown_col = where
    Run(work, capsys, "build", "bad.arch", "-o", "out.py").error(
        f"bad.arch:{line}:{col}: error: cannot read 'bad.arch': it is not UTF-8 text: {message}",
        *caret(line, shown_col, 1, shown)).hint("save the file as UTF-8").clean()
    write(work, "t.arch", 'import "bad.arch"\n' + SPEC)
    Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        f"t.arch:1:1: error: cannot import 'bad.arch': it is not UTF-8 text: {message}",
        *caret(1, 1, 17, 'import "bad.arch"'), f"bad.arch:{line}:{col}: note: here",
        *caret(line, shown_col, 1, shown)).hint("save the file as UTF-8").clean()


# ---------------------------------------------------------------- 14: things that are not files


def test_row14_spec_is_a_symlink_loop_or_a_device(work, capsys):
    (work / "a.arch").symlink_to("b.arch")
    (work / "b.arch").symlink_to("a.arch")
    Run(work, capsys, "build", "a.arch", "-o", "out.py").error(
        "error: cannot read 'a.arch': its symbolic links form a loop").clean()
    Run(work, capsys, "build", "/dev/zero", "-o", "out.py").error(
        "error: cannot read '/dev/zero': it is a device, not a regular file").clean()


@pytest.mark.parametrize("target,reason", [
    ("lib", "it is a directory, not a regular file"),
    ("fifo.arch", "it is a FIFO, not a regular file"),
    ("zero.arch", "it is a device, not a regular file"),
    ("nope.arch", "no such file"),
])
def test_row14_imports_of_what_is_not_a_file(work, capsys, target, reason):
    (work / "lib").mkdir()
    os.mkfifo(work / "fifo.arch")
    (work / "zero.arch").symlink_to("/dev/zero")
    text = f'import "{target}"\n' + SPEC
    write(work, "t.arch", text)
    run = Run(work, capsys, "build", "t.arch", "--allow-import-outside", "-o", "out.py").error(
        f"t.arch:1:1: error: cannot import '{target}': {reason}", *caret(1, 1, len(target) + 9, text.split("\n")[0]))
    if reason == "no such file":
        run.hint(f"imports are relative to {Path('t.arch').parent}")
    run.clean()


# ---------------------------------------------------------------- 15: imports from anywhere


def test_row15_imports_stay_in_the_spec_folder(work, capsys):
    text = 'import "../../../../../../etc/passwd"\n' + SPEC
    write(work, "specs/t.arch", text)
    Run(work, capsys, "build", "specs/t.arch", "-o", "out.py").error(
        f"specs/t.arch:1:1: error: cannot import '../../../../../../etc/passwd': it is outside {work / 'specs'}",
        *caret(1, 1, 37, text.split("\n")[0])).hint(
        "imports stay inside the spec's folder or archlang's spec library; --allow-import-outside "
        "(allow_import_outside=True) lifts this").clean()
    write(work, "specs/u.arch", 'import "../lib.arch"\n' + SPEC)
    write(work, "lib.arch", "block foo(d) {\n  c: conv2d(d, d, 1)\n}\n")
    with pytest.raises(archlang.ArchError, match="it is outside"):
        archlang.compile_spec(work / "specs/u.arch")
    assert archlang.compile_spec(work / "specs/u.arch", allow_import_outside=True).program.blocks["foo"]


def test_row15_the_spec_library_is_always_importable(work):
    path = write(work, "t.arch", f'import "{os.path.relpath(ROOT / "specs/lib/layers.arch", work)}"\n' + SPEC)
    assert "mlp" in archlang.compile_spec(path).program.blocks


# ---------------------------------------------------------------- 16: errors caused by --set


CLS = "param num_classes = 10\n" + HEAD + "model {\n  c: conv2d(3, 8, 3)\n  x = mean(x, [2, 3])\n" \
      "  fc: linear(8, num_classes)\n}\n"


@pytest.mark.parametrize("value,shown,got", [
    ("0", "0", "0"), ("-1", "-1", "-1"), ("1e100", "1e+100", "1e+100"), ("none", "none", "none"),
    ("10.5", "10.5", "10.5"),
])
def test_row16_errors_name_the_override(work, capsys, value, shown, got):
    write(work, "t.arch", CLS)
    Run(work, capsys, "build", "t.arch", "--set", f"num_classes={value}", "-o", "out.py").error(
        f"t.arch:7:17: error: argument 'out_features' of linear must be a positive int, got {got}",
        *caret(7, 17, 11, "  fc: linear(8, num_classes)"),
        f"<command line>:1:7: note: this build sets num_classes = {shown}",
        *caret(1, 7, 11, f"--set num_classes={value}")).clean()


def test_row16_api_override_errors_name_the_override(work):
    path = write(work, "t.arch", CLS)
    with pytest.raises(archlang.ArchError) as info:
        archlang.compile_spec(path, overrides={"num_classes": 0})
    lines = info.value.render().splitlines()
    assert lines[3:] == ["<overrides>:1:12: note: this build sets num_classes = 0",
                         *caret(1, 12, 13, "overrides={'num_classes': 0}")]
    with pytest.raises(archlang.ArchError) as info:
        archlang.compile_spec(path, overrides={"num_clases": 0})
    assert info.value.render().splitlines()[:3] == ["<overrides>:1:12: error: unknown override 'num_clases'",
                                                    *caret(1, 12, 12, "overrides={'num_clases': 0}")]


# ---------------------------------------------------------------- 17: cross-parameter checks


def test_row17_require_states_an_invariant(work, capsys):
    text = (ROOT / "specs/convnext.arch").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("require len(depths)"))
    Run(work, capsys, "build", spec("convnext"), "--set", "depths=[2,2]", "-o", "out.py").error(
        f"{spec('convnext')}:{line}:9: error: depths and dims need one entry per stage",
        *caret(line, 9, 24, text.splitlines()[line - 1]),
        "<command line>:1:7: note: this build sets depths = [2, 2]",
        *caret(1, 7, 6, "--set depths=[2,2]")).hint(
        "here depths = [2, 2], dims = [96, 192, 384, 768]").clean()


def test_row17_require_in_the_language(work, capsys):
    write(work, "t.arch", "param a = 2\nparam b = 3\n"
          'require a < b and b % a == 1, "b is one more than a multiple of a"\n' + SPEC)
    assert Run(work, capsys, "build", "t.arch", "-o", "out.py").code == 0
    Run(work, capsys, "build", "t.arch", "--set", "b=4", "-o", "out2.py").error(
        "t.arch:3:9: error: b is one more than a multiple of a").hint("here a = 2, b = 4").clean()
    write(work, "u.arch", 'param a = 2\nrequire a, "a"\n' + SPEC)
    Run(work, capsys, "build", "u.arch", "-o", "out3.py").error(
        "u.arch:2:9: error: a require condition is true or false, got int 2").clean()
    write(work, "lib.arch", 'require 1 == 1, "x"\nblock foo(d) {\n  pass\n}\n')
    write(work, "v.arch", 'import "lib.arch"\n' + SPEC)
    Run(work, capsys, "build", "v.arch", "-o", "out4.py").error(
        "lib.arch:1:1: error: a library cannot declare requires").clean()


# ---------------------------------------------------------------- 18: img_size and --input


def test_row18_input_follows_img_size(work, capsys):
    data = json.loads(Run(work, capsys, "build", spec("deit"), "--set", "img_size=256", "--set", "depth=1",
                          "--json", "-o", "d.py").out)
    assert data["input"] == [3, 256, 256]
    text = (ROOT / "specs/deit.arch").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("input "))
    Run(work, capsys, "build", spec("deit"), "--set", "img_size=256", "--input", "3x224x224", "-o", "e.py").error(
        f"{spec('deit')}:{line}:1: error: the model takes 256 on input axis 2, got 224",
        *caret(line, 1, 39, text.splitlines()[line - 1]),
        "<command line>:1:7: note: this build sets img_size = 256",
        *caret(1, 7, 8, "--set img_size=256")).hint(
        "pass --input with 256 there, or override the param that sets it").clean()
    assert archlang.stats(spec("deit"), "tiny", {"img_size": 384, "depth": 1})["input"] == [3, 384, 384]


# ---------------------------------------------------------------- 19: a 1 MB line


def test_row19_long_lines_are_clipped_and_huge_files_refused(work, capsys):
    write(work, "big.arch", HEAD + "model {\n  let a = " + "x" * 1_000_000 + " $\n}\n")
    Run(work, capsys, "build", "big.arch", "-o", "out.py").error(
        f"error: cannot read 'big.arch': the spec and its imports are larger than {MAX_SOURCE_BYTES:,} bytes").clean()
    write(work, "long.arch", HEAD + "model {\n  let a = " + "1 + " * 12_000 + " $\n}\n")
    run = Run(work, capsys, "build", "long.arch", "-o", "out.py")
    assert run.code == 2 and run.lines[0] == "long.arch:4:48012: error: unexpected character '$'"
    assert run.lines[1].startswith(" 4 | ...") and run.lines[1].endswith("1 +  $")
    assert run.lines[2].endswith("^") and len(run.lines[1]) == len(run.lines[2]) and len(run.err) < 1000
    run.clean()


# ---------------------------------------------------------------- 20: API arguments


@pytest.mark.parametrize("call,error,message", [
    (lambda p: archlang.build(p, 123), TypeError, "variant is a variant name (str) or None, got int 123"),
    (lambda p: archlang.stats(p, overrides="depths"), TypeError, "overrides is a dict of param names to values"),
    (lambda p: archlang.stats(p, overrides={1: 2}), TypeError, "overrides keys are param names (str), got int 1"),
    (lambda p: archlang.stats(p, input_size=5), TypeError, "input_size is a tuple of ints like (3, 224, 224)"),
    (lambda p: archlang.stats(p, input_size="3x224x224"), TypeError, "got str '3x224x224'"),
    (lambda p: archlang.stats(p, input_size=(3, 0, 224)), ValueError, "input_size holds positive sizes"),
    (lambda p: archlang.stats(p, fuse="yes"), TypeError, "fuse is True or False, got str 'yes'"),
    (lambda p: archlang.stats(42), TypeError, "spec_path is the path of a .arch file"),
    (lambda p: archlang.fuse(None), TypeError, "fuse() takes a model made by archlang.build(), got NoneType"),
    (lambda p: archlang.load_timm(archlang.build(p), None), TypeError, "load_timm() takes a state_dict"),
    (lambda p: archlang.load_timm(None, {}), TypeError, "load_timm() takes a model made by archlang.build()"),
])
def test_row20_api_arguments_are_checked(work, call, error, message):
    path = write(work, "t.arch", SPEC)
    with pytest.raises(error) as info:
        call(path)
    assert message in str(info.value)


def test_row20_api_accepts_paths_and_numpy_style_numbers(work):
    import numpy as np

    path = write(work, "t.arch", "param width = 8\n" + HEAD + "model {\n  c: conv2d(3, width, 3)\n}\n")
    assert archlang.stats(path, overrides={"width": np.int64(4)}, input_size=[3, 32, 32])["params"] == 4 * 27 + 4


# ---------------------------------------------------------------- 21: escape sequences


def test_row21_control_characters_are_escaped(work, capsys):
    write(work, "t.arch", model("c2: conv2d(8, 8, 3) # \x1b]0;TITLE\x07", "bad \x1b[2J $"))
    Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        "t.arch:6:7: error: unexpected character '\\x1b'", *caret(6, 7, 4, "  bad \\x1b[2J $")).clean()
    write(work, "u.arch", model("c2: conv2d(8, 8, 3) # \x1b]0;TITLE\x07 \u2028 \x9b", "x = z\x7fz(x)"))
    run = Run(work, capsys, "build", "u.arch", "-o", "out.py")
    assert run.code == 2 and not any(c in run.err for c in "\x1b\x07\x7f\x9b\u2028")


# ---------------------------------------------------------------- 22: -o /dev/stdout and -o -


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "archlang.cli", *args], env=env, timeout=120, **kw)


def test_row22_output_to_standard_output(work, capsys):
    write(work, "t.arch", SPEC)
    for target in ("-", "/dev/stdout"):
        done = _cli("build", "t.arch", "-o", target, capture_output=True, cwd=work)
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().startswith('"""t (default)') and b"wrote the module to standard output" \
            in done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["t.arch"]
    Run(work, capsys, "build", "t.arch", "-o", "-", "--json").error(
        "error: -o - and --json both write to standard output").clean()


def test_row22_viz_to_standard_output(work, capsys):
    write(work, "t.arch", SPEC)
    run = Run(work, capsys, "viz", "t.arch", "-o", "-", "--format", "dot")
    assert run.code == 0 and run.out.startswith('digraph "t"') and "wrote the drawing to standard output" in run.err
    run.clean()


# ---------------------------------------------------------------- 23: a closed pipe


@pytest.mark.parametrize("argv", [("build", spec("convnext"), "--json", "-o", "out.py"),
                                  ("diff", spec("convnext") + ":atto", spec("convnext") + ":femto", "--json")],
                         ids=["build", "diff"])
def test_row23_closed_pipe_ends_quietly(work, argv):
    read, write_end = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write is a broken pipe
    try:
        done = _cli(*argv, stdout=write_end, stderr=subprocess.PIPE, cwd=work)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == b""


# ---------------------------------------------------------------- 24: viz formats


@pytest.mark.parametrize("argv,header,width,hint", [
    (("-o", "x.jpg"), "cannot tell a drawing format from '.jpg'", 5,
     "name the file .svg, .png, .pdf, .dot, .html, or give --format with a name without a suffix"),
    (("--format", "png", "-o", "x.svg"), "--format png does not match the file name 'x.svg'", 5,
     "write to a .png file, or drop --format"),
    (("-o", "newdir/"), "-o newdir/: is a directory", 7, "name the file to write, e.g. -o newdir/model.svg"),
])
def test_row24_viz_format_and_file_name_agree(work, capsys, argv, header, width, hint):
    write(work, "t.arch", SPEC)
    arg = argv[-1]
    Run(work, capsys, "viz", "t.arch", *argv).error(
        f"<command line>:1:4: error: {header}", *caret(1, 4, width, f"-o {arg}")).hint(hint).clean()


def test_row24_viz_without_suffix_uses_format(work, capsys):
    write(work, "t.arch", SPEC)
    assert Run(work, capsys, "viz", "t.arch", "--format", "dot", "-o", "drawing").code == 0
    assert (work / "drawing").read_text().startswith('digraph "t"')


# ---------------------------------------------------------------- 25: silently accepted


def test_row25_negative_repeat(work, capsys):
    write(work, "t.arch", model("repeat -5 { pass }"))
    Run(work, capsys, "build", "t.arch", "-o", "out.py").error(
        "t.arch:5:10: error: a repeat count cannot be negative, got -5",
        *caret(5, 10, 2, "  repeat -5 { pass }")).hint("repeat 0 { ... } runs nothing").clean()


def test_row25_viz_depth_must_be_a_level(work, capsys):
    write(work, "t.arch", SPEC)
    with pytest.raises(SystemExit) as exc:
        main(["viz", "t.arch", "--depth", "-1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.splitlines()[-1] == \
        "archlang viz: error: argument --depth: expected a number of levels from 0 to 1000, got '-1'"


def test_row25_constant_expressions_in_params_are_documented(work):
    """The docs once said `param r = 4 * 2 / 3` is an error; params fold number arithmetic, and the
    docs now say so."""
    path = write(work, "t.arch", "param r = 4 * 2 / 3\n" + SPEC)
    assert archlang.compile_spec(path).settings["r"] == 4 * 2 / 3
    docs = (ROOT / "docs/language.md").read_text()
    assert "is an error" not in docs.split("**Values**")[1].split("**Settings**")[0]
    assert "param r = 4 * 2 / 3" in docs
