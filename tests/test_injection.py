"""A spec is data: nothing in it is eval'd, exec'd or imported, and hostile names are either
mangled or rejected. Emitted code is also deterministic: the same spec gives the same bytes.
"""

from __future__ import annotations

import ast
import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archlang
from archlang.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = "__import__('os').system('touch PWNED')"

# Strings, param names, block names, labels, lets, loop variables and tensors chosen to collide
# with Python: every one of them must come out as data or as a mangled name.
HOSTILE = f'''
family exec
param os = 3
param sys = 8
param payload = "{PAYLOAD}"
param subprocess = "); import os; os.system('touch PWNED'); print("
input [B, os, H, W]

block exec(system, shell) {{
  let self = system
  let torch = shell
  let lambda = self + torch - shell
  setattr: conv2d(self, lambda, 1)
  os: gelu()
  if payload == "{PAYLOAD}" {{
    globals: conv2d(lambda, system, 1)
  }}
}}

block compile(popen) {{
  exec: exec(popen, popen)
  class_: exec(popen, popen)
}}

model {{
  system: conv2d(os, sys, 3)
  F = x * 2
  nn = F + x
  x = nn
  let str = payload + subprocess
  for lambda in 0..2 {{
    let self = lambda
  }}
  import_: compile(sys)
  open: exec(sys, sys)
  math = mean(x, [2, 3])
  x = math
}}
'''


