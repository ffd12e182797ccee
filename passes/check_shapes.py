"""check-shapes: infer every node's element type, then its shape for one input size, and
explain the ones that fail.

Element types (`archlang.dtypes`) come first, from each op's dtype rule: they do not depend on
the input size, so a type error is reported as such. Shapes are computed from each op's shape
rule in topological order. A failure becomes an error at the spec span of the node that failed;
for shapes, the hint lists nearby input sizes for which the whole graph checks, found by
re-running inference (it is cheap: no model is built).
"""

from __future__ import annotations

from archlang.dtypes import FLOAT, DtypeError
from archlang.errors import ArchError
from archlang.ir import Graph
from archlang.lower import show_value
from archlang.ops import OPS, Attrs, infer_dtype
from archlang.shapes import Batch, ShapeError, fmt
from archlang.values import has_sym, resolve

from . import Build, register


def infer_shapes(graph: Graph, input_size: tuple[int, ...]) -> dict[int, tuple]:
    """Shapes of all nodes, or ShapeError (with the failing node id attached as .node)."""
    shapes: dict[int, tuple] = {}
    input_shape = None
    for n in graph.nodes():
        try:
            if OPS[n.op].has("model_input"):
                input_shape = bind_input(n.attr("shape"), input_size)
                shapes[n.id] = input_shape
                continue
            attrs = Attrs(resolve(n.attr_dict, input_shape, shapes))
            shapes[n.id] = OPS[n.op].shape(attrs, [shapes[i] for i in n.inputs])
            check_positive(OPS[n.op], attrs, shapes[n.id])
        except ShapeError as exc:
            exc.node = n
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:  # argument values no shape rule expects
            err = ShapeError(_bad_arguments(n, exc))
            err.node = n
            raise err from None
    return shapes


def infer_dtypes(graph: Graph) -> dict[int, str]:
    """Element types of all nodes; ArchError at the first node whose inputs' types it refuses."""
    dtypes: dict[int, str] = {}
    for n in graph.nodes():
        try:
            dtypes[n.id] = FLOAT if OPS[n.op].has("model_input") else infer_dtype(
                OPS[n.op], Attrs(n.attr_dict), [dtypes[i] for i in n.inputs])
        except DtypeError as exc:
            raise ArchError(exc.message, n.span, hint=exc.hint) from None
    return dtypes


def check_positive(op, attrs: Attrs, shape: tuple) -> None:
    """Every axis of an op's output and of the tensors it owns is a positive int (or the batch)."""
    owned = {**op.params(attrs), **op.buffers(attrs)}
    for what, dims in (("an output", shape), *((f"a tensor '{k}'", v) for k, v in owned.items())):
        if not all(isinstance(d, Batch) or (type(d) is int and d > 0) for d in dims):
            raise ShapeError(f"{op.name} would make {what} of shape {fmt(tuple(dims))}; "
                             "sizes must be positive ints")


def _bad_arguments(n, exc: Exception) -> str:
    if has_sym(n.attr_dict):
        return f"cannot evaluate a run-time size here: {exc}"
    args = ", ".join(f"{k}={show_value(v)}" for k, v in n.attr_dict.items())
    return f"{n.op} cannot work with these arguments: {args}"


def bind_input(declared: tuple, size: tuple[int, ...]) -> tuple:
    """The input shape: batch symbol first, then the user's sizes, checked against the spec."""
    if len(declared) != len(size) + 1:
        raise ShapeError(f"the model takes a rank-{len(declared)} input, so give {len(declared) - 1} sizes "
                         f"(got {'x'.join(map(str, size))})", hint="for images: --input 3x224x224")
    shape = (Batch(1), *size)
    for axis, (want, have) in enumerate(zip(declared, shape)):
        if isinstance(want, int) and want != have:
            raise ShapeError(f"the model takes {want} on input axis {axis}, got {have}",
                             hint=f"pass --input with {want} there, or override the param that sets it")
    return shape


@register("check-shapes")
def check_shapes(build: Build) -> Build:
    """Annotate every node with its shape for the build's input size (by default, the sizes the
    spec's `input` line fixes, such as DeiT's img_size, and 3x224x224 for the rest)."""
    size = build.input_size if build.input_size is not None else default_input(build.graph)
    return build.but(graph=shape_graph(build.graph, size), input_size=size)


DEFAULT_INPUT = (3, 224, 224)  # for input axes the spec leaves to run time


def default_input(graph: Graph) -> tuple[int, ...]:
    """The input size the spec implies: its fixed axes, the defaults it gives run-time ones
    (`H = 256`), and DEFAULT_INPUT's for the rest."""
    node = next(n for n in graph.nodes() if OPS[n.op].has("model_input"))
    given = (node.attr("default") or (None,) * len(node.attr("shape")))[1:]
    fixed = [d if type(d) is int else g for d, g in zip(node.attr("shape")[1:], given)]
    if len(fixed) == len(DEFAULT_INPUT):
        return tuple(DEFAULT_INPUT[i] if d is None else d for i, d in enumerate(fixed))
    return tuple(fixed) if None not in fixed else DEFAULT_INPUT


def shape_graph(graph: Graph, input_size: tuple[int, ...] = (3, 224, 224)) -> Graph:
    """The graph with every node's type and shape; ArchError at the first node that cannot work."""
    dtypes = infer_dtypes(graph)
    try:
        shapes = infer_shapes(graph, input_size)
    except ShapeError as exc:
        node = exc.node
        hint = exc.hint
        if len(input_size) == 3 and not OPS[node.op].has("model_input"):
            near, (lo, hi) = working_sizes(graph, input_size)
            hint = ((hint + "; ") if hint else "") + (
                f"input sizes that work: {', '.join(f'{s}x{s}' for s in near)}" if near
                else f"no square input from {lo} to {hi} pixels works for this spec")
        raise ArchError(exc.message, node.span, hint=hint) from None
    return graph.with_shapes(shapes, dtypes)


SEARCH_NODES = 50_000  # node shapes the search for working sizes may infer (well under a second)


def working_sizes(graph: Graph, input_size: tuple[int, ...], lo: int = 16, hi: int = 1024,
                  want: int = 4) -> tuple[list[int], tuple[int, int]]:
    """The `want` square sizes (multiples of 8) nearest the given one for which shape inference
    succeeds, and the range searched: nearest first, and only as many sizes as SEARCH_NODES allows
    on a graph this big."""
    order = sorted(range(lo, hi + 1, 8), key=lambda s: (abs(s - input_size[1]), s))
    order = order[:max(4, SEARCH_NODES // max(1, len(graph)))]
    ok: list[int] = []
    for s in order:
        try:
            infer_shapes(graph, (input_size[0], s, s))
        except ShapeError:
            continue
        ok.append(s)
        if len(ok) == want:
            break
    return sorted(ok), (min(order), max(order))
