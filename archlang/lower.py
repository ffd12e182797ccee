"""Lowering: what each statement and call of a spec means, decided once.

The syntax tree says what was written; the lowered tree says what it means: whether a layer is a
block instance, a module op, a layer chosen by a parameter or a plain function, how its module is
named (label, indexed or computed label, or position in a sequential body), which op arguments its
expressions bind to, whether an assignment creates a weight, splits a tensor or computes an
expression, whether a tensor is computed in forward or when the module is built (`phases.py`),
how many tensors a block takes and returns, and whether a loop's items are lone layers (an
nn.Sequential, or an nn.ModuleList when they take several inputs) or groups. Elaboration (IR) and
codegen (PyTorch source) both walk this tree, so neither re-decides; translation validation then
checks that they agree node for node.

Lowering is static: it needs no values, so it also checks code that a given build does not run
(every `if` arm, every loop body, every block reachable from the model), as codegen emits it all.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import syntax as S
from .binding import (  # noqa: F401  (re-exported: the lowering's view of calls)
    MULTI_OUTPUT,
    Binding,
    CallPlan,
    arg_list,
    bind,
    block_signature,
    check_block_args,
    check_op_args,
    check_pattern,
    default,
    plan_call,
    show_value,
    signature,
)
from .bodies import (  # noqa: F401
    CHOOSE,
    describe_stmt,
    is_layer_on_x,
    is_plain_chain,
    lone_item,
    outputs_of,
    plain_breaker,
)
from .errors import ArchError, Span, did_you_mean
from .inits import check_rules
from .ops import OPS, OpDef, meanings
from .phases import BOTH, BUILD, FORWARD, Scope

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
    """`return a` / `return a, b`: the body's result tensor(s)."""


@dataclass(frozen=True)
class LPass(LStmt):
    pass


@dataclass(frozen=True)
class LExpr(LStmt):
    """`a, b = expr`: bind names to the value of an expression (unpacked when several). `build`:
    a build-time tensor, computed in __init__ (no forward tensor is involved)."""

    build: bool = False


@dataclass(frozen=True)
class LSource(LStmt):
    """`w = weight(...)` / `buffer(...)`: a tensor the module owns, named by its target. With
    `computed`, the first argument is a build-time tensor: the values, not a shape."""

    binding: Binding
    computed: bool = False


@dataclass(frozen=True)
class LSplit(LStmt):
    """`a, b = chunk(t, 2, dim)` / `unbind(t, dim)`: one tensor split into named parts."""

    fn: str
    tensor: S.Expr
    dim: S.Expr | None
    chunks: S.Expr | None
    build: bool = False


@dataclass(frozen=True)
class LApply(LStmt):
    """A layer statement. `block` or `op` is what it applies (or `choice`: an expression naming
    the op, `layer(act_layer)`); `module` says whether it makes a module (blocks, module ops and
    chosen layers always; activations and pools when labelled or in a sequential body), named by
    its label, or by position when `label` is None. `outputs`: how many tensors it returns."""

    block: S.BlockDef | None
    op: OpDef | None
    binding: Binding | None  # op arguments (ops only)
    module: bool
    choice: S.Expr | None = None
    outputs: int = 1

    @property
    def label(self) -> S.Label | None:
        return self.st.label


@dataclass(frozen=True)
class LBody:
    """A statement list. `sequential` bodies (unlabelled layers, and unlabelled loops and ifs of
    them, in a group or loop item) number their modules by position and are emitted as
    nn.Sequential."""

    stmts: tuple[LStmt, ...]
    sequential: bool = False


