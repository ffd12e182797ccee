"""When a tensor is computed: in forward, or once when the module is built.

A tensor made only from compile-time values and generators called without a tensor
(`arange(7)`) is a *build-time* tensor: an index table, a coordinate grid, a RoPE sin/cos table.
The emitted module computes it in `__init__` with plain torch code; it reaches forward only
through a buffer (`index = buffer(expr, persistent = false)`), whose name and persistence the spec
chooses; later build-time code may read the buffer's values too. Every other tensor (x, a block's
inputs, weights, buffers and whatever is computed from them) is a *forward* tensor.

`Scope` tracks, statically, which names of one class body hold which kind of tensor, so lowering
can tell each assignment where it runs, and refuse expressions that mix the two (forward cannot
read a build-time tensor that is not a buffer; a buffer's values cannot come from forward).
"""

from __future__ import annotations

from . import syntax as S
from .binding import plan_call
from .errors import ArchError, Span
from .ops import OPS

FORWARD, BUILD, MIXED = "forward", "build", "mixed"
BOTH = "both"  # a computed buffer or weight: forward reads the tensor the module owns, build-time code its values


class Scope:
    """Tensor names of one class body (a block, a group, a loop item, the model) and when each is
    computed. Names missing here are compile-time values (params, lets, loop variables, sizes)."""

    def __init__(self, inputs=("x",)):
        self.kinds: dict[str, str] = dict.fromkeys(inputs, FORWARD)

    def copy(self) -> Scope:
        out = Scope(())
        out.kinds = dict(self.kinds)
        return out

    def merged(self, *others: Scope) -> Scope:
        """Names after paths that may each have run: a name that is a build-time tensor on one
        path and a forward tensor on another is MIXED (reading it is an error)."""
        out = self.copy()
        for other in others:
            for name, kind in other.kinds.items():
                have = out.kinds.get(name)
                out.kinds[name] = kind if have in (None, kind) else MIXED
        return out

    def bind(self, names, kind: str | None, span: Span) -> None:
        for name in names:
            if name == "x" and kind == BUILD:
                raise ArchError("x is the tensor forward computes; a build-time tensor cannot become x", span,
                                hint="name it, and make it a buffer forward reads: `t = buffer(...)`")
            if kind is None:
                self.kinds.pop(name, None)
            else:
                self.kinds[name] = kind

    # -- classifying expressions
    def when(self, e: S.Expr, blocks, both: str = FORWARD) -> str | None:
        """FORWARD, BUILD, or None for a compile-time value. An expression mixing both kinds of
        tensor is refused at its build-time part (forward cannot read it). Computed buffers go
        with either kind; an expression of them alone is `both` (forward, unless it gives the
        values of a new buffer)."""
        found = self._first(e, blocks)
        if found[BUILD] is not None and found[FORWARD] is not None:
            raise forward_reads(found[BUILD])
        if found[BUILD] is not None:
            return _deterministic(e, BUILD)
        if found[FORWARD] is not None:
            return FORWARD
        return _deterministic(e, both) if found[BOTH] is not None else None

    def forward(self, e: S.Expr, blocks) -> None:
        """`e` is evaluated in forward: it may not read a build-time tensor."""
        build = self._first(e, blocks)[BUILD]
        if build is not None:
            raise forward_reads(build)

    def _first(self, e: S.Expr, blocks) -> dict:
        """The first part of `e` of each kind (None when there is none)."""
        found = {BUILD: None, FORWARD: None, BOTH: None}
        for sub, kind in self._parts(e, blocks, sizes_only=False):
            if found[kind] is None:
                found[kind] = sub
        return found

    def _parts(self, e: S.Expr, blocks, sizes_only: bool):
        if isinstance(e, S.Name):
            kind = self.kinds.get(e.id)
            if kind == MIXED:
                raise ArchError(f"'{e.id}' is a build-time tensor on one path here and a forward tensor on "
                                "another", e.span, hint="use a different name for each")
            if kind == BUILD and sizes_only:
                raise ArchError(f"'{e.id}' is a build-time tensor; its sizes are known at compile time",
                                e.span, hint="shape(t) reads the sizes of forward tensors")
            if kind is not None and not sizes_only:
                yield e, kind
            return
        if isinstance(e, S.Call) and isinstance(e.func, S.Name):
            if e.func.id == "shape":  # the run-time sizes of a forward tensor: a value, not a tensor
                for a in e.args:
                    yield from self._parts(a, blocks, sizes_only=True)
                return
            if plan_call(e, blocks).build:
                yield e, BUILD
        for child in S.children(e):
            yield from self._parts(child, blocks, sizes_only)


def _deterministic(e: S.Expr, kind: str) -> str:
    """A build-time tensor is computed once, when the module is built: a random op (dropout,
    drop-path: trait "dropout") has no meaning there."""
    if kind == BUILD:
        for sub in S.subexprs(e):
            if isinstance(sub, S.Call) and isinstance(sub.func, S.Name):
                op = OPS.get(sub.func.id)
                if op is not None and op.has("dropout"):
                    raise ArchError(f"{op.name} is random in training and the identity in eval, but this tensor "
                                    "is computed once, when the module is built", sub.span,
                                    hint=f"apply {op.name} in forward, to a tensor forward computes")
    return kind


def forward_reads(part: S.Expr) -> ArchError:
    """Forward reads a build-time tensor directly: it must go through a buffer."""
    if isinstance(part, S.Name):
        return ArchError(f"'{part.id}' is computed when the module is built, so forward cannot read it "
                         "directly", part.span,
                         hint=f"make it a buffer, which forward reads: `{part.id}_buf = buffer({part.id}, "
                              "persistent = false)`")
    fn = part.func.id
    return ArchError(f"{fn}(...) without a tensor is computed when the module is built, so forward cannot "
                     "use it directly", part.span,
                     hint=f"make it a buffer (`t = buffer({fn}(...))`), or give {fn} a tensor first to "
                          f"compute it in forward: {fn}(x, ...)")
