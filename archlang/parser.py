"""Parse `.arch` text into the typed syntax tree (`syntax.py`), with friendly syntax errors.

The grammar lives in `grammar.lark`; a small post-lexer drops newlines inside brackets and
merges blank lines, so statements can span lines inside (...) and [...]. Lark's terminal names
never reach the user: `describe_terminal` turns them into words.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import syntax as S
from .errors import SOURCES, ArchError, Span
from .limits import MAX_NESTING, check_int_literal, check_value

PARAM_KINDS = ("number", "bool", "string", "list")  # what `param NAME: KIND | KIND = ...` may name

_TERMINALS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "_NL": "a new line",
    "$END": "the end of the file", "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('",
    "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "COLON": "':'",
    "EQUAL": "'='", "VBAR": "'|'", "AT": "'@'", "DOT": "'.'", "__ANON_0": "'..'",
}
_KEYWORD_HINTS = {
    "True": "booleans are written true and false", "False": "booleans are written true and false",
    "None": "the empty value is written none", "def": "blocks are defined with `block name(...) { }`",
    "==": "a single '=' assigns; '==' compares",
}


def keyword_hint(word: str) -> str | None:
    """A hint for Python spellings (True, None, def, ...) written in a spec."""
    return _KEYWORD_HINTS.get(word)


def describe_terminal(name: str) -> str:
    if name in _TERMINALS:
        return _TERMINALS[name]
    return f"'{name.lower()}'" if name.isupper() and name.isalpha() else name


class _PostLex:
    """Drop newlines nested in () or [] and collapse runs of newlines into one."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth, previous = 0, None
        for tok in stream:
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            if tok.type == "_NL" and (depth or (previous is not None and previous.type == "_NL")):
                continue
            previous = tok
            yield tok


@functools.cache
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                postlex=_PostLex())


def parse(text: str, path: str) -> S.SpecFile:
    """Parse one spec file; syntax errors become `ArchError`s pointing at the spot."""
    SOURCES.add(path, text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, path) from None
    _check_nesting(tree, path)
    return _build(_Builder(path), tree)


