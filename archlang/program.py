"""Load a spec with its imports into a `Program`, and resolve a variant plus overrides into settings.

Imports are paths relative to the importing file; imported files contribute block definitions.
They must lie under the spec's own folder or in archlang's spec library (unless the caller allows
any path), and every file is read as `sources.py` reads it: regular, UTF-8, within the size budget.
Settings start from each `param`'s default, then the variant (following `extends`), then the
per-build overrides, each checked against the declared params with a 'did you mean' hint.
"""

from __future__ import annotations

import numbers
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import syntax as S
from .errors import ArchError, Span, cmdline_span, did_you_mean, override_span
from .limits import MAX_FILES, MAX_VALUE_DEPTH, check_operands, check_value
from .parser import keyword_hint, parse, parse_expr
from .pynames import clash
from .sources import ByteBudget, SourceError, inside_allowed, read_spec


@dataclass
class Program:
    path: str
    family: str
    params: dict[str, S.ParamDecl]
    variants: dict[str, S.Variant]
    default: str | None
    input: tuple[tuple[S.Expr, ...], Span] | None
    blocks: dict[str, S.BlockDef]
    model: S.BlockDef
    files: list[str] = field(default_factory=list)
    requires: tuple[S.Require, ...] = ()
    input_defaults: tuple[S.Kwarg, ...] = ()  # default sizes of run-time input axes

    def where(self, span) -> str:
        """`file:line` for provenance: the file relative to the folder above the spec's folder,
        so output does not depend on the working directory (`specs/convnext.arch:12`)."""
        root = Path(self.path).resolve().parent.parent
        try:
            path = Path(span.file).resolve().relative_to(root).as_posix()
        except ValueError:
            path = Path(span.file).name
        # Paths end up in comments and docstrings of emitted code: keep them on one line, unquoted.
        path = "".join(c if c.isprintable() and c not in "\"'\\" else "?" for c in path)
        return f"{path}:{span.line}"

    def variant_names(self) -> list[str]:
        return list(self.variants)

    def find_variant(self, name: str) -> S.Variant | None:
        if name in self.variants:
            return self.variants[name]
        return next((v for v in self.variants.values() if name in v.aka), None)


def read_text(path: str, budget: ByteBudget | None = None) -> str:
    """The text of the spec at `path` (the file the user named, so errors name it, not a span)."""
    try:
        return read_spec(path, budget or ByteBudget())
    except SourceError as exc:
        hint = exc.hint or ("check the path to the .arch file" if exc.reason == "no such file" else None)
        raise ArchError(f"cannot read '{path}': {exc.reason}", exc.where, hint=hint) from None


def load(path: str, allow_outside: bool = False) -> Program:
    """Parse `path` and everything it imports (each file once). Imports must stay under the spec's
    folder or the spec library unless `allow_outside`."""
    budget = ByteBudget()
    main = parse(read_text(path, budget), path)
    if main.model is None:
        raise ArchError("the spec has no 'model { ... }' body", Span.point(path),
                        hint="a spec needs one model body that wires the stem, stages and head")
    blocks: dict[str, S.BlockDef] = {}
    files: list[str] = []
    root = None if allow_outside else Path(os.path.realpath(path)).parent
    _collect(main, blocks, files, set(), _Reader(budget, root))
    variants: dict[str, S.Variant] = {}
    for v in main.variants:
        if v.name in variants:
            raise ArchError(f"variant '{v.name}' is defined twice", v.span,
                            notes=(("first defined here", variants[v.name].span),))
        variants[v.name] = v
    params: dict[str, S.ParamDecl] = {}
    for p in main.params:
        if p.name in params:
            raise ArchError(f"param '{p.name}' is declared twice", p.span,
                            notes=(("first declared here", params[p.name].span),))
        if p.kinds:
            _check_type(p.name, literal(p.value), p, p.value.span)
        params[p.name] = p
    default = None
    if main.default:
        default = main.default[0]
        if default not in variants:
            raise ArchError(f"default variant '{default}' is not defined", main.default[1],
                            hint=did_you_mean(default, variants) or _listing("variants", variants))
    elif variants:
        default = next(iter(variants))
    _check_arg_names(main.params, blocks)
    family = main.family or _identifier(Path(path).stem)
    return Program(path, family, params, variants, default, main.input, blocks, main.model, files, main.requires,
                   main.input_defaults)


