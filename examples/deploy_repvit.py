"""Ship a mobile model: build RepViT, load timm weights, fuse to the deploy form, check it.

    python examples/deploy_repvit.py [--variant m1_1]
"""

import argparse
from pathlib import Path

import timm
import torch

import archlang

SPEC = str(Path(__file__).resolve().parent.parent / "specs" / "repvit.arch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="m1_1")
    args = parser.parse_args()

    model = archlang.build(SPEC, args.variant)
    reference = timm.create_model(f"repvit_{args.variant}", pretrained=False).eval()
    archlang.load_timm(model, reference.state_dict())  # names match by construction

    deploy = archlang.fuse(model)  # BN folded into convs, branches summed, twin heads averaged
    x = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        diff = (deploy(x) - model(x)).abs().max().item()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(f"repvit {args.variant}: {count(model):,} params -> {count(deploy):,} fused; max |Δlogit| = {diff:.2e}")
    torch.save(deploy.state_dict(), f"repvit_{args.variant}_deploy.pt")


if __name__ == "__main__":
    main()