def _check_nesting(tree: Tree, path: str, dl: int = 0, dc: int = 0) -> None:
    """Refuse trees deeper than MAX_NESTING before anything recurses over them (the tree builder,
    elaboration and codegen all walk the syntax recursively)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ArchError(f"the spec nests more than {MAX_NESTING} levels deep here", _span(path, node.meta, dl, dc),
                            hint="brackets, operators and bodies inside bodies all count; split long expressions "
                                 "with `let` and long bodies into blocks")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _build(builder, tree):
    try:
        return builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ArchError):
            raise exc.orig_exc from None
        raise


def parse_expr(text: str, path: str) -> S.Expr:
    """Parse a lone expression (an override value) by wrapping it in a `let`."""
    SOURCES.add(path, text)
    src = "model {\nlet v = " + text + "\n}"
    try:
        tree = _lark().parse(src)
    except UnexpectedInput as exc:
        # An error on a later line of the wrapper means the value ended too early.
        col = exc.column - len("let v = ") if exc.line == 2 else len(text) + 1
        col = min(max(col, 1), len(text) + 1)
        raise ArchError(f"cannot read the value '{text}'", Span(path, 1, col, 1, col + 1),
                        hint="values are numbers, true/false/none, strings or lists like [2, 2, 6, 2]") from None
    _check_nesting(tree, path, -1, -len("let v = "))
    spec = _build(_Builder(path, line_offset=-1, col_offset=-len("let v = ")), tree)
    return spec.model.body[0].value


def _syntax_error(exc: UnexpectedInput, text: str, path: str) -> ArchError:
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        span = Span(path, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        return ArchError("unexpected end of file", span, hint="a closing '}' or ')' may be missing")
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        span = Span(path, exc.line, exc.column, exc.line, exc.column + 1)
        hint = "strings use double quotes" if char == "'" else None
        return ArchError(f"unexpected character {char!r}", span, hint=hint)
    assert isinstance(exc, UnexpectedToken)
    tok: Token = exc.token
    width = max(1, len(str(tok.value).splitlines()[0]) if str(tok.value).strip() else 1)
    span = Span(path, tok.line, tok.column, tok.line, tok.column + width)
    expected = sorted({describe_terminal(t) for t in exc.expected if not t.startswith("__")})
    shown = "end of line" if tok.type == "_NL" else f"'{tok.value}'"
    hint = _KEYWORD_HINTS.get(str(tok.value))
    before = (exc.token_history or [None])[-1]  # a keyword written as a name: `init = ...`, `repeat: ...`
    if hint is None and tok.type in ("EQUAL", "COLON") and before is not None and before.value.isalpha() \
            and before.type == before.value.upper():
        hint = f"'{before.value}' is a keyword of the language; name this something else"
    if hint is None and expected:
        hint = "expected " + ", ".join(expected[:6]) + (" ..." if len(expected) > 6 else "")
    return ArchError(f"unexpected {shown}", span, hint=hint)


def _span(path: str, meta, dl: int = 0, dc: int = 0) -> Span:
    line, end_line = meta.line + dl, meta.end_line + dl
    col = meta.column + (dc if line == 1 else 0)
    end_col = meta.end_column + (dc if end_line == 1 else 0)
    return Span(path, line, max(col, 1), end_line, max(end_col, col + 1))


def _tok_span(path: str, tok: Token, dl: int = 0, dc: int = 0) -> Span:
    line = tok.line + dl
    col = tok.column + (dc if line == 1 else 0)
    return Span(path, line, max(col, 1), line, max(col, 1) + len(str(tok)))


@v_args(meta=True)
class _Builder(Transformer):
    """Lark tree -> syntax.py dataclasses. Each method handles the rule of its name."""

    def __init__(self, path: str, line_offset: int = 0, col_offset: int = 0):
        super().__init__()
        self.path, self.dl, self.dc = path, line_offset, col_offset

    def sp(self, meta) -> Span:
        return _span(self.path, meta, self.dl, self.dc)

    def tsp(self, tok) -> Span:
        return _tok_span(self.path, tok, self.dl, self.dc)

    # -- top level
    def start(self, meta, items):
        kinds: dict[str, list] = {}
        for kind, value in items:
            kinds.setdefault(kind, []).append(value)
        one = _first_or_none(kinds, self.path)
        fam, inp = one("family"), one("input")
        return S.SpecFile(
            path=self.path, family=fam[0] if fam else None, family_span=fam[1] if fam else None,
            imports=tuple(kinds.get("import", ())), params=tuple(kinds.get("param", ())),
            variants=tuple(kinds.get("variant", ())), default=one("default"), input=inp[:2] if inp else None,
            blocks=tuple(kinds.get("block", ())), model=one("model"), requires=tuple(kinds.get("require", ())),
            input_defaults=inp[2] if inp else ())

    def family(self, meta, c):
        return "family", (str(c[0]), self.tsp(c[0]))

    def import_(self, meta, c):
        return "import", S.Import(_unquote(c[0]), self.sp(meta))

    def param(self, meta, c):
        kinds = c[1] if len(c) == 3 else ()
        return "param", S.ParamDecl(str(c[0]), c[-1], self.tsp(c[0]), kinds)

    def param_kinds(self, meta, c):
        for tok in c:
            if str(tok) not in PARAM_KINDS:
                raise ArchError(f"'{tok}' is not a kind of param value", self.tsp(tok),
                                hint="kinds are " + ", ".join(PARAM_KINDS) + ": `param w: number | list = 64`")
        return tuple(dict.fromkeys(str(tok) for tok in c))

    def variant(self, meta, c):
        name, rest = c[0], c[1:]
        aka = next((r for r in rest if isinstance(r, tuple) and r and r[0] == "aka"), ("aka",))[1:]
        ext = next((r for r in rest if isinstance(r, tuple) and r and r[0] == "extends"), None)
        values = tuple(r for r in rest if isinstance(r, S.Kwarg))
        return "variant", S.Variant(str(name), tuple(aka), ext[1] if ext else None,
                                    ext[2] if ext else None, values, self.tsp(name))

    def aka(self, meta, c):
        return ("aka", *(_unquote(t) for t in c))

    def extends(self, meta, c):
        return ("extends", str(c[0]), self.tsp(c[0]))

    def assign_param(self, meta, c):
        return S.Kwarg(str(c[0]), c[1], self.tsp(c[0]))

    def default(self, meta, c):
        return "default", (str(c[0]), self.tsp(c[0]))

    def input_(self, meta, c):
        """The axes as expressions (a defaulted axis is its name) and the defaults, as kwargs."""
        axes = tuple(S.Name(a.span, a.name) if isinstance(a, S.Kwarg) else a for a in c)
        return "input", (axes, self.sp(meta), tuple(a for a in c if isinstance(a, S.Kwarg)))

    def input_default(self, meta, c):
        return S.Kwarg(str(c[0]), c[1], self.tsp(c[0]))

    def require(self, meta, c):
        return "require", S.Require(c[0], _unquote(c[1]), self.sp(meta))

    def block_def(self, meta, c):
        roles = tuple(r for r in c if isinstance(r, _Role))
        name, params, inputs, body = c[len(roles):]
        _check_unique(params or ())
        inputs = inputs or [("x", None)]
        _check_inputs(inputs, params or ())
        body, inits = _take_inits(body)
        return "block", S.BlockDef(str(name), tuple(params or ()), body, tuple(r.name for r in roles),
                                   self.tsp(name), self.path, tuple(n for n, _ in inputs),
                                   tuple(sp for _, sp in inputs if sp is not None), inits)

    def tensor_inputs(self, meta, c):
        return [(str(t), self.tsp(t)) for t in c]

    def params(self, meta, c):
        return list(c)

    def param_item(self, meta, c):
        return S.BlockParam(str(c[0]), c[1] if len(c) > 1 else None, self.tsp(c[0]))

    def model_def(self, meta, c):
        roles, body = c[:-1], c[-1]
        body, inits = _take_inits(body)
        return "model", S.BlockDef("model", (), body, tuple(r.name for r in roles), self.sp(meta), self.path,
                                   inits=inits)

    def role(self, meta, c):
        return _Role(str(c[0]), self.tsp(c[0]))

    def body(self, meta, c):
        return _flatten(c)

    def branch(self, meta, c):
        return _flatten(c)

    # -- statements
    def stmt(self, meta, c):
        roles, st = c[:-1], c[-1]
        if isinstance(st, S.InitRule) and roles:
            raise ArchError("a role says what a module is for; an init rule makes no module", roles[0].span)
        if isinstance(st, _Seq):  # nested layers run first; roles belong to the written statement
            return _Seq(st.pre[:-1] + [_with_roles(st.last, tuple(r.name for r in roles)) if roles else st.last])
        if roles:
            st = _with_roles(st, tuple(r.name for r in roles))
        return st

    def let(self, meta, c):
        return S.Let(self.sp(meta), str(c[0]), c[1])

    def layer(self, meta, c):
        label, call = c
        return _seq(call.pre, S.Layer(self.sp(meta), label, *call.fields, targets=None))

    def bound_layer(self, meta, c):
        targets, label, applied = c
        return _seq(applied.pre, self.applied(meta, label, applied, targets))

    def applied(self, meta, label: S.Label, applied, targets):
        """A labelled layer or group applied to explicit inputs (bound or nested)."""
        if isinstance(applied, _GroupCall):
            return S.Group(self.sp(meta), label, applied.body, applied.inputs, targets)
        return S.Layer(self.sp(meta), label, *applied.fields, targets=targets)

    def bound_label(self, meta, c):
        return _expr_label(c[0])

    def computed_label(self, meta, c):
        return S.Label(str(c[0]), None, self.sp(meta), computed=c[1])

    def bound_group(self, meta, c):
        body, inputs = c
        return _GroupCall(body, inputs.exprs if inputs is not None else None, inputs.pre if inputs else [])

    def call_inputs(self, meta, c):
        name, args, inputs = c
        pos, kw = _split_args(args)
        fields = (str(name), self.tsp(name), pos, kw, inputs.exprs if inputs is not None else None)
        return _Call(fields, inputs.pre if inputs is not None else [])

    def inputs(self, meta, c):
        exprs, pre = [], []
        for item in c:
            if isinstance(item, _Nested):
                pre += item.pre
                item = item.name
            exprs.append(item)
        return _Inputs(tuple(exprs), pre)

    def nested(self, meta, c):
        """`a: f(...)(b: g(...)(x))`: b runs first and binds a fresh name a's input reads; the
        name has a '.' so it cannot clash with a spec name."""
        label, applied = c
        sp = self.sp(meta)
        name = f"{label.name}.{sp.line}.{sp.col}"
        st = self.applied(meta, label, applied, (name,))
        return _Nested(applied.pre + [st], S.Name(sp, name))

    def assign(self, meta, c):
        return S.Assign(self.sp(meta), c[0], c[1])

    def group(self, meta, c):
        return S.Group(self.sp(meta), c[0], c[1])

    def residual(self, meta, c):
        fused, body, shortcut = c[0], c[1], c[2] if len(c) > 2 else None
        return S.Residual(self.sp(meta), body, shortcut, fused_name=str(fused) if fused is not None else None)

    def branches(self, meta, c):
        op, fused, branches = str(c[0].children[0]), c[1], c[2:]
        return S.Branches(self.sp(meta), op, str(fused) if fused is not None else None, tuple(branches))

    def if_(self, meta, c):
        arms = [(c[0], c[1])]
        orelse = None
        for extra in c[2:]:
            if extra[0] == "elif":
                arms.append(extra[1:])
            else:
                orelse = extra[1]
        return S.If(self.sp(meta), tuple(arms), orelse)

    def elif_(self, meta, c):
        return ("elif", c[0], c[1])

    def else_(self, meta, c):
        return ("else", c[0])

    def for_(self, meta, c):
        label, var, start, stop, body = c
        return S.For(self.sp(meta), label, str(var), start, stop, body)

    def repeat(self, meta, c):
        label, count, body = c
        zero = S.Const(count.span, 0)
        return S.For(self.sp(meta), label, None, zero, count, body)

    def return_(self, meta, c):
        return S.Return(self.sp(meta), tuple(c))

    def pass_(self, meta, c):
        return S.Pass(self.sp(meta))

    def init_rule(self, meta, c):
        items = [i for i in c if isinstance(i, S.InitItem)]
        *ops, within = c[:len(c) - len(items)]
        return S.InitRule(tuple((str(t), self.tsp(t)) for t in ops),
                          (str(within), self.tsp(within)) if within is not None else None,
                          tuple(items), self.sp(meta))

    def init_item(self, meta, c):
        name, args = c
        pos, kw = _split_args(args)
        return S.InitItem(str(name), pos, kw, self.tsp(name))

    def label(self, meta, c):
        return S.Label(str(c[0]), c[1] if len(c) > 1 else None, self.sp(meta))

    def targets(self, meta, c):
        return tuple(str(t) for t in c)

    # -- expressions
    def cond(self, meta, c):
        return S.Cond(self.sp(meta), c[0], c[1], c[2])

    def or_(self, meta, c):
        return S.BinOp(self.sp(meta), "or", c[0], c[1])

    def and_(self, meta, c):
        return S.BinOp(self.sp(meta), "and", c[0], c[1])

    def not_(self, meta, c):
        return S.Unary(self.sp(meta), "not", c[0])

    def compare(self, meta, c):
        return S.BinOp(self.sp(meta), str(c[1].children[0]), c[0], c[2])

    def binop(self, meta, c):
        return S.BinOp(self.sp(meta), str(c[1].children[0]), c[0], c[2])

    def unary(self, meta, c):
        return S.Unary(self.sp(meta), str(c[0].children[0]), c[1])

    def call(self, meta, c):
        pos, kw = _split_args(c[1])
        return S.Call(self.sp(meta), c[0], pos, kw)

    def index(self, meta, c):
        return S.Index(self.sp(meta), c[0], tuple(c[1:]))

    def attr(self, meta, c):
        return S.Attr(self.sp(meta), c[0], str(c[1]))

    def slice(self, meta, c):
        lo, hi, step = (list(c) + [None, None, None])[:3]
        return S.Slice(self.sp(meta), lo, hi, step)

    def number(self, meta, c):
        text = str(c[0])
        if any(ch in text for ch in ".eE"):
            value = float(text)
            if not math.isfinite(value):
                raise ArchError(f"the number {text} is too large", self.sp(meta), hint="floats go up to about 1e308")
            return S.Const(self.sp(meta), value)
        check_int_literal(text, self.sp(meta))  # before int(), which is slow on long digit strings
        return S.Const(self.sp(meta), check_value(int(text), self.sp(meta)))

    def string(self, meta, c):
        return S.Const(self.sp(meta), _unquote(c[0]))

    def true(self, meta, c):
        return S.Const(self.sp(meta), True)

    def false(self, meta, c):
        return S.Const(self.sp(meta), False)

    def none(self, meta, c):
        return S.Const(self.sp(meta), None)

    def name(self, meta, c):
        return S.Name(self.sp(meta), str(c[0]))

    def list_(self, meta, c):
        return S.ListExpr(self.sp(meta), tuple(c[0] or ()))

    def exprs(self, meta, c):
        return list(c)

    def args(self, meta, c):
        return list(c)

    def kwarg(self, meta, c):
        return S.Kwarg(str(c[0]), c[1], self.tsp(c[0]))


def _expr_label(e: S.Expr) -> S.Label:
    """`name` or `name[index]` written where a label goes in `y = label: layer(...)(t)`."""
    if isinstance(e, S.Name):
        return S.Label(e.id, None, e.span)
    if isinstance(e, S.Index) and isinstance(e.value, S.Name) and len(e.subs) == 1 \
            and not isinstance(e.subs[0], S.Slice):
        return S.Label(e.value.id, e.subs[0], e.span)
    raise ArchError("a label is a name or name[index]", e.span, hint="e.g. `y = fc: linear(d, n)(t)`")


class _Role:
    def __init__(self, name: str, span: Span):
        self.name, self.span = name, span


@dataclass
class _Inputs:
    exprs: tuple
    pre: list  # statements of nested layers, which run before the layer reading them


@dataclass
class _Call:
    fields: tuple  # callee, callee span, args, kwargs, inputs: what S.Layer takes
    pre: list


@dataclass
class _GroupCall:
    body: tuple
    inputs: tuple | None
    pre: list


@dataclass
class _Nested:
    pre: list
    name: S.Name


@dataclass
class _Seq:
    """Statements that one written statement stands for (nested layers first)."""

    pre: list

    @property
    def last(self):
        return self.pre[-1]


def _seq(pre: list, st: S.Stmt):
    return _Seq(pre + [st]) if pre else st


def _flatten(items) -> tuple:
    out = []
    for st in items:
        out += st.pre if isinstance(st, _Seq) else [st]
    return tuple(out)


def _take_inits(body: tuple) -> tuple[tuple, tuple]:
    """A body's statements and its init rules, which belong at its top level only."""
    rules = tuple(st for st in body if isinstance(st, S.InitRule))
    rest = tuple(st for st in body if not isinstance(st, S.InitRule))
    for st in S.walk(rest):
        if isinstance(st, S.InitRule):
            raise ArchError("an init rule belongs at the top of a block or the model body", st.span,
                            hint="it applies to the modules that whole body builds (`in NAME` narrows it)")
    return rest, rules


