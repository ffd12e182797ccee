"""Emitted forms of two lowered constructs that become Python expressions, not statements.

- A sequential body (unlabelled layers, and unlabelled loops and ifs of them) becomes the
  arguments of one `nn.Sequential(...)`: a constructor per layer, a starred comprehension per loop
  (`*[Block(d) for j in range(n)]`), a starred conditional list per `if`
  (`*([Down(d)] if i > 0 else [])`). Entries are numbered in the order the body runs, exactly as
  elaboration numbers the modules.
- Layers a parameter chooses (`layer(act_layer)`) are constructed from `LAYERS`, a table written
  into the emitted file that maps each choosable op name to its constructor (nothing is eval'd).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import lower as L
from .. import pycode as P
from ..bodies import choosable
from ..ops import REQUIRED
from .names import py_name

ITEM = "_m"  # comprehension variable; spec names never map to it (py_name suffixes '_' names)


@dataclass(frozen=True)
class _Part:
    """One nn.Sequential argument: an item, a starred comprehension (`clauses`) or a starred
    conditional list (`star`)."""

    elem: str
    clauses: tuple[str, ...] = ()
    star: str | None = None

    def code(self) -> str:
        if self.clauses:
            return f"*[{self.elem} {' '.join(self.clauses)}]"
        return self.star or self.elem


def sequential_items(stmts, em) -> list[P.Code]:
    """nn.Sequential arguments for the lowered statements of a sequential body."""
    return [P.Code(p.code()) for p in _parts(stmts, em)]


def _parts(stmts, em) -> list[_Part]:
    out = []
    for node in stmts:
        if isinstance(node, L.LApply):
            out.append(_Part(str(em.constructor(node))))
        elif isinstance(node, L.LLoop):
            out.append(_loop(node, em))
        elif isinstance(node, L.LIf):
            out.append(_if(node, em))
        else:  # lowering makes a body sequential only from these three
            raise AssertionError(f"internal error: {type(node).__name__} in a sequential body")
    return out


def _loop(node: L.LLoop, em) -> _Part:
    st = node.st
    var = py_name(st.var) if st.var else "_"
    clause = f"for {var} in {em.loop_range(st, em.init_x)}"
    inner = _parts(node.body, em)
    if len(inner) == 1 and inner[0].star is None:  # one item (or comprehension) per iteration
        return _Part(inner[0].elem, (clause, *inner[0].clauses))
    return _Part(ITEM, (clause, f"for {ITEM} in [{', '.join(p.code() for p in inner)}]"))


def _if(node: L.LIf, em) -> _Part:
    text = _list(node.orelse or (), em)
    for test, body in reversed(node.arms):
        text = f"{_list(body, em)} if {em.init_x(test)} else {text}"
    return _Part("", star=f"*({text})")


def _list(stmts, em) -> str:
    return "[" + ", ".join(p.code() for p in _parts(stmts, em)) + "]"


@dataclass(frozen=True)
class LayerTable:
    source: str
    helpers: frozenset[str]


def layer_table() -> LayerTable:
    """`LAYERS = {"gelu": lambda approximate="none": nn.GELU(approximate=approximate), ...}`: one
    constructor per op a parameter may choose, taking the op's arguments as the spec names them."""
    lines = ["# Layers a parameter can choose by name (archlang's op names): layer(act_layer) in the spec.",
             "LAYERS = {"]
    helpers: set[str] = set()
    for name, op in choosable().items():
        params = [a.name if a.default is REQUIRED else f"{a.name}={P.lit(a.default)}" for a in op.args]
        ctor = op.init({a.name: P.name(a.name) for a in op.args})
        head = f"    {name!r}: lambda{' ' if params else ''}{', '.join(params)}:"
        entry = f"{head} {ctor},"
        lines.append(entry if len(entry) <= 110 else f"{head}\n        {ctor},")
        helpers.update(op.helpers)
    lines.append("}")
    return LayerTable("\n".join(lines), frozenset(helpers))
