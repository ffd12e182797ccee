"""The compiler driver: load -> settings -> the pass pipeline (`archlang.passes.run`) -> codegen -> import.

`compile_spec` runs everything that does not need torch and returns a `Compiled` record;
`load_module` turns its source into a live nn.Module (the only step that imports torch).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from . import passes
from .codegen import ModuleEmitter
from .ir import Graph
from .program import Program, load, resolve_settings


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
                 input_size: tuple[int, ...] = (3, 224, 224), fuse: bool = False,
                 override_spans: dict | None = None) -> Compiled:
    program = load(str(path))
    name, settings = resolve_settings(program, variant, overrides, override_spans)
    start = passes.Build(program, name, settings, tuple(input_size))
    return _compiled(passes.run(start, passes.DEPLOY_PIPELINE if fuse else passes.PIPELINE))


def _compiled(build: passes.Build) -> Compiled:
    unfused = _compiled(build.unfused) if build.unfused is not None else None
    return Compiled(build.program, build.variant, build.settings, build.graph, build.cost, build.input_size,
                    build.fusion is not None, build.fusion, unfused)


def cache_dir() -> Path:
    root = os.environ.get("ARCHLANG_CACHE") or os.path.join(tempfile.gettempdir(), f"archlang-{os.getuid()}")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_module(source: str):
    """Import emitted source as a module (from a content-addressed file, so tracebacks show it)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    path = cache_dir() / f"archlang_{digest}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(path)
    name = f"archlang_generated_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so classes are importable by name (pickling, inspection)
    spec.loader.exec_module(module)
    return module


def instantiate(compiled: Compiled):
    """The nn.Module for a compiled spec, in eval mode, tagged with how it was built."""
    module = load_module(compiled.source)
    model = module.create_model()
    model.eval()
    model.__dict__["archlang"] = compiled
    check_structure(compiled, model)
    return model


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


def check_structure(compiled: Compiled, model) -> None:
    """The emitted module must own exactly the tensors the IR counted (names and shapes)."""
    params, buffers = param_table(compiled.graph)
    got_p = {k: tuple(v.shape) for k, v in model.named_parameters()}
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got_b = {k: v for k, v in state.items() if k not in got_p}
    if got_p != params or got_b != buffers:
        diff = sorted(set(got_p.items()) ^ set(params.items()))[:5]
        diff += sorted(set(got_b.items()) ^ set(buffers.items()))[:5]
        raise AssertionError(f"internal error: emitted module and IR disagree on tensors: {diff}")
