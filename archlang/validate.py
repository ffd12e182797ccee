"""Translation validation: the emitted module computes the IR, node for node.

The IR (read through `archlang.ir.Graph`) and the emitted module (traced with `torch.fx`, shapes
propagated on meta tensors, so no weight is allocated) are both turned into a small dataflow
graph of *steps* in one vocabulary, fx's: an op becomes the fx nodes its op table entry declares
(`OpDef.fx`). The two step graphs are then compared as DAGs from the output back. Normalisation:

1. A module op is one `call_module:<Class>` step, matched by module path; every IR module is a
   leaf of the trace, so its class is the one the emit rule constructed. Module attributes named
   like an IR argument must hold its value (stride, eps, approximate; 3 matches (3, 3)).
2. Weights and buffers are `get_attr` steps matched by path (repeated reads are one step); the
   input is the `placeholder`.
3. A functional op is the chain of nodes it declares, input to output, each with the op's
   output shape (`avg {a | b}`: add, then truediv). `identity` is no step: it aliases its input.
4. fx nodes whose value is not a tensor (`x.shape`, `x.device`, sizes computed from them) are
   dropped, and a step's inputs are its tensor arguments in order. Ops with trait "generator"
   (`arange`) take no inputs: their tensor argument only lends a device and a dtype.
5. A maximal run of layout-only nodes (trait "reshape": rearrange, reshape, transpose, index,
   chunk, ...; in fx the targets those ops declare) is one `layout` step from the run's source
   to its final shape. What a layout run does inside is not compared, only the shape it ends in.
   A subscript with a tensor among its subscripts (`table[index]`) is a gather, not a layout node.
6. Commutative ops (trait "commutative": add, mul, branch sums) compare their inputs as a
   multiset, and a nested use of the same operator with two tensor inputs and no other user is
   merged into its parent: `sum {a | b | c}` is `(a + b) + c` is `a + (b + c)`.
7. Every step compares its kind, output shape (batch 2) and path; shared values must be shared in
   both (a node the IR computes once is computed once), and what the output does not use is
   compared as a multiset of kinds.

A mismatch raises `TranslationError` naming the IR node, its spec line, what the IR expects and
what the module computes (with the emitted line). The walk goes down from the output through
nodes of the same kind, so a wrong value is reported where it starts (a wrong stride at the conv,
not at every later node whose shape follows from it); it stops at a node of another kind.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .ir import Graph
from .ops import OPS, Attrs
from .ops.index import TENSOR_GETITEM
from .shapes import Batch, fmt

BATCH = 2  # the batch size of the traced input (the IR's symbolic B)
LAYOUT = "layout"
MODULE = "call_module:"


class TranslationError(AssertionError):
    """The emitted module and the IR disagree: a bug in archlang, never in the user's spec."""


class RunFailure(Exception):
    def __init__(self, node: str, exc: Exception):
        super().__init__(node)
        self.node = node
        self.message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def module_form(op, forms: tuple[str, ...] | None = None) -> str | None:
    """The op's module class (of `forms`, its fx for some bound arguments, when given)."""
    return next((t for t in (op.fx if forms is None else forms) if t.startswith(MODULE)), None)


def call_chain(op, forms: tuple[str, ...] | None = None) -> tuple[str, ...]:
    return tuple(t for t in (op.fx if forms is None else forms) if not t.startswith(MODULE))


# fx targets that are layout-only / commutative, read from the op table (never listed here).
LAYOUT_TARGETS = frozenset(t for op in OPS.values() if op.has("reshape") for t in op.fx)
COMMUTATIVE = frozenset(call_chain(op)[0] for op in OPS.values() if op.has("commutative"))
# module classes the op table declares: an emitted helper subclass (Conv2dSame) counts as the one it extends
DECLARED_MODULES = frozenset(t[len(MODULE):] for op in OPS.values() for t in op.fx if t.startswith(MODULE))


@dataclass
class Step:
    label: str  # fx kind and target ("call_module:Conv2d", "call_function:add"), or "layout"
    shape: tuple | None
    inputs: list[int]
    path: str = ""  # module or attribute path (call_module, get_attr)
    origin: object = None  # the IR Node or fx Node it came from
    module: object = None  # fx side: the nn.Module a call_module step calls
    commutative: bool = False


