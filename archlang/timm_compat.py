"""Loading timm checkpoints into compiled models.

Spec labels follow timm's module names, so for the families here a timm state_dict loads by
name with no mapping at all. Families whose timm names cannot be spelt as labels get an
entry in KEY_MAPS: (regex, replacement) pairs applied to checkpoint keys, tested like code.

Loading is all or nothing: every key and shape is compared with the model's own state first, and
the model is changed only when everything matches (a mismatch never leaves a half-loaded model).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

KEY_MAPS: dict[str, tuple[tuple[str, str], ...]] = {}
SHOWN = 5  # keys listed per kind of mismatch; the rest are counted


def remap(state_dict: Mapping, rules) -> dict:
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def load_timm(model, state_dict):
    """Strictly load `state_dict` (from timm) into `model` (from archlang.build); return model."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"load_timm() takes a model made by archlang.build(), got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"load_timm() takes a state_dict (a mapping of names to tensors), got "
                        f"{type(state_dict).__name__}")
    compiled = model.__dict__.get("archlang")
    family = compiled.program.family if compiled is not None else None
    state = remap(state_dict, KEY_MAPS.get(family, ()))
    problems = mismatches(model.state_dict(), state)
    if problems:
        note = ""
        if compiled is not None and compiled.fused:
            note = " (this model is the fused form: load the checkpoint into the unfused build, then fuse it)"
        raise ValueError(f"checkpoint does not match {compiled.name if compiled else 'the model'}{note}; "
                         f"nothing was loaded: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model


def mismatches(own: Mapping, given: Mapping) -> list[str]:
    """What keeps `given` from loading strictly into a model whose state is `own`, briefly."""
    import torch

    not_tensors = sorted(str(k) for k, v in given.items() if not isinstance(v, torch.Tensor))
    missing = sorted(k for k in own if k not in given)
    unexpected = sorted(str(k) for k in given if k not in own)
    shapes = sorted(f"{k} {list(given[k].shape)} vs {list(own[k].shape)}" for k in own
                    if k in given and isinstance(given[k], torch.Tensor) and given[k].shape != own[k].shape)
    return [_listing(what, keys) for what, keys in (("not tensors", not_tensors), ("missing", missing),
                                                    ("unexpected", unexpected), ("shape differs", shapes)) if keys]


def _listing(what: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN]) + (f", ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else "")
    return f"{len(keys)} {what}: {shown}"
