"""The compiler driver: load -> settings -> requires -> the pass pipeline (`archlang.passes.run`)
-> codegen -> import.

`compile_spec` runs everything that does not need torch and returns a `Compiled` record;
`load_module` turns its source into a live nn.Module (the only step that imports torch). The
module is compiled from memory, never from a file another user could plant: its source lines are
registered with `linecache`, so tracebacks and `inspect.getsource` still show the emitted code.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from . import passes
from . import syntax as S
from .codegen import ModuleEmitter
from .elaborate import Elaborator, Frame
from .errors import ArchError
from .evaluate import describe
from .ir import Graph
from .program import Program, load, resolve_settings
from .values import show_value


@dataclass
class Compiled:
    program: Program
    variant: str | None
    settings: dict
    graph: Graph
    cost: object  # passes.count_flops.CostReport
    input_size: tuple[int, ...]
    fused: bool = False
    fusion: object | None = None  # passes.fuse_reparam.Fusion, when fused
    unfused: Compiled | None = field(default=None, repr=False)

    @cached_property
    def source(self) -> str:
        return ModuleEmitter(self.program, self.settings, self.variant).emit()

    @property
    def name(self) -> str:
        return f"{self.program.family}:{self.variant}" if self.variant else self.program.family


def compile_spec(path: str, variant: str | None = None, overrides: dict | None = None,
                 input_size: tuple[int, ...] | None = None, fuse: bool = False,
                 override_spans: dict | None = None, allow_import_outside: bool = False) -> Compiled:
    """Compile a spec variant. `input_size` (C, H, W) defaults to the sizes the spec's `input` line
    fixes (DeiT's img_size), and to 3x224x224 for the axes it leaves to run time. Errors raised
    once the settings are known name the overrides of the build."""
    program = load(str(path), allow_import_outside)
    name, settings = resolve_settings(program, variant, overrides, override_spans)
    with _naming_overrides(overrides, override_spans), _deep_recursion(program):
        check_requires(program, name, settings)
        size = tuple(input_size) if input_size is not None else None  # None: check-shapes takes the spec's
        start = passes.Build(program, name, settings, size)
        return _compiled(passes.run(start, passes.DEPLOY_PIPELINE if fuse else passes.PIPELINE))


def deploy_form(c: Compiled) -> Compiled:
    """The fused (deploy) form of a compiled train form, for the same settings and input size."""
    if c.fused:
        return c
    with _deep_recursion(c.program):
        return _compiled(passes.run(passes.Build(c.program, c.variant, c.settings, c.input_size),
                                    passes.DEPLOY_PIPELINE))


def _compiled(build: passes.Build) -> Compiled:
    unfused = _compiled(build.unfused) if build.unfused is not None else None
    return Compiled(build.program, build.variant, build.settings, build.graph, build.cost, build.input_size,
                    build.fusion is not None, build.fusion, unfused)


def check_requires(program: Program, variant: str | None, settings: dict) -> None:
    """Every `require` of the spec holds for these settings; a failing one stops the build with its
    own message, at its condition, with the values of the params it reads."""
    if not program.requires:
        return
    evaluator, frame = Elaborator(program, variant, settings), Frame("", {}, model_level=True)
    for req in program.requires:
        ok = evaluator.const(req.test, frame, "a require condition")
        if not isinstance(ok, bool):
            raise ArchError(f"a require condition is true or false, got {describe(ok)}", req.test.span)
        if not ok:
            names = dict.fromkeys(e.id for e in S.subexprs(req.test) if isinstance(e, S.Name) and e.id in settings)
            shown = ", ".join(f"{n} = {show_value(settings[n])}" for n in names)
            raise ArchError(req.message, req.test.span, hint=f"here {shown}" if shown else None)


@contextmanager
def _naming_overrides(overrides: dict | None, spans: dict | None):
    """An error after the settings are resolved may come from an override (`--set num_classes=0`):
    name each override of the build, with its value, in a note."""
    try:
        yield
    except ArchError as err:
        if overrides:
            from .errors import override_span

            err.notes = tuple(err.notes) + tuple(
                (f"this build sets {key} = {show_value(value)}",
                 (spans or {}).get(key) or override_span(key, value, api=spans is None))
                for key, value in overrides.items())
        raise


@contextmanager
def _deep_recursion(program: Program):
    """Elaboration and codegen recurse over the syntax tree (at most limits.MAX_NESTING levels) and
    through block calls (at most 64 deep); allow the Python stack that needs."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))
    try:
        yield
    except RecursionError:
        raise ArchError("the spec nests too deeply to compile (blocks inside blocks inside bodies)",
                        program.model.span) from None
    finally:
        sys.setrecursionlimit(old)


def load_module(source: str):
    """The emitted source as a live module, compiled from memory (nothing on disk to plant or race)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"archlang_generated_{digest}"
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__archlang_source__", None) == source:
        return module
    filename = f"<archlang {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__archlang_source__ = source
    sys.modules[name] = module  # so classes are importable by name (pickling, inspection)
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def instantiate(compiled: Compiled):
    """The nn.Module for a compiled spec, in eval mode, tagged with how it was built."""
    module = load_module(compiled.source)
    model = module.create_model()
    model.eval()
    model.__dict__["archlang"] = compiled
    check_structure(compiled, model)
    if os.environ.get("ARCHLANG_DEBUG"):
        verify(compiled, full=True)
    return model


def meta_model(compiled: Compiled):
    """The emitted module built on the meta device: every tensor has its shape, none has memory."""
    import torch

    module = load_module(compiled.source)
    with torch.device("meta"):
        model = module.create_model()
    return model.eval()


def verify(compiled: Compiled, full: bool = False) -> None:
    """What `archlang build` checks: the emitted module owns the IR's tensors (names, shapes,
    persistence), built on the meta device so a billion-parameter build stays fast and small;
    with `full`, also node for node against the IR (archlang/validate.py)."""
    model = meta_model(compiled)
    check_structure(compiled, model)
    if full:
        from .validate import check

        check(compiled.graph, model, compiled.program.where)


def param_table(graph: Graph) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Names and shapes of every parameter and persistent buffer the IR says the model owns."""
    from .ops import OPS, Attrs

    params, buffers = {}, {}
    for n in graph.nodes():
        op = OPS[n.op]
        a = Attrs(n.attr_dict)
        for table, tensors in ((params, op.params(a)), (buffers, op.buffers(a))):
            for key, shape in tensors.items():
                table[f"{n.path}.{key}" if key else n.path] = tuple(shape)
    return params, buffers


