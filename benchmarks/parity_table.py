"""Print the timm parity table: every spec variant against the timm model of the same name.

    python benchmarks/parity_table.py [--family repvit]

Params are compared at full size (timm on the meta device); logits, state_dict loading and
MACs use the same reduced depths as the test suite for the largest variants (tests/oracle.py).
The numbers the tests assert, printed, so a note can quote them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the oracle's variant table and helpers

import timm  # noqa: E402
import torch  # noqa: E402
from oracle import VARIANTS, fvcore_macs, max_diff, randomize, spec, timm_model  # noqa: E402

import archlang  # noqa: E402


def row(family: str, variant: str, timm_name: str, overrides: dict | None) -> str:
    overrides = overrides or {}
    full = archlang.stats(spec(family), variant)["params"]
    ref_full = sum(p.numel() for p in timm_model(timm_name, meta=True).parameters())
    ref = timm_model(timm_name, **overrides)
    stats = archlang.stats(spec(family), variant, overrides)
    size = tuple(stats["input"])  # the variant's own input size
    state = randomize(ref, seed=sum(map(ord, timm_name)), calibrate=size)
    model = archlang.load_timm(archlang.build(spec(family), variant, overrides), state)
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = max_diff(model(x), ref(x))
    ir, fv = stats["macs"], fvcore_macs(ref, size)
    depth = "full" if not overrides else ",".join(f"{k}={v}" for k, v in overrides.items())
    shown = "x".join(map(str, size))
    return (f"| {timm_name} | {full:,} | {ref_full:,} | {shown} | {depth} | {diff:.1e} | {ir / 1e9:.4f} "
            f"| {fv / 1e9:.4f} | {100 * (ir - fv) / fv:+.3f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="only this spec (convnext, deit, repvit, maxvit)")
    args = parser.parse_args()
    timm.layers.set_fused_attn(False)
    torch.set_num_threads(2)
    print(f"timm {timm.__version__}, torch {torch.__version__}; logits: eval, fp32, seeded weights, batch 2 "
          "at each variant's input size")
    print("| timm model | params (IR) | params (timm) | input | logits/MACs at | max |Δlogit| | GMACs IR "
          "| GMACs fvcore | Δ |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|")
    for family, variant, timm_name, overrides in VARIANTS:
        if args.family in (None, family):
            print(row(family, variant, timm_name, overrides), flush=True)


if __name__ == "__main__":
    main()
