"""Architectures without instantiating them: params and GMACs from the IR at several sizes.

    python examples/costs_by_resolution.py
No model is built and torch is not used; every number comes from the compiler's IR.
"""

from pathlib import Path

import archlang

SPECS = Path(__file__).resolve().parent.parent / "specs"
MODELS = [("convnext", "tiny"), ("convnext", "v2_nano"), ("deit", "small"), ("repvit", "m1_1")]


def main() -> None:
    sizes = (160, 224, 288)
    print(f"{'model':<20}{'params':>14}" + "".join(f"{f'GMACs@{s}':>14}" for s in sizes))
    for family, variant in MODELS:
        costs = []
        for s in sizes:
            try:
                macs = archlang.stats(SPECS / f"{family}.arch", variant, input_size=(3, s, s))["macs"]
                costs.append(f"{macs / 1e9:.3f}")
            except archlang.ArchError:  # e.g. DeiT's position table fixes the input size
                costs.append("-")
        params = archlang.stats(SPECS / f"{family}.arch", variant)["params"]
        print(f"{family + ':' + variant:<20}{params:>14,}" + "".join(f"{c:>14}" for c in costs))


if __name__ == "__main__":
    main()
