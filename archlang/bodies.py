"""Static facts about statement lists that decide how modules are named and called.

- A *plain* body (unlabelled layers on x, and unlabelled loops and ifs of them) is what
  nn.Sequential expresses: its modules are numbered 0, 1, ... in the order they run, so timm's
  `blocks.i.j` names come out (`plain_breaker` names the statement that keeps a body from it).
- A labelled loop whose body is one unlabelled module layer has that layer as each item
  (`lone_item`).
- A body returns as many tensors as its `return` statements give (`outputs_of`).
Lowering reads these once; nothing else re-derives them.
"""

from __future__ import annotations

from . import syntax as S
from .errors import ArchError
from .ops import OPS

CHOOSE = "layer"  # `layer(act_layer, ...)`: the op is named by a value (a param)


def is_layer_on_x(st) -> bool:
    """An unlabelled layer applied to x whose output becomes x."""
    return isinstance(st, S.Layer) and st.label is None and st.targets is None and st.inputs is None


def _is_module_layer(st, blocks, acts: bool) -> bool:
    kinds = ("module", "act") if acts else ("module",)
    return st.callee in blocks or st.callee == CHOOSE or getattr(OPS.get(st.callee), "kind", "") in kinds


def lone_item(body, blocks) -> S.Layer | None:
    """The item of a labelled loop whose body is one unlabelled module layer whose output becomes
    x (it may take other tensors too: `blk(d)(x, rope)`), or None."""
    if len(body) != 1:
        return None
    st = body[0]
    if not (isinstance(st, S.Layer) and st.label is None and st.targets is None):
        return None
    return st if _is_module_layer(st, blocks, acts=False) else None


def plain_breaker(stmts, blocks) -> S.Stmt | None:
    """The first statement that keeps `stmts` from being a plain layer sequence (None: plain)."""
    for st in stmts:
        if isinstance(st, S.For) and st.label is None:
            bad = plain_breaker(st.body, blocks)
        elif isinstance(st, S.If):
            bad = next((b for body in [*(b for _, b in st.arms), st.orelse or ()]
                        if (b := plain_breaker(body, blocks)) is not None), None)
        elif is_layer_on_x(st) and _is_module_layer(st, blocks, acts=True):
            bad = None
        else:
            bad = st
        if bad is not None:
            return bad
    return None


def is_plain_chain(stmts, blocks) -> bool:
    """Unlabelled layers (blocks, modules, activations), and unlabelled loops and ifs of them:
    what nn.Sequential expresses."""
    return bool(stmts) and plain_breaker(stmts, blocks) is None


def describe_stmt(st: S.Stmt) -> str:
    """Why a statement is not an unlabelled module layer, for messages."""
    if isinstance(st, S.Layer):
        if st.targets is not None:
            return "this layer binds its output to a name"
        if st.inputs is not None:
            return "this layer takes explicit inputs"
        if st.label is not None:
            return "this layer is labelled"
        return f"'{st.callee}' is a function, not a module"
    names = {S.Assign: "an assignment", S.Let: "a let", S.Group: "a labelled group", S.Residual: "a residual",
             S.Branches: "a sum/avg", S.Return: "a return", S.Pass: "a pass", S.For: "a labelled loop"}
    return f"this is {names.get(type(st), 'a statement')}, not a layer"


def outputs_of(body) -> int:
    """How many tensors a block or group body returns (1 without a return); every return of
    the body must give the same number."""
    first = None
    for st in _own(body):
        if isinstance(st, S.Return):
            if first is None:
                first = st
            elif len(st.values) != len(first.values):
                raise ArchError(f"this return gives {len(st.values)} tensor(s), an earlier one "
                                f"{len(first.values)}", st.span, notes=(("the earlier return", first.span),),
                                hint="every return of a body gives the same number of tensors")
    return len(first.values) if first is not None else 1


def _own(body):
    """Statements of a body and of the if/loop/residual/sum bodies inside it (not groups')."""
    for st in body:
        yield st
        for sub in S.own_bodies(st):
            yield from _own(sub)


def choosable() -> dict:
    """Layers a parameter may choose by name (`layer(act_layer)`): the activations and norms of
    the op table, by name. The emitted module holds the same table (`LAYERS`)."""
    return {name: op for name, op in sorted(OPS.items())
            if op.kind in ("act", "module") and op.init is not None and op.n_inputs == 1
            and (op.has("activation") or op.has("norm"))}
