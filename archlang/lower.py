"""Lowering: what each statement and call of a spec means, decided once.

The syntax tree says what was written; the lowered tree says what it means: whether a layer is a
block instance, a module op or a plain function, how its module is named (label, indexed label or
position in a sequential body), which op arguments its expressions bind to, whether an assignment
creates a weight, splits a tensor or computes an expression, and whether a loop's items are lone
layers or groups. Elaboration (IR) and codegen (PyTorch source) both walk this tree, so neither
re-decides; translation validation then checks that they agree node for node.

Lowering is static: it needs no values, so it also checks code that a given build does not run
(every `if` arm, every loop body, every block reachable from the model), as codegen emits it all.
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


def plan_call(e: S.Call, blocks) -> CallPlan:
    """Decide what `e` calls, with every check that needs no values."""
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


# ---------------------------------------------------------------- lowered statements


@dataclass(frozen=True)
class LStmt:
    st: S.Stmt

    @property
    def span(self) -> Span:
        return self.st.span

    @property
    def roles(self) -> tuple[str, ...]:
        return self.st.roles


@dataclass(frozen=True)
class LLet(LStmt):
    """`let name = value`: a compile-time value."""


@dataclass(frozen=True)
class LReturn(LStmt):
    """`return value`: the body's result tensor."""


@dataclass(frozen=True)
class LPass(LStmt):
    pass


@dataclass(frozen=True)
class LExpr(LStmt):
    """`a, b = expr`: bind names to the value of an expression (unpacked when several)."""


@dataclass(frozen=True)
class LSource(LStmt):
    """`w = weight(...)` / `buffer(...)`: a tensor the module owns, named by its target."""

    binding: Binding


@dataclass(frozen=True)
class LSplit(LStmt):
    """`a, b = chunk(t, 2, dim)` / `unbind(t, dim)`: one tensor split into named parts."""

    fn: str
    tensor: S.Expr
    dim: S.Expr | None
    chunks: S.Expr | None


@dataclass(frozen=True)
class LApply(LStmt):
    """A layer statement. `block` or `op` is what it applies; `module` says whether it makes a
    module (blocks and module ops always; activations and pools when labelled or in a sequential
    body), named by its label, or by position when `label` is None."""

    block: S.BlockDef | None
    op: OpDef | None
    binding: Binding | None  # op arguments (ops only)
    module: bool

    @property
    def label(self) -> S.Label | None:
        return self.st.label


@dataclass(frozen=True)
class LBody:
    """A statement list. `sequential` bodies (unlabelled layers only, in a group or loop item)
    number their modules by position and are emitted as nn.Sequential."""

    stmts: tuple[LStmt, ...]
    sequential: bool = False


@dataclass(frozen=True)
class LGroup(LStmt):
    body: LBody


@dataclass(frozen=True)
class LResidual(LStmt):
    body: tuple[LStmt, ...]
    shortcut: tuple[LStmt, ...] | None


@dataclass(frozen=True)
class LBranches(LStmt):
    branches: tuple[tuple[LStmt, ...], ...]


@dataclass(frozen=True)
class LIf(LStmt):
    arms: tuple[tuple[S.Expr, tuple[LStmt, ...]], ...]
    orelse: tuple[LStmt, ...] | None


@dataclass(frozen=True)
class LLoop(LStmt):
    """An unlabelled loop: its statements run in place, once per value of the variable."""

    body: tuple[LStmt, ...]


@dataclass(frozen=True)
class LContainer(LStmt):
    """A labelled loop: a container whose items are the lone layer `item` (an LApply) or, for
    any other body, a group made of `body`."""

    item: LApply | None
    body: LBody | None


# ---------------------------------------------------------------- the lowering


