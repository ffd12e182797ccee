"""Expression evaluation during elaboration: constants fold, tensor expressions add IR nodes.

`ExprEvaluator` is mixed into the elaborator. Arithmetic on compile-time values follows Python;
arithmetic on tensors adds `add`/`mul`/`matmul`/... nodes; calls go to the builtin table or the
op table. Every failure is an `ArchError` at the span of the offending sub-expression.
"""

from __future__ import annotations

import operator

from . import syntax as S
from .einpattern import PatternError, check_sizes, parse_pattern
from .errors import ArchError, Span, did_you_mean
from .limits import check_operands
from .ops import OPS, REQUIRED, OpDef, check_args
from .values import BUILTINS, ShapeOf, Sym, Tensor, show_value, sym_binop

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
          "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}
_TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul"}
MULTI_OUTPUT = {"chunk", "unbind"}


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
    """Needs: self.graph, self.lookup(name, frame, span), self.add_node(...)."""

    def expr(self, e: S.Expr, frame):
        method = getattr(self, "e_" + type(e).__name__)
        return self.budget.value(method(e, frame), e.span)

    def const(self, e: S.Expr, frame, what: str = "this value"):
        """Evaluate `e` and insist on a compile-time value."""
        v = self.expr(e, frame)
        if isinstance(v, Tensor):
            raise ArchError(f"{what} must be known at compile time, but it is a tensor", e.span)
        if _contains_sym(v):
            raise ArchError(f"{what} must be known at compile time, but it depends on the input size",
                            e.span, hint="run-time sizes (B, H, W, shape(t)) can only size reshapes")
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
        return self.lookup(e.id, frame, e.span)

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
                            hint="conditions are decided at compile time and cannot test tensors")
        op = _TENSOR_OPS[e.op]
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return self.add_node(op, [a, b], {}, frame=None, span=e.span)
        if op == "matmul":
            raise ArchError("'@' needs two tensors", e.span)
        tensor, scalar = (a, b) if isinstance(a, Tensor) else (b, a)
        if not isinstance(scalar, (int, float)) or isinstance(scalar, bool):
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
            subs = tuple(self._subscript(s, frame) for s in e.subs)
            return self.add_node("index", [base], {"subs": subs}, frame=None, span=e.span)
        if isinstance(base, ShapeOf) and len(e.subs) == 1 and not isinstance(e.subs[0], S.Slice):
            return Sym("dim", base.node, self.const(e.subs[0], frame, "an axis"))
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

    def _subscript(self, s, frame):
        if isinstance(s, S.Slice):
            return tuple(None if p is None else self.const(p, frame, "a slice bound") for p in (s.lo, s.hi, s.step))
        v = self.const(s, frame, "an index")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise ArchError(f"indices are ints, slices or none, got {describe(v)}", s.span)
        return v

    def e_Slice(self, e, frame):
        raise ArchError("a slice is only allowed inside [...]", e.span)

    def e_Attr(self, e, frame):
        raise ArchError(f"attribute access '.{e.name}' is not part of the language", e.span,
                        hint="use functions: shape(t), transpose(t, -2, -1)")

    # -- calls
    def e_Call(self, e, frame):
        kind, target = self.check_call(e)
        if kind == "builtin":
            return self.call_builtin(target, e, frame)
        if kind == "shape":
            return ShapeOf(self.tensor(e.args[0], frame).node)
        return self.call_op_expr(target, e, frame)

    def check_call(self, e: S.Call) -> tuple[str, object]:
        """What a call in an expression calls, with the checks that need no values:
        ("builtin", name), ("shape", None) or ("op", OpDef)."""
        if not isinstance(e.func, S.Name):
            raise ArchError("only named functions and ops can be called", e.func.span)
        name = e.func.id
        if name in BUILTINS:
            return "builtin", name
        if name == "shape":
            if len(e.args) != 1 or e.kwargs:
                raise ArchError("shape takes one tensor: shape(t)", e.span)
            return "shape", None
        if name in MULTI_OUTPUT:
            raise ArchError(f"{name}(...) returns several tensors: unpack it, e.g. a, b = {name}(...)", e.span)
        op = OPS.get(name)
        if op is None:
            if name in self.program.blocks:
                raise ArchError(f"block '{name}' is a layer: apply it in a statement", e.span,
                                hint=f"write `y = label: {name}(...)(t)`")
            known = list(BUILTINS) + [n for n, o in OPS.items() if o.kind in ("function", "act") and not o.syntax]
            raise ArchError(f"unknown function '{name}'", e.func.span, hint=did_you_mean(name, known))
        if op.kind == "module":
            raise ArchError(f"'{name}' has parameters, so it needs a label to name them", e.span,
                            hint=f"write `y = label: {name}(...)(t)`")
        if op.kind == "source":
            raise ArchError(f"{name}(...) must be assigned to a name, which names the tensor", e.span,
                            hint=f"write `gamma = {name}([dim])`")
        n = op.n_inputs
        if n == -1 and not e.args:
            raise ArchError(f"{op.name} needs a list of tensors first", e.span)
        if len(e.args) < n:
            raise ArchError(f"{op.name} takes {n} tensor argument(s) first", e.span)
        check_op_args(op, e.args[1 if n == -1 else n:], e.kwargs, e.span)
        return "op", op

    def call_builtin(self, name, e, frame):
        fn = BUILTINS[name][0]
        args = [self.const(a, frame, f"an argument of {name}") for a in e.args]
        kwargs = {k.name: self.const(k.value, frame, f"an argument of {name}") for k in e.kwargs}
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ArchError(f"{name}(...) failed: {exc}", e.span) from None

    def call_op_expr(self, op: OpDef, e: S.Call, frame):
        n = op.n_inputs
        if n == -1:
            items = self.expr(e.args[0], frame)
            if not isinstance(items, tuple) or not items or not all(isinstance(t, Tensor) for t in items):
                raise ArchError(f"{op.name} takes a list of tensors first", e.args[0].span)
            tensors, rest = list(items), e.args[1:]
        else:
            tensors = [self.tensor(a, frame) for a in e.args[:n]]
            rest = e.args[n:]
        attrs = self.bind_op(op, rest, e.kwargs, frame, e.span)
        return self.add_node(op.name, tensors, attrs, frame=None, span=e.span)

    def bind_op(self, op: OpDef, args, kwargs, frame, span: Span) -> dict:
        """Bind call arguments to the op's signature (like Python), evaluating them."""
        names = check_op_args(op, args, kwargs, span)
        bound = {}
        for a, v in zip(names, args):
            bound[a] = (self.op_arg(op, a, v, frame), v.span)
        extra = {}
        for kw in kwargs:
            if kw.name in names:
                bound[kw.name] = (self.op_arg(op, kw.name, kw.value, frame), kw.value.span)
            else:
                extra[kw.name] = self.expr(kw.value, frame)
        out = {}
        for arg in op.args:
            if arg.name in bound:
                out[arg.name] = bound[arg.name][0]
            elif op.varkw and arg.name == "sizes":
                out["sizes"] = tuple(extra.items())
            else:
                out[arg.name] = arg.default
        check_args(op, out, {k: s for k, (_, s) in bound.items()}, span)
        if op.name == "rearrange":
            self.check_pattern(out["pattern"], bound["pattern"][1] if "pattern" in bound else span,
                               dict(out.get("sizes", ())))
        return out

    def op_arg(self, op: OpDef, name: str, e: S.Expr, frame):
        v = self.expr(e, frame)
        if isinstance(v, Tensor):
            raise ArchError(f"argument '{name}' of {op.name} must be a value, not a tensor", e.span)
        if _contains_sym(v) and op.name not in ("reshape", "expand"):
            raise ArchError(f"argument '{name}' of {op.name} depends on the input size", e.span,
                            hint="module sizes must be known at compile time")
        return v

    def check_pattern(self, pattern, span: Span, sizes: dict) -> None:
        if not isinstance(pattern, str):
            raise ArchError("a rearrange pattern is a string", span, hint='e.g. "b c h w -> b h w c"')
        try:
            parse_pattern(pattern)
            check_sizes(pattern, sizes)
        except PatternError as exc:
            literal = span.end_line == span.line and span.end_col - span.col == len(pattern) + 2
            col, width = (span.col + 1 + exc.offset, exc.width) if literal else (span.col, span.end_col - span.col)
            raise ArchError(exc.message, Span(span.file, span.line, col, span.line, col + width),
                            hint=exc.hint) from None


