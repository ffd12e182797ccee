import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["ARCHLANG_LINT"] = "1"  # passes.run checks the IR's invariants between passes in every test
os.environ.setdefault("ARCHLANG_CACHE", str(Path(__file__).resolve().parent.parent / ".cache" / "archlang"))


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch():
    import timm.layers
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    timm.layers.set_fused_attn(False)  # count attention matmuls with fvcore; exact comparisons
    yield
