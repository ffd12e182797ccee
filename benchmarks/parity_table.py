"""Print the timm parity table: every spec variant against the timm model of the same name.

    python benchmarks/parity_table.py [--family repvit] [--fused] [--full]

With `--fused`, the deploy forms of the reparameterizable families (RepViT, FastViT,
EfficientViT-MSRA): `--fuse` against `timm.utils.reparameterize_model` (params at full size, logits
against timm's fused model and against our train form, MACs against fvcore on timm's fused model).

Params are compared at full size (timm on the meta device); logits, state_dict loading and
MACs use the same reduced depths as the test suite for the largest variants (tests/oracle.py)
unless `--full`, at each variant's own input size (the spec's input line: 256 for FastViT, 384
for a *_384 MaxViT). The numbers the tests assert, printed, so a note can quote them.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the oracle's variant table and helpers

import timm  # noqa: E402
import torch  # noqa: E402
from oracle import BRANCH_SCALE, FASTVIT, VARIANTS, fvcore_macs, max_diff, randomize, spec, timm_model  # noqa: E402
from timm.utils.model import reparameterize_model  # noqa: E402

import archlang  # noqa: E402

FUSABLE = ("repvit", "fastvit", "efficientvit_msra")


def _depth(overrides: dict) -> str:
    return "full" if not overrides else ",".join(f"{k}={v}" for k, v in overrides.items())


def _ours_and_timm(family: str, variant: str, timm_name: str, overrides: dict):
    """Our train-form module and timm's, with the same seeded weights (BN statistics measured at
    the variant's input size; residual branches scaled down where oracle.BRANCH_SCALE says), and
    that size."""
    size = tuple(archlang.stats(spec(family), variant, overrides)["input"])
    ref = timm_model(timm_name, **overrides)
    state = randomize(ref, seed=sum(map(ord, timm_name)), calibrate=size, scale=BRANCH_SCALE.get(family))
    model = archlang.load_timm(archlang.build(spec(family), variant, overrides), state)
    return model, ref, size


def row(family: str, variant: str, timm_name: str, overrides: dict | None) -> str:
    overrides = overrides or {}
    full = archlang.stats(spec(family), variant)["params"]
    ref_full = sum(p.numel() for p in timm_model(timm_name, meta=True).parameters())
    model, ref, size = _ours_and_timm(family, variant, timm_name, overrides)
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = max_diff(model(x), ref(x))
    ir, fv = archlang.stats(spec(family), variant, overrides)["macs"], fvcore_macs(ref, size)
    shown = "x".join(map(str, size))
    return (f"| {timm_name} | {full:,} | {ref_full:,} | {shown} | {_depth(overrides)} | {diff:.1e} "
            f"| {ir / 1e9:.4f} | {fv / 1e9:.4f} | {100 * (ir - fv) / fv:+.3f}% |")


def fused_row(family: str, variant: str, timm_name: str, overrides: dict | None) -> str:
    overrides = overrides or {}
    full = archlang.stats(spec(family), variant, fuse=True)["params"]
    with torch.device("meta"):
        ref_full = sum(p.numel() for p in reparameterize_model(timm_model(timm_name, meta=True)).parameters())
    ours, ref, size = _ours_and_timm(family, variant, timm_name, overrides)
    fused, ref_fused = archlang.fuse(ours), reparameterize_model(copy.deepcopy(ref))
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = fused(x)
        to_timm, to_train = max_diff(got, ref_fused(x)), max_diff(got, ours(x))
    ir = archlang.stats(spec(family), variant, overrides, fuse=True)["macs"]
    fv = fvcore_macs(ref_fused, size)
    shown = "x".join(map(str, size))
    return (f"| {timm_name} | {full:,} | {ref_full:,} | {shown} | {_depth(overrides)} | {to_timm:.1e} "
            f"| {to_train:.1e} | {ir / 1e9:.4f} | {fv / 1e9:.4f} | {100 * (ir - fv) / fv:+.3f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="only this spec (convnext, deit, repvit, maxvit, fastvit, hiera, eva, "
                                         "efficientvit_msra)")
    parser.add_argument("--fused", action="store_true",
                        help="the deploy forms (RepViT, FastViT, EfficientViT-MSRA) against timm's")
    parser.add_argument("--full", action="store_true", help="logits and MACs at full size too (slow)")
    args = parser.parse_args()
    timm.layers.set_fused_attn(False)
    torch.set_num_threads(2)
    print(f"timm {timm.__version__}, torch {torch.__version__}; logits: eval, fp32, seeded weights, batch 2 "
          "at each variant's input size")
    if args.fused:
        print("| timm model | fused params (IR) | fused params (timm) | input | logits/MACs at | max |Δ| vs timm "
              "fused | max |Δ| vs train form | fused GMACs IR | GMACs fvcore | Δ |")
        print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    else:
        print("| timm model | params (IR) | params (timm) | input | logits/MACs at | max |Δlogit| | GMACs IR "
              "| GMACs fvcore | Δ |")
        print("|---|---:|---:|---|---|---:|---:|---:|---:|")
    rows = list(VARIANTS) + [("fastvit", *v) for v in FASTVIT]
    for family, variant, timm_name, overrides in rows:
        if args.family in (None, family) and (not args.fused or family in FUSABLE):
            make = fused_row if args.fused else row
            print(make(family, variant, timm_name, None if args.full else overrides), flush=True)


if __name__ == "__main__":
    main()