def emitted_globals(tree: ast.Module) -> set[str]:
    """Names the emitted code reads that no function binds: the module's real dependencies."""
    free: set[str] = set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))):
        args = fn.args
        bound = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        nodes = list(ast.walk(fn))
        bound |= {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        free |= {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound
    return free


SAFE_BUILTINS = {"range", "int", "float", "len", "max", "min", "super", "tuple", "list", "abs", "round", "sum"}


def check_module_shape(source: str) -> ast.Module:
    """Top level: the docstring, imports, classes, functions and `SETTINGS = dict(...)`; and the
    code reads no global beyond torch, its own definitions and a few harmless builtins."""
    tree = ast.parse(source)
    body = tree.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)  # module docstring
    defined = {"torch", "nn", "F", "math"}
    for st in body[1:]:
        if isinstance(st, ast.Import):
            assert [a.name for a in st.names] in (["torch"], ["torch.nn.functional"], ["math"])
        elif isinstance(st, ast.ImportFrom):
            assert st.module == "torch" and [a.name for a in st.names] == ["nn"]
        elif isinstance(st, (ast.ClassDef, ast.FunctionDef)):
            defined.add(st.name)
        else:
            assert isinstance(st, ast.Assign) and [t.id for t in st.targets] == ["SETTINGS"], ast.dump(st)
            assert isinstance(st.value, ast.Call) and st.value.func.id == "dict"
            assert all(isinstance(k.value, (ast.Constant, ast.UnaryOp, ast.Tuple)) for k in st.value.keywords)
            defined.add("SETTINGS")
    dangerous = emitted_globals(tree) - defined - SAFE_BUILTINS
    assert dangerous == set()
    assert set(dir(builtins)) & {"exec", "eval", "__import__", "open", "compile"}  # sanity: they are builtins
    return tree


def write(tmp_path: Path, text: str, name: str = "spec.arch") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hostile_names_and_strings_stay_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, HOSTILE)
    source = archlang.compile_spec(str(spec)).source
    tree = check_module_shape(source)
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert PAYLOAD in strings  # the payload is a string constant, never code
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert sorted(classes) == ["Compile", "Exec", "Exec2"]  # block `exec`, block `compile`, the model

    import torch

    model = archlang.build(str(spec))
    out = model(torch.randn(1, 3, 16, 16))
    assert tuple(out.shape) == (1, 8)
    assert {"system.weight", "import_.exec.setattr.weight", "import_.class_.globals.weight", "open.setattr.weight"} \
        <= set(model.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.arch"]
    assert not (ROOT / "PWNED").exists()


def test_cli_writes_only_the_module(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, HOSTILE)
    assert main(["build", str(spec), "-o", "out.py"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py", "spec.arch"]
    check_module_shape((tmp_path / "out.py").read_text())


def test_hostile_file_name_stays_in_comments(tmp_path, monkeypatch):
    """The spec's path is echoed in docstrings and `# file:line` comments; quotes and newlines in
    it must not end them. Without `family`, the file name also names the model class."""
    folder = tmp_path / 'x"""'
    folder.mkdir()
    spec = write(folder, "input [B, 3, H, W]\nmodel {\n  c: conv2d(3, 8, 3)\n}\n",
                 name="a\nimport os; os.system('touch PWNED')\n#\r\\N{x}.arch")
    monkeypatch.chdir(tmp_path)
    source = archlang.compile_spec(str(spec)).source
    tree = check_module_shape(source)
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["AImportOsOsSystemTouchPWNEDNX"]
    assert "\nimport os" not in source


LABEL = "input [B, 3, H, W]\nmodel {{\n  {stmt}\n}}\n"


@pytest.mark.parametrize("src,at,message", [
    pytest.param(LABEL.format(stmt="class: conv2d(3, 8, 3)"), "class:",
                 "label 'class' cannot be a module attribute in PyTorch", id="label-keyword-class"),
    pytest.param(LABEL.format(stmt="lambda: conv2d(3, 8, 3)"), "lambda:",
                 "label 'lambda' cannot be a module attribute in PyTorch", id="label-keyword-lambda"),
    pytest.param(LABEL.format(stmt="__class__: conv2d(3, 8, 3)"), "__class__:",
                 "label '__class__' cannot be a module attribute in PyTorch", id="label-dunder"),
    pytest.param(LABEL.format(stmt="_modules: conv2d(3, 8, 3)"), "_modules:",
                 "label '_modules' cannot be a module attribute in PyTorch", id="label-module-private"),
    pytest.param(LABEL.format(stmt="state_dict: conv2d(3, 8, 3)"), "state_dict:",
                 "label 'state_dict' cannot be a module attribute in PyTorch", id="label-module-method"),
    pytest.param(LABEL.format(stmt="training = weight([3])"), "training",
                 "weight 'training' cannot be a module attribute in PyTorch", id="weight-module-attribute"),
    pytest.param(LABEL.format(stmt="__dict__ = buffer([3])"), "__dict__",
                 "buffer '__dict__' cannot be a module attribute in PyTorch", id="buffer-dunder"),
    pytest.param("param self = 3\n" + LABEL.format(stmt="pass"), "self",
                 "param 'self' clashes with a name the emitted code uses", id="param-self"),
    pytest.param("param torch = 3\n" + LABEL.format(stmt="pass"), "torch",
                 "param 'torch' clashes with a name the emitted code uses", id="param-torch"),
    pytest.param("param nn = 3\n" + LABEL.format(stmt="pass"), "nn",
                 "param 'nn' clashes with a name the emitted code uses", id="param-nn"),
    pytest.param("param class = 3\n" + LABEL.format(stmt="pass"), "class",
                 "param 'class' clashes with a Python keyword", id="param-class"),
    pytest.param("param lambda = 3\n" + LABEL.format(stmt="pass"), "lambda",
                 "param 'lambda' clashes with a Python keyword", id="param-lambda"),
    pytest.param("param exec = 3\n" + LABEL.format(stmt="pass"), "exec",
                 "param 'exec' clashes with a Python builtin", id="param-exec"),
    pytest.param("param training = true\n" + LABEL.format(stmt="pass"), "training",
                 "param 'training' clashes with an nn.Module attribute", id="param-module-attribute"),
    pytest.param("param make_divisible = 8\n" + LABEL.format(stmt="pass"), "make_divisible",
                 "param 'make_divisible' clashes with a helper the emitted code defines", id="param-helper"),
    pytest.param("block b(to_pair) {\n  pass\n}\n" + LABEL.format(stmt="pass"), "to_pair",
                 "parameter 'to_pair' of block 'b' clashes with a helper the emitted code defines",
                 id="block-param-helper"),
    pytest.param("block b(self) {\n  pass\n}\n" + LABEL.format(stmt="pass"), "self",
                 "parameter 'self' of block 'b' clashes with a name the emitted code uses", id="block-param-self"),
    pytest.param("block b(super, d) {\n  pass\n}\n" + LABEL.format(stmt="pass"), "super",
                 "parameter 'super' of block 'b' clashes with a name the emitted code uses",
                 id="block-param-super"),
    pytest.param(LABEL.format(stmt='rearrange("b c h w\' -> b h w c")'), "'",
                 "unexpected \"'\" in pattern", id="pattern-with-quote"),
    pytest.param(LABEL.format(stmt='let s = "a\\" + x"'), '"a',
                 "unexpected character '\"'", id="string-with-backslash"),
])
def test_hostile_names_are_rejected_at_their_span(tmp_path, src, at, message):
    spec = write(tmp_path, src)
    with pytest.raises(archlang.ArchError) as info:
        archlang.compile_spec(str(spec)).source  # noqa: B018 - codegen errors surface here
    idx = src.index(at)
    line, col = src.count("\n", 0, idx) + 1, idx - src.rfind("\n", 0, idx)
    assert info.value.render().splitlines()[0] == f"{spec}:{line}:{col}: error: {message}"


def test_locals_named_like_helpers_do_not_hide_them(tmp_path):
    """A let named as an emitted helper is renamed in the emitted code, so the helper it hides in
    the spec's scope still works where the emitted code calls it (here: in the same __init__)."""
    from archlang.codegen.helpers import HELPERS
    from archlang.pynames import FORWARD_HELPERS, HELPER_NAMES

    assert set(HELPERS) <= HELPER_NAMES | FORWARD_HELPERS  # every helper a file may define is known
    spec = write(tmp_path, "param k = 3\ninput [B, 3, H, W]\nmodel {\n  let to_pair = to_pair(k)\n"
                           "  c: conv2d(3, 8, to_pair)\n  let make_divisible = make_divisible(10)\n"
                           "  d: conv2d(8, make_divisible, 1)\n  drop_path = drop_path(x, 0.1)\n"
                           "  x = drop_path\n}\n")
    compiled = archlang.compile_spec(str(spec))
    assert "to_pair_ = to_pair(k)" in compiled.source and "drop_path_ = drop_path(" in compiled.source
    model = archlang.build(str(spec))
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 16, 16, 16)


# ---------------------------------------------------------------- determinism

_EMIT = """
import sys, archlang
for spec, variant, fuse in [("specs/convnext.arch", "v2_atto", False), ("specs/repvit.arch", "m0_9", True),
                            (sys.argv[1], None, False)]:
    sys.stdout.write(archlang.compile_spec(spec, variant, fuse=fuse).source)
"""


def test_same_spec_same_bytes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = write(tmp_path, HOSTILE)
    first = archlang.compile_spec(str(spec)).source
    assert archlang.compile_spec(str(spec)).source == first
    for name in ("a.py", "b.py"):
        assert main(["build", "specs/deit.arch", "--variant", "tiny_distilled", "-o", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert (tmp_path / "a.py").read_bytes() == (tmp_path / "b.py").read_bytes()


def test_same_bytes_across_hash_seeds(tmp_path):
    """Set and dict iteration order must not leak into emitted code."""
    spec = write(tmp_path, HOSTILE)
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", _EMIT, str(spec)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        outs.append(run.stdout)
    assert outs[0] == outs[1] and "class Exec2(nn.Module)" in outs[0]