def check_op_args(op: OpDef, args, kwargs, span: Span) -> tuple[str, ...]:
    """The arguments (besides tensors) fit the op's signature, like a Python call; values are
    not needed. Returns the names positional arguments bind to."""
    names = ("pattern",) if op.name == "rearrange" else op.arg_names
    if op.name == "rearrange":
        pattern = args[0] if args else next((k.value for k in kwargs if k.name == "pattern"), None)
        if pattern is not None and not (isinstance(pattern, S.Const) and isinstance(pattern.value, str)):
            raise ArchError("write the rearrange pattern as a string literal", pattern.span,
                            hint="patterns are lowered to reshapes when the spec is compiled")
    if len(args) > len(names):
        raise ArchError(f"{op.name} takes at most {len(names)} argument(s) besides tensors, "
                        f"got {len(args)}", args[len(names)].span, hint=f"signature: {signature(op)}")
    given = set(names[:len(args)])
    for kw in kwargs:
        if kw.name in given:
            raise ArchError(f"argument '{kw.name}' is given twice", kw.span)
        if kw.name not in names and not op.varkw:
            raise ArchError(f"{op.name} has no argument '{kw.name}'", kw.span,
                            hint=did_you_mean(kw.name, names) or f"signature: {signature(op)}")
        given.add(kw.name)
    for arg in op.args:
        if arg.default is REQUIRED and arg.name not in given and not (op.varkw and arg.name == "sizes"):
            raise ArchError(f"{op.name} is missing argument '{arg.name}'", span, hint=f"signature: {signature(op)}")
    return names


def arg_list(op: OpDef, sizes: str = "**sizes") -> list[str]:
    """The op's arguments (besides tensors) as a spec author writes them: `k`, `stride=1`."""
    parts = []
    for a in op.args:
        if op.varkw and a.name == "sizes":
            parts.append(sizes)
        elif a.default is REQUIRED:
            parts.append(a.name)
        else:
            parts.append(f"{a.name}={show_value(a.default)}")
    return parts


def signature(op: OpDef) -> str:
    parts = ["tensors" if op.n_inputs == -1 else "t"] * (1 if op.n_inputs else 0)
    return f"{op.name}({', '.join(parts + arg_list(op))})"


def _contains_sym(v) -> bool:
    if isinstance(v, Sym):
        return True
    return isinstance(v, tuple) and any(_contains_sym(x) for x in v)
