"""archlang: a declarative architecture language and graph compiler for vision backbones.

Python API:
    build(spec, variant=None, overrides=None, fuse=False, input_size=None) -> nn.Module
    stats(spec, variant=None, overrides=None, input_size=None, fuse=False) -> dict
    fuse(model) -> nn.Module                     # reparameterized deploy form, folded weights
    load_timm(model, state_dict) -> nn.Module    # strict, all-or-nothing load of a timm checkpoint
    compile_spec(...) -> Compiled                # IR, costs and source without torch

`input_size` is (C, H, W); None means the sizes the spec's `input` line fixes or defaults to, else 3x224x224.
Wrong argument types raise TypeError, wrong values ValueError; mistakes in a spec or an override
raise ArchError, located at the spec line (or at `<overrides>`).
"""

from __future__ import annotations

from . import arguments as _check
from .compiler import Compiled
from .errors import ArchError

__version__ = "0.1.0"
__all__ = ["ArchError", "Compiled", "build", "compile_spec", "fuse", "load_timm", "stats"]


def compile_spec(spec_path, variant: str | None = None, overrides: dict | None = None,
                 input_size: tuple[int, ...] | None = None, fuse: bool = False,
                 allow_import_outside: bool = False) -> Compiled:
    """Compile a spec variant without torch: IR, costs, and the emitted source (`.source`)."""
    from .compiler import compile_spec as _compile

    return _compile(_check.spec_path(spec_path), _check.variant(variant), _check.overrides(overrides),
                    _check.input_size(input_size), _check.flag("fuse", fuse),
                    allow_import_outside=_check.flag("allow_import_outside", allow_import_outside))


def build(spec_path, variant: str | None = None, overrides: dict | None = None, fuse: bool = False,
          input_size: tuple[int, ...] | None = None):
    """Compile a spec variant and return it as an nn.Module in eval mode (shapes are checked
    for `input_size`)."""
    from .compiler import instantiate

    return instantiate(compile_spec(spec_path, variant, overrides, input_size, fuse))


def stats(spec_path, variant: str | None = None, overrides: dict | None = None,
          input_size: tuple[int, ...] | None = None, fuse: bool = False) -> dict:
    """Parameters and MACs from the IR alone (no model is built, torch is not needed)."""
    compiled = compile_spec(spec_path, variant, overrides, input_size, fuse)
    out = compiled.cost.as_dict()
    out.update(family=compiled.program.family, variant=compiled.variant, input=list(compiled.input_size))
    return out


def fuse(model):
    """The reparameterized (deploy) form of a model built by archlang, with folded weights."""
    from .fusion import fuse_model

    return fuse_model(_check.model(model, "fuse"))


def load_timm(model, state_dict):
    """Load a timm state_dict strictly into a model built by archlang; on any mismatch raise
    ValueError and leave the model untouched."""
    from .timm_compat import load_timm as _load

    return _load(model, state_dict)