def attribute_tensors(graph: Graph) -> dict[str, tuple]:
    """Tensors forward reads as attributes (weights and buffers, persistent or not), by path."""
    from .ops import OPS

    return {n.path: tuple(n.shape) for n in graph.nodes() if "get_attr" in OPS[n.op].fx}


def check_structure(compiled: Compiled, model) -> None:
    """The emitted module must own exactly the tensors the IR counted: parameters and persistent
    buffers by name and shape, and non-persistent buffers (not in the state dict) by name."""
    params, buffers = param_table(compiled.graph)
    transient = {k: v for k, v in attribute_tensors(compiled.graph).items() if k not in params and k not in buffers}
    got_p = {k: tuple(v.shape) for k, v in model.named_parameters()}
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got_b = {k: v for k, v in state.items() if k not in got_p}
    got_t = {k: tuple(v.shape) for k, v in model.named_buffers() if k not in state}
    diff = []
    for what, got, want in (("parameter", got_p, params), ("buffer", got_b, buffers),
                            ("non-persistent buffer", got_t, transient)):
        for key in sorted(set(got) | set(want)):
            if got.get(key) != want.get(key):
                diff.append(f"{what} {key}: IR {_shape(want.get(key))}, module {_shape(got.get(key))}")
    if diff:
        more = f" (and {len(diff) - 5} more)" if len(diff) > 5 else ""
        raise AssertionError("internal error: emitted module and IR disagree on tensors: "
                             + "; ".join(diff[:5]) + more)


def _shape(shape) -> str:
    return "absent" if shape is None else "[" + ", ".join(map(str, shape)) + "]"
