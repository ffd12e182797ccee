"""The spec's own words for values the IR holds as run-time sizes.

A size known only at run time (`side = shape(q)[2]`, `h // partition`) is a `Sym` in the IR,
and a Sym refers to other nodes by id (`%9.shape[2]`), which means nothing to a reader. Tools
print such a value the way the spec wrote it: the source text of the argument it was passed as
(`p = side`), found through the span of the call that made the node. Sizes read from the input
print by the input's names (B, H, W); the rare value with no argument to point at prints as its
size at the compiled input size.
"""

from __future__ import annotations

import dataclasses

from . import syntax as S
from .errors import SOURCES, Span
from .values import Sym, has_sym


class SpecNames:
    def __init__(self, program, graph):
        self.graph = graph
        self._calls: dict[Span, object] = {}  # span -> Call expression or Layer statement
        for block in (*program.blocks.values(), program.model):
            for st in S.walk(block.body):
                if isinstance(st, S.Layer):
                    self._calls[st.span] = st
                for e in _exprs(st):
                    if isinstance(e, S.Call):
                        self._calls[e.span] = e

    def value(self, v, span: Span | None = None, key: str | None = None, position: int | None = None) -> str:
        """`v` as text; a run-time size as the spec's text for argument `key` (or positional
        argument `position`) of the call at `span`."""
        if isinstance(v, tuple):
            return "[" + ", ".join(self.value(x, span, _pair_key(x, key), None) for x in v) + "]"
        if not has_sym(v):
            return str(v)
        text = self.argument(span, key, position) if span is not None else None
        return text if text is not None else self._fallback(v)

    def argument(self, span: Span, key: str | None, position: int | None = None) -> str | None:
        call = self._calls.get(span)
        if call is None:
            return None
        for kw in call.kwargs:
            if kw.name == key:
                return span_text(kw.value.span)
        if position is not None and position < len(call.args):
            return span_text(call.args[position].span)
        return None

    def _fallback(self, v) -> str:
        if isinstance(v, Sym) and isinstance(v.b, str):  # an input size the spec named (B, H, W)
            return v.b
        from .axes import resolved

        return str(resolved(self.graph, v))


def _pair_key(x, key):
    """Inside a ((name, size), ...) list (rearrange sizes) the name is the argument's keyword."""
    return x[0] if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) else key


def _exprs(st: S.Stmt):
    """Every expression a statement holds directly (nested statements are walked separately)."""
    for f in dataclasses.fields(st):
        yield from _inside(getattr(st, f.name))


def _inside(value):
    if isinstance(value, S.Expr):
        yield from S.subexprs(value)
    elif isinstance(value, S.Kwarg):
        yield from S.subexprs(value.value)
    elif isinstance(value, tuple):
        for item in value:
            if not isinstance(item, S.Stmt):
                yield from _inside(item)


def span_text(span: Span) -> str | None:
    """The source text a span covers, on one line."""
    parts = []
    for line in range(span.line, span.end_line + 1):
        text = SOURCES.line(span.file, line)
        if text is None:
            return None
        lo = span.col - 1 if line == span.line else 0
        hi = span.end_col - 1 if line == span.end_line else len(text)
        parts.append(text[lo:hi].strip())
    return " ".join(p for p in parts if p)
