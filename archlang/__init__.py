"""archlang: a declarative architecture language and graph compiler for vision backbones.

Python API:
    build(spec, variant=None, overrides=None, fuse=False) -> nn.Module
    stats(spec, variant=None, overrides=None, input_size=(3, 224, 224)) -> dict
    fuse(model) -> nn.Module                     # reparameterized deploy form, folded weights
    load_timm(model, state_dict) -> nn.Module    # strict load of a timm checkpoint
    compile_spec(...) -> Compiled                # IR, costs and source without torch
"""

from __future__ import annotations

from .compiler import Compiled, compile_spec
from .errors import ArchError

__version__ = "0.1.0"
__all__ = ["ArchError", "Compiled", "build", "compile_spec", "fuse", "load_timm", "stats"]


def build(spec_path, variant: str | None = None, overrides: dict | None = None, fuse: bool = False,
          input_size: tuple[int, ...] = (3, 224, 224)):
    """Compile a spec variant and return it as an nn.Module in eval mode (shapes are checked
    for `input_size`)."""
    from .compiler import instantiate

    return instantiate(compile_spec(spec_path, variant, overrides, tuple(input_size), fuse=fuse))


def stats(spec_path, variant: str | None = None, overrides: dict | None = None,
          input_size: tuple[int, ...] = (3, 224, 224), fuse: bool = False) -> dict:
    """Parameters and MACs from the IR alone (no model is built, torch is not needed)."""
    compiled = compile_spec(spec_path, variant, overrides, input_size=tuple(input_size), fuse=fuse)
    out = compiled.cost.as_dict()
    out.update(family=compiled.program.family, variant=compiled.variant, input=list(input_size))
    return out


def fuse(model):
    """The reparameterized (deploy) form of a model built by archlang, with folded weights."""
    from .fusion import fuse_model

    return fuse_model(model)


def load_timm(model, state_dict):
    """Load a timm state_dict strictly into a model built by archlang."""
    from .timm_compat import load_timm as _load

    return _load(model, state_dict)
