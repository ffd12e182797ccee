"""Init rules: how a spec says its weights start (timm's init functions, written as data).

`init conv2d, linear { weight(init = "trunc_normal", std = 0.02); bias(init = 0) }` at the top of a
block or the model body: every module of those ops that the body builds (only inside the module
labelled NAME, with `in NAME`) has each listed parameter set as `weight(...)` would make it, times
`scale`. Rules run in order at the end of the body's constructor, so a block's rules run before
those of the bodies that build it and the model's have the last word, as in timm, where a model's
init function runs after its layers have initialised themselves.

This module owns what a rule means and its checks: lowering checks what needs no values (the ops
own the parameters, the label is one the body always builds, the call fits the signature);
elaboration checks the values (`check_values`). Codegen emits the loops (codegen/inits.py).
"""

from __future__ import annotations

from . import syntax as S
from .binding import bind
from .errors import ArchError, did_you_mean
from .ops import OPS, REQUIRED, Arg, Attrs, OpDef, check_args, meanings, number, one_of
from .ops.source import INITS
from .values import show_value

DISTRIBUTIONS = ("normal", "trunc_normal")  # the initialisers `std` applies to


def item_op(item: S.InitItem) -> OpDef:
    """What an item `bias(init = 0)` takes, as an op signature, so it binds and checks as a call."""
    args = (Arg("init", REQUIRED, one_of(*INITS, numbers=True)), Arg("std", 0.02, number), Arg("scale", 1.0, number))
    return OpDef(item.name, "source", args, shape=lambda a, ins: ())


def param_names(op: OpDef, flags: bool = True) -> set[str]:
    """The parameters a module of `op` owns, its boolean arguments (bias, affine) all set to `flags`."""
    values = {}
    for a in op.args:
        if a.default is REQUIRED:
            values[a.name] = 1  # any valid size: only the names are wanted
        else:
            values[a.name] = flags if isinstance(a.default, bool) else a.default
    return set(op.params(Attrs(values)))


def rule_ops(rule: S.InitRule) -> list[OpDef]:
    """The ops a rule names, each a module op that owns parameters."""
    out = []
    for name, span in rule.ops:
        op = OPS.get(name)
        if op is None:
            known = meanings()
            hint = f"did you mean '{known[name]}'?" if name in known else did_you_mean(name, sorted(OPS))
            raise ArchError(f"unknown layer '{name}'", span, hint=hint)
        if op.kind != "module" or not param_names(op):
            raise ArchError(f"an init rule sets the parameters of modules, and {name} owns none", span,
                            hint="name module ops such as conv2d, linear, batchnorm2d, layernorm")
        out.append(op)
    return out


def always_built(body):
    """The labelled statements of a body that build a module whatever the settings (not under an
    if or inside a loop item): its own statements and those of its residuals and branch sums."""
    for st in body:
        label = getattr(st, "label", None)
        if isinstance(st, (S.Layer, S.Group, S.For)) and label is not None and not label.exprs:
            yield st
        if isinstance(st, (S.Residual, S.Branches)):
            for sub in S.sub_bodies(st):
                yield from always_built(sub)


def in_scope(rule: S.InitRule, body) -> tuple:
    """The statements a rule reaches: the whole body, or the one labelled `in NAME`."""
    if rule.within is None:
        return tuple(body)
    return tuple(st for st in always_built(body) if st.label.name == rule.within[0])


def check_rules(bdef: S.BlockDef) -> None:
    """What can be checked without values, for every reachable block (codegen emits them all)."""
    for rule in bdef.inits:
        ops = rule_ops(rule)
        seen: set[str] = set()
        for item in rule.items:
            for op in ops:  # every module the rule reaches has the parameter
                owned = sorted(param_names(op))
                if item.name not in owned:
                    raise ArchError(f"{op.name} owns no parameter '{item.name}'", item.span,
                                    hint=did_you_mean(item.name, owned) or f"its parameters: {', '.join(owned)}")
            if item.name in seen:
                raise ArchError(f"'{item.name}' is set twice in this rule", item.span)
            seen.add(item.name)
            check_item(item)
        if rule.within is not None and not in_scope(rule, bdef.body):
            name, span = rule.within
            raise ArchError(f"'{name}' is not a module this body always builds", span,
                            hint="`in NAME` names a label written in this body, outside any if or loop item")


def check_item(item: S.InitItem) -> None:
    binding = bind(item_op(item), item.args, item.kwargs, item.span)
    init, std = binding.expr("init"), binding.expr("std")
    if std is not None and isinstance(init, S.Const) and init.value not in DISTRIBUTIONS:
        raise ArchError(f"'std' applies to init = \"normal\" or \"trunc_normal\", not {show_value(init.value)}",
                        std.span, hint="drop 'std'")


def check_values(rules, value) -> None:
    """The values of every item's arguments (`value(expr)` evaluates one) are what they must be."""
    for rule in rules:
        for item in rule.items:
            binding = bind(item_op(item), item.args, item.kwargs, item.span)
            given = {name: e for name, e in binding.args if e is not None}
            values = {name: value(e) for name, e in given.items()}
            init = given["init"]
            if isinstance(values["init"], str) and not isinstance(init, S.Const):
                raise ArchError("write a named initialiser as a string literal", init.span,
                                hint=f'init = "{values["init"]}"')
            check_args(binding.op, values, {name: e.span for name, e in given.items()}, item.span)