class Lowering:
    """Lower the model and every block it reaches, each block once."""

    def __init__(self, blocks: dict[str, S.BlockDef]):
        self.blocks = blocks
        self.lowered: dict[str, LBody] = {}

    def block(self, name: str) -> LBody:
        """The lowered body of block `name` (a class body: never sequential)."""
        if name not in self.lowered:
            self.lowered[name] = LBody(())  # placeholder: recursive blocks lower once
            self.lowered[name] = LBody(self.stmts(self.blocks[name].body, sequential=False))
        return self.lowered[name]

    def group(self, stmts) -> LBody:
        sequential = is_plain_chain(stmts, self.blocks)
        return LBody(self.stmts(stmts, sequential), sequential)

    def stmts(self, stmts, sequential: bool) -> tuple[LStmt, ...]:
        return tuple(self.stmt(st, sequential) for st in stmts)

    def stmt(self, st: S.Stmt, sequential: bool) -> LStmt:
        method = getattr(self, "l_" + type(st).__name__)
        return method(st, sequential)

    # -- simple statements
    def l_Let(self, st: S.Let, seq):
        self.exprs(st.value)
        return LLet(st)

    def l_Return(self, st: S.Return, seq):
        self.exprs(st.value)
        return LReturn(st)

    def l_Pass(self, st, seq):
        return LPass(st)

    def l_Assign(self, st: S.Assign, seq):
        v = st.value
        if isinstance(v, S.Call) and isinstance(v.func, S.Name):
            op = OPS.get(v.func.id)
            if op is not None and op.kind == "source":
                if len(st.targets) != 1:
                    raise ArchError(f"{op.name}(...) makes one tensor; assign it to one name", st.span)
                self.exprs(*v.args, *(k.value for k in v.kwargs))
                return LSource(st, bind(op, v.args, v.kwargs, v.span))
            if v.func.id in MULTI_OUTPUT:
                return self.split(st, v)
        self.exprs(v)
        return LExpr(st)

    def split(self, st: S.Assign, call: S.Call) -> LSplit:
        fn = call.func.id
        if not call.args:
            raise ArchError(f"{fn} needs a tensor", call.span)
        names = ("chunks", "dim") if fn == "chunk" else ("dim",)
        given = dict(zip(names, call.args[1:]))
        if len(call.args) - 1 > len(names):
            raise ArchError(f"{fn} takes at most {len(names)} argument(s) besides the tensor",
                            call.args[len(names) + 1].span)
        for kw in call.kwargs:
            if kw.name not in names:
                raise ArchError(f"{fn} has no argument '{kw.name}'", kw.span, hint=did_you_mean(kw.name, names))
            given[kw.name] = kw.value
        self.exprs(*call.args, *(k.value for k in call.kwargs))
        return LSplit(st, fn, call.args[0], given.get("dim"), given.get("chunks"))

    # -- layers
    def l_Layer(self, st: S.Layer, sequential: bool):
        self.exprs(*st.args, *(k.value for k in st.kwargs), *(st.inputs or ()), *label_index(st.label))
        bdef = self.blocks.get(st.callee)
        if bdef is not None:
            check_block_args(bdef, st.args, st.kwargs, st.span)
            self.block(bdef.name)
            node = LApply(st, bdef, None, None, True)
        else:
            op = self.layer_op(st)
            module = op.kind == "module" or (op.kind == "act" and (st.label is not None or sequential))
            node = LApply(st, None, op, bind(op, st.args, st.kwargs, st.span), module)
        if node.module and st.label is None and not sequential:
            raise ArchError("this layer needs a label: it is mixed with other statements, so it cannot be "
                            "numbered like an nn.Sequential entry", st.span, hint="write `name: ...`")
        return node

    def layer_op(self, st: S.Layer) -> OpDef:
        op = OPS.get(st.callee)
        if op is None:
            known = list(self.blocks) + list(OPS)
            raise ArchError(f"unknown layer '{st.callee}'", st.callee_span,
                            hint=did_you_mean(st.callee, known, meanings()) or "define it with `block name(...) { }`")
        if op.kind == "source":
            raise ArchError(f"{op.name}(...) makes a tensor; assign it to a name", st.span,
                            hint=f"write `gamma = {op.name}([dim])`")
        if op.kind == "function" and st.label is not None:
            raise ArchError(f"{op.name} has no parameters and is not a module, so it takes no label",
                            st.label.span, hint="drop the label")
        return op

    # -- structure
    def l_Group(self, st: S.Group, seq):
        self.exprs(*label_index(st.label))
        return LGroup(st, self.group(st.body))

    def l_Residual(self, st: S.Residual, seq):
        shortcut = self.stmts(st.shortcut, False) if st.shortcut else None
        return LResidual(st, self.stmts(st.body, False), shortcut)

    def l_Branches(self, st: S.Branches, seq):
        if len(st.branches) < 2:
            raise ArchError(f"'{st.op}' needs at least two branches separated by '|'", st.span)
        for branch in st.branches:
            if not branch:
                raise ArchError("empty branch", st.span, hint="write identity() for a skip branch")
        return LBranches(st, tuple(self.stmts(b, False) for b in st.branches))

    def l_If(self, st: S.If, seq):
        self.exprs(*(test for test, _ in st.arms))
        arms = tuple((test, self.stmts(body, False)) for test, body in st.arms)
        return LIf(st, arms, self.stmts(st.orelse, False) if st.orelse is not None else None)

    def l_For(self, st: S.For, seq):
        self.exprs(st.start, st.stop, *label_index(st.label))
        if st.label is None:
            return LLoop(st, self.stmts(st.body, False))
        only = st.body[0] if len(st.body) == 1 else None
        if is_lone_item(only, self.blocks):
            return LContainer(st, self.l_Layer(only, True), None)
        return LContainer(st, None, self.group(st.body))

    # -- expressions: every call and attribute is checked, also where no build runs it
    def exprs(self, *exprs: S.Expr) -> None:
        for e in exprs:
            for sub in S.subexprs(e):
                if isinstance(sub, S.Attr):
                    raise ArchError(f"attribute access '.{sub.name}' is not part of the language", sub.span,
                                    hint="use functions: shape(t), transpose(t, -2, -1)")
                if isinstance(sub, S.Call):
                    plan_call(sub, self.blocks)


def label_index(label: S.Label | None) -> tuple[S.Expr, ...]:
    return (label.index,) if label is not None and label.index is not None else ()


def is_layer_on_x(st) -> bool:
    """An unlabelled layer applied to x whose output becomes x."""
    return isinstance(st, S.Layer) and st.label is None and st.targets is None and st.inputs is None


def is_lone_item(st, blocks) -> bool:
    """A loop body that is one unlabelled module layer: each item is that module itself."""
    return is_layer_on_x(st) and (st.callee in blocks or getattr(OPS.get(st.callee), "kind", "") == "module")


def is_plain_chain(stmts, blocks) -> bool:
    """Unlabelled layers only, each a block, module or activation: what nn.Sequential expresses."""
    if not stmts:
        return False
    for st in stmts:
        if not is_layer_on_x(st):
            return False
        op = OPS.get(st.callee)
        if st.callee not in blocks and (op is None or op.kind not in ("module", "act")):
            return False
    return True


def lower_program(program) -> tuple[LBody, Lowering]:
    """The lowered model body and the lowering (which holds every reachable block's body)."""
    lowering = Lowering(program.blocks)
    return LBody(lowering.stmts(program.model.body, False)), lowering


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
