"""Typed syntax tree of a spec: what the parser produces and every later stage reads.

Lark trees never leave `parser.py`; they become these frozen dataclasses, each carrying the
`Span` it came from. Statements also carry roles (`@stem`, `@token_mixer`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    span: Span


@dataclass(frozen=True)
class Const(Expr):
    """A literal: int, float, bool, str or None."""

    value: object


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class BinOp(Expr):
    """Arithmetic (+ - * / // % ** @), comparison (== != < <= > >=) or boolean (and, or)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Unary(Expr):
    """`-e`, `+e` or `not e`."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Cond(Expr):
    """`then if test else orelse`."""

    then: Expr
    test: Expr
    orelse: Expr


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call(Expr):
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]


@dataclass(frozen=True)
class Slice(Expr):
    lo: Expr | None
    hi: Expr | None
    step: Expr | None


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    subs: tuple[Expr, ...]


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    name: str


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Label:
    """A module name; `index` is set for indexed labels (`qkvs[i]:`, an nn.ModuleList entry),
    `computed` for computed names (`layer{i + 1}:` is `layer` followed by the value)."""

    name: str
    index: Expr | None
    span: Span
    computed: Expr | None = None

    @property
    def exprs(self) -> tuple[Expr, ...]:
        return tuple(e for e in (self.index, self.computed) if e is not None)


@dataclass(frozen=True)
class Stmt:
    span: Span
    roles: tuple[str, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class Let(Stmt):
    name: str
    value: Expr


@dataclass(frozen=True)
class Fused:
    """What makes a layer of the deploy form: `recipe` computes its weights from the train-form
    modules it replaced (see archlang.fusion), with paths relative to the enclosing module; `rule`
    is the fusion rule that made it; `named` says its label was chosen with `as NAME`."""

    recipe: tuple
    rule: str
    named: bool = False


@dataclass(frozen=True)
class Layer(Stmt):
    """Apply op or block `callee(args)` to `inputs` (default: x); bind `targets` (default: x).
    `fused` is set only on layers the fuse-reparam pass made."""

    label: Label | None
    callee: str
    callee_span: Span
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    inputs: tuple[Expr, ...] | None
    targets: tuple[str, ...] | None
    fused: Fused | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class Assign(Stmt):
    targets: tuple[str, ...]
    value: Expr


@dataclass(frozen=True)
class Group(Stmt):
    """`label: { body }`, applied to x; as a bound layer (`y = q: { ... }(t)`) it has `inputs`
    (one tensor) and `targets`."""

    label: Label
    body: tuple[Stmt, ...]
    inputs: tuple[Expr, ...] | None = None
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Residual(Stmt):
    """`x = body(x) + shortcut(x)`; `fused_name` (`residual as NAME`) names the deploy-form module."""

    body: tuple[Stmt, ...]
    shortcut: tuple[Stmt, ...] | None
    fused_name: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class Branches(Stmt):
    """`sum { a | b }` or `avg { a | b }`; `fused_name` names the deploy-form module."""

    op: str
    fused_name: str | None
    branches: tuple[tuple[Stmt, ...], ...]


@dataclass(frozen=True)
class If(Stmt):
    arms: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] | None


@dataclass(frozen=True)
class For(Stmt):
    """`for var in start..stop` or `repeat n` (var None, start 0); labelled = container."""

    label: Label | None
    var: str | None
    start: Expr
    stop: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Return(Stmt):
    """`return a` or `return a, b` (a block with several outputs)."""

    values: tuple[Expr, ...]

    @property
    def value(self) -> Expr:
        return self.values[0]


@dataclass(frozen=True)
class Pass(Stmt):
    pass


# ---------------------------------------------------------------- init rules


@dataclass(frozen=True)
class InitItem:
    """`weight(init = "trunc_normal", std = 0.02)` inside an init rule: how to set one parameter."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True)
class InitRule:
    """`init linear, conv2d [in label] { weight(...); bias(...) }`: the modules of these ops that the
    body builds (under `within`, a label of the body, when given) get their parameters set so, at
    the end of the body's constructor. Kept on the BlockDef, not among its statements."""

    ops: tuple[tuple[str, Span], ...]
    within: tuple[str, Span] | None
    items: tuple[InitItem, ...]
    span: Span


# ---------------------------------------------------------------- top level


@dataclass(frozen=True)
class ParamDecl:
    name: str
    value: Expr
    span: Span
    kinds: tuple[str, ...] = ()  # the kinds of value it takes; () means the default's kind


@dataclass(frozen=True)
class Variant:
    name: str
    aka: tuple[str, ...]
    extends: str | None
    extends_span: Span | None
    values: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True)
