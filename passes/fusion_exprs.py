"""Fusion inside tensor expressions: `x = x + w * (a - b)` where `a`, `b` name foldable layers.

`ExprFolder` reads the expression of one assignment bottom-up. Its operands are layers bound
earlier in the same statement list and read only here (they are consumed), the one tensor all
those layers read (which becomes the identity map), and per-channel weights of the body (consumed
with them). Each operator node is offered to the rule whose `Operator` pattern it matches
(`a - b`: parallel_difference, `x + a`: residual_identity_fold, `w * a`: layer_scale_fold); the
whole expression fuses only when every node does, into one layer that reads that input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archlang import syntax as S
from archlang.errors import Span

from .fusion_rules import Match, Rule, operator_rule
from .fusion_syntax import binds, plain, uses
from .fusion_terms import Ctx, Term


@dataclass(frozen=True)
class Opaque:
    """A tensor name that is no consumable layer: the identity, if it is the common input."""

    name: str
    version: int  # index of the statement that bound it (-1: bound before the list)


@dataclass(frozen=True)
class Failed:
    rule: Rule
    span: Span
    reason: str


@dataclass
class Folded:
    term: Term
    consumed: set[int]  # statements the fused layer makes dead (operand layers, weights)
    source: str  # the tensor the fused layer reads
    fired: list[tuple[Rule, Span]] = field(default_factory=list)


class ExprFolder:
    def __init__(self, stmts: tuple, i: int, ctx: Ctx, live_after: frozenset[str]):
        self.stmts, self.i, self.ctx, self.live = stmts, i, ctx, live_after
        self.consumed: set[int] = set()
        self.inputs: set[tuple[str, int]] = set()
        self.fired: list[tuple[Rule, Span]] = []
        self.layers = 0  # operands that are layers: without one this is no fusion candidate
        self.last: Rule | None = None

    def run(self) -> Folded | Failed | None:
        st = self.stmts[self.i]
        if not (isinstance(st, S.Assign) and len(st.targets) == 1 and isinstance(st.value, S.BinOp)):
            return None
        out = self.fold(st.value)
        if isinstance(out, Failed):
            return out if self.layers else None
        if not isinstance(out, Term) or not out.family or not self.layers:
            return None
        if len(self.inputs) != 1:
            names = ", ".join(f"`{n}`" for n, _ in sorted(self.inputs))
            return Failed(self.last, st.span, f"the operands read different tensors ({names})")
        ((source, version),) = self.inputs
        for k in range(version + 1, self.i):
            if k not in self.consumed and source in binds(self.stmts[k]):
                return Failed(self.last, st.span, f"`{source}` is rebound between its layers and this line")
        return Folded(out, self.consumed, source, self.fired)

    def fold(self, e: S.Expr):
        """Term, Opaque, Failed or None (not foldable) for a subexpression."""
        if isinstance(e, S.Name):
            return self.operand(e)
        if not isinstance(e, S.BinOp) or e.op not in ("+", "-", "*"):
            return None
        if e.op == "*":
            return self.scaled(e)
        a, b = self.fold(e.left), self.fold(e.right)
        for side in (a, b):
            if side is None or isinstance(side, Failed):
                return side
        if isinstance(a, Opaque) and isinstance(b, Opaque):
            return None
        if e.op == "+" and not (isinstance(a, Opaque) or isinstance(b, Opaque)):
            return None  # a sum of two layers is written `sum { a | b }`
        a, b = self.identity(a), self.identity(b)
        sign = -1 if e.op == "-" else 1
        return self.apply(operator_rule(e.op), Match([a, b], [_text(e.left), _text(e.right)], e.span,
                                                      signs=(1, sign)))

    def scaled(self, e: S.BinOp):
        for view, other in ((e.left, e.right), (e.right, e.left)):
            found = self.ctx.weight_view(view, self.stmts[:self.i], {})
            if found is None:
                continue
            term, j = found
            inner = self.fold(other)
            if inner is None or isinstance(inner, (Failed, Opaque)):
                return None if isinstance(inner, Opaque) else inner
            if not self.single_use(view.value.id if isinstance(view, S.Index) else view.id, j):
                return Failed(operator_rule("*"), e.span, f"{_text(view)} is used elsewhere too")
            self.consumed.add(j)
            return self.apply(operator_rule("*"), Match([inner, term], [_text(other), _text(view)], e.span,
                                                        template=0))
        return None

    def apply(self, rule: Rule, m: Match):
        self.last = rule
        why = rule.check(m, self.ctx)
        if why is not None:
            return Failed(rule, m.span, why)
        self.fired.append((rule, m.span))
        return rule.result(m)

    def identity(self, side):
        if not isinstance(side, Opaque):
            return side
        self.inputs.add((side.name, side.version))
        return Term(("eye",), f"`{side.name}`", sort="eye")

    def operand(self, n: S.Name):
        j = self.binding(n.id, self.i)
        if j < 0:
            return Opaque(n.id, j)
        st = self.stmts[j]
        source = self.layer_input(st, j)
        if source is None or binds(st) != {n.id}:
            return Opaque(n.id, j)
        term = self.ctx.term(st)
        if term is None or not self.single_use(n.id, j):
            return Opaque(n.id, j)
        self.consumed.add(j)
        self.inputs.add(source)
        self.layers += 1
        return term  # an Unfoldable one fails the rule's `foldable` precondition, with its reason

    def layer_input(self, st, j: int) -> tuple[str, int] | None:
        """(name, version) of the tensor a layer-like statement reads."""
        if plain(st):
            return ("x", self.binding("x", j))
        if isinstance(st, S.Layer) and st.inputs is not None and len(st.inputs) == 1 \
                and isinstance(st.inputs[0], S.Name):
            name = st.inputs[0].id
            return (name, self.binding(name, j))
        return None

    def binding(self, name: str, before: int) -> int:
        """Index of the last statement before `before` that (maybe) binds `name`, or -1."""
        return next((k for k in range(before - 1, -1, -1) if name in binds(self.stmts[k])), -1)

    def single_use(self, name: str, j: int) -> bool:
        """The value bound at `j` is read exactly once (here) before it is rebound or dies."""
        total = 0
        for st in self.stmts[j + 1:]:
            total += uses(name, st)
            if name in binds(st, definite=True):
                return total == 1
        return total == 1 and name not in self.live


def _text(e: S.Expr) -> str:
    """A short spelling of an operand for reasons."""
    if isinstance(e, S.Name):
        return f"`{e.id}`"
    if isinstance(e, S.Index) and isinstance(e.value, S.Name):
        return f"`{e.value.id}[...]`"
    if isinstance(e, S.BinOp):
        return f"`{_text(e.left).strip('`')} {e.op} {_text(e.right).strip('`')}`"
    return "an expression"