@dataclass
class Steps:
    """A normalised dataflow graph; ids increase along every edge."""

    steps: dict[int, Step] = field(default_factory=dict)
    output: int = -1
    dead: Counter = field(default_factory=Counter)  # (label, shape) of computed, unused steps

    def add(self, step: Step) -> int:
        sid = len(self.steps)
        step.commutative = step.label in COMMUTATIVE and len(step.inputs) >= 2
        self.steps[sid] = step
        return sid

    def normalise(self) -> Steps:
        self._collapse_layout()
        self._merge_attrs()
        self._prune(record=True)
        self._flatten()
        self._prune(record=False)
        return self

    def _collapse_layout(self) -> None:
        for s in self.steps.values():
            if s.label == LAYOUT and len(s.inputs) == 1:
                src = self.steps[s.inputs[0]]
                if src.label == LAYOUT and len(src.inputs) == 1:
                    s.inputs = list(src.inputs)

    def _merge_attrs(self) -> None:
        first: dict[tuple[str, str], int] = {}
        same: dict[int, int] = {}
        for sid, s in self.steps.items():
            if s.path and not s.inputs and s.label in ("get_attr", "placeholder"):
                same[sid] = first.setdefault((s.label, s.path), sid)
        for s in self.steps.values():
            s.inputs = [same.get(i, i) for i in s.inputs]
        self.output = same.get(self.output, self.output)

    def _prune(self, record: bool) -> None:
        live = {self.output}
        for sid in sorted(self.steps, reverse=True):
            if sid in live:
                live.update(self.steps[sid].inputs)
        for sid in [s for s in self.steps if s not in live]:
            s = self.steps.pop(sid)
            if record and s.label != LAYOUT:
                self.dead[(s.label, s.shape)] += 1

    def _flatten(self) -> None:
        users = Counter(i for s in self.steps.values() for i in s.inputs)
        for s in self.steps.values():  # in id order, so inputs are flat already
            if not s.commutative:
                continue
            flat = []
            for i in s.inputs:
                c = self.steps[i]
                if c.commutative and c.label == s.label and users[i] == 1:
                    flat.extend(c.inputs)
                else:
                    flat.append(i)
            s.inputs = flat

    def hashes(self) -> dict[int, int]:
        """A structural hash per step (Merkle-style; commutative inputs unordered)."""
        h: dict[int, int] = {}
        for sid, s in self.steps.items():
            ins = [h[i] for i in s.inputs]
            h[sid] = hash((s.label, s.shape, s.path, tuple(sorted(ins)) if s.commutative else tuple(ins)))
        return h


# ---------------------------------------------------------------------------------- the IR side
def concrete(shape) -> tuple | None:
    if shape is None:
        return None
    return tuple(d.k * BATCH if isinstance(d, Batch) else d for d in shape)


def from_ir(graph: Graph) -> Steps:
    out = Steps()
    alias: dict[int, int] = {}
    for n in graph.nodes():
        if n.init:  # computed in __init__: forward sees only the buffer it fills (a get_attr)
            continue
        op = OPS[n.op]
        ins = [alias[i] for i in n.inputs if not graph.node(i).init]
        if op.has("identity"):
            alias[n.id] = ins[0]
            continue
        if op.has("generator"):
            ins = []
        forms = op.fx_forms(Attrs(n.attr_dict))
        labels = ((module_form(op, forms),) if n.module else (LAYOUT,) if op.has("reshape")
                  else call_chain(op, forms))
        if not labels or None in labels:
            raise TranslationError(f"op {n.op!r} declares no fx form for %{n.id} (OpDef.fx in archlang/ops)")
        for label in labels:  # a chain: each node takes the one before
            path = n.path if label.startswith(MODULE) or label == "get_attr" else ""
            ins = [out.add(Step(label, concrete(n.shape), ins, path, n))]
        alias[n.id] = ins[0]
    out.output = alias[graph.output]
    return out.normalise()


