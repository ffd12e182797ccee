"""Python expressions under construction, for emitted source.

`Code` keeps the text, its precedence (to add only the parentheses Python needs) and, when the
expression is a literal, its value, so `(k - 1) // 2` with k = 7 is emitted as `3`. Nothing here
evaluates user text: literals go through `repr`, names are identifiers checked by the grammar.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

_NOT_CONST = object()

# Python operator precedence, low to high.
PREC = {"if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 10, "-": 10, "*": 11, "/": 11,
        "//": 11, "%": 11, "@": 11, "unary": 12, "**": 13, "postfix": 15, "atom": 16}
_CMP = {"==", "!=", "<", "<=", ">", ">=", "is", "is not"}
_FOLD = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
         "/": operator.truediv, "%": operator.mod, "**": operator.pow, "==": operator.eq,
         "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
         ">=": operator.ge}


@dataclass(frozen=True)
class Code:
    text: str
    prec: int = PREC["atom"]
    const: object = _NOT_CONST

    @property
    def is_const(self) -> bool:
        return self.const is not _NOT_CONST

    def __str__(self) -> str:
        return self.text


def lit(value) -> Code:
    if isinstance(value, (list, tuple)):
        items = [lit(v).text for v in value]
        text = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return Code(text, PREC["atom"], tuple(value))
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        text = f"{value:.1f}"
    else:
        text = repr(value)
    prec = PREC["unary"] if isinstance(value, (int, float)) and value < 0 else PREC["atom"]
    return Code(text, prec, value)


def name(ident: str) -> Code:
    return Code(ident)


def wrap(code: Code, prec: int, right: bool = False) -> str:
    """Parenthesize `code` if it binds looser than an operand slot of precedence `prec`."""
    if code.prec < prec or (right and code.prec == prec):
        return f"({code.text})"
    return code.text


def binop(op: str, a: Code, b: Code) -> Code:
    if a.is_const and b.is_const and op in _FOLD and _foldable(op, a.const, b.const):
        return lit(_FOLD[op](a.const, b.const))
    simplified = _identity(op, a, b)
    if simplified is not None:
        return simplified
    prec = PREC["cmp"] if op in _CMP else PREC[op]
    if op == "**":  # right-associative
        return Code(f"{wrap(a, prec + 1)} ** {wrap(b, prec)}", prec)
    if prec == PREC["cmp"]:  # Python chains comparisons: (a < b) == c keeps its parentheses
        return Code(f"{wrap(a, prec + 1)} {op} {wrap(b, prec + 1)}", prec)
    return Code(f"{wrap(a, prec)} {op} {wrap(b, prec, right=True)}", prec)


def _foldable(op: str, a, b) -> bool:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if op in ("/", "//", "%") and b == 0:
        return False
    if op in _CMP:
        return True
    return numeric


def _identity(op: str, a: Code, b: Code) -> Code | None:
    # only int constants: `t * 1.0` turns an int tensor (or int) into a float, so it must stay
    if op in ("+", "-") and _int_const(b, 0):
        return a
    if op == "+" and _int_const(a, 0):
        return b
    if op in ("*", "//") and _int_const(b, 1):
        return a
    if op == "*" and _int_const(a, 1):
        return b
    return None


def _int_const(c: Code, value: int) -> bool:
    return c.is_const and type(c.const) is int and c.const == value


def unary(op: str, a: Code) -> Code:
    if a.is_const and op == "-" and isinstance(a.const, (int, float)):
        return lit(-a.const)
    if a.is_const and op == "not":
        return lit(not a.const)
    if op == "not":
        return Code(f"not {wrap(a, PREC['not'])}", PREC["not"])
    return Code(f"{op}{wrap(a, PREC['unary'])}", PREC["unary"])


def cond(then: Code, test: Code, orelse: Code) -> Code:
    if test.is_const:
        return then if test.const else orelse
    p = PREC["if"]
    return Code(f"{wrap(then, p + 1)} if {wrap(test, p + 1)} else {wrap(orelse, p)}", p)


def boolop(op: str, a: Code, b: Code) -> Code:
    p = PREC[op]
    return Code(f"{wrap(a, p)} {op} {wrap(b, p, right=True)}", p)


def call(fn: str | Code, *args: Code | str, **kwargs: Code | str) -> Code:
    parts = [str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()]
    head = fn.text if isinstance(fn, Code) else fn
    if isinstance(fn, Code) and fn.prec < PREC["postfix"]:
        head = f"({head})"
    return Code(f"{head}({', '.join(parts)})", PREC["postfix"])


def attr(a: Code, field: str) -> Code:
    return Code(f"{wrap(a, PREC['postfix'])}.{field}", PREC["postfix"])


def index(a: Code, subs: list[str]) -> Code:
    return Code(f"{wrap(a, PREC['postfix'])}[{', '.join(subs)}]", PREC["postfix"])


def tuple_of(items: list[Code]) -> Code:
    if all(i.is_const for i in items):
        return lit(tuple(i.const for i in items))
    inner = ", ".join(i.text for i in items)
    return Code(f"({inner}{',' if len(items) == 1 else ''})")
