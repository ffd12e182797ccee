"""Expression evaluation during elaboration: constants fold, tensor expressions add IR nodes.

`ExprEvaluator` is mixed into the elaborator. Arithmetic on compile-time values follows Python;
arithmetic on tensors adds `add`/`mul`/`matmul`/... nodes; calls go to the builtin table or the
op table. Every failure is an `ArchError` at the span of the offending sub-expression.
"""

from __future__ import annotations

import operator

from . import syntax as S
from .binding import Binding, bind, check_pattern, default, plan_call, signature
from .errors import ArchError, Span
from .limits import check_operands
from .ops import OPS, OpDef, check_args
from .ops.index import IndexTensor
from .values import BUILTINS, ShapeOf, Sym, Tensor, sym_binop

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
          "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}
# Operators on tensors: the binary ops whose `syntax` is `a <operator> b` in the op table.
_TENSOR_OPS = {op.syntax.split()[1]: name for name, op in OPS.items()
               if op.n_inputs == 2 and op.syntax.startswith("a ") and op.syntax.endswith(" b")}


def describe(value) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, Sym):
        return "a run-time size"
    if isinstance(value, tuple):
        return "a list"
    if value is None:
        return "none"
    return f"{type(value).__name__} {value!r}"


class ExprEvaluator:
    """Needs: self.graph, self.lookup(name, frame, span), self.add_node(...), self.building (a
    build-time statement is evaluated) and self.computed (computed buffers -> their values)."""

    def expr(self, e: S.Expr, frame):
        method = getattr(self, "e_" + type(e).__name__)
        return self.budget.value(method(e, frame), e.span)

    def const(self, e: S.Expr, frame, what: str = "this value"):
        """Evaluate `e` and insist on a compile-time value."""
        return self.known(self.expr(e, frame), e, what)

    def known(self, v, e: S.Expr, what: str):
        """`v`, the value of `e`, if it is known at compile time."""
        if isinstance(v, Tensor):
            raise ArchError(f"{what} must be known at compile time, but it is a tensor", e.span)
        if _contains_sym(v):
            raise ArchError(f"{what} must be known at compile time, but it depends on the input size",
                            e.span, hint="run-time sizes (B, H, W, shape(t)) can only size reshapes and scale tensors")
        return v

    def tensor(self, e: S.Expr, frame) -> Tensor:
        v = self.expr(e, frame)
        if not isinstance(v, Tensor):
            raise ArchError(f"expected a tensor here, got {describe(v)}", e.span)
        return v

    # -- atoms
    def e_Const(self, e, frame):
        return e.value

    def e_Name(self, e, frame):
        v = self.lookup(e.id, frame, e.span)
        if self.building and isinstance(v, Tensor) and v.node in self.computed:
            return self.computed[v.node]  # build-time code reads a computed buffer's values
        return v

    def e_ListExpr(self, e, frame):
        return tuple(self.expr(i, frame) for i in e.items)

    # -- operators
    def e_BinOp(self, e, frame):
        if e.op in ("and", "or"):
            left = self.const(e.left, frame, "a condition")
            if (e.op == "and" and not left) or (e.op == "or" and left):
                return left
            return self.const(e.right, frame, "a condition")
        a, b = self.expr(e.left, frame), self.expr(e.right, frame)
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return self.tensor_binop(e, a, b)
        if isinstance(a, Sym) or isinstance(b, Sym):
            try:
                return sym_binop(e.op, a, b)
            except TypeError:
                raise ArchError(f"'{e.op}' is not defined for run-time sizes", e.span,
                                hint="sizes support + - * and //") from None
        check_operands(e.op, a, b, e.span)
        try:
            return _ARITH[e.op](a, b)
        except ZeroDivisionError:
            raise ArchError("division by zero", e.span) from None
        except OverflowError:
            raise ArchError(f"the result of '{e.op}' is too large", e.span) from None
        except TypeError:
            raise ArchError(f"cannot apply '{e.op}' to {describe(a)} and {describe(b)}", e.span) from None

    def tensor_binop(self, e, a, b) -> Tensor:
        if e.op not in _TENSOR_OPS:
            raise ArchError(f"'{e.op}' is not defined for tensors", e.span,
                            hint="tensors take + - * / ** @ and comparisons")
        op = _TENSOR_OPS[e.op]
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return self.add_node(op, [a, b], {}, frame=None, span=e.span)
        if OPS[op].has("matmul"):
            raise ArchError("'@' needs two tensors", e.span)
        tensor, scalar = (a, b) if isinstance(a, Tensor) else (b, a)
        if not isinstance(scalar, (int, float, Sym)) or isinstance(scalar, bool):
            raise ArchError(f"cannot apply '{e.op}' to a tensor and {describe(scalar)}", e.span)
        attrs = {"scalar": scalar, "reverse": not isinstance(a, Tensor)}
        return self.add_node(op, [tensor], attrs, frame=None, span=e.span)

    def e_Unary(self, e, frame):
        if e.op == "not":
            return not self.const(e.operand, frame, "a condition")
        v = self.expr(e.operand, frame)
        if isinstance(v, Tensor):
            return v if e.op == "+" else self.add_node("neg", [v], {}, frame=None, span=e.span)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if e.op == "-" else v
        raise ArchError(f"cannot apply unary '{e.op}' to {describe(v)}", e.span)

    def e_Cond(self, e, frame):
        test = self.const(e.test, frame, "a condition")
        return self.expr(e.then if test else e.orelse, frame)

    def e_Index(self, e, frame):
        base = self.expr(e.value, frame)
        if isinstance(base, Tensor):
            return self.tensor_index(base, e, frame)
        if isinstance(base, ShapeOf) and len(e.subs) == 1 and not isinstance(e.subs[0], S.Slice):
            axis = self.const(e.subs[0], frame, "an axis")
            if not isinstance(axis, int) or isinstance(axis, bool):
                raise ArchError(f"shape(t) takes an int axis, got {describe(axis)}", e.subs[0].span)
            return Sym("dim", base.node, axis)
        if not isinstance(base, tuple):
            raise ArchError(f"cannot index {describe(base)}", e.value.span)
        if len(e.subs) != 1:
            raise ArchError("lists take one index", e.span)
        sub = self._subscript(e.subs[0], frame)
        if isinstance(sub, tuple):
            if sub[2] == 0:
                raise ArchError("a slice step cannot be zero", e.subs[0].span)
            return base[slice(*sub)]
        if not isinstance(sub, int) or isinstance(sub, bool):
            raise ArchError(f"list indices are ints, got {describe(sub)}", e.subs[0].span)
        if not -len(base) <= sub < len(base):
            raise ArchError(f"index {sub} is out of range for a list of {len(base)} items", e.subs[0].span,
                            hint=f"the list is {list(base)}")
        return base[sub]

    def tensor_index(self, base: Tensor, e, frame) -> Tensor:
        """`t[...]`: basic indexing, or advanced indexing when a subscript is a tensor."""
        subs, indices = [], []
        for s in e.subs:
            v = None if isinstance(s, S.Slice) else self.expr(s, frame)
            if isinstance(v, Tensor):
                indices.append(v)
                subs.append(IndexTensor(len(indices)))
                continue
            sub = self._slice(s, frame) if isinstance(s, S.Slice) else self._index(v, s)
            if isinstance(sub, tuple) and sub[2] is not None and sub[2] <= 0:
                raise ArchError("tensor slices need a positive step", s.step.span,
                                hint="flip(t, dims) reverses axes: flip(x, 1) for x[:, ::-1]")
            subs.append(sub)
        if indices:
            return self.add_node("advanced_index", [base, *indices], {"subs": tuple(subs)}, frame=None, span=e.span)
        return self.add_node("index", [base], {"subs": tuple(subs)}, frame=None, span=e.span)

    def _subscript(self, s, frame):
        if isinstance(s, S.Slice):
            return self._slice(s, frame)
        return self._index(self.const(s, frame, "an index"), s)

    def _slice(self, s: S.Slice, frame) -> tuple:
        return tuple(None if p is None else self.const(p, frame, "a slice bound") for p in (s.lo, s.hi, s.step))

    def _index(self, v, s):
        if _contains_sym(v):
            raise ArchError("an index must be known at compile time, but it depends on the input size", s.span)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise ArchError(f"indices are ints, slices, none or long tensors, got {describe(v)}", s.span)
        return v

    def e_Slice(self, e, frame):
        raise ArchError("a slice is only allowed inside [...]", e.span)

    def e_Attr(self, e, frame):
        raise ArchError(f"attribute access '.{e.name}' is not part of the language", e.span,
                        hint="use functions: shape(t), transpose(t, -2, -1)")

    # -- calls
    def e_Call(self, e, frame):
        plan = plan_call(e, self.program.blocks)
        if plan.kind == "builtin":
            return self.call_builtin(plan.name, e, frame)
        if plan.kind == "shape":
            return ShapeOf(self.tensor(plan.tensors[0], frame).node)
        if plan.build:  # a generator without a tensor: a build-time tensor (lowering placed it)
            tensors, scalars = [], ()
        elif plan.tensor_list:
            items = self.expr(plan.tensors[0], frame)
            if not isinstance(items, tuple) or not items or not all(isinstance(t, Tensor) for t in items):
                raise ArchError(f"{plan.name} takes a list of tensors first", plan.tensors[0].span)
            tensors, scalars = list(items), ()
        else:
            tensors, scalars = self.operands(plan, frame)
        attrs = self.attrs(plan.binding, frame)
        if scalars:
            attrs["scalars"] = scalars
        return self.add_node(plan.name, tensors, attrs, frame=None, span=e.span)

    def operands(self, plan, frame) -> tuple[list[Tensor], tuple]:
        """The tensor operands of an op call, and the (position, number) of those the op lets a
        plain number take (`where(mask, x, 0.0)`)."""
        op = plan.binding.op
        tensors, scalars = [], []
        for i, a in enumerate(plan.tensors):
            v = self.expr(a, frame)
            if i in op.scalars and isinstance(v, (int, float)) and not isinstance(v, bool):
                scalars.append((i, v))
            elif isinstance(v, Tensor):
                tensors.append(v)
            else:
                raise ArchError(f"expected a tensor here, got {describe(v)}", a.span,
                                hint=f"signature: {signature(op)}")
        return tensors, tuple(scalars)

    def call_builtin(self, name, e, frame):
        fn = BUILTINS[name][0]
        what = f"an argument of {name}"
        args = []
        if name in OPS and e.args:  # abs(t), sum(t): on a tensor, the op of that name
            first = self.expr(e.args[0], frame)
            if isinstance(first, Tensor):
                attrs = self.bind_op(OPS[name], e.args[1:], e.kwargs, frame, e.span)
                return self.add_node(name, [first], attrs, frame=None, span=e.span)
            args.append(self.known(first, e.args[0], what))
        args += [self.const(a, frame, what) for a in e.args[len(args):]]
        kwargs = {k.name: self.const(k.value, frame, what) for k in e.kwargs}
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ArchError(f"{name}(...) failed: {exc}", e.span) from None

    def attrs(self, binding: Binding, frame, skip: tuple[str, ...] = ()) -> dict:
        """Values of a binding's arguments (defaults filled in), as the IR node's attributes."""
        op = binding.op
        out = {}
        for name, e in binding.args:
            if name not in skip:
                out[name] = default(op, name) if e is None else self.op_arg(op, name, e, frame)
        check_args(op, out, {name: e.span for name, e in binding.args if e is not None}, binding.span)
        if op.varkw:
            out["sizes"] = tuple((k, self.expr(e, frame)) for k, e in binding.sizes)
            pattern = binding.expr("pattern")
            check_pattern(out["pattern"], pattern.span, dict(out["sizes"]))
        return out

    def bind_op(self, op: OpDef, args, kwargs, frame, span: Span) -> dict:
        """Bind and evaluate call arguments (what a layer statement's op receives)."""
        return self.attrs(bind(op, args, kwargs, span), frame)

    def op_arg(self, op: OpDef, name: str, e: S.Expr, frame):
        v = self.expr(e, frame)
        if isinstance(v, Tensor):
            raise ArchError(f"argument '{name}' of {op.name} must be a value, not a tensor", e.span)
        if _contains_sym(v) and not op.has("reshape"):  # only layout ops take run-time sizes
            raise ArchError(f"argument '{name}' of {op.name} depends on the input size", e.span,
                            hint="module sizes must be known at compile time")
        return v




def _contains_sym(v) -> bool:
    if isinstance(v, Sym):
        return True
    return isinstance(v, tuple) and any(_contains_sym(x) for x in v)