def _identifier(stem: str) -> str:
    """A family name from a file name: it names the emitted model class."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if name[:1].isalpha() else "model_" + name


def _check_arg_names(params, blocks: dict[str, S.BlockDef]) -> None:
    """Params and block parameters become keyword arguments of emitted constructors."""
    for p in params:
        if what := clash(p.name):
            raise ArchError(f"param '{p.name}' clashes with {what}", p.span,
                            hint="rename it: params become keyword arguments of the emitted model")
    for b in blocks.values():
        for p in b.params:
            if what := clash(p.name):
                raise ArchError(f"parameter '{p.name}' of block '{b.name}' clashes with {what}", p.span,
                                hint="rename it: block parameters become constructor arguments")


@dataclass
class _Reader:
    """Reads imported files: within the byte budget, and under `root` (or the spec library) unless
    root is None."""

    budget: ByteBudget
    root: Path | None

    def read(self, imp: S.Import, target: str, files: list[str]) -> S.SpecFile:
        if self.root is not None and not inside_allowed(target, self.root):
            raise ArchError(f"cannot import '{imp.path}': it is outside {self.root}", imp.span,
                            hint="imports stay inside the spec's folder or archlang's spec library; "
                                 "--allow-import-outside (allow_import_outside=True) lifts this")
        if len(files) >= MAX_FILES:
            raise ArchError(f"cannot import '{imp.path}': a spec may read at most {MAX_FILES} files", imp.span)
        try:
            text = read_spec(target, self.budget)
        except SourceError as exc:
            hint = f"imports are relative to {Path(imp.span.file).parent or '.'}" \
                if exc.reason == "no such file" else exc.hint
            notes = (("here", exc.where),) if exc.where else ()
            raise ArchError(f"cannot import '{imp.path}': {exc.reason}", imp.span, hint=hint, notes=notes) from None
        return parse(text, target)


def _collect(spec: S.SpecFile, blocks: dict[str, S.BlockDef], files: list[str], seen: set[str],
             reader: _Reader) -> None:
    key = os.path.realpath(spec.path)
    if key in seen:
        return
    seen.add(key)
    files.append(spec.path)
    for imp in spec.imports:
        target = str(Path(spec.path).parent / imp.path)
        if os.path.realpath(target) in seen:
            continue
        child = reader.read(imp, target, files)
        if child.model is not None or child.params or child.variants:
            raise ArchError(f"'{imp.path}' is not a library: it declares a model, params or variants",
                            imp.span, hint="imported files may only define blocks")
        if child.requires:
            raise ArchError("a library cannot declare requires", child.requires[0].span,
                            hint="put the require in the spec that declares the params it checks")
        _collect(child, blocks, files, seen, reader)
    for b in spec.blocks:
        if b.name in blocks:
            raise ArchError(f"block '{b.name}' is defined twice", b.span,
                            notes=(("first defined here", blocks[b.name].span),))
        blocks[b.name] = b


# ---------------------------------------------------------------- settings


_FOLDABLE = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
             "//": operator.floordiv, "%": operator.mod, "**": operator.pow}


def literal(expr: S.Expr):
    """Value of a constant expression (param defaults, variant values, overrides)."""
    if isinstance(expr, S.Const):
        return expr.value
    if isinstance(expr, S.ListExpr):
        return check_value(tuple(literal(e) for e in expr.items), expr.span)
    if isinstance(expr, S.Unary) and expr.op in "-+":
        v = literal(expr.operand)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if expr.op == "-" else v
    if isinstance(expr, S.BinOp) and expr.op in _FOLDABLE:
        # arithmetic of numbers, so a default can say 8 / 3 instead of 2.6666666666666665
        a, b = literal(expr.left), literal(expr.right)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            if expr.op in ("/", "//", "%") and b == 0:
                raise ArchError("division by zero", expr.span)
            check_operands(expr.op, a, b, expr.span)
            try:
                return check_value(_FOLDABLE[expr.op](a, b), expr.span)
            except OverflowError:
                raise ArchError(f"the result of '{expr.op}' is too large", expr.span) from None
    hint = keyword_hint(expr.id) if isinstance(expr, S.Name) else None
    raise ArchError("expected a constant value here", expr.span,
                    hint=hint or "params, variants and overrides take numbers, true/false/none, strings or lists")


def _kind(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "list"


def _check_type(name: str, value, decl: S.ParamDecl, span: Span) -> None:
    """A value must be of the param's kinds: the declared ones, else its default's (a none
    default takes anything); none is always accepted (it means "off")."""
    want, have = decl.kinds or (_kind(literal(decl.value)),), _kind(value)
    if have in want or have == "none" or want == ("none",):
        return
    raise ArchError(f"'{name}' is a {' or '.join(want)} param, got a {have}", span,
                    notes=(("declared here", decl.span),))


def resolve_settings(prog: Program, variant: str | None, overrides: dict | None,
                     override_spans: dict[str, Span] | None = None) -> tuple[str | None, dict[str, object]]:
    """Hyperparameter values for a build: defaults, then the variant chain, then overrides."""
    settings = {name: literal(p.value) for name, p in prog.params.items()}
    chosen = prog.default if variant is None else variant
    name = None
    if chosen is not None:
        v = prog.find_variant(chosen)
        if v is None:
            known = list(prog.variants) + [a for v in prog.variants.values() for a in v.aka]
            raise ArchError(f"no variant '{chosen}' in {prog.path}", cmdline_span(f"--variant {chosen}", 10),
                            hint=did_you_mean(chosen, known) or _listing("variants", prog.variants))
        name = v.name
        for step in _chain(prog, v):
            for kw in step.values:
                if kw.name not in prog.params:
                    raise ArchError(f"variant '{step.name}' sets unknown param '{kw.name}'", kw.span,
                                    hint=did_you_mean(kw.name, prog.params) or "declare it with `param`")
                value = literal(kw.value)
                _check_type(kw.name, value, prog.params[kw.name], kw.span)
                settings[kw.name] = value
    spans = override_spans or {}
    for key, value in (overrides or {}).items():
        span = spans.get(key) or override_span(key, value, api=override_spans is None)
        if key not in prog.params:
            raise ArchError(f"unknown override '{key}'", span,
                            hint=did_you_mean(key, prog.params) or _listing("params", prog.params))
        value = _normalize(value, span)
        _check_type(key, value, prog.params[key], span)
        settings[key] = value
    return name, settings


def _listing(kind: str, names) -> str:
    return f"{kind}: {', '.join(names)}" if names else f"the spec declares no {kind}"


def _chain(prog: Program, v: S.Variant) -> list[S.Variant]:
    chain, seen = [v], {v.name}
    while chain[0].extends:
        parent = prog.variants.get(chain[0].extends)
        if parent is None:
            raise ArchError(f"variant '{chain[0].name}' extends unknown variant '{chain[0].extends}'",
                            chain[0].extends_span, hint=did_you_mean(chain[0].extends, prog.variants))
        if parent.name in seen:
            raise ArchError(f"variant '{parent.name}' extends itself through {chain[0].name}", chain[0].extends_span)
        seen.add(parent.name)
        chain.insert(0, parent)
    return chain


def _normalize(value, span: Span, depth: int = 0):
    """Python override values (API) -> spec values: lists become tuples, numpy-style numbers plain
    ones; other types are rejected, and so are values beyond the limits of spec values."""
    if depth > MAX_VALUE_DEPTH:
        raise ArchError(f"override value nests lists more than {MAX_VALUE_DEPTH} levels deep", span)
    if isinstance(value, (list, tuple)):
        return check_value(tuple(_normalize(v, span, depth + 1) for v in value), span)
    if value is None or isinstance(value, (bool, str)):
        return check_value(value, span)
    if isinstance(value, numbers.Integral):
        return check_value(int(value), span)
    if isinstance(value, numbers.Real):
        return check_value(float(value), span)
    shown = repr(value)
    raise ArchError(f"override value {shown[:80]} is not a number, bool, string, none or list", span)


def parse_override(text: str) -> tuple[str, object, Span]:
    """`KEY=VALUE` from the command line, VALUE in spec syntax (`depths=[2,2,6,2]`)."""
    if "=" not in text:
        raise ArchError(f"--set expects KEY=VALUE, got '{text}'", cmdline_span(f"--set {text}", 6),
                        hint="for example --set num_classes=10")
    key, raw = text.split("=", 1)
    key = key.strip()
    span = cmdline_span(f"--set {text}", 6, 6 + len(key))
    value = literal(parse_expr(raw.strip(), "<--set " + key + ">"))
    return key, value, span
