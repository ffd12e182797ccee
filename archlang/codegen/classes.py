"""One spec body (a block, an inline group or the model) -> one PyTorch class.

A spec statement contributes to both methods: a layer is constructed in __init__ and called in
forward; `if` and loops appear in both, deciding on constructor arguments (stored on `self`
when forward needs them). Compile-time names are locals in __init__ and `self.name` in
forward; tensors are forward locals; weights are `self.name`. Each emitted line carries a
`# file:line` comment pointing at the statement it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import lower as L
from .. import pycode as P
from .. import syntax as S
from ..errors import Span
from .exprs import ExprTranslator
from .inits import rule_lines
from .names import (
    camel,
    check_attr,
    check_label,
    class_attrs,
    forward_name,
    indexed_labels,
    py_name,
    replayed_lets,
    unique,
)


@dataclass
class Unit:
    """A class to emit: its name, constructor parameters and body."""

    name: str
    kind: str  # "block" | "group" | "model"
    params: list[tuple[str, P.Code | None]]  # spec name, default
    kwonly: list[str]  # threaded hyperparameters (blocks) or all params (model)
    body: tuple[S.Stmt, ...]  # as written: for name analysis (free names, attributes)
    lowered: tuple[L.LStmt, ...]  # what the statements mean: what is emitted
    span: Span
    doc: str = ""
    kw_defaults: dict[str, P.Code] = field(default_factory=dict)
    input_names: dict[str, int] = field(default_factory=dict)  # model: B/H/W -> input axis
    inputs: tuple[str, ...] = ("x",)  # the forward arguments (a block's tensor inputs)
    inits: tuple[S.InitRule, ...] = ()  # init rules, run at the end of __init__


class Body:
    """Lines of one method: (indent, text, span, roles)."""

    def __init__(self, indent: int = 2):
        self.lines: list[tuple[int, str, Span | None, tuple[str, ...]]] = []
        self.indent = indent

    def add(self, text: str, span: Span | None = None, roles: tuple[str, ...] = ()) -> None:
        self.lines.append((self.indent, text, span, roles))

    def mark(self) -> int:
        return len(self.lines)

    def since(self, mark: int) -> bool:
        return len(self.lines) > mark


class ClassEmitter:
    """Translate one Unit. `ctx` is the module emitter (class names, helpers, provenance)."""

    def __init__(self, unit: Unit, ctx, needed: list[str] | None = None, live: set[str] | None = None):
        self.unit, self.ctx = unit, ctx
        # Replayed lets forward recomputes only where forward reads them (`live`, known from a first
        # pass; None: all): a loop of lets that only sizes modules stays out of forward.
        self.live = live
        self.let_reads: dict[str, set[str]] = {}  # replayed let -> the replayed lets its value reads
        self.fwd_reads: set[str] = set()  # replayed lets read by forward code other than lets
        self.in_let: str | None = None
        self.init, self.fwd = Body(), Body()
        self.ct_names = {p for p, _ in unit.params} | set(unit.kwonly)
        self.needed: list[str] = []  # compile-time names forward reads through self
        self.store = set(needed or ())  # names to store on self (known from a first pass)
        self.fwd_locals: set[str] = set(unit.input_names)
        self.tensors: dict[str, str] = {"x": "x", **{n: input_var(n) for n in unit.inputs}}
        self.weights: set[str] = set()
        self.loop_depth = 0
        self.taken: set[str] = {"x", *self.tensors.values()}
        self.init_x = ExprTranslator(self.resolve_init, ctx.uses)
        self.fwd_x = ExprTranslator(self.resolve_fwd, ctx.uses)
        self.returned = False
        self.inputs_used: set[str] = set()
        self.attrs = class_attrs(unit.body)
        self.replayed = replayed_lets(unit.body)

    def stored(self, name: str) -> str:
        """Attribute holding a constructor value; suffixed when a module or weight has its name."""
        attr = py_name(name)
        return attr + "_" if name in self.attrs else attr

    # ---------------------------------------------------------------- name resolution
    def resolve_init(self, name: str) -> P.Code:
        return P.name(py_name(name))

    def resolve_fwd(self, name: str) -> P.Code:
        if name in self.tensors:
            return P.name(self.tensors[name])
        if name in self.weights:
            return P.name(f"self.{name}")
        if name in self.fwd_locals:
            if name in self.unit.input_names:
                self.inputs_used.add(name)
            if name in self.replayed:
                (self.let_reads[self.in_let] if self.in_let else self.fwd_reads).add(name)
            return P.name(py_name(name))
        if name not in self.needed:
            self.needed.append(name)
        return P.name(f"self.{self.stored(name)}")

    def fresh(self, base: str) -> str:
        return unique(base, self.taken)

    # ---------------------------------------------------------------- statements
    def stmts(self, body) -> None:
        for node in body:
            getattr(self, "s_" + type(node).__name__[1:])(node)

    def s_Pass(self, node):
        pass

    def s_Let(self, node: L.LLet):
        st = node.st
        target = py_name(st.name)
        self.init.add(f"{target} = {self.init_x(st.value)}", st.span)
        self.ct_names.add(st.name)
        if st.name in self.replayed:
            if self.live is None or st.name in self.live:
                self.in_let = st.name
                self.let_reads.setdefault(st.name, set())
                self.fwd.add(f"{target} = {self.fwd_x(st.value)}", st.span)
                self.in_let = None
            self.fwd_locals.add(st.name)
        elif st.name in self.store:
            self.init.add(f"self.{self.stored(st.name)} = {target}", st.span)

    def s_Return(self, node: L.LReturn):
        self.fwd.add(f"return {', '.join(str(self.fwd_x(v)) for v in node.st.values)}", node.span)
        self.returned = True

    def s_Expr(self, node: L.LExpr):
        if node.build:  # a build-time tensor: an __init__ local
            self.bind_built(node.st.targets, self.init_x(node.st.value), node.span)
            return
        self.bind_targets(node.st.targets, self.fwd_x(node.st.value), node.span)

    def s_Source(self, node: L.LSource):
        st, op = node.st, node.binding.op
        name = st.targets[0]
        check_attr(name, Span(st.span.file, st.span.line, st.span.col, st.span.line, st.span.col + len(name)),
                   what=op.name)
        a = self.init_x.args(node.binding)
        if node.computed:  # the values of a build-time tensor, computed here (a local later code may read)
            self.bind_built((name,), a["shape"], st.span)
            value = P.name(py_name(name))
            init = P.call("nn.Parameter", P.call(P.attr(value, "float"))) if op.has("learned") else value
        else:
            init = op.init(a)
        if op.has("learned"):
            self.init.add(f"self.{name} = {init}", st.span, st.roles)
        else:
            persistent = a["persistent"]
            extra = "" if persistent.is_const and persistent.const else f", persistent={persistent}"
            self.init.add(f"self.register_buffer({name!r}, {init}{extra})", st.span, st.roles)
        self.weights.add(name)

    def s_Split(self, node: L.LSplit):
        x = self.init_x if node.build else self.fwd_x
        t = x(node.tensor)
        args = []
        if node.fn == "chunk":
            args.append(P.lit(len(node.st.targets)) if node.chunks is None else x(node.chunks))
        if node.dim is not None:
            args.append(x(node.dim))
        value = P.call(P.attr(t, node.fn), *args)
        if node.build:
            self.bind_built(node.st.targets, value, node.span)
        else:
            self.bind_targets(node.st.targets, value, node.span, force_index=True)

    def bind_built(self, targets, value: P.Code, span: Span) -> None:
        """Build-time tensors are __init__ locals named as in the spec (like lets)."""
        names = [py_name(t) for t in targets]
        self.ct_names.update(targets)
        self.init.add(f"{', '.join(names)} = {value}", span)

    def bind_targets(self, targets, value: P.Code, span: Span, force_index: bool = False):
        if len(targets) == 1 and not force_index:
            self.fwd.add(f"{self.tensor_var(targets[0])} = {value}", span)
            return
        # Index instead of unpacking, which torch.fx cannot trace.
        tmp = self.fresh("".join(targets) if all(len(t) == 1 for t in targets) else "_".join(targets))
        self.fwd.add(f"{tmp} = {value}", span)
        names = [self.tensor_var(t) for t in targets]
        self.fwd.add(f"{', '.join(names)} = {', '.join(f'{tmp}[{i}]' for i in range(len(names)))}", span)

    def tensor_var(self, name: str) -> str:
        if name not in self.tensors:
            # a nested layer's output is named after its label ('b.3.7' -> b)
            self.tensors[name] = self.fresh(forward_name(name.split(".")[0]))
        return self.tensors[name]

    def s_Apply(self, node: L.LApply):
        st = node.st
        inputs = [P.name(self.tensors["x"])] if st.inputs is None else [self.fwd_x(e) for e in st.inputs]
        value = self.layer_call(node, inputs)
        if st.targets is None:
            self.fwd.add(f"{self.tensors['x']} = {value}", st.span)
        else:
            self.bind_targets(st.targets, value, st.span)

    def layer_call(self, node: L.LApply, inputs: list[P.Code]) -> P.Code:
        """Construct the layer in __init__ (if it is a module); return its forward expression."""
        st = node.st
        if not node.module:
            return self.fwd_x.call_op(node.binding, inputs)
        # lowering allows unlabelled modules only in nn.Sequential bodies
        module = self.set_module(st.label, self.constructor(node), st.span, st.roles)
        return P.call(module, *inputs)

    def set_module(self, label: S.Label, ctor: P.Code, span: Span, roles) -> str:
        """Assign a submodule in __init__ under its label; return how forward reaches it."""
        pre, post, ref = self.module_slot(label)
        self.init.add(f"{pre}{ctor}{post}", span, roles)
        return ref

    def module_slot(self, label: S.Label) -> tuple[str, str, str]:
        """How __init__ stores a module under `label` (text before and after its constructor) and
        how forward reaches it: an attribute, a ModuleList entry, or a computed name."""
        attr = check_label(label)
        if label.index is not None:
            return f"self.{attr}.append(", ")", f"self.{attr}[{self.fwd_x(label.index)}]"
        if label.computed is not None:
            name = self.init_x(label.computed)
            if not name.is_const:  # the name differs per instance or iteration
                return (f"self.add_module({computed_name(attr, name)}, ", ")",
                        f"getattr(self, {computed_name(attr, self.fwd_x(label.computed))})")
            attr = check_attr(f"{attr}{name.const}", label.span)
        return f"self.{attr} = ", "", f"self.{attr}"

    def constructor(self, node: L.LApply) -> P.Code:
        """Constructor expression of a layer (op, chosen op or block), in __init__ scope."""
        st = node.st
        if node.choice is not None:
            self.ctx.uses.add("LAYERS")
            kwargs = {k.name: self.init_x(k.value) for k in st.kwargs}
            return P.call(P.index(P.name("LAYERS"), [str(self.init_x(node.choice))]),
                          *[self.init_x(a) for a in st.args[1:]], **kwargs)
        if node.op is not None:
            self.ctx.uses.update(node.op.helpers)
            return node.op.init(self.init_x.args(node.binding))
        cls = self.ctx.block_class(st.callee)
        kwargs = {k.name: self.init_x(k.value) for k in st.kwargs}
        for g in self.ctx.threaded(st.callee):
            kwargs.setdefault(g, self.init_x(S.Name(st.span, g)))
        return P.call(cls, *[self.init_x(a) for a in st.args], **kwargs)

    def s_Group(self, node: L.LGroup):
        st = node.st
        ctor = self.ctx.group_constructor(camel(st.label.name), node.body, st.body, st.span, self)
        x = self.tensors["x"]
        value = P.call(self.set_module(st.label, ctor, st.span, st.roles),
                       self.fwd_x(st.inputs[0]) if st.inputs else P.name(x))
        if st.targets is None:
            self.fwd.add(f"{x} = {value}", st.span)
        else:
            self.bind_targets(st.targets, value, st.span)

    def s_Residual(self, node: L.LResidual):
        x = self.tensors["x"]
        short = self.fresh("shortcut")
        self.fwd.add(f"{short} = {x}", node.span)
        if node.shortcut:
            self.tensors["x"] = short
            self.stmts(node.shortcut)
            self.tensors["x"] = x
        self.stmts(node.body)
        self.fwd.add(f"{x} = {x} + {short}", node.span)

    def s_Branches(self, node: L.LBranches):
        x = self.tensors["x"]
        written = node.st.branches
        terms = [self.branch_term(b, x, node.span) for b, w in zip(node.branches, written)
                 if S.optional_branch(w) is None]
        total = terms[0]
        for t in terms[1:]:
            total = P.binop("+", total, t)
        if node.st.op == "avg":
            total = P.binop("/", total, P.lit(len(terms)))
        optional = [b[0] for b, w in zip(node.branches, written) if S.optional_branch(w) is not None]
        if not optional:
            self.fwd.add(f"{x} = {total}", node.span)
            return
        acc = self.fresh("total")  # x is every branch's input: the sum gathers apart from it
        self.fwd.add(f"{acc} = {total}", node.span)
        for opt in optional:
            self.arms(opt, lambda body, span=opt.span: self.fwd.add(
                f"{acc} = {P.binop('+', P.name(acc), self.branch_term(body, x, span))}", span))
        self.fwd.add(f"{x} = {acc}", node.span)

    def branch_term(self, branch, x: str, span: Span) -> P.Code:
        """A branch's value: one nested call when it is a chain of plain layers, else a variable
        its statements compute."""
        expr = self.branch_expr(branch, x)
        if expr is not None:
            return expr
        var = self.fresh("branch")
        self.fwd.add(f"{var} = {x}", span)
        self.tensors["x"] = var
        self.stmts(branch)
        self.tensors["x"] = x
        return P.name(var)

    def branch_expr(self, branch, x: str) -> P.Code | None:
        """A branch of plain layers applied in turn, as one nested call; None if not that simple."""
        value = P.name(x)
        for node in branch:
            if not (isinstance(node, L.LApply) and node.st.targets is None and node.st.inputs is None):
                return None
            value = self.layer_call(node, [value])
        return value

    def s_If(self, node: L.LIf):
        self.arms(node, self.stmts)

    def arms(self, node: L.LIf, emit) -> None:
        """`if/elif/else` in __init__ and forward, `emit(body)` writing each arm's lines."""
        arms = list(node.arms) + ([(None, node.orelse)] if node.orelse is not None else [])
        i_arms, f_arms = [], []
        for test, body in arms:
            i_mark, f_mark = self.init.mark(), self.fwd.mark()
            self.init.indent += 1
            self.fwd.indent += 1
            emit(body)
            self.init.indent -= 1
            self.fwd.indent -= 1
            i_arms.append((test, self.init.lines[i_mark:]))
            f_arms.append((test, self.fwd.lines[f_mark:]))
            del self.init.lines[i_mark:], self.fwd.lines[f_mark:]
        self.emit_if(self.init, i_arms, self.init_x, node.span)
        self.emit_if(self.fwd, f_arms, self.fwd_x, node.span)

    def emit_if(self, body: Body, arms, translate, span: Span) -> None:
        """Emit `if/elif/else` on one side, or nothing when no arm has lines on that side."""
        while arms and arms[-1][0] is None and not arms[-1][1]:
            arms = arms[:-1]  # an empty else adds nothing
        if not any(lines for _, lines in arms):
            return
        texts = {tuple((i, t) for i, t, _, _ in lines) for _, lines in arms}
        if arms[-1][0] is None and len(texts) == 1:
            # Every arm does the same thing on this side (e.g. calls the same attribute).
            body.lines.extend((i - 1, t, s, r) for i, t, s, r in arms[0][1])
            return
        for k, (test, lines) in enumerate(arms):
            keyword = "if" if k == 0 else "elif"
            body.add(f"{keyword} {translate(test)}:" if test is not None else "else:", span)
            body.lines.extend(lines or [(body.indent + 1, "pass", None, ())])

    def loop_range(self, st: S.For, translate) -> P.Code:
        start, stop = translate(st.start), translate(st.stop)
        return P.call("range", stop) if start.is_const and start.const == 0 else P.call("range", start, stop)

    def s_Loop(self, node: L.LLoop):
        st = node.st
        var = py_name(st.var) if st.var else "_"
        i0, f0 = self.init.mark(), self.fwd.mark()
        needed, reads = len(self.needed), set(self.fwd_reads)  # restored if forward drops the loop
        self.init.add(f"for {var} in {self.loop_range(st, self.init_x)}:", st.span)
        self.fwd.add(f"for {var} in {self.loop_range(st, self.fwd_x)}:", st.span)
        if st.var:
            self.ct_names.add(st.var)
            self.fwd_locals.add(st.var)
        self.init.indent += 1
        self.fwd.indent += 1
        self.loop_depth += 1
        self.stmts(node.body)
        self.loop_depth -= 1
        self.init.indent -= 1
        self.fwd.indent -= 1
        for body, mark in ((self.init, i0), (self.fwd, f0)):
            if len(body.lines) == mark + 1:
                del body.lines[mark:]
                if body is self.fwd:  # what only its range read is not needed
                    del self.needed[needed:]
                    self.fwd_reads = reads

    def s_Container(self, node: L.LContainer):
        st = node.st
        var = py_name(st.var) if st.var else "_"
        if node.item is not None:
            item = self.constructor(node.item)
        else:
            name = camel(st.label.name[:-1] if st.label.name.endswith("s") else st.label.name)
            item = self.ctx.group_constructor(name, node.body, st.body, st.span, self)
        only = st.body[0] if len(st.body) == 1 else None
        roles = st.roles + (only.roles if only is not None else ())
        pre, post, module = self.module_slot(st.label)
        opening = "nn.ModuleList([" if node.module_list else "nn.Sequential(*["
        self.init.add(f"{pre}{opening}", st.span, roles)
        self.init.indent += 1
        self.init.add(wrap_call(f"{item}", "    " * self.init.indent), None)
        self.init.add(f"for {var} in {self.loop_range(st, self.init_x)}", None)
        self.init.indent -= 1
        self.init.add(f"]){post}", None)
        x = self.tensors["x"]
        if not node.module_list:
            self.fwd.add(f"{x} = {module}({x})", st.span)
            return
        # nn.Sequential cannot pass the other tensors: forward calls the items in turn
        uses_var = st.var is not None and any(isinstance(n, S.Name) and n.id == st.var
                                              for e in node.item.st.inputs for n in S.subexprs(e))
        if uses_var:
            self.fwd_locals.add(st.var)
        block = self.fresh("block")
        inputs = ", ".join(str(self.fwd_x(e)) for e in node.item.st.inputs)
        head = f"for {var}, {block} in zip({self.loop_range(st, self.fwd_x)}, {module}):" if uses_var \
            else f"for {block} in {module}:"
        self.fwd.add(head, st.span)
        self.fwd.indent += 1
        self.fwd.add(f"{x} = {block}({inputs})", st.span)
        self.fwd.indent -= 1

    # ---------------------------------------------------------------- assembly
    def run(self) -> ClassEmitter:
        self.stmts(self.unit.lowered)
        self.init_rules()
        return self

    def live_lets(self) -> set[str]:
        """The replayed lets forward reads, directly or through the values of others it reads."""
        live, todo = set(), list(self.fwd_reads)
        while todo:
            name = todo.pop()
            if name not in live:
                live.add(name)
                todo.extend(self.let_reads.get(name, ()))
        return live

    def init_rules(self) -> None:
        """The spec's init rules, last in __init__: after every module of the class is built."""
        if not self.unit.inits:
            return
        var = unique("m", {py_name(n) for n in self.ct_names} | self.taken)
        for rule in self.unit.inits:
            lines, named = rule_lines(rule, var, self.init_x, self.unit.body, self.ctx.program.blocks)
            self.init.lines += [(2 + depth, text, span, ()) for depth, text, span in lines]
            self.ctx.uses.update(named)

    def render(self, prov) -> list[str]:
        """Source lines of the class; `prov(span)` formats a provenance comment."""
        u = self.unit
        out = [f"class {u.name}(nn.Module):  # {prov(u.span)}"]
        if u.doc:
            out.append(f'    """{u.doc}"""')
            out.append("")
        out.append(f"    def __init__({signature(u)}):")
        out.append("        super().__init__()")
        for name in self.needed:
            if name in {p for p, _ in u.params} or name in u.kwonly:
                out.append(f"        self.{self.stored(name)} = {py_name(name)}")
        for name in indexed_labels(u.body):
            out.append(f"        self.{name} = nn.ModuleList()")
        out += [render_line(line, prov) for line in self.init.lines]
        out.append("")
        out.append(f"    def forward(self, {', '.join(input_var(n) for n in u.inputs)}):")
        if "x" not in u.inputs:  # the current tensor starts as the first input
            out.append(f"        x = {input_var(u.inputs[0])}")
        for name, axis in u.input_names.items():
            if name in self.inputs_used:
                out.append(f"        {py_name(name)} = x.shape[{axis}]")
        out += [render_line(line, prov) for line in self.fwd.lines]
        if not self.returned:
            out.append("        return x")
        return out


