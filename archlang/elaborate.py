"""Elaboration: a lowered program plus settings becomes the IR graph.

The lowered statements (`archlang.lower`) run like a small interpreter over compile-time values:
`if` picks a branch, loops unroll, blocks are instantiated with bound parameters, and every layer
or tensor operation adds an IR node in the module scope its labels spell out
(`stages.1.blocks.0.mlp.fc1`). What a statement means was decided by the lowering; this module
only computes values. Shapes are not computed here; the check-shapes pass does that.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import lower as L
from . import syntax as S
from .bodies import choosable
from .errors import ArchError, Span, did_you_mean
from .evaluate import ExprEvaluator, describe
from .inits import check_values
from .ir import Graph, ModuleInfo
from .limits import MAX_NODES, Budget
from .lower import bind, block_signature, signature
from .ops import OPS, Attrs
from .parser import keyword_hint
from .program import Program, literal
from .pynames import check_attr
from .shapes import ShapeError
from .values import BUILTINS, Sym, Tensor, has_sym

MAX_DEPTH = 64


@dataclass
class Frame:
    """One module being built: its path, visible names, and the names its children took."""

    path: str
    env: dict[str, object]
    model_level: bool = False
    sequential: bool = False
    next_index: int = 0
    names: dict[str, Span] = field(default_factory=dict)
    result: Tensor | tuple[Tensor, ...] | None = None

    def child(self, path: str, sequential: bool = False) -> Frame:
        consts = {k: v for k, v in self.env.items() if not isinstance(v, Tensor)}
        return Frame(path, consts, self.model_level, sequential)


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Elaborator(ExprEvaluator):
    def __init__(self, program: Program, variant: str | None, settings: dict[str, object]):
        self.program, self.settings = program, settings
        self.lowering: L.Lowering | None = None  # set by run()
        self.graph = Graph(program.family, variant, dict(settings))
        self.instances: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        self.cur: Frame | None = None
        self.depth = 0
        self.budget = Budget()  # steps and value sizes (limits.py)
        self.outer_roles: tuple[str, ...] = ()  # roles written on an enclosing if/residual/sum/loop
        self.building = False  # evaluating a build-time statement: its nodes are computed in __init__
        self.init_shapes: dict[int, tuple] = {}  # shapes of build-time tensors (known at once)
        self.computed: dict[int, Tensor] = {}  # computed buffer/weight node -> the value it was made from

    # ---------------------------------------------------------------- entry
    def run(self) -> Graph:
        model_body, self.lowering = L.lower_program(self.program)
        model = self.program.model
        frame = Frame("", {}, model_level=True)
        self.graph.modules[""] = ModuleInfo("", "model", self.program.family, model.roles, model.span)
        dims = self.input_dims(frame)
        default = self.input_default(dims, frame)
        x = self.add_node("input", [], {"shape": dims, **({"default": default} if default else {})}, frame,
                          self.input_span())
        out = self.body(model_body.stmts, frame, x)
        check_values(model.inits, lambda e: self.const(e, frame, "an init argument"))
        self.graph.output = out.node
        self.graph.instances = dict(self.instances)
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

    def input_default(self, dims: tuple, frame: Frame) -> tuple | None:
        """Per input axis, the size a build uses when it is given none (`H = 256`), else None."""
        if not self.program.input_defaults:
            return None
        out = [None] * len(dims)
        for kw in self.program.input_defaults:
            axis = next(i for i, e in enumerate(self.program.input[0]) if isinstance(e, S.Name) and e.id == kw.name)
            if not isinstance(dims[axis], Sym):
                raise ArchError(f"'{kw.name}' is a param, so this input size is fixed and takes no default",
                                kw.span, hint=f"write `input [..., {kw.name}, ...]`, or a run-time name with a default")
            if axis == 0:
                raise ArchError("the batch axis takes no default size", kw.span)
            v = self.const(kw.value, frame, "a default input size")
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ArchError(f"a default input size is a positive int, got {describe(v)}", kw.value.span)
            out[axis] = v
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
        node = self.graph.add(op, ids, attrs, scope, name, module, span, init=self.building)
        if self.building:
            self.init_shapes[node.id] = self.build_shape(node)
        return Tensor(node.id)

    def build_shape(self, node) -> tuple:
        """A build-time tensor's shape, computed as it is made: it depends on no input, and a
        computed buffer's shape is known from it."""
        if any(has_sym(v) for v in node.attr_dict.values()):
            raise ArchError("a build-time tensor's sizes must be known at compile time, not from the input",
                            node.span, hint="shape(t) and input sizes are run-time sizes")
        try:
            return OPS[node.op].shape(Attrs(node.attr_dict), [self.init_shapes[i] for i in node.inputs])
        except ShapeError as exc:
            raise ArchError(exc.message, node.span, hint=exc.hint) from None

    def claim(self, frame: Frame, name: str, span: Span) -> str:
        # `bn[0]:` claims the container `bn` too: a later plain `bn:` would replace its ModuleList
        container = name.partition(".")[0]
        taken = [n for n in frame.names if n == name or n.partition(".")[0] == container
                 and (n == container or name == container)]
        if taken:
            first = frame.names[taken[0]]
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
            if label.computed is not None:
                name = self.computed_label(label, frame)
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

    def computed_label(self, label: S.Label, frame: Frame) -> str:
        """`layer{i + 1}:` -> 'layer' followed by the value (an int or a name part)."""
        v = self.const(label.computed, frame, "a computed label")
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, int) and v < 0):
            raise ArchError(f"a computed label continues a name with an int >= 0 or a string, got {describe(v)}",
                            label.computed.span)
        name = f"{label.name}{v}"
        if not name.isidentifier():
            raise ArchError(f"'{name}' is not a valid module name", label.span,
                            hint="labels are letters, digits and '_'")
        return check_attr(name, label.span)

    # ---------------------------------------------------------------- bodies
    def body(self, stmts, frame: Frame, x: Tensor) -> Tensor:
        prev, self.cur = self.cur, frame
        out = self.run_stmts(stmts, frame, x)
        self.cur = prev
        return frame.result or out

    def run_stmts(self, stmts, frame: Frame, x: Tensor) -> Tensor:
        frame.env["x"] = x
        for node in stmts:
            self.budget.step(node.span)
            if frame.result is not None:
                raise ArchError("statement after return", node.span, hint="return must be the last statement")
            handler = getattr(self, "s_" + type(node).__name__[1:])
            control = isinstance(node, (L.LIf, L.LResidual, L.LBranches, L.LLoop))
            if node.roles and control:
                saved, self.outer_roles = self.outer_roles, self.outer_roles + node.roles
                handler(node, frame)
                self.outer_roles = saved
            else:
                handler(node, frame)
        out = frame.env["x"]
        if not isinstance(out, Tensor):
            raise ArchError(f"'x' must stay a tensor, but it was set to {describe(out)}", stmts[-1].span)
        return out

    # ---------------------------------------------------------------- statements
    def s_Pass(self, node, frame):
        pass

    def s_Let(self, node: L.LLet, frame):
        frame.env[node.st.name] = self.const(node.st.value, frame, f"'let {node.st.name}'")

    def s_Return(self, node: L.LReturn, frame):
        values = tuple(self.tensor(v, frame) for v in node.st.values)
        frame.result = values[0] if len(values) == 1 else values

    @contextmanager
    def build_time(self, build: bool):
        """Evaluate a statement's expressions as build-time tensors when lowering says so."""
        saved, self.building = self.building, build
        try:
            yield
        finally:
            self.building = saved

    def s_Expr(self, node: L.LExpr, frame: Frame):
        st = node.st
        with self.build_time(node.build):
            value = self.expr(st.value, frame)
            if len(st.targets) == 1:
                frame.env[st.targets[0]] = value
                return
            self.unpack(st.targets, value, st.value.span, frame)

    def s_Source(self, node: L.LSource, frame: Frame):
        name = self.claim(frame, node.st.targets[0], node.span)
        op = node.binding.op
        if node.computed:
            with self.build_time(True):
                value = self.tensor(node.binding.expr("shape"), frame)
            attrs = {"shape": self.init_shapes[value.node], "init": "computed",
                     **self.attrs(node.binding, frame, skip=("shape", "init", "std"))}
            frame.env[name] = self.add_node(op.name, [value], attrs, frame, node.span, name=name)
            self.computed[frame.env[name].node] = value  # what later build-time code reads
            return
        attrs = self.attrs(node.binding, frame)
        check_literal_init(attrs, node.binding)
        frame.env[name] = self.add_node(op.name, [], attrs, frame, node.span, name=name)

    def s_Split(self, node: L.LSplit, frame: Frame):
        with self.build_time(node.build):
            self.split(node, frame)

    def split(self, node: L.LSplit, frame: Frame):
        targets, span = node.st.targets, node.st.value.span
        t = self.tensor(node.tensor, frame)
        n = len(targets)
        dim = 0 if node.dim is None else self.const(node.dim, frame, f"an argument of {node.fn}")
        if node.fn == "chunk":
            chunks = n if node.chunks is None else self.const(node.chunks, frame, "an argument of chunk")
            if chunks != n:
                raise ArchError(f"chunk into {chunks} parts, but {n} names to bind", node.span)
            outs = [self.add_node("chunk_part", [t], {"dim": dim, "chunks": n, "index": i}, frame, span)
                    for i in range(n)]
        else:
            outs = [self.add_node("select", [t], {"dim": dim, "index": i, "count": n}, frame, span)
                    for i in range(n)]
        for name, out in zip(targets, outs):
            frame.env[name] = out

    def unpack(self, targets, value, span: Span, frame: Frame):
        n = len(targets)
        if isinstance(value, Tensor):
            outs = [self.add_node("select", [value], {"dim": 0, "index": i, "count": n}, frame, span)
                    for i in range(n)]
        elif isinstance(value, tuple):
            if len(value) != n:
                raise ArchError(f"cannot unpack {len(value)} values into {n} names", span)
            outs = list(value)
        else:
            raise ArchError(f"cannot unpack {describe(value)}", span)
        for name, out in zip(targets, outs):
            frame.env[name] = out

    def s_Apply(self, node: L.LApply, frame: Frame):
        st = node.st
        inputs = [frame.env["x"]] if st.inputs is None else [self.tensor(e, frame) for e in st.inputs]
        if node.block is not None:
            out = self.call_block(node, inputs, frame)
        else:
            out = self.apply_op(node, inputs, frame)
        self.bind_result(st, out, frame)

    def bind_result(self, st, out, frame: Frame) -> None:
        """A layer's or group's output becomes x, or the names it is bound to."""
        if st.targets is None:
            frame.env["x"] = out
        elif len(st.targets) == 1:
            frame.env[st.targets[0]] = out
        else:
            self.unpack(st.targets, out, st.span, frame)

    def apply_op(self, node: L.LApply, inputs, frame: Frame) -> Tensor:
        op, st = node.op, node.st
        binding = node.binding
        if node.choice is not None:
            op = self.chosen_op(node.choice, frame)
            binding = bind(op, st.args[1:], st.kwargs, st.span)
        name = self.module_name(st.label, frame, node.module)
        want = op.n_inputs
        if want >= 0 and len(inputs) != want:
            raise ArchError(f"{op.name} takes {want} tensor input(s), got {len(inputs)}", st.span)
        attrs = self.attrs(binding, frame)
        if name is None:
            return self.add_node(op.name, inputs, attrs, frame, st.span)
        path = join(frame.path, name)
        self.graph.modules[path] = ModuleInfo(path, "op", op.name, self.outer_roles + st.roles, st.span)
        if st.fused is not None:  # deploy form: how this layer's weights fold from the train form
            self.graph.fusions[path] = (st.fused.recipe, frame.path)
        return self.add_node(op.name, inputs, attrs, frame, st.span, scope=path, name=name, module=True)

    def chosen_op(self, choice: S.Expr, frame: Frame):
        """The op a `layer(name, ...)` call names: a value looked up in the table of layers a
        parameter may choose (never eval'd)."""
        table = choosable()
        v = self.const(choice, frame, "the name of a layer")
        if not isinstance(v, str) or v not in table:
            shown = f"'{v}'" if isinstance(v, str) else describe(v)
            raise ArchError(f"{shown} is not a layer a parameter can choose", choice.span,
                            hint=(did_you_mean(v, table) if isinstance(v, str) else None)
                            or "choices: " + ", ".join(table))
        return table[v]

    def call_block(self, node: L.LApply, inputs, frame: Frame) -> Tensor:
        bdef, st = node.block, node.st
        if self.depth >= MAX_DEPTH:
            raise ArchError(f"blocks nest deeper than {MAX_DEPTH} levels; is '{bdef.name}' recursive?", st.span)
        name = self.module_name(st.label, frame, True)
        params = self.bind_block(bdef, st, frame)
        path = join(frame.path, name)
        roles = self.outer_roles + bdef.roles + st.roles
        self.graph.modules[path] = ModuleInfo(path, "block", bdef.name, roles, st.span)
        self.instances[bdef.name].append((path, dict(params)))
        named = dict(zip(bdef.inputs, inputs))
        child = Frame(path, {**params, **named}, model_level=False)
        self.depth += 1
        saved, self.outer_roles = self.outer_roles, ()
        out = self.body(self.lowering.block(bdef.name).stmts, child, named.get("x", inputs[0]))
        check_values(bdef.inits, lambda e: self.const(e, child, "an init argument"))
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

    def s_Group(self, node: L.LGroup, frame: Frame):
        st = node.st
        x = frame.env["x"] if st.inputs is None else self.tensor(st.inputs[0], frame)
        name = self.module_name(st.label, frame, True)
        path = join(frame.path, name)
        self.graph.modules[path] = ModuleInfo(path, "group", st.label.name, self.outer_roles + st.roles, st.span)
        saved, self.outer_roles = self.outer_roles, ()
        child = frame.child(path, node.body.sequential)
        out = self.body(node.body.stmts, child, x)
        self.outer_roles = saved
        self.bind_result(st, out, frame)

    def s_Residual(self, node: L.LResidual, frame: Frame):
        x0 = frame.env["x"]
        main = self.run_stmts(node.body, frame, x0)
        short = self.run_stmts(node.shortcut, frame, x0) if node.shortcut else x0
        frame.env["x"] = self.add_node("add", [main, short], {}, frame, node.span)

    def s_Branches(self, node: L.LBranches, frame: Frame):
        x0 = frame.env["x"]
        outs = [self.run_stmts(branch, frame, x0) for branch, written in zip(node.branches, node.st.branches)
                if S.optional_branch(written) is None or self.takes_an_arm(branch[0], frame)]
        if len(outs) == 1:  # `sum as NAME { a }`, or the optional branches left out: no sum
            frame.env["x"] = outs[0]
            return
        op = "branch_sum" if node.st.op == "sum" else "branch_avg"
        frame.env["x"] = self.add_node(op, outs, {"fused_name": node.st.fused_name}, frame, node.span)

    def takes_an_arm(self, node: L.LIf, frame: Frame) -> bool:
        return any(self.const(test, frame, "an if condition") for test, _ in node.arms)

    def s_If(self, node: L.LIf, frame: Frame):
        for test, body in node.arms:
            if self.const(test, frame, "an if condition"):
                self.run_stmts(body, frame, frame.env["x"])
                return
        if node.orelse is not None:
            self.run_stmts(node.orelse, frame, frame.env["x"])

    def loop_range(self, st: S.For, frame: Frame) -> range:
        bounds = [self.const(e, frame, "a loop bound") for e in (st.start, st.stop)]
        for e, v in zip((st.start, st.stop), bounds):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ArchError(f"loop bounds are ints, got {describe(v)}", e.span)
        self.budget.loop(st, bounds)
        return range(*bounds)

    def s_Loop(self, node: L.LLoop, frame: Frame):
        st = node.st
        for i in self.loop_range(st, frame):
            if st.var:
                frame.env[st.var] = i
            self.run_stmts(node.body, frame, frame.env["x"])

    def s_Container(self, node: L.LContainer, frame: Frame):
        st = node.st
        rng = self.loop_range(st, frame)
        cname = self.module_name(st.label, frame, True)
        cpath = join(frame.path, cname)
        self.graph.modules[cpath] = ModuleInfo(cpath, "container", st.label.name, (), st.span)
        x = frame.env["x"]
        for k, i in enumerate(rng):
            item = frame.child(cpath)
            if node.module_list:  # the item's other inputs are tensors of the body around it
                item.env = {**frame.env, **item.env}
            if st.var:
                item.env[st.var] = i
            item.next_index = k
            x = self.loop_item(node, item, x)
        frame.env["x"] = x

    def loop_item(self, node: L.LContainer, item: Frame, x: Tensor) -> Tensor:
        """One iteration: the lone layer is the item itself; any other body makes a group."""
        st = node.st
        if node.item is not None:
            saved, self.outer_roles = self.outer_roles, self.outer_roles + st.roles
            out = self.body((node.item,), item, x)
            self.outer_roles = saved
            return out
        path = join(item.path, str(item.next_index))
        self.graph.modules[path] = ModuleInfo(path, "group", st.label.name, st.roles, st.span)
        group = Frame(path, item.env, item.model_level, node.body.sequential)
        return self.body(node.body.stmts, group, x)


def check_literal_init(attrs: dict, binding) -> None:
    """A list initialiser (`init = [0, 1, 2]`) holds one number per element of the shape."""
    init = attrs.get("init")
    if not isinstance(init, tuple):
        return
    flat = _flatten(init)
    span = binding.expr("init").span
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise ArchError("a list initialiser holds numbers", span)
    count = 1
    for d in attrs["shape"]:
        count *= d if isinstance(d, int) else 0
    if len(flat) != count:
        raise ArchError(f"the initialiser has {len(flat)} values, but shape {list(attrs['shape'])} holds {count}",
                        span, hint="give one value per element (nested lists are read in row-major order)")


def _flatten(v) -> list:
    return [x for item in v for x in _flatten(item)] if isinstance(v, tuple) else [v]


def elaborate(program: Program, variant: str | None, settings: dict[str, object]) -> Graph:
    return Elaborator(program, variant, settings).run()


__all__ = ["elaborate", "Elaborator", "Frame", "signature", "block_signature"]
