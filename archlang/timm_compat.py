"""Loading timm checkpoints into compiled models.

Spec labels follow timm's module names, so for the families here a timm state_dict loads by
name with no mapping at all. Families whose timm names cannot be spelt as labels get an
entry in KEY_MAPS: (regex, replacement) pairs applied to checkpoint keys, tested like code.
"""

from __future__ import annotations

import re

KEY_MAPS: dict[str, tuple[tuple[str, str], ...]] = {}


def remap(state_dict: dict, rules) -> dict:
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def load_timm(model, state_dict):
    """Strictly load `state_dict` (from timm) into `model` (from archlang.build); return model."""
    compiled = model.__dict__.get("archlang")
    family = compiled.program.family if compiled is not None else None
    state = remap(state_dict, KEY_MAPS.get(family, ()))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        note = ""
        if compiled is not None and compiled.fused:
            note = " (this model is the fused form: load the checkpoint into the unfused build, then fuse it)"
        raise ValueError(f"checkpoint does not match {compiled.name if compiled else 'the model'}{note}: "
                         f"{exc}") from None
    return model
