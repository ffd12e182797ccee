"""Names in emitted code: class names, safe identifiers, and the free names of a body.

Spec identifiers are grammar-checked ([A-Za-z_][A-Za-z0-9_]*), so they cannot carry code;
the ones that would collide with Python keywords, builtins or the names emitted code uses are
suffixed with `_`. Labels become attribute names that must match checkpoints, so a label that
is a keyword or an nn.Module attribute is an error instead.
"""

from __future__ import annotations

import builtins
import keyword

from .. import syntax as S
from ..errors import ArchError

RESERVED = {"self", "torch", "nn", "F", "math", "super", "x"} | set(dir(builtins))
_MODULE_ATTRS = {"training", "forward", "state_dict", "parameters", "buffers", "children", "modules",
                 "add_module", "register_buffer", "register_parameter", "eval", "train", "to",
                 "cuda", "cpu", "type", "float", "double", "half", "apply", "zero_grad", "extra_repr"}


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_") if p) or "Module"


def py_name(name: str) -> str:
    """A spec identifier as a Python local or parameter name."""
    if keyword.iskeyword(name) or name in RESERVED:
        return name + "_"
    return name


def check_label(label: S.Label) -> str:
    name = label.name
    if keyword.iskeyword(name) or name in _MODULE_ATTRS or name.startswith("__"):
        raise ArchError(f"label '{name}' cannot be a module attribute in PyTorch", label.span,
                        hint="choose another label (it names the module's parameters)")
    return name


def class_attrs(stmts) -> set[str]:
    """Module and weight attribute names a body defines on its own class (not nested classes)."""
    out: set[str] = set()
    for st in stmts:
        if isinstance(st, (S.Layer, S.Group, S.For)) and st.label is not None:
            out.add(st.label.name)
        elif isinstance(st, S.Assign) and isinstance(st.value, S.Call) and isinstance(st.value.func, S.Name) \
                and st.value.func.id in ("weight", "buffer"):
            out.update(st.targets)
        if isinstance(st, S.If):
            for _, body in st.arms:
                out |= class_attrs(body)
            out |= class_attrs(st.orelse or ())
        elif isinstance(st, S.Residual):
            out |= class_attrs(st.body) | class_attrs(st.shortcut or ())
        elif isinstance(st, S.Branches):
            for b in st.branches:
                out |= class_attrs(b)
        elif isinstance(st, S.For) and st.label is None:
            out |= class_attrs(st.body)
    return out


def free_names(stmts, bound: set[str]) -> list[str]:
    """Compile-time names a body reads but does not bind, in order of first use."""
    out: list[str] = []
    _walk_body(stmts, set(bound) | {"x"}, out)
    return out


def _use(name: str, bound: set[str], out: list[str]) -> None:
    if name not in bound and name not in out:
        out.append(name)


def _walk_body(stmts, bound: set[str], out: list[str]) -> None:
    for st in stmts:
        _walk_stmt(st, bound, out)


def _walk_stmt(st, bound: set[str], out: list[str]) -> None:
    if isinstance(st, S.Let):
        _walk_expr(st.value, bound, out)
        bound.add(st.name)
    elif isinstance(st, S.Assign):
        _walk_expr(st.value, bound, out)
        bound.update(st.targets)
    elif isinstance(st, S.Layer):
        for e in (*st.args, *(k.value for k in st.kwargs), *(st.inputs or ())):
            _walk_expr(e, bound, out)
        if st.label and st.label.index is not None:
            _walk_expr(st.label.index, bound, out)
        bound.update(st.targets or ())
    elif isinstance(st, S.Group):
        _walk_body(st.body, set(bound), out)
    elif isinstance(st, S.Residual):
        _walk_body(st.body, bound, out)
        _walk_body(st.shortcut or (), bound, out)
    elif isinstance(st, S.Branches):
        for b in st.branches:
            _walk_body(b, bound, out)
    elif isinstance(st, S.If):
        for test, body in st.arms:
            _walk_expr(test, bound, out)
            _walk_body(body, bound, out)
        _walk_body(st.orelse or (), bound, out)
    elif isinstance(st, S.For):
        _walk_expr(st.start, bound, out)
        _walk_expr(st.stop, bound, out)
        inner = set(bound) | ({st.var} if st.var else set())
        _walk_body(st.body, inner, out)
    elif isinstance(st, S.Return):
        _walk_expr(st.value, bound, out)


def _walk_expr(e, bound: set[str], out: list[str]) -> None:
    if isinstance(e, S.Name):
        _use(e.id, bound, out)
    elif isinstance(e, S.Call):
        if not isinstance(e.func, S.Name):
            _walk_expr(e.func, bound, out)
        for a in (*e.args, *(k.value for k in e.kwargs)):
            _walk_expr(a, bound, out)
    else:
        for child in _children(e):
            _walk_expr(child, bound, out)


def _children(e):
    if isinstance(e, S.ListExpr):
        return e.items
    if isinstance(e, S.BinOp):
        return (e.left, e.right)
    if isinstance(e, S.Unary):
        return (e.operand,)
    if isinstance(e, S.Cond):
        return (e.then, e.test, e.orelse)
    if isinstance(e, S.Index):
        return (e.value, *e.subs)
    if isinstance(e, S.Slice):
        return tuple(p for p in (e.lo, e.hi, e.step) if p is not None)
    if isinstance(e, S.Attr):
        return (e.value,)
    return ()
