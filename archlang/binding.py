"""Argument binding and call planning: what a call's expressions bind to, checked without values.

`bind` binds the non-tensor arguments of an op call like a Python call; `plan_call` decides what a
call inside an expression calls (a builtin, `shape(t)`, or an op, with or without a tensor lending
a device); `check_block_args` checks a block call. Lowering uses these once per call; the
evaluator and the expression translator read the results.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import syntax as S
from .einpattern import PatternError, check_sizes, parse_pattern
from .errors import ArchError, Span, did_you_mean
from .ops import OPS, REQUIRED, OpDef, meanings
from .program import literal
from .values import BUILTINS, show_value

MULTI_OUTPUT = {"chunk", "unbind"}  # functions whose results are unpacked into several names


# ---------------------------------------------------------------- argument binding


@dataclass(frozen=True)
class Binding:
    """Op arguments bound like a Python call: for each of the op's arguments the expression it
    got (None: the op's default), plus extra keyword sizes for ops that take them (rearrange)."""

    op: OpDef
    args: tuple[tuple[str, S.Expr | None], ...]
    sizes: tuple[tuple[str, S.Expr], ...]
    span: Span

    def expr(self, name: str) -> S.Expr | None:
        return dict(self.args)[name]


def bind(op: OpDef, args, kwargs, span: Span) -> Binding:
    """Bind the non-tensor arguments of a call to `op`, checking them like Python would."""
    names = check_op_args(op, args, kwargs, span)
    given = dict(zip(names, args))
    sizes = []
    for kw in kwargs:
        if kw.name in op.arg_names and not (op.varkw and kw.name == "sizes"):
            given[kw.name] = kw.value
        else:
            sizes.append((kw.name, kw.value))
    bound = tuple((a.name, given.get(a.name)) for a in op.args if not (op.varkw and a.name == "sizes"))
    binding = Binding(op, bound, tuple(sizes), span)
    if op.varkw:  # the op takes an einops pattern and the sizes of its axes
        pattern = binding.expr("pattern")
        check_pattern(pattern.value, pattern.span, {k: None for k, _ in sizes})
    for name, choices in op.literal.items():
        e = binding.expr(name)
        if e is not None and not (isinstance(e, S.Const) and (e.value in choices or e.value == default(op, name))):
            written = " or ".join(f'"{c}"' for c in choices)
            raise ArchError(f"argument '{name}' of {op.name} must be {written}, written as a string literal",
                            e.span, hint=did_you_mean(str(getattr(e, "value", "")), choices))
    return binding


def default(op: OpDef, name: str):
    return next(a.default for a in op.args if a.name == name)


def check_op_args(op: OpDef, args, kwargs, span: Span) -> tuple[str, ...]:
    """The arguments (besides tensors) fit the op's signature, like a Python call; values are
    not needed. Returns the names positional arguments bind to."""
    names = ("pattern",) if op.varkw else op.arg_names
    if op.varkw:
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


def check_pattern(pattern, span: Span, sizes: dict) -> None:
    """A rearrange pattern parses and its axis sizes fit; errors point into the string literal."""
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


def check_block_args(bdef: S.BlockDef, args, kwargs, span: Span) -> None:
    """The arguments fit the block's parameters, like a Python call; values are not needed."""
    names = [p.name for p in bdef.params]
    if len(args) > len(names):
        raise ArchError(f"block '{bdef.name}' takes {len(names)} argument(s), got {len(args)}",
                        args[len(names)].span, hint=f"signature: {block_signature(bdef)}")
    given = set(names[:len(args)])
    for kw in kwargs:
        if kw.name not in names:
            raise ArchError(f"block '{bdef.name}' has no parameter '{kw.name}'", kw.span,
                            hint=did_you_mean(kw.name, names) or f"signature: {block_signature(bdef)}")
        if kw.name in given:
            raise ArchError(f"argument '{kw.name}' is given twice", kw.span)
        given.add(kw.name)
    for p in bdef.params:
        if p.name not in given and p.default is None:
            raise ArchError(f"block '{bdef.name}' is missing argument '{p.name}'", span,
                            hint=f"signature: {block_signature(bdef)}")


# ---------------------------------------------------------------- calls inside expressions


@dataclass(frozen=True)
class CallPlan:
    """What a call inside an expression calls: a builtin, `shape(t)`, or an op applied to
    `tensors` (a list expression when the op takes a list) with the rest bound."""

    kind: str  # "builtin" | "shape" | "op"
    name: str
    tensors: tuple[S.Expr, ...] = ()
    binding: Binding | None = None
    tensor_list: bool = False  # the op takes a list of tensors as its first argument
    build: bool = False  # a generator called without a tensor: computed when the module is built


def plan_call(e: S.Call, blocks) -> CallPlan:
    """Decide what `e` calls, with every check that needs no values."""
    if isinstance(e.func, S.Call) and isinstance(e.func.func, S.Name) \
            and (e.func.func.id in blocks or getattr(OPS.get(e.func.func.id), "kind", "") in ("module", "act")):
        layer = e.func.func.id
        raise ArchError(f"'{layer}' is applied to inputs here, which makes it a layer: it needs a label",
                        e.span, hint=f"write `name: {layer}(...)(...)` (a nested layer takes a label)")
    if not isinstance(e.func, S.Name):
        raise ArchError("only named functions and ops can be called", e.func.span)
    name = e.func.id
    if name in BUILTINS and not (name in OPS and (len(e.args) > 1 or e.kwargs)):
        return CallPlan("builtin", name)  # sum(list); sum(t, dim) is the op (one argument: see evaluate)
    if name == "shape":
        if len(e.args) != 1 or e.kwargs:
            raise ArchError("shape takes one tensor: shape(t)", e.span)
        return CallPlan("shape", name, (e.args[0],))
    if name in MULTI_OUTPUT:
        raise ArchError(f"{name}(...) returns several tensors: unpack it, e.g. a, b = {name}(...)", e.span)
    op = OPS.get(name)
    if op is None:
        if name in blocks:
            raise ArchError(f"block '{name}' is a layer: apply it in a statement", e.span,
                            hint=f"write `y = label: {name}(...)(t)`")
        known = list(BUILTINS) + [n for n, o in OPS.items() if o.kind in ("function", "act") and not o.syntax]
        raise ArchError(f"unknown function '{name}'", e.func.span, hint=did_you_mean(name, known, meanings()))
    if op.kind == "module":
        raise ArchError(f"'{name}' has parameters, so it needs a label to name them", e.span,
                        hint=f"write `y = label: {name}(...)(t)`")
    if op.kind == "source":
        raise ArchError(f"{name}(...) must be assigned to a name, which names the tensor", e.span,
                        hint=f"write `gamma = {name}([dim])`")
    if op.syntax and op.call is None:
        raise ArchError(f"'{name}' is written with its own syntax, not called", e.func.span,
                        hint=f"write `{op.syntax}`")
    if op.has("generator") and len(e.args) <= sum(a.default is REQUIRED for a in op.args):
        # no tensor lends a device: a build-time tensor (arange(7)), computed in __init__
        return CallPlan("op", name, (), bind(op, e.args, e.kwargs, e.span), build=True)
    n = op.n_inputs
    if n == -2:  # the op's own arguments first, then the tensors: einsum("ij,jk->ik", a, b)
        k = len(op.args)
        if len(e.args) <= k:
            raise ArchError(f"{op.name} takes its {', '.join(op.arg_names)} and then tensors", e.span,
                            hint=f"signature: {signature(op)}")
        return CallPlan("op", name, tuple(e.args[k:]), bind(op, e.args[:k], e.kwargs, e.span))
    if n == -1 and not e.args:
        raise ArchError(f"{op.name} needs a list of tensors first", e.span)
    if len(e.args) < n:
        raise ArchError(f"{op.name} takes {n} tensor argument(s) first", e.span)
    k = 1 if n == -1 else n
    return CallPlan("op", name, tuple(e.args[:k]), bind(op, e.args[k:], e.kwargs, e.span), n == -1)


def signature(op: OpDef) -> str:
    if op.n_inputs == -2:
        return f"{op.name}({', '.join(arg_list(op))}, tensors...)"
    tensors = {-1: ["tensors"], 0: []}.get(op.n_inputs, ["t", "u", "v"][:op.n_inputs])
    return f"{op.name}({', '.join(tensors + arg_list(op))})"


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


def block_signature(bdef: S.BlockDef) -> str:
    def fmt(e) -> str:
        try:
            return show_value(literal(e))
        except ArchError:
            return "..."

    parts = [p.name if p.default is None else f"{p.name}={fmt(p.default)}" for p in bdef.params]
    return f"{bdef.name}({', '.join(parts)})"
