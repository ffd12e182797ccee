"""Names in emitted code: class names, safe identifiers, and the free names of a body.

Spec identifiers are grammar-checked ([A-Za-z_][A-Za-z0-9_]*), so they cannot carry code;
locals that would collide with Python keywords, builtins, nn.Module attributes or the names
emitted code uses are suffixed with `_`. Labels and weights become attribute names that must
match checkpoints, and params become constructor keywords, so those collisions are errors instead
(the rules live in the front end, `pynames.py`).
"""

from __future__ import annotations

import keyword

from .. import syntax as S
from ..ops import OPS
from ..pynames import FORWARD_HELPERS, RESERVED, check_attr, clash


def unique(base: str, taken: set[str]) -> str:
    """`base`, or `base2`, `base3`, ... whichever is free; the result is marked taken."""
    name, k = base, 2
    while name in taken:
        name, k = f"{base}{k}", k + 1
    taken.add(name)
    return name


def camel(name: str) -> str:
    out = "".join(p[:1].upper() + p[1:] for p in name.split("_") if p) or "Module"
    return out + "_" if keyword.iskeyword(out) or out in RESERVED else out


def py_name(name: str) -> str:
    """A spec identifier as a Python local or parameter name (also stored as `self.name`)."""
    return name + "_" if clash(name) else name


def forward_name(name: str) -> str:
    """A tensor's name in forward, where it must not hide a helper forward calls (`drop_path`)."""
    return name + "_" if clash(name) or name in FORWARD_HELPERS else name


def check_label(label: S.Label) -> str:
    return check_attr(label.name, label.span)


def indexed_labels(stmts) -> list[str]:
    """Names used as `name[i]:` labels in a body (each becomes an nn.ModuleList)."""
    out: list[str] = []
    for st in stmts:
        if isinstance(st, (S.Layer, S.Group)) and st.label is not None and st.label.index is not None:
            if st.label.name not in out:
                out.append(st.label.name)
        for sub in S.own_bodies(st):
            out += [n for n in indexed_labels(sub) if n not in out]
    return out


def replayed_lets(stmts, in_loop: bool = False, seen: dict | None = None) -> set[str]:
    """Lets forward must recompute as locals: those bound more than once or inside a loop.
    (A let bound once, outside loops, is computed in __init__ and stored on self instead.)"""
    seen = {} if seen is None else seen
    out: set[str] = set()
    for st in stmts:
        if isinstance(st, S.Let):
            seen[st.name] = seen.get(st.name, 0) + 1
            if in_loop or seen[st.name] > 1:
                out.add(st.name)
        loop = in_loop or (isinstance(st, S.For) and st.label is None)
        for sub in S.own_bodies(st):
            out |= replayed_lets(sub, loop, seen)
    return out


def class_attrs(stmts) -> set[str]:
    """Module and weight attribute names a body defines on its own class (not nested classes)."""
    out: set[str] = set()
    for st in stmts:
        if isinstance(st, (S.Layer, S.Group, S.For)) and st.label is not None:
            out.add(st.label.name)
        elif isinstance(st, S.Assign) and isinstance(st.value, S.Call) and isinstance(st.value.func, S.Name) \
                and _is_state(st.value.func.id):
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
        for e in st.label.exprs if st.label else ():
            _walk_expr(e, bound, out)
        bound.update(st.targets or ())
    elif isinstance(st, S.Group):
        for e in (*st.label.exprs, *(st.inputs or ())):
            _walk_expr(e, bound, out)
        _walk_body(st.body, set(bound), out)
        bound.update(st.targets or ())
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
        for e in (st.start, st.stop, *(st.label.exprs if st.label else ())):
            _walk_expr(e, bound, out)
        inner = set(bound) | ({st.var} if st.var else set())
        _walk_body(st.body, inner, out)
    elif isinstance(st, S.Return):
        for e in st.values:
            _walk_expr(e, bound, out)


def _walk_expr(e, bound: set[str], out: list[str]) -> None:
    if isinstance(e, S.Name):
        _use(e.id, bound, out)
    elif isinstance(e, S.Call):
        if not isinstance(e.func, S.Name):
            _walk_expr(e.func, bound, out)
        for a in (*e.args, *(k.value for k in e.kwargs)):
            _walk_expr(a, bound, out)
    else:
        for child in S.children(e):
            _walk_expr(child, bound, out)


def _is_state(name: str) -> bool:
    """`name(...)` makes a tensor the module owns (a weight or buffer), named by its target."""
    op = OPS.get(name)
    return op is not None and op.has("state")