# ------------------------------------------------------------------------------- the fx side
def trace(model, graph: Graph, stack_traces: bool = False, run: bool = True):
    """fx graph of `model` with IR modules as leaves, and each node's value on meta tensors."""
    import torch
    import torch.fx as fx

    leaves = {n.path for n in graph.nodes() if n.module}

    class Tracer(fx.Tracer):
        # Buffers as get_attr nodes: fx would otherwise run code on a buffer's value while tracing
        # (`rope.chunk(...)`) and record the result as an anonymous constant.
        proxy_buffer_attributes = True

        def is_leaf_module(self, m, qualname: str) -> bool:
            return qualname in leaves

    tracer = Tracer()
    tracer.record_stack_traces = stack_traces
    gm = fx.GraphModule(model, tracer.trace(model))
    values: dict = {}
    if not run:
        return gm, values

    shapes: dict = {}  # a module's output shape, by what determines it (meta BatchNorm is slow)

    class Recorder(fx.Interpreter):
        def run_node(self, node):
            try:
                values[node] = super().run_node(node)
            except Exception as exc:  # the module cannot run: say where, in check()
                raise RunFailure(node.name, exc) from exc
            return values[node]

        def call_module(self, target, args, kwargs):
            m = self.fetch_attr(target)
            key = module_key(m, args, kwargs)
            if key in shapes:
                return torch.empty(shapes[key][0], dtype=shapes[key][1], device="meta")
            out = super().call_module(target, args, kwargs)
            if key is not None and isinstance(out, torch.Tensor):
                shapes[key] = (out.shape, out.dtype)
            return out

    x = torch.empty(concrete(graph.input.shape), device="meta")
    Recorder(gm).run(x)
    return gm, values


def module_key(m, args, kwargs):
    """What a module's output shape follows from: its class, configuration, tensor shapes and the
    shapes of its tensor inputs; None when an input is not a tensor."""
    import torch

    if kwargs or not all(isinstance(a, torch.Tensor) for a in args):
        return None
    own = tuple((k, tuple(v.shape)) for k, v in (*m.named_parameters(), *m.named_buffers()))
    return (type(m), m.extra_repr(), m.training, own, tuple((tuple(a.shape), a.dtype) for a in args))


def fx_label(node, gm) -> str:
    if node.op == "call_module":
        mro = type(gm.get_submodule(node.target)).__mro__
        return f"{MODULE}{next((c.__name__ for c in mro if c.__name__ in DECLARED_MODULES), mro[0].__name__)}"
    if node.op == "call_function":
        return f"call_function:{getattr(node.target, '__name__', node.target)}"
    if node.op == "call_method":
        return f"call_method:{node.target}"
    return node.op


def _tensors(v) -> bool:
    import torch

    if isinstance(v, torch.Tensor):
        return True
    return isinstance(v, (tuple, list)) and bool(v) and all(isinstance(t, torch.Tensor) for t in v)


def from_fx(gm, values) -> Steps:
    import torch
    from torch.fx.node import map_arg

    out = Steps()
    ids: dict = {}
    for node in gm.graph.nodes:
        args: list = []
        map_arg((node.args, node.kwargs), args.append)
        ins = [ids[a] for a in args if a in ids]
        if node.op == "output":
            out.output = ins[0]
            continue
        v = values.get(node)
        if not _tensors(v):
            continue
        label = fx_label(node, gm)
        if label == "call_function:getitem" and len(ins) > 1:  # t[index]: a gather, not a layout
            label = TENSOR_GETITEM
        label = LAYOUT if label in LAYOUT_TARGETS else label
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else None
        path = node.target if node.op in ("call_module", "get_attr") else ""
        module = gm.get_submodule(node.target) if node.op == "call_module" else None
        ids[node] = out.add(Step(label, shape, ins, path, node, module))
    return out.normalise()


# --------------------------------------------------------------------------------- comparison
def pair_inputs(a: Step, b: Step, ha, hb, mapping) -> list[tuple[int, int]]:
    if not a.commutative:
        return list(zip(a.inputs, b.inputs))
    free = list(b.inputs)
    pairs, rest = [], []
    for i in a.inputs:
        same = [j for j in free if hb[j] == ha[i]]
        j = mapping.get(i) if mapping.get(i) in same else (same[0] if same else None)
        if j is None:
            rest.append(i)
        else:
            free.remove(j)
            pairs.append((i, j))
    return pairs + list(zip(rest, free))


