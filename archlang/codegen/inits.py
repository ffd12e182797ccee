"""Emitted code for init rules (archlang/inits.py says what they mean): at the end of a class's
__init__, one loop per rule over the modules the class built (or those inside one of them), picking
the rule's ops by their module class and setting parameters with torch.nn.init:

    for m in self.modules():  # specs/convnext.arch:97
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
"""

from __future__ import annotations

import re

from .. import pycode as P
from .. import syntax as S
from ..binding import bind
from ..bodies import CHOOSE
from ..inits import DISTRIBUTIONS, in_scope, item_op, param_names, rule_ops
from ..ops import OPS
from .helpers import HELPERS

_MODULE = "call_module:"
# helper classes that extend an nn class (LayerNorm2d is an nn.LayerNorm, yet another op)
_BASES = {name: base for name, src in HELPERS.items()
          for base in re.findall(rf"^class {name}\((nn\.\w+)\)", src, re.M)}
_NAMED = {"zeros": "nn.init.zeros_", "ones": "nn.init.ones_", "normal": "nn.init.normal_",
          "trunc_normal": "nn.init.trunc_normal_"}


def module_class(op) -> str | None:
    """The class a module of `op` is emitted as: nn.X, or a helper class of the file."""
    cls = next((t[len(_MODULE):] for t in op.fx if t.startswith(_MODULE)), None)
    if cls is None:
        return None
    return cls if cls in HELPERS else f"nn.{cls}"


def type_test(ops, lookalikes, var: str) -> str:
    """`isinstance(m, ...)` for modules of exactly `ops`, not of the `lookalikes`: ops whose helper
    class extends one of theirs (a rule on layernorm does not reach LayerNorm2d modules)."""
    classes = list(dict.fromkeys(module_class(op) for op in ops))
    test = f"isinstance({var}, {classes[0] if len(classes) == 1 else '(' + ', '.join(classes) + ')'})"
    return test + "".join(f" and not isinstance({var}, {module_class(op)})" for op in lookalikes)


def rule_lines(rule: S.InitRule, var: str, translate, body, blocks) -> tuple[list, set[str]]:
    """(depth, text, span) lines of one rule of the class whose statements are `body`, and the
    helper classes they name; `translate` turns a spec expression into __init__ code. A rule that
    can reach no module is not emitted (a deploy form's BatchNorm rule, once fusion folded the
    BatchNorms away)."""
    ops = rule_ops(rule)
    scope = in_scope(rule, body)

    def reachable(names: set[str]) -> bool:
        return may_build(scope, blocks, names)

    if not reachable({op.name for op in ops}):
        return [], set()
    classes = {module_class(op) for op in ops}
    lookalikes = sorted((op for op in OPS.values() if op.kind == "module" and op not in ops
                         and _BASES.get(module_class(op)) in classes and reachable({op.name})),
                        key=lambda op: op.name)
    where = f"self.{rule.within[0]}.modules()" if rule.within else "self.modules()"
    lines = [(0, f"for {var} in {where}:", rule.span), (1, f"if {type_test(ops, lookalikes, var)}:", None)]
    for item in rule.items:
        optional = any(item.name not in param_names(op, flags=False) for op in ops)  # bias=False, affine=False
        body = item_lines(item, f"{var}.{item.name}", translate)
        if optional:
            lines.append((2, f"if {var}.{item.name} is not None:", None))
        lines += [(3 if optional else 2, text, None) for text in body]
    return lines, {module_class(op) for op in lookalikes}


def item_lines(item: S.InitItem, target: str, translate) -> list[str]:
    binding = bind(item_op(item), item.args, item.kwargs, item.span)
    init, std, scale = (binding.expr(n) for n in ("init", "std", "scale"))
    if isinstance(init, S.Const) and isinstance(init.value, str):
        fn = _NAMED[init.value]
        kw = {"std": translate(std) if std is not None else P.lit(0.02)} if init.value in DISTRIBUTIONS else {}
        lines = [str(P.call(fn, target, **kw))]
    else:
        value = translate(init)
        if value.is_const and type(value.const) in (int, float) and value.const in (0, 1):
            lines = [str(P.call("nn.init.zeros_" if value.const == 0 else "nn.init.ones_", target))]
        else:
            lines = [str(P.call("nn.init.constant_", target, value))]
    if scale is not None:
        factor = translate(scale)
        if not (factor.is_const and factor.const == 1):
            lines.append(f"{target}.data.mul_({factor})")
    return lines


def may_build(body, blocks, names: set[str], seen: frozenset = frozenset()) -> bool:
    """Whether statements `body` can build a module of one of the ops `names` (through the blocks
    they apply, or a layer a parameter chooses)."""
    for st in S.walk(body):
        if not isinstance(st, S.Layer):
            continue
        if st.callee in names or st.callee == CHOOSE:
            return True
        if st.callee in blocks and st.callee not in seen \
                and may_build(blocks[st.callee].body, blocks, names, seen | {st.callee}):
            return True
    return False


def rule_names(rules) -> list[str]:
    """Compile-time names the rules read (threaded into the class like the body's)."""
    out: list[str] = []
    for rule in rules:
        for item in rule.items:
            for e in (*item.args, *(k.value for k in item.kwargs)):
                out += [n.id for n in S.subexprs(e) if isinstance(n, S.Name)]
    return list(dict.fromkeys(out))
