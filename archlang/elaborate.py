"""Elaboration: a program plus settings becomes the IR graph.

Statements run like a small interpreter over compile-time values: `if` picks a branch, loops
unroll, blocks are instantiated with bound parameters, and every layer or tensor operation
adds an IR node in the module scope its labels spell out (`stages.1.blocks.0.mlp.fc1`).
Shapes are not computed here; the check-shapes pass does that for a given input size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from . import syntax as S
from .errors import ArchError, Span, did_you_mean
from .evaluate import MULTI_OUTPUT, ExprEvaluator, check_op_args, describe, show_value, signature
from .ir import Graph, ModuleInfo
from .ops import OPS, OpDef
from .parser import keyword_hint
from .program import Program, literal
from .values import BUILTINS, Sym, Tensor

MAX_DEPTH = 64
MAX_NODES = 250_000  # ViT-g/14 is about 1,000 IR nodes; this many means a runaway loop


@dataclass
class Frame:
    """One module being built: its path, visible names, and the names its children took."""

    path: str
    env: dict[str, object]
    model_level: bool = False
    sequential: bool = False
    next_index: int = 0
    names: dict[str, Span] = field(default_factory=dict)
    result: Tensor | None = None

    def child(self, path: str, body=(), model_level: bool | None = None) -> Frame:
        consts = {k: v for k, v in self.env.items() if not isinstance(v, Tensor)}
        level = self.model_level if model_level is None else model_level
        return Frame(path, consts, level, is_sequential(body))


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def is_sequential(body) -> bool:
    """A body with unlabelled layers that own parameters numbers its modules like nn.Sequential."""
    for st in body:
        if isinstance(st, S.Layer) and st.label is None and st.targets is None:
            op = OPS.get(st.callee)
            if op is None or op.kind == "module":
                return True
        if isinstance(st, S.If) and any(is_sequential(b) for _, b in st.arms):
            return True
    return False


class Elaborator(ExprEvaluator):
    def __init__(self, program: Program, variant: str | None, settings: dict[str, object]):
        self.program, self.settings = program, settings
        self.graph = Graph(program.family, variant, dict(settings))
        self.instances: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        self.cur: Frame | None = None
        self.depth = 0
        self.outer_roles: tuple[str, ...] = ()  # roles written on an enclosing if/residual/sum/loop

    # ---------------------------------------------------------------- entry
    def run(self) -> Graph:
        model = self.program.model
        frame = Frame("", {}, model_level=True, sequential=is_sequential(model.body))
        self.graph.modules[""] = ModuleInfo("", "model", self.program.family, model.roles, model.span)
        dims = self.input_dims(frame)
        x = self.add_node("input", [], {"shape": dims}, frame, self.input_span())
        out = self.body(model.body, frame, x)
        self.graph.output = out.node
        self.graph.instances = dict(self.instances)
        self.check_emitted()
        return self.graph

    def input_span(self) -> Span:
        return self.program.input[1] if self.program.input else self.program.model.span

    def input_dims(self, frame: Frame) -> tuple:
        if self.program.input is None:
            return (Sym("input", 0), Sym("input", 1), Sym("input", 2), Sym("input", 3))
        out = []
        for axis, e in enumerate(self.program.input[0]):
            if isinstance(e, S.Name) and e.id not in self.settings:
                frame.env[e.id] = Sym("input", axis, e.id)
                out.append(frame.env[e.id])
            else:
                v = self.const(e, frame, "an input size")
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ArchError(f"input sizes are names or ints, got {describe(v)}", e.span)
                out.append(v)
        return tuple(out)

    # ---------------------------------------------------------------- names and nodes
    def lookup(self, name: str, frame: Frame, span: Span):
        if name in frame.env:
            return frame.env[name]
        if name in self.settings:
            return self.settings[name]
        if name in self.program.blocks or name in OPS:
            raise ArchError(f"'{name}' is a layer, not a value", span,
                            hint=f"apply it in a statement: `label: {name}(...)`")
        known = list(frame.env) + list(self.settings) + list(BUILTINS)
        raise ArchError(f"unknown name '{name}'", span, hint=keyword_hint(name) or did_you_mean(name, known))

    def add_node(self, op: str, inputs, attrs: dict, frame: Frame | None, span: Span,
                 scope: str | None = None, name: str = "", module: bool = False) -> Tensor:
        frame = frame or self.cur
        scope = frame.path if scope is None else scope
        if self.graph.next_id >= MAX_NODES:
            raise ArchError(f"the graph grew past {MAX_NODES:,} nodes here", span,
                            hint="is a repeat count or loop bound far larger than intended?")
        ids = [t.node for t in inputs]
        return Tensor(self.graph.add(op, ids, attrs, scope, name, module, span).id)

    def claim(self, frame: Frame, name: str, span: Span) -> str:
        if name in frame.names:
            first = frame.names[name]
            raise ArchError(f"'{name}' is already a module or tensor name in this scope", span,
                            notes=(("first used here", first),), hint="labels name modules and must be unique")
        frame.names[name] = span
        return name

    def module_name(self, label: S.Label | None, frame: Frame, is_module: bool) -> str | None:
        if label is None:
            if not is_module:
                return None
            name, span = str(frame.next_index), None
        else:
            name, span = label.name, label.span
            if label.index is not None:
                idx = self.const(label.index, frame, "a label index")
                if not isinstance(idx, int) or isinstance(idx, bool):
                    raise ArchError(f"label indices are ints, got {describe(idx)}", label.index.span)
                container = join(frame.path, label.name)
                self.graph.modules.setdefault(container, ModuleInfo(container, "container", label.name, (), label.span))
                taken = sum(1 for n in frame.names if n.startswith(label.name + "."))
                if idx != taken:
                    raise ArchError(f"'{label.name}[{idx}]' comes after {taken} '{label.name}' entries; "
                                    f"indexed labels must count up from 0 in order", label.span,
                                    hint="they become an nn.ModuleList, whose entries are numbered by position")
                name = f"{label.name}.{idx}"
        frame.next_index += 1
        return self.claim(frame, name, span) if span else name

    # ---------------------------------------------------------------- bodies
    def body(self, stmts, frame: Frame, x: Tensor) -> Tensor:
        prev, self.cur = self.cur, frame
        out = self.run_stmts(stmts, frame, x)
        self.cur = prev
        return frame.result or out

    def run_stmts(self, stmts, frame: Frame, x: Tensor) -> Tensor:
        frame.env["x"] = x
        for st in stmts:
            if frame.result is not None:
                raise ArchError("statement after return", st.span, hint="return must be the last statement")
            handler = getattr(self, "s_" + type(st).__name__)
            control = isinstance(st, (S.If, S.Residual, S.Branches)) or (isinstance(st, S.For) and st.label is None)
            if st.roles and control:
                saved, self.outer_roles = self.outer_roles, self.outer_roles + st.roles
                handler(st, frame)
                self.outer_roles = saved
            else:
                handler(st, frame)
        out = frame.env["x"]
        if not isinstance(out, Tensor):
            raise ArchError(f"'x' must stay a tensor, but it was set to {describe(out)}", stmts[-1].span)
        return out

    # ---------------------------------------------------------------- statements
    def s_Pass(self, st, frame):
        pass

    def s_Let(self, st, frame):
        frame.env[st.name] = self.const(st.value, frame, f"'let {st.name}'")

    def s_Return(self, st, frame):
        frame.result = self.tensor(st.value, frame)

    def s_Assign(self, st: S.Assign, frame: Frame):
        kind, op = assign_kind(st)
        if kind == "source":
            return self.assign_source(st, op, frame)
        if kind == "split":
            return self.assign_split(st, frame)
        value = self.expr(st.value, frame)
        if len(st.targets) == 1:
            frame.env[st.targets[0]] = value
            return
        self.unpack(st, value, frame)

    def assign_source(self, st: S.Assign, op, frame: Frame):
        name = self.claim(frame, st.targets[0], st.span)
        call = st.value
        attrs = self.bind_op(op, call.args, call.kwargs, frame, call.span)
        frame.env[name] = self.add_node(op.name, [], attrs, frame, st.span, name=name)

    def assign_split(self, st: S.Assign, frame: Frame):
        call = st.value
        fn = call.func.id
        t = self.tensor(call.args[0], frame)
        kw = {k.name: self.const(k.value, frame, f"an argument of {fn}") for k in call.kwargs}
        pos = [self.const(a, frame, f"an argument of {fn}") for a in call.args[1:]]
        n = len(st.targets)
        if fn == "chunk":
            chunks = pos[0] if pos else kw.get("chunks", n)
            dim = pos[1] if len(pos) > 1 else kw.get("dim", 0)
            if chunks != n:
                raise ArchError(f"chunk into {chunks} parts, but {n} names to bind", st.span)
            outs = [self.add_node("chunk_part", [t], {"dim": dim, "chunks": n, "index": i}, frame, call.span)
                    for i in range(n)]
        else:
            dim = pos[0] if pos else kw.get("dim", 0)
            outs = [self.add_node("select", [t], {"dim": dim, "index": i, "count": n}, frame, call.span)
                    for i in range(n)]
        for name, out in zip(st.targets, outs):
            frame.env[name] = out

    def unpack(self, st: S.Assign, value, frame: Frame):
        n = len(st.targets)
        if isinstance(value, Tensor):
            outs = [self.add_node("select", [value], {"dim": 0, "index": i, "count": n}, frame, st.value.span)
                    for i in range(n)]
        elif isinstance(value, tuple):
            if len(value) != n:
                raise ArchError(f"cannot unpack {len(value)} values into {n} names", st.span)
            outs = list(value)
        else:
            raise ArchError(f"cannot unpack {describe(value)}", st.value.span)
        for name, out in zip(st.targets, outs):
            frame.env[name] = out

    def s_Layer(self, st: S.Layer, frame: Frame):
        if st.inputs is None:
            inputs = [frame.env["x"]]
        else:
            inputs = [self.tensor(e, frame) for e in st.inputs]
        bdef, op = self.layer_callee(st)
        if bdef is not None:
            name = self.module_name(st.label, frame, True)
            out = self.call_block(bdef, st, inputs, name, frame)
        else:
            out = self.apply_op(op, st, inputs, frame)
        if st.targets is None:
            frame.env["x"] = out
        elif len(st.targets) == 1:
            frame.env[st.targets[0]] = out
        else:
            self.unpack(S.Assign(st.span, st.targets, S.Name(st.span, "_")), out, frame)

    def layer_callee(self, st: S.Layer):
        """(block, None) or (None, op) for a layer statement, checked as far as no values are needed."""
        bdef = self.program.blocks.get(st.callee)
        op = OPS.get(st.callee)
        if bdef is not None:
            check_block_args(bdef, st.args, st.kwargs, st.span)
            return bdef, None
        if op is None:
            known = list(self.program.blocks) + list(OPS)
            raise ArchError(f"unknown layer '{st.callee}'", st.callee_span,
                            hint=did_you_mean(st.callee, known) or "define it with `block name(...) { }`")
        if op.kind == "source":
            raise ArchError(f"{op.name}(...) makes a tensor; assign it to a name", st.span,
                            hint=f"write `gamma = {op.name}([dim])`")
        if op.kind == "function" and st.label is not None:
            raise ArchError(f"{op.name} has no parameters and is not a module, so it takes no label",
                            st.label.span, hint="drop the label")
        check_op_args(op, st.args, st.kwargs, st.span)
        return None, op

    def apply_op(self, op, st: S.Layer, inputs, frame: Frame) -> Tensor:
        is_module = op.kind == "module" or (op.kind == "act" and (st.label is not None or frame.sequential))
        name = self.module_name(st.label, frame, is_module)
        want = op.n_inputs
        if want >= 0 and len(inputs) != want:
            raise ArchError(f"{op.name} takes {want} tensor input(s), got {len(inputs)}", st.span)
        attrs = self.bind_op(op, st.args, st.kwargs, frame, st.span)
        if name is None:
            return self.add_node(op.name, inputs, attrs, frame, st.span)
        path = join(frame.path, name)
        self.graph.modules[path] = ModuleInfo(path, "op", op.name, self.outer_roles + st.roles, st.span)
        if st.fused is not None:  # deploy form: how this layer's weights fold from the train form
            self.graph.fusions[path] = (st.fused.recipe, frame.path)
        return self.add_node(op.name, inputs, attrs, frame, st.span, scope=path, name=name, module=True)

    def call_block(self, bdef: S.BlockDef, st: S.Layer, inputs, name: str, frame: Frame) -> Tensor:
        if len(inputs) != 1:
            raise ArchError(f"block '{bdef.name}' takes one tensor input, got {len(inputs)}", st.span)
        if self.depth >= MAX_DEPTH:
            raise ArchError(f"blocks nest deeper than {MAX_DEPTH} levels; is '{bdef.name}' recursive?", st.span)
        params = self.bind_block(bdef, st, frame)
        path = join(frame.path, name)
        roles = self.outer_roles + bdef.roles + st.roles
        self.graph.modules[path] = ModuleInfo(path, "block", bdef.name, roles, st.span)
        self.instances[bdef.name].append((path, dict(params)))
        child = Frame(path, dict(params), model_level=False, sequential=is_sequential(bdef.body))
        self.depth += 1
        saved, self.outer_roles = self.outer_roles, ()
        out = self.body(bdef.body, child, inputs[0])
        self.outer_roles = saved
        self.depth -= 1
        return out

    def bind_block(self, bdef: S.BlockDef, st: S.Layer, frame: Frame) -> dict:
        bound = {}
        for p, e in zip(bdef.params, st.args):
            bound[p.name] = self.const(e, frame, f"argument '{p.name}'")
        for kw in st.kwargs:
            bound[kw.name] = self.const(kw.value, frame, f"argument '{kw.name}'")
        for p in bdef.params:
            if p.name not in bound:
                bound[p.name] = literal(p.default)
        return bound

    def s_Group(self, st: S.Group, frame: Frame):
        name = self.module_name(st.label, frame, True)
        path = join(frame.path, name)
        self.graph.modules[path] = ModuleInfo(path, "group", st.label.name, self.outer_roles + st.roles, st.span)
        saved, self.outer_roles = self.outer_roles, ()
        frame.env["x"] = self.body(st.body, frame.child(path, st.body), frame.env["x"])
        self.outer_roles = saved

    def s_Residual(self, st: S.Residual, frame: Frame):
        x0 = frame.env["x"]
        main = self.run_stmts(st.body, frame, x0)
        short = self.run_stmts(st.shortcut, frame, x0) if st.shortcut else x0
        frame.env["x"] = self.add_node("add", [main, short], {}, frame, st.span)

    def s_Branches(self, st: S.Branches, frame: Frame):
        if len(st.branches) < 2:
            raise ArchError(f"'{st.op}' needs at least two branches separated by '|'", st.span)
        x0 = frame.env["x"]
        outs = []
        for branch in st.branches:
            if not branch:
                raise ArchError("empty branch", st.span, hint="write identity() for a skip branch")
            outs.append(self.run_stmts(branch, frame, x0))
        op = "branch_sum" if st.op == "sum" else "branch_avg"
        frame.env["x"] = self.add_node(op, outs, {"fused_name": st.fused_name}, frame, st.span)

    def s_If(self, st: S.If, frame: Frame):
        for test, body in st.arms:
            if self.const(test, frame, "an if condition"):
                self.run_stmts(body, frame, frame.env["x"])
                return
        if st.orelse is not None:
            self.run_stmts(st.orelse, frame, frame.env["x"])

    def s_For(self, st: S.For, frame: Frame):
        bounds = [self.const(e, frame, "a loop bound") for e in (st.start, st.stop)]
        for e, v in zip((st.start, st.stop), bounds):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ArchError(f"loop bounds are ints, got {describe(v)}", e.span)
        if st.label is None:
            for i in range(*bounds):
                if st.var:
                    frame.env[st.var] = i
                self.run_stmts(st.body, frame, frame.env["x"])
            return
        cname = self.module_name(st.label, frame, True)
        cpath = join(frame.path, cname)
        self.graph.modules[cpath] = ModuleInfo(cpath, "container", st.label.name, (), st.span)
        x = frame.env["x"]
        for k, i in enumerate(range(*bounds)):
            item = frame.child(cpath)
            if st.var:
                item.env[st.var] = i
            item.next_index = k
            x = self.loop_item(st, item, x)
        frame.env["x"] = x

    # ---------------------------------------------------------------- code this build did not run
    def check_emitted(self) -> None:
        """Codegen emits every arm, loop body and branch, and the blocks they call, also those this
        build never ran (other settings may): check them as far as no values are needed."""
        todo, seen = [self.program.model], set()
        while todo:
            for st in S.walk(todo.pop().body):
                for e in self.static_stmt(st):
                    self.static_expr(e)
                if isinstance(st, S.Layer) and st.callee in self.program.blocks and st.callee not in seen:
                    seen.add(st.callee)
                    todo.append(self.program.blocks[st.callee])

    def static_stmt(self, st) -> list[S.Expr]:
        """Check one statement without values; return the expressions it holds."""
        label = getattr(st, "label", None)
        index = [label.index] if label is not None and label.index is not None else []
        if isinstance(st, S.Layer):
            _, op = self.layer_callee(st)
            if op is not None:
                self.static_pattern(op, st.args, st.kwargs)
            return [*st.args, *(k.value for k in st.kwargs), *(st.inputs or ()), *index]
        if isinstance(st, S.Assign):
            if assign_kind(st)[0] != "expr":
                return [*st.value.args, *(k.value for k in st.value.kwargs)]
            return [st.value]
        if isinstance(st, (S.Let, S.Return)):
            return [st.value]
        if isinstance(st, S.If):
            return [test for test, _ in st.arms]
        if isinstance(st, S.For):
            return [st.start, st.stop, *index]
        return index

    def static_expr(self, e: S.Expr) -> None:
        for sub in S.subexprs(e):
            if isinstance(sub, S.Attr):
                self.e_Attr(sub, None)
            elif isinstance(sub, S.Call):
                kind, op = self.check_call(sub)
                if kind == "op":
                    self.static_pattern(op, sub.args[1:], sub.kwargs)

    def static_pattern(self, op: OpDef, args, kwargs) -> None:
        """A literal rearrange pattern is checked even where it does not run."""
        if op.name != "rearrange":
            return
        pattern = args[0] if args else next((k.value for k in kwargs if k.name == "pattern"), None)
        if isinstance(pattern, S.Const):
            self.check_pattern(pattern.value, pattern.span, {k.name: None for k in kwargs})

    def loop_item(self, st: S.For, item: Frame, x: Tensor) -> Tensor:
        """One iteration: a lone unlabelled layer is the item itself, anything else a group."""
        only = st.body[0] if len(st.body) == 1 else None
        if isinstance(only, S.Layer) and only.label is None and only.targets is None and only.inputs is None:
            if only.callee in self.program.blocks or getattr(OPS.get(only.callee), "kind", "") == "module":
                saved, self.outer_roles = self.outer_roles, self.outer_roles + st.roles
                out = self.body((only,), item, x)
                self.outer_roles = saved
                return out
        path = join(item.path, str(item.next_index))
        self.graph.modules[path] = ModuleInfo(path, "group", st.label.name, st.roles, st.span)
        group = Frame(path, item.env, item.model_level, is_sequential(st.body))
        return self.body(st.body, group, x)


def assign_kind(st: S.Assign) -> tuple[str, OpDef | None]:
    """("source", op) for `w = weight(...)`, ("split", None) for `a, b = chunk(...)`, else
    ("expr", None); checked as far as no values are needed."""
    v = st.value
    if isinstance(v, S.Call) and isinstance(v.func, S.Name):
        op = OPS.get(v.func.id)
        if op is not None and op.kind == "source":
            if len(st.targets) != 1:
                raise ArchError(f"{op.name}(...) makes one tensor; assign it to one name", st.span)
            check_op_args(op, v.args, v.kwargs, v.span)
            return "source", op
        if v.func.id in MULTI_OUTPUT:
            if not v.args:
                raise ArchError(f"{v.func.id} needs a tensor", v.span)
            return "split", None
    return "expr", None


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


def block_signature(bdef: S.BlockDef) -> str:
    parts = [p.name if p.default is None else f"{p.name}={_fmt_literal(p.default)}" for p in bdef.params]
    return f"{bdef.name}({', '.join(parts)})"


def _fmt_literal(e) -> str:
    try:
        return show_value(literal(e))
    except ArchError:
        return "..."


def elaborate(program: Program, variant: str | None, settings: dict[str, object]) -> Graph:
    return Elaborator(program, variant, settings).run()


__all__ = ["elaborate", "Elaborator", "Frame", "signature", "block_signature"]