def compare(ir: Steps, mod: Steps) -> list[tuple[Step, Step | None, str]]:
    """Mismatches (IR step, module step, what differs), deepest first on each path."""
    ha, hb = ir.hashes(), mod.hashes()
    mapping: dict[int, int] = {}
    back: dict[int, int] = {}
    found = []
    stack = [(ir.output, mod.output)]
    while stack:
        i, j = stack.pop()
        if mapping.get(i, j) != j or back.get(j, i) != i:
            if ha[i] == hb[j]:
                found.append((ir.steps[i], mod.steps[j], "is computed once in one and more than once in the "
                              f"other (module: {show(mod.steps[j], ir.steps[i])})"))
            continue
        if i in mapping:
            continue
        mapping[i], back[j] = j, i
        a, b = ir.steps[i], mod.steps[j]
        if (a.label, a.path, len(a.inputs)) != (b.label, b.path, len(b.inputs)):
            found.append((a, b, f"differs: the IR has {show(a, b)}, the module has {show(b, a)}"))
            continue
        if b.module is not None and (diffs := attr_diffs(a.origin, b.module)):
            found.append((a, b, f"is built with other arguments: {'; '.join(diffs)}"))
        pairs = pair_inputs(a, b, ha, hb, mapping)
        if a.shape != b.shape and all(ha[x] == hb[y] for x, y in pairs):
            found.append((a, b, f"has another output shape: the IR has {show(a, b)}, the module has {show(b, a)}"))
        stack.extend(reversed(pairs))
    if not found and ir.dead != mod.dead:
        extra = (mod.dead - ir.dead) + (ir.dead - mod.dead)
        found.append((None, None, "computes unused values that differ: " +
                      ", ".join(f"{lab} -> {fmt(s)}" for lab, s in sorted(extra, key=str))))
    return found


def attr_diffs(node, module) -> list[str]:
    """IR arguments that the module holds under the same name (stride, eps, approximate, ...)
    with another value; an int matches a tuple of that int (kernel_size=3 and (3, 3))."""
    diffs = []
    for key, want in node.attrs:
        have = getattr(module, key, None)
        if want is None or not (_plain(want) and _plain(have)) or isinstance(want, str) != isinstance(have, str):
            continue  # (a word the module holds as numbers: padding "same" is (0, 0) in Conv2dSame)
        if want != have and not (isinstance(have, tuple) and not isinstance(want, tuple)
                                 and all(h == want for h in have)):
            diffs.append(f"{key}: IR {want!r}, module {have!r}")
    return diffs


def _plain(v) -> bool:
    if isinstance(v, tuple):
        return all(_plain(x) for x in v)
    return isinstance(v, (bool, int, float, str))


def check(graph: Graph, model, where=lambda span: f"{span.file}:{span.line}") -> None:
    """Raise TranslationError unless `model` (built on the meta device) computes `graph`."""
    name = graph.family + (f":{graph.variant}" if graph.variant else "")
    try:
        gm, values = trace(model, graph)
    except RunFailure as fail:
        line = _lines(model, graph).get(fail.node)
        raise TranslationError(f"the emitted module of {name} fails on the IR's input "
                               f"{fmt(concrete(graph.input.shape))} at fx node {fail.node}"
                               + (f"\n      emitted: {line}" if line else "") + f"\n  {fail.message}") from None
    found = compare(from_ir(graph), from_fx(gm, values))
    if not found:
        return
    lines = _lines(model, graph)
    found.sort(key=lambda f: f[0].origin.id if f[0] is not None else -1)
    head = f"the emitted module does not compute the IR of {name} (docs/validation.md):"
    more = [f"  ... and {len(found) - 5} more"] if len(found) > 5 else []
    raise TranslationError("\n".join([head, *(describe(f, where, lines) for f in found[:5]), *more]))


def _lines(model, graph) -> dict[str, str]:
    """Emitted source line of every fx node, by name (tracing again, recording stacks: slow)."""
    gm = trace(model, graph, stack_traces=True, run=False)[0]
    return {n.name: emitted_line(n.stack_trace or "", model) for n in gm.graph.nodes}


def describe(finding, where, lines) -> str:
    a, b, what = finding
    if a is None:
        return f"  the module {what}"
    n = a.origin
    text = f"  IR %{n.id} {n.op} @{n.path or '<top>'} ({where(n.span)}) {what}"
    line = lines.get(b.origin.name) if b is not None else None
    return text + (f"\n      emitted: {line}" if line else "")


def show(s: Step, other: Step) -> str:
    text = f"{s.label}{f' {s.path!r}' if s.path else ''} -> {fmt(s.shape)}"
    if len(s.inputs) != len(other.inputs):
        text += f" from {len(s.inputs)} input{'s' if len(s.inputs) != 1 else ''}"
    return text


def emitted_line(stack: str, model) -> str:
    """The innermost line of the emitted file in an fx node's stack trace."""
    import inspect

    try:
        path = inspect.getsourcefile(type(model))
    except TypeError:
        return ""
    hits = re.findall(r'File "([^"]+)", line (\d+)[^\n]*\n\s*([^\n]*)', stack)
    mine = [(ln, text) for f, ln, text in hits if f == path]
    return f"{mine[-1][1].strip()}  (line {mine[-1][0]})" if mine else ""