def _check_inputs(inputs, params) -> None:
    seen: dict[str, Span] = {}
    names = {p.name: p.span for p in params}
    for name, span in inputs:
        if name in seen:
            raise ArchError(f"tensor input '{name}' is declared twice", span,
                            notes=(("first declared here", seen[name]),))
        if name in names and span is None:  # the implicit input x
            raise ArchError(f"parameter '{name}' would hide the block's tensor input {name}", names[name],
                            hint="rename the parameter (x is the tensor a block takes unless it declares others)")
        if name in names:
            raise ArchError(f"'{name}' is both a parameter and a tensor input", span,
                            hint="parameters are compile-time values; tensor inputs are the forward arguments")
        seen[name] = span


def _with_roles(st: S.Stmt, roles: tuple[str, ...]) -> S.Stmt:
    import dataclasses

    return dataclasses.replace(st, roles=roles)


def _split_args(args) -> tuple[tuple[S.Expr, ...], tuple[S.Kwarg, ...]]:
    args = args or []
    pos = tuple(a for a in args if not isinstance(a, S.Kwarg))
    kw = tuple(a for a in args if isinstance(a, S.Kwarg))
    seen_kw = False
    for a in args:
        if isinstance(a, S.Kwarg):
            seen_kw = True
        elif seen_kw:
            raise ArchError("a positional argument follows a keyword argument", a.span,
                            hint="put positional arguments first")
    return pos, kw


def _check_unique(params) -> None:
    seen: dict[str, Span] = {}
    for p in params:
        if p.name in seen:
            raise ArchError(f"parameter '{p.name}' is declared twice", p.span,
                            notes=(("first declared here", seen[p.name]),))
        seen[p.name] = p.span


def _unquote(tok) -> str:
    return str(tok)[1:-1]


def _first_or_none(kinds: dict, path: str):
    def one(kind: str):
        values = kinds.get(kind, [])
        if len(values) > 1:
            second = values[1]
            span = second[1] if isinstance(second, tuple) else second.span
            raise ArchError(f"'{kind}' is given more than once", span, hint="keep one")
        return values[0] if values else None

    return one