class BlockParam:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    """A block (or the model body). `inputs` names its tensor inputs; the current tensor `x`
    starts as the input named x, or else as the first."""

    name: str
    params: tuple[BlockParam, ...]
    body: tuple[Stmt, ...]
    roles: tuple[str, ...]
    span: Span
    file: str
    inputs: tuple[str, ...] = ("x",)
    input_spans: tuple[Span, ...] = ()
    inits: tuple[InitRule, ...] = ()  # weight initialisation rules, in order (see InitRule)


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


@dataclass(frozen=True)
class Require:
    """`require test, "message"`: the build stops with `message` when `test` is false."""

    test: Expr
    message: str
    span: Span


@dataclass(frozen=True)
class SpecFile:
    """One parsed `.arch` file, before imports are resolved."""

    path: str
    family: str | None
    family_span: Span | None
    imports: tuple[Import, ...]
    params: tuple[ParamDecl, ...]
    variants: tuple[Variant, ...]
    default: tuple[str, Span] | None
    input: tuple[tuple[Expr, ...], Span] | None
    blocks: tuple[BlockDef, ...]
    model: BlockDef | None
    requires: tuple[Require, ...] = ()
    input_defaults: tuple[Kwarg, ...] = ()  # `input [B, 3, H = 256, W = 256]`: run-time axes' defaults


# ---------------------------------------------------------------- walking


def sub_bodies(st: Stmt) -> list[tuple[Stmt, ...]]:
    """Every statement list nested directly in `st` (arms, branches, loop and group bodies)."""
    if isinstance(st, (Group, For)):
        return [st.body]
    if isinstance(st, Residual):
        return [st.body, st.shortcut or ()]
    if isinstance(st, Branches):
        return list(st.branches)
    if isinstance(st, If):
        return [b for _, b in st.arms] + [st.orelse or ()]
    return []


def own_bodies(st: Stmt) -> list[tuple[Stmt, ...]]:
    """Nested statement lists that belong to the same module (not groups or labelled loops)."""
    if isinstance(st, Group) or (isinstance(st, For) and st.label is not None):
        return []
    return sub_bodies(st)


def optional_branch(branch: tuple[Stmt, ...]) -> If | None:
    """A branch of a `sum` that is one `if` without `else`: when no arm's condition holds, the
    branch is left out of the sum (it does not contribute x)."""
    if len(branch) == 1 and isinstance(branch[0], If) and branch[0].orelse is None:
        return branch[0]
    return None


def walk(body):
    """Every statement of a body, nested ones included."""
    for st in body:
        yield st
        for sub in sub_bodies(st):
            yield from walk(sub)


def map_bodies(st: Stmt, fn) -> Stmt:
    """`st` with `fn` applied to each nested statement list."""
    import dataclasses

    if isinstance(st, (Group, For)):
        return dataclasses.replace(st, body=fn(st.body))
    if isinstance(st, Residual):
        return dataclasses.replace(st, body=fn(st.body), shortcut=fn(st.shortcut) if st.shortcut else None)
    if isinstance(st, Branches):
        return dataclasses.replace(st, branches=tuple(fn(b) for b in st.branches))
    if isinstance(st, If):
        return dataclasses.replace(st, arms=tuple((t, fn(b)) for t, b in st.arms),
                                   orelse=fn(st.orelse) if st.orelse else None)
    return st


def subexprs(e: Expr):
    """`e` and every expression inside it."""
    yield e
    for child in _fields(e):
        yield from subexprs(child)


def children(e: Expr) -> tuple[Expr, ...]:
    """The expressions directly inside `e`: a call's arguments (not the name it calls), a list's
    items, operands, a subscript's value and subscripts, a slice's bounds."""
    return tuple(_fields(e, skip="func" if isinstance(e, Call) else None))


def _fields(e: Expr, skip: str | None = None):
    import dataclasses

    for f in dataclasses.fields(e):
        if f.name == skip:
            continue
        value = getattr(e, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            item = item.value if isinstance(item, Kwarg) else item
            if isinstance(item, Expr):
                yield item
