"""Spec expressions -> Python expressions (`pycode.Code`), for __init__ and forward bodies.

Names are looked up through a resolver supplied by the class emitter, which knows whether a
name is a constructor argument (a local in __init__, `self.name` in forward), a loop variable,
a tensor variable or a weight (`self.name`). Literals go through `repr`; nothing is eval'd.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import pycode as P
from .. import syntax as S
from ..ops import OPS, REQUIRED, OpDef
from ..values import BUILTINS

_CMP_NONE = {"==": "is", "!=": "is not"}


class ExprTranslator:
    def __init__(self, resolve: Callable[[str], P.Code], uses: set[str]):
        self.resolve = resolve
        self.uses = uses  # helpers and imports the emitted file needs ("make_divisible", "math")

    def __call__(self, e: S.Expr) -> P.Code:
        return getattr(self, "t_" + type(e).__name__)(e)

    def t_Const(self, e):
        return P.lit(e.value)

    def t_Name(self, e):
        return self.resolve(e.id)

    def t_ListExpr(self, e):
        return P.tuple_of([self(i) for i in e.items])

    def t_BinOp(self, e):
        a, b = self(e.left), self(e.right)
        if e.op in ("and", "or"):
            return P.boolop(e.op, a, b)
        if e.op in _CMP_NONE and (_is_none(e.right) or _is_none(e.left)):
            left, right = (a, b) if _is_none(e.right) else (b, a)
            return P.binop(_CMP_NONE[e.op], left, P.lit(None))
        return P.binop(e.op, a, b)

    def t_Unary(self, e):
        return P.unary(e.op, self(e.operand))

    def t_Cond(self, e):
        return P.cond(self(e.then), self(e.test), self(e.orelse))

    def t_Index(self, e):
        return P.index(self(e.value), [self.subscript(s) for s in e.subs])

    def subscript(self, s) -> str:
        if isinstance(s, S.Slice):
            parts = ["" if p is None else str(self(p)) for p in (s.lo, s.hi, s.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if s.step is not None else "")
        return str(self(s))

    def t_Call(self, e: S.Call):
        name = e.func.id
        if name in BUILTINS:
            target = BUILTINS[name][1]
            if target in ("make_divisible",):
                self.uses.add(target)
            if target.startswith("math."):
                self.uses.add("math")
            kwargs = {k.name: self(k.value) for k in e.kwargs}
            return P.call(target, *[self(a) for a in e.args], **kwargs)
        if name == "shape":
            return P.attr(self(e.args[0]), "shape")
        op = OPS[name]
        n = 1 if op.n_inputs == -1 else op.n_inputs
        inputs = [self(a) for a in e.args[:n]]
        if op.n_inputs == -1:
            inputs = [self(i) for i in e.args[0].items] if isinstance(e.args[0], S.ListExpr) else inputs
        return self.call_op(op, inputs, e.args[n:], e.kwargs)

    def call_op(self, op: OpDef, inputs: list[P.Code], args, kwargs) -> P.Code:
        a, sizes = self.bind(op, args, kwargs)
        if op.varkw:
            a["sizes"] = sizes
        self.uses.update(op.helpers)
        return op.call(a, inputs)

    def bind(self, op: OpDef, args, kwargs) -> tuple[dict[str, P.Code], dict[str, P.Code]]:
        """Op arguments as Code, defaults filled in (elaboration has already checked them)."""
        names = ("pattern",) if op.varkw else op.arg_names
        a = {n: self(v) for n, v in zip(names, args)}
        sizes = {}
        for k in kwargs:
            if k.name in op.arg_names:
                a[k.name] = self(k.value)
            else:
                sizes[k.name] = self(k.value)
        for arg in op.args:
            if arg.name not in a and arg.default is not REQUIRED:
                a[arg.name] = P.lit(arg.default)
        return a, sizes


def _is_none(e) -> bool:
    return isinstance(e, S.Const) and e.value is None
