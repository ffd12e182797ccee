"""What an op is lives in the op table: no code outside archlang/ops/ decides by lists of op names.

The scan reads every .py file under archlang/ (archlang/ops/ aside) and passes/, and flags a
string literal that names an op (a key of OPS) where code *decides* by op name:
- compared: `n.op == "conv2d"`, `op.name != "weight"`, `n.op in ("weight", "buffer")`
  (the literal, or a tuple/list/set literal holding it, is an operand of ==, !=, in, not in);
- matched as a prefix: `n.op.startswith("batchnorm")` (an op name, or a prefix of three or
  more characters shared by two or more op names);
- listed: a tuple/list/set literal holding two or more distinct op names, a dict literal
  with two or more distinct op names among its keys or among its values (`NORMS = (...)`,
  `{"conv2d": "conv", ...}`, `{"+": "add", "-": "sub"}`), or a call passing two or more
  (`fold_pair("conv2d", "batchnorm2d")`).
What it allows: one op name as a call argument or subscript (`graph.add("add", ...)`,
`OPS["conv2d"]`: making or looking up one op), as a value assigned or returned (the lowering
choosing which op to make), and trait names that are also op names in trait calls
(`op.has("linear")`). Code should ask `OPS[name].has(trait)` or read `channel_axis` / `layout`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from archlang.ops import OPS, TRAITS

ROOT = Path(__file__).resolve().parent.parent
COMPARE = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)

# Literals that are op names but mean something else where they stand: (file, literal) -> why.
ALLOWED = {
    ("archlang/values.py", "input"): "Sym.kind 'input': a run-time size read from the input tensor, not the op",
    ("archlang/values.py", "abs"): "the builtin abs of a number (abs(t) of a tensor is the op)",
    ("archlang/values.py", "sum"): "the builtin sum of a list (sum(t, dim) of a tensor is the op)",
    ("archlang/elaborate.py", "sum"): "the branch syntax word of `sum { a | b }`, not the reduction",
    ("archlang/fusion.py", "sum"): "a fusion recipe kind (the sum of branch recipes), not the reduction",
    ("archlang/diff/phrases.py", "sum"): "a fusion recipe kind, rendered as a formula, not the reduction",
    ("archlang/lower.py", "sum"): "the branch syntax word of `sum { a | b }` (optional branches), not the reduction",
}

# TODO(lead, at merge): hits in files other helpers are rewriting. Each entry must still match
# (a stale entry fails the test), so this list empties itself as those rewrites land.
TODO_BEFORE_MERGE: set = set()


def sources() -> list[Path]:
    files = [p for p in (ROOT / "archlang").rglob("*.py")
             if not {"ops", "passes"} & set(p.relative_to(ROOT / "archlang").parts[:1])]
    return sorted(files + list((ROOT / "passes").rglob("*.py")))


def _names(node) -> list[tuple[str, ast.Constant]]:
    """Op-name string constants in `node` itself or directly inside a tuple/list/set literal."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [(c.value, c) for c in items if isinstance(c, ast.Constant) and c.value in OPS]


def _prefix(text) -> bool:
    return isinstance(text, str) and (text in OPS or len(text) >= 3 and sum(o.startswith(text) for o in OPS) >= 2)


def hits(tree: ast.AST) -> list[tuple[str, int, str]]:
    """(literal, line, rule) for every place the module decides by op name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(o, COMPARE) for o in node.ops):
            for side in (node.left, *node.comparators):
                found += [(v, c, "compared") for v, c in _names(side)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "endswith") and node.args:
            arg = node.args[0]
            items = arg.elts if isinstance(arg, ast.Tuple) else [arg]
            found += [(c.value, c, "prefix") for c in items
                      if isinstance(c, ast.Constant) and _prefix(c.value)]
        elif isinstance(node, ast.Call):
            names = [(c.value, c) for c in node.args if isinstance(c, ast.Constant) and c.value in OPS]
            if len({v for v, _ in names}) >= 2:  # a rule pairing ops by name: f("conv2d", "batchnorm2d")
                found += [(v, c, "listed") for v, c in names]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = _names(node)
            if len({v for v, _ in names}) >= 2:
                found += [(v, c, "listed") for v, c in names]
        elif isinstance(node, ast.Dict):
            for part in (node.keys, node.values):
                names = [(c.value, c) for c in part if isinstance(c, ast.Constant) and c.value in OPS]
                if len({v for v, _ in names}) >= 2:
                    found += [(v, c, "listed") for v, c in names]
    seen: set[int] = set()  # one hit per literal (a compared tuple is not also "listed")
    return [(v, c.lineno, rule) for v, c, rule in found if not (id(c) in seen or seen.add(id(c)))]


def scan() -> dict[tuple[str, str], list[str]]:
    """(file, literal) -> where and how, for every hit in the scanned files."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        for value, line, rule in hits(ast.parse(path.read_text(), str(path))):
            out.setdefault((rel, value), []).append(f"{rel}:{line}: {value!r} {rule}")
    return out


def test_no_op_name_lists_outside_the_op_table():
    found = scan()
    bad = [w for key, where in sorted(found.items()) if key not in ALLOWED and key not in TODO_BEFORE_MERGE
           for w in where]
    assert not bad, "decide by traits (OPS[op].has(...)), not op names:\n" + "\n".join(bad)


def test_exemptions_are_still_needed():
    found = scan()
    stale = sorted(k for k in (*ALLOWED, *TODO_BEFORE_MERGE) if k not in found)
    assert not stale, f"these exemptions match nothing any more; remove them: {stale}"


@pytest.mark.parametrize("code, expected", [
    ('if n.op == "conv2d": pass', [("conv2d", "compared")]),
    ('ok = node.op not in ("weight", "buffer")', [("weight", "compared"), ("buffer", "compared")]),
    ('b = n.op.startswith("batchnorm")', [("batchnorm", "prefix")]),
    ('NORMS = ("layernorm", "batchnorm2d")', [("layernorm", "listed"), ("batchnorm2d", "listed")]),
    ('COLOUR = {"conv2d": "green", "linear": "blue"}', [("conv2d", "listed"), ("linear", "listed")]),
    ('x = graph.add("add", [a, b], {})', []),  # making one op
    ('op = OPS["rearrange"]', []),  # looking one up
    ('if op.has("linear"): pass', []),  # a trait that is also an op name
    ('PAIRS = (("matmul", "attention"), ("linear", "linear"))', []),  # one op name per literal
    ('s = path.startswith("stages")', []),
    ('rule = fold_pair("conv_bn", "conv2d", "batchnorm2d")', [("conv2d", "listed"), ("batchnorm2d", "listed")]),
])
def test_what_the_scan_flags(code, expected):
    assert [(v, rule) for v, _, rule in hits(ast.parse(code))] == expected


def test_every_op_declares_traits_from_the_vocabulary():
    for op in OPS.values():
        assert op.traits and op.traits <= set(TRAITS), op.name
    used = set().union(*(op.traits for op in OPS.values()))
    assert used == set(TRAITS), f"traits no op declares: {set(TRAITS) - used}"
