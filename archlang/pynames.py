"""What a spec identifier may not be called, because of the Python it becomes.

Params become keyword arguments of the emitted model, block parameters constructor arguments,
labels and weights module attributes (and checkpoint keys). These rules belong to the front end:
the loader rejects clashing params before anything is elaborated, and codegen, which renames
clashing locals, reads the same tables.
"""

from __future__ import annotations

import builtins
import keyword

from .errors import ArchError

EMITTED = {"self", "torch", "nn", "F", "math", "super", "x"}
# Module-level names an emitted file may define that __init__ code uses (archlang/codegen/helpers.py,
# the LAYERS table): a param or an __init__ local of the same name would hide them there.
HELPER_NAMES = {"LayerNorm2d", "Conv2dSame", "AvgPool2dSame", "MaxPool2dSame", "DropPath", "LAYERS",
                "symmetric_padding", "make_divisible", "linspace", "to_pair", "create_model", "SETTINGS"}
# Helpers only forward code calls: params are not in scope there, and codegen gives forward's
# tensors fresh names that avoid every helper.
FORWARD_HELPERS = {"pad_same", "avg_pool2d_same", "max_pool2d_same", "drop_path"}
RESERVED = EMITTED | HELPER_NAMES | set(dir(builtins))
# nn.Module's public attributes (torch 2.x); its private ones all start with '_'.
MODULE_ATTRS = {
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward",
    "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
    "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to",
    "to_empty", "train", "training", "type", "xpu", "zero_grad",
}


def clash(name: str) -> str | None:
    """What a spec identifier would collide with as a Python name in emitted code, or None."""
    if keyword.iskeyword(name):
        return "a Python keyword"
    if name in EMITTED:
        return "a name the emitted code uses"
    if name in HELPER_NAMES:
        return "a helper the emitted code defines"
    if name in RESERVED:
        return "a Python builtin"
    if name in MODULE_ATTRS or name.startswith("_"):
        return "an nn.Module attribute"
    return None


def check_attr(name: str, span, what: str = "label") -> str:
    """A label or weight name becomes a module attribute (and a checkpoint key) as written."""
    if keyword.iskeyword(name) or name in MODULE_ATTRS or name.startswith("_"):
        raise ArchError(f"{what} '{name}' cannot be a module attribute in PyTorch", span,
                        hint=f"choose another {what} (it names the module's parameters)")
    return name