def input_var(name: str) -> str:
    """A forward argument's name: `x` stays `x` (the emitted code's own name for it)."""
    return "x" if name == "x" else py_name(name)


def computed_name(prefix: str, value: P.Code) -> str:
    """The name `prefix` + value, for a computed label (`layer{i + 1}:`), as Python."""
    text = str(value)
    if not any(c in text for c in "{}'\"\\"):
        return f'f"{prefix}{{{text}}}"'
    return f'"{prefix}" + str({text})'


def signature(u: Unit) -> str:
    """The __init__ parameter list, one per line when it is long."""
    parts = ["self"]
    for name, default in u.params:
        parts.append(py_name(name) if default is None else f"{py_name(name)}={default}")
    if u.kwonly:
        parts.append("*")
        for name in u.kwonly:
            d = u.kw_defaults.get(name)
            parts.append(py_name(name) if d is None else f"{py_name(name)}={d}")
    flat = ", ".join(parts)
    if len(flat) < 80:
        return flat
    return "\n" + "".join(f"            {p},\n" for p in parts) + "    "


def render_line(line, prov) -> str:
    indent, text, span, roles = line
    pad = "    " * indent
    text = wrap_call(text, pad)
    if span is None:
        return pad + text
    note = prov(span) + (f" ({', '.join(roles)})" if roles else "")
    first, _, rest = text.partition("\n")
    return f"{pad}{first}  # {note}" + (f"\n{rest}" if rest else "")


