"""Folding weights for the deploy form: evaluate fuse-reparam's recipes on train-form tensors.

A recipe is data (stored on the fused layer, recorded by elaboration in `Graph.fusions`) saying how
one fused conv or linear is made from the modules it replaced. Leaves name train-form tensors by
path, relative to the module that encloses the fused layer:
    ("map", path)                 weight and bias of a conv or linear module
    ("bn", path)                  a BatchNorm as a per-channel affine map (running statistics)
    ("scale", path)               a per-channel weight (a layer scale) as a diagonal map
    ("eye",)                      the identity map
and combinators say how leaves compose:
    ("then", first, second)       apply first, then second (conv then BN, BN then linear, map then scale)
    ("sum", items) | ("avg", items)   parallel maps of one input
    ("negate", item)              the negated map (a difference is a sum with one negated item)
    ("at", label, recipe)         the recipe, with paths inside the module `label`
    ("own", recipe)               (outermost only) paths inside the fused module's own path:
                                  for unlabelled and indexed call sites (`c[i]:`)
A map's kernel is zero-padded to the fused kernel; a diagonal or the identity in a conv becomes
a centred one-hot kernel. Folding always uses running statistics, so it does not matter whether
the source model was in train mode; it is done in float64 and cast back to the model's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DIAGONAL = ("bn", "scale")  # leaves that scale and shift each channel


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def is_diagonal(recipe) -> bool:
    """A per-channel affine map: a BatchNorm or a scale, possibly inside a module."""
    return recipe[0] in DIAGONAL or (recipe[0] == "at" and is_diagonal(recipe[2]))


class Folder:
    """Evaluate recipes against a train-form state_dict and the IR node attributes."""

    def __init__(self, state: dict, attrs_by_path: dict[str, dict]):
        self.state, self.attrs = state, attrs_by_path

    def tensor(self, path: str) -> torch.Tensor:
        return self.state[path].detach().to(torch.float64)

    def fold(self, recipe, prefix: str, target: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) in the geometry of `target` (the fused module's attributes)."""
        kind = recipe[0]
        if kind == "at":
            return self.fold(recipe[2], _join(prefix, recipe[1]), target)
        if kind == "map":
            return self.module(_join(prefix, recipe[1]), target)
        if kind == "eye":
            return self.identity(target)
        if kind in DIAGONAL:
            scale, shift = self.diagonal(recipe, prefix)
            w, _ = self.identity(target)
            return _scale_out(w, scale), shift
        if kind == "then":
            return self.then(recipe[1], recipe[2], prefix, target)
        if kind == "negate":
            w, b = self.fold(recipe[1], prefix, target)
            return -w, -b
        if kind in ("sum", "avg"):
            parts = [self.fold(r, prefix, target) for r in recipe[1]]
            w = sum(p[0] for p in parts)
            b = sum(p[1] for p in parts)
            return (w / len(parts), b / len(parts)) if kind == "avg" else (w, b)
        raise ValueError(f"unknown recipe {kind}")

    def then(self, first, second, prefix: str, target: dict):
        if is_diagonal(second):  # y = d(f(x)): scale rows, scale and shift the bias
            w, b = self.fold(first, prefix, target)
            scale, shift = self.diagonal(second, prefix)
            return _scale_out(w, scale), b * scale + shift
        if is_diagonal(first):  # y = L(d(x)) for a linear L: scale columns, push the shift through
            w, b = self.fold(second, prefix, target)
            scale, shift = self.diagonal(first, prefix)
            return w * scale[None, :], w @ shift + b
        raise ValueError("unsupported composition")

    def diagonal(self, recipe, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) per channel of a diagonal recipe."""
        kind = recipe[0]
        if kind == "at":
            return self.diagonal(recipe[2], _join(prefix, recipe[1]))
        path = _join(prefix, recipe[1])
        if kind == "scale":
            scale = self.tensor(path).reshape(-1)
            return scale, torch.zeros_like(scale)
        return self.bn(path)

    def bn(self, path: str) -> tuple[torch.Tensor, torch.Tensor]:
        eps = self.attrs[path]["eps"]
        mean, var = self.tensor(f"{path}.running_mean"), self.tensor(f"{path}.running_var")
        weight = self.tensor(f"{path}.weight") if f"{path}.weight" in self.state else torch.ones_like(mean)
        bias = self.tensor(f"{path}.bias") if f"{path}.bias" in self.state else torch.zeros_like(mean)
        scale = weight / torch.sqrt(var + eps)
        return scale, bias - mean * scale

    def module(self, path: str, target: dict):
        w = self.tensor(f"{path}.weight")
        b = self.tensor(f"{path}.bias") if f"{path}.bias" in self.state else torch.zeros(w.shape[0], dtype=w.dtype)
        if w.dim() == 4:  # centre the kernel in the target's (h, w) window
            k = target["kernel_size"]
            kh, kw = k if isinstance(k, tuple) else (k, k)
            ph, pw = (kh - w.shape[-2]) // 2, (kw - w.shape[-1]) // 2
            w = F.pad(w, [pw, pw, ph, ph])
        return w, b

    def identity(self, target: dict):
        if "kernel_size" in target:
            k, out, groups = target["kernel_size"], target["out_channels"], target["groups"]
            per_group = target["in_channels"] // groups
            w = torch.zeros(out, per_group, k, k, dtype=torch.float64)
            for i in range(out):
                w[i, i % per_group, k // 2, k // 2] = 1.0
            return w, torch.zeros(out, dtype=torch.float64)
        n = target["out_features"]
        return torch.eye(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)


def _scale_out(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return w * scale.reshape(-1, *([1] * (w.dim() - 1)))


def fused_state(train, deploy, state: dict) -> dict:
    """State dict of the deploy build `deploy` (Compiled) from the train build's `state`."""
    attrs = {n.path: n.attr_dict for n in train.graph.nodes() if n.module}
    folder = Folder(state, attrs)
    targets = {n.path: n.attr_dict for n in deploy.graph.nodes() if n.module}
    out = {}
    for path, (recipe, scope) in deploy.graph.fusions.items():
        if recipe[0] == "own":
            recipe, scope = recipe[1], path
        w, b = folder.fold(recipe, scope, targets[path])
        out[f"{path}.weight"], out[f"{path}.bias"] = w, b
    return out


def fuse_model(model):
    """The deploy form of an archlang-built model, with weights folded from its current state."""
    from .compiler import compile_spec, instantiate

    train = model.__dict__.get("archlang")
    if train is None:
        raise ValueError("fuse() takes a model made by archlang.build()")
    if train.fused:
        return model
    # the train build's own settings as overrides: the deploy build must be the same configuration
    deploy = compile_spec(train.program.path, train.variant, dict(train.settings), train.input_size, fuse=True)
    source = next(model.parameters())
    fused = instantiate(deploy).to(device=source.device, dtype=source.dtype)
    state = model.state_dict()
    folded = fused_state(train, deploy, state)
    new_state = {}
    for key, ref in fused.state_dict().items():
        value = folded[key] if key in folded else state[key]
        new_state[key] = value.to(ref.dtype)
    fused.load_state_dict(new_state, strict=True)
    return fused.eval()