@dataclass(frozen=True)
class LGroup(LStmt):
    """`label: { ... }`, applied to x, or bound (`y = q: { ... }(t)`, see `st.inputs`)."""

    body: LBody
    outputs: int = 1


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
    any other body, a group made of `body`. `module_list`: the lone item takes tensors besides
    x (`blocks: repeat n { blk(d)(x, rope) }`), so nn.Sequential cannot call it: an
    nn.ModuleList whose items forward calls in turn."""

    item: LApply | None
    body: LBody | None
    module_list: bool = False


@dataclass(frozen=True)
class Where:
    """Where statements are lowered: a sequential body or not, the class body they belong to
    (for error messages), and the tensor names in scope with when they are computed."""

    sequential: bool
    scope: Scope
    owner: str  # "block 'foo'", "the model body", "group 'head'", "the body of loop 'blocks'"
    breaker: S.Stmt | None = None  # the statement that keeps a group body from being sequential


# ---------------------------------------------------------------- the lowering


class Lowering:
    """Lower the model and every block it reaches, each block once."""

    def __init__(self, blocks: dict[str, S.BlockDef]):
        self.blocks = blocks
        self.lowered: dict[str, LBody] = {}

    def block(self, name: str) -> LBody:
        """The lowered body of block `name` (a class body: never sequential)."""
        if name not in self.lowered:
            bdef = self.blocks[name]
            self.lowered[name] = LBody(())  # placeholder: recursive blocks lower once
            where = Where(False, Scope(bdef.inputs), f"block '{name}'")
            self.lowered[name] = LBody(self.stmts(bdef.body, where))
            outputs_of(bdef.body)  # every return of the block gives the same number of tensors
            check_rules(bdef)
        return self.lowered[name]

    def group(self, stmts, owner: str) -> LBody:
        sequential = is_plain_chain(stmts, self.blocks)
        where = Where(sequential, Scope(("x",)), owner, None if sequential else plain_breaker(stmts, self.blocks))
        return LBody(self.stmts(stmts, where), sequential)

    def stmts(self, stmts, where: Where) -> tuple[LStmt, ...]:
        return tuple(self.stmt(st, where) for st in stmts)

    def stmt(self, st: S.Stmt, where: Where) -> LStmt:
        method = getattr(self, "l_" + type(st).__name__)
        return method(st, where)

    # -- simple statements
    def l_Let(self, st: S.Let, where):
        self.exprs(st.value)
        return LLet(st)

    def l_Return(self, st: S.Return, where):
        self.exprs(*st.values)
        for v in st.values:
            where.scope.forward(v, self.blocks)
        return LReturn(st)

    def l_Pass(self, st, where):
        return LPass(st)

    def l_Assign(self, st: S.Assign, where: Where):
        v = st.value
        scope = where.scope
        if isinstance(v, S.Call) and isinstance(v.func, S.Name):
            op = OPS.get(v.func.id)
            if op is not None and op.kind == "source":
                return self.source(st, v, op, scope)
            if v.func.id in MULTI_OUTPUT:
                return self.split(st, v, scope)
        self.exprs(v)
        when = scope.when(v, self.blocks)
        scope.bind(st.targets, when, st.span)
        return LExpr(st, build=when == BUILD)

    def source(self, st: S.Assign, call: S.Call, op: OpDef, scope: Scope) -> LSource:
        if len(st.targets) != 1:
            raise ArchError(f"{op.name}(...) makes one tensor; assign it to one name", st.span)
        self.exprs(*call.args, *(k.value for k in call.kwargs))
        binding = bind(op, call.args, call.kwargs, call.span)
        first = binding.expr("shape") if "shape" in op.arg_names else None
        when = scope.when(first, self.blocks, both=BUILD) if first is not None else None
        if when == FORWARD:
            raise ArchError(f"the values of a {op.name} are computed when the module is built, but this "
                            "expression reads a forward tensor", first.span,
                            hint="build it from arange(n), lists and compile-time values")
        computed = when == BUILD
        if computed:
            for name in ("init", "std"):
                if binding.expr(name) is not None:
                    raise ArchError(f"a computed {op.name} takes its values from its first argument, "
                                    f"so '{name}' has no meaning here", binding.expr(name).span, hint=f"drop '{name}'")
        scope.bind(st.targets, BOTH if computed else FORWARD, st.span)
        return LSource(st, binding, computed)

    def split(self, st: S.Assign, call: S.Call, scope: Scope) -> LSplit:
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
        when = scope.when(call.args[0], self.blocks)
        scope.bind(st.targets, when or FORWARD, st.span)
        return LSplit(st, fn, call.args[0], given.get("dim"), given.get("chunks"), build=when == BUILD)

    # -- layers
    def l_Layer(self, st: S.Layer, where: Where):
        self.exprs(*st.args, *(k.value for k in st.kwargs), *(st.inputs or ()), *label_exprs(st.label))
        for e in st.inputs or ():
            where.scope.forward(e, self.blocks)
        bdef = self.blocks.get(st.callee)
        if bdef is not None:
            node = self.block_call(st, bdef)
        elif st.callee == CHOOSE:
            node = self.choice(st)
        else:
            op = self.layer_op(st)
            module = op.kind == "module" or (op.kind == "act" and (st.label is not None or where.sequential))
            node = LApply(st, None, op, bind(op, st.args, st.kwargs, st.span), module)
        if node.module and st.label is None and not where.sequential:
            raise needs_label(st, where)
        where.scope.bind(st.targets or (), FORWARD, st.span)
        return node

    def block_call(self, st: S.Layer, bdef: S.BlockDef) -> LApply:
        check_block_args(bdef, st.args, st.kwargs, st.span)
        self.block(bdef.name)
        given = 1 if st.inputs is None else len(st.inputs)
        if given != len(bdef.inputs):
            names = ", ".join(bdef.inputs)
            raise ArchError(f"block '{bdef.name}' takes {len(bdef.inputs)} tensor input(s) ({names}), got {given}",
                            st.span, hint=f"pass them after the call: `label: {bdef.name}(...)({names})`")
        outputs = outputs_of(bdef.body)
        check_outputs(st, f"block '{bdef.name}'", outputs)
        return LApply(st, bdef, None, None, True, outputs=outputs)

    def choice(self, st: S.Layer) -> LApply:
        """`layer(act_layer, ...)`: the op is the value of the first argument, an op name; the
        rest are that op's arguments (bound when the value is known)."""
        if not st.args:
            raise ArchError(f"{CHOOSE}(...) takes the name of a layer first", st.span,
                            hint=f'e.g. `act: {CHOOSE}(act_layer)` with `param act_layer = "gelu"`')
        if st.inputs is not None and len(st.inputs) != 1:
            raise ArchError(f"a chosen layer takes one tensor input, got {len(st.inputs)}", st.span)
        check_outputs(st, "a chosen layer", 1)
        return LApply(st, None, None, None, True, choice=st.args[0])

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
    def l_Group(self, st: S.Group, where: Where):
        self.exprs(*label_exprs(st.label), *(st.inputs or ()))
        if st.inputs is not None:
            if len(st.inputs) != 1:
                raise ArchError(f"a group takes one tensor input (its x), got {len(st.inputs)}", st.span,
                                hint="a block can take several: `block name(...) (x, y) { ... }`")
            where.scope.forward(st.inputs[0], self.blocks)
        outputs = outputs_of(st.body)
        check_outputs(st, f"group '{st.label.name}'", outputs)
        where.scope.bind(st.targets or (), FORWARD, st.span)
        return LGroup(st, self.group(st.body, f"group '{st.label.name}'"), outputs)

    def l_Residual(self, st: S.Residual, where: Where):
        inner = Where(False, where.scope, where.owner, where.breaker)
        shortcut = self.stmts(st.shortcut, inner) if st.shortcut else None
        return LResidual(st, self.stmts(st.body, inner), shortcut)

    def l_Branches(self, st: S.Branches, where: Where):
        if len(st.branches) < 2 and st.fused_name is None:
            raise ArchError(f"'{st.op}' needs at least two branches separated by '|'", st.span,
                            hint=f"`{st.op} as NAME {{ ... }}` may have one: it names the layer the branch fuses into")
        for branch in st.branches:
            if not branch:
                raise ArchError("empty branch", st.span, hint="write identity() for a skip branch")
        optional = [b for b in st.branches if S.optional_branch(b) is not None]
        if optional and st.op != "sum":
            raise ArchError("only a sum may have optional branches (a lone `if` without `else`)",
                            optional[0][0].span, hint="an average would divide by a count that depends on the build")
        if len(optional) == len(st.branches):
            raise ArchError("every branch of this sum is optional", st.span,
                            hint="give it at least one branch that is not a lone `if` without `else`")
        inner = Where(False, where.scope, where.owner, where.breaker)
        return LBranches(st, tuple(self.stmts(b, inner) for b in st.branches))

    def l_If(self, st: S.If, where: Where):
        """Arms are lowered from the same names; a name an arm makes a build-time tensor and
        another a forward one cannot be read after the `if`."""
        self.exprs(*(test for test, _ in st.arms))
        before = where.scope.copy()
        after = []

        def arm(body):
            where.scope.kinds = dict(before.kinds)
            out = self.stmts(body, where)
            after.append(where.scope.copy())
            return out

        arms = tuple((test, arm(body)) for test, body in st.arms)
        orelse = arm(st.orelse) if st.orelse is not None else None
        where.scope.kinds = before.merged(*after, *([] if st.orelse is not None else [before])).kinds
        return LIf(st, arms, orelse)

    def l_For(self, st: S.For, where: Where):
        self.exprs(st.start, st.stop, *label_exprs(st.label))
        if st.label is None:
            return LLoop(st, self.loop_body(st.body, where))
        only = lone_item(st.body, self.blocks)
        if only is not None:
            item = self.l_Layer(only, Where(True, where.scope, where.owner))
            return LContainer(st, item, None, module_list=only.inputs is not None and not _just_x(only.inputs))
        return LContainer(st, None, self.group(st.body, f"the body of loop '{st.label.name}'"))

    def loop_body(self, body, where: Where) -> tuple[LStmt, ...]:
        """A loop body is lowered until the names it binds agree with those it starts from (a
        second pass sees what the first iteration left for the next)."""
        before = where.scope.copy()
        out = self.stmts(body, where)
        merged = before.merged(where.scope)
        if merged.kinds != where.scope.kinds:
            where.scope.kinds = merged.kinds
            out = self.stmts(body, where)
            where.scope.kinds = before.merged(where.scope).kinds
        return out

    # -- expressions: every call and attribute is checked, also where no build runs it
    def exprs(self, *exprs: S.Expr) -> None:
        for e in exprs:
            for sub in S.subexprs(e):
                if isinstance(sub, S.Attr):
                    raise ArchError(f"attribute access '.{sub.name}' is not part of the language", sub.span,
                                    hint="use functions: shape(t), transpose(t, -2, -1)")
                if isinstance(sub, S.Call):
                    plan_call(sub, self.blocks)