def wrap_call(text: str, pad: str, limit: int = 110) -> str:
    """Break a long `lhs = f(a, b, ...)` line into one argument per line (not method chains)."""
    if len(pad) + len(text) <= limit or not text.endswith(")") or "(" not in text:
        return text
    head, _, inner = text.partition("(")
    if _closing(text, len(head)) != len(text) - 1:
        return text  # the first call is not the whole right-hand side, e.g. x.a(...).b(...)
    args = split_top_level(inner[:-1])
    comp = _comprehension(args[0]) if len(args) == 1 else None
    if comp is not None:  # f(*[item for i in ...]): the item on its own line, then each clause
        elem, clauses = comp
        lines = [f"{pad}    {wrap_call(elem, pad + '    ', limit)}"] + [f"{pad}    {c}" for c in clauses]
        return f"{head}(*[\n" + "\n".join(lines) + f"\n{pad}])"
    if len(args) < 2:
        return text
    body = "".join(f"{pad}    {a},\n" for a in args)
    return f"{head}(\n{body}{pad})"


def _comprehension(arg: str) -> tuple[str, list[str]] | None:
    """`*[elem for a in x for b in y]` -> (elem, ['for a in x', 'for b in y']), else None."""
    if not (arg.startswith("*[") and arg.endswith("]")) or _closing(arg, 1) != len(arg) - 1:
        return None
    inner = arg[2:-1]
    cuts = [i for i, ch, depth in _depths(inner) if depth == 0 and inner.startswith(" for ", i)]
    if not cuts:
        return None
    parts = [inner[a:b].strip() for a, b in zip([0, *cuts], [*cuts, len(inner)])]
    return parts[0], parts[1:]


def _depths(text: str, start: int = 0):
    """(index, char, bracket depth after it) for the characters outside string literals."""
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
            continue
        if ch in "'\"":
            quote = ch
            continue
        depth += (ch in "([{") - (ch in ")]}")
        yield i, ch, depth


def _closing(text: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at`."""
    return next((i for i, ch, depth in _depths(text, open_at) if depth == 0 and ch in ")]}"), -1)


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not nested in brackets or strings."""
    cuts = [i for i, ch, depth in _depths(text) if ch == "," and depth == 0]
    parts = [text[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(text)])]
    return [p.strip() for p in parts if p.strip()]
