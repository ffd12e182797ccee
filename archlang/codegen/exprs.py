"""Spec expressions -> Python expressions (`pycode.Code`), for __init__ and forward bodies.

Names are looked up through a resolver supplied by the class emitter, which knows whether a
name is a constructor argument (a local in __init__, `self.name` in forward), a loop variable,
a tensor variable or a weight (`self.name`). Literals go through `repr`; nothing is eval'd.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import pycode as P
from .. import syntax as S
from ..lower import Binding, default, plan_call
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
        plan = plan_call(e, ())
        if plan.kind == "builtin":
            target = BUILTINS[plan.name][1]
            if target in ("make_divisible", "linspace", "to_pair"):  # emitted as helpers of the file
                self.uses.add(target)
            if target.startswith("math."):
                self.uses.add("math")
            kwargs = {k.name: self(k.value) for k in e.kwargs}
            return P.call(target, *[self(a) for a in e.args], **kwargs)
        if plan.kind == "shape":
            return P.attr(self(plan.tensors[0]), "shape")
        first = plan.tensors[0] if plan.tensors else None
        if plan.tensor_list and isinstance(first, S.ListExpr):
            inputs = [self(i) for i in first.items]
        else:
            inputs = [self(a) for a in plan.tensors]
        return self.call_op(plan.binding, inputs)

    def call_op(self, binding: Binding, inputs: list[P.Code]) -> P.Code:
        op = binding.op
        self.uses.update(op.helpers)
        return op.call(self.args(binding), inputs)

    def args(self, binding: Binding) -> dict[str, P.Code]:
        """A binding's arguments as Code, defaults filled in (sizes as a dict, for rearrange)."""
        a = {n: P.lit(default(binding.op, n)) if e is None else self(e) for n, e in binding.args}
        if binding.op.varkw:
            a["sizes"] = {k: self(v) for k, v in binding.sizes}
        return a


def _is_none(e) -> bool:
    return isinstance(e, S.Const) and e.value is None