def _just_x(inputs) -> bool:
    return len(inputs) == 1 and isinstance(inputs[0], S.Name) and inputs[0].id == "x"


def label_exprs(label: S.Label | None) -> tuple[S.Expr, ...]:
    return label.exprs if label is not None else ()


def check_outputs(st, what: str, outputs: int) -> None:
    """A call site binds as many names as the callee returns tensors (or splits one tensor)."""
    targets = st.targets
    if outputs > 1 and targets is None:
        names = ", ".join("abcdefgh"[:outputs])
        raise ArchError(f"{what} returns {outputs} tensors, so its result cannot become x", st.span,
                        hint=f"bind them: `{names} = label: ...(x)`")
    if outputs > 1 and len(targets) != outputs:
        raise ArchError(f"{what} returns {outputs} tensors, but {len(targets)} name(s) are bound", st.span)


def needs_label(st: S.Layer, where: Where) -> ArchError:
    """Why an unlabelled module cannot be named here, and what to do about it."""
    what = st.callee if st.callee in OPS or st.callee == CHOOSE else f"block '{st.callee}'"
    if where.breaker is None:
        return ArchError(f"this {what} needs a label: {where.owner} becomes a class whose modules are "
                         "named by their labels (only a group or loop item made of unlabelled layers alone "
                         "is an nn.Sequential numbered 0, 1, ...)", st.span, hint=f"write `name: {st.callee}(...)`")
    return ArchError(f"this {what} needs a label: {where.owner} is not a plain sequence of unlabelled layers, "
                     "so its modules cannot be numbered like nn.Sequential entries", st.span,
                     notes=((describe_stmt(where.breaker), where.breaker.span),),
                     hint=f"label it (`name: {st.callee}(...)`), or keep only unlabelled layers, "
                          "and loops and ifs of them, in the body")


def lower_program(program) -> tuple[LBody, Lowering]:
    """The lowered model body and the lowering (which holds every reachable block's body)."""
    lowering = Lowering(program.blocks)
    model = program.model
    body = lowering.stmts(model.body, Where(False, Scope(("x",)), "the model body"))
    check_rules(model)
    if outputs_of(model.body) != 1:
        ret = next(st for st in S.walk(model.body) if isinstance(st, S.Return))
        raise ArchError("the model returns one tensor", ret.span, hint="return the logits")
    return LBody(body), lowering
