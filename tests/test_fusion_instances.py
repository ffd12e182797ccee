"""Fusion per instance: one block whose instances take different `if` arms or have different
optional branches still fuses in every instance, and `@unfused` keeps what it marks.

A MobileOne-style block has a BatchNorm identity branch only where input and output shapes
agree and a 1x1 branch only for k > 1. Written with optional branches (`if` without `else` as a
branch) or as explicit `if`/`elif` arms, chains of random instances must fuse each into its one
`reparam_conv`, compute the train form's function (float64 within 1e-10 of the output's scale,
float32 within 1e-5, as in test_fusion_rules) and emit one constructor for the block: every
arm's fused layer is the same conv. `@unfused` leaves its statement as written, while other calls
of the same block fuse.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fusion_rules import CONV_BN, PROPERTY, _spec, check, params_of

OPTIONAL = CONV_BN + """
block rep(cin, cout, k, s, scale = true) {
  sum as reparam_conv {
    if cin == cout and s == 1 { identity: batchnorm2d(cin) }
  | conv_kxk: cbn(cin, cout, k, s)
  | if k > 1 and scale { conv_scale: cbn(cin, cout, 1, s) }
  }
  act: relu()
}
"""

ARMS = CONV_BN + """
block rep(cin, cout, k, s, scale = true) {
  let skip = cin == cout and s == 1
  if skip and k > 1 and scale {
    sum as reparam_conv {
      identity: batchnorm2d(cin) | conv_kxk: cbn(cin, cout, k, s) | conv_scale: cbn(cin, cout, 1, s)
    }
  } elif skip {
    sum as reparam_conv { identity: batchnorm2d(cin) | conv_kxk: cbn(cin, cout, k, s) }
  } elif k > 1 and scale {
    sum as reparam_conv { conv_kxk: cbn(cin, cout, k, s) | conv_scale: cbn(cin, cout, 1, s) }
  } else {
    sum as reparam_conv { conv_kxk: cbn(cin, cout, k, s) }
  }
  act: relu()
}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fusion_instances")


@st.composite
def chains(draw):
    """2-4 calls of `rep` with random widths, kernels, strides and scale flags, chained."""
    width = draw(st.sampled_from([2, 4]))
    calls = []
    for i in range(draw(st.integers(2, 4))):
        out = draw(st.sampled_from([width, 2 * width]))
        k, s = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 1, 2]))
        calls.append(f"  m{i}: rep({width}, {out}, {k}, {s}, scale = {str(draw(st.booleans())).lower()})")
        width = out
    size = (int(calls[0].split("(")[1].split(",")[0]), draw(st.integers(6, 9)), draw(st.integers(6, 9)))
    return calls, size


@PROPERTY
@given(chains(), st.sampled_from([OPTIONAL, ARMS]), st.integers(0, 2**16))
def test_every_instance_fuses_to_one_conv(workdir, chain, blocks, seed):
    calls, size = chain
    deploy = check(workdir, _spec(f"{size[0]}, H, W", "\n".join(calls), blocks), size, seed,
                   rules=["parallel_conv_sum", "conv_bn_fold"])
    assert params_of(deploy) == {f"m{i}.reparam_conv" for i in range(len(calls))}
    assert not deploy.fusion.unfused
    rep = deploy.source.split("class Rep(")[1].split("\nclass ")[0]
    assert rep.count("nn.Conv2d(") == 1 and " if " not in rep.replace("# ", "")  # one constructor, no arms


def test_optional_branches_decided_alike_leave_no_if(workdir):
    """Instances that all lack the identity branch: the sum is decided, nothing is left to choose."""
    text = _spec("2, H, W", "  a: rep(2, 4, 3, 1)\n  b: rep(4, 8, 3, 2)", OPTIONAL)
    deploy = check(workdir, text, (2, 7, 7), seed=1, rules=["parallel_conv_sum"])
    assert params_of(deploy) == {"a.reparam_conv", "b.reparam_conv"}


UNFUSED = CONV_BN + """
block pair(d) {
  c: conv2d(d, d, 3, bias = false)
  bn: batchnorm2d(d)
  act: relu()
}
block mlp(d) {
  @unfused conv: cbn(d, d, 3, 1, d)
  @unfused pre: pair(d)
  fc: conv2d(d, d, 1)
}
"""


def test_unfused_keeps_its_statement_while_other_calls_of_the_block_fuse(workdir):
    model = "  a: cbn(4, 4, 3)\n  p: pair(4)\n  m: mlp(4)\n  b: cbn(4, 4, 1)"
    deploy = check(workdir, _spec("4, H, W", model, UNFUSED), (4, 6, 6), seed=2, rules=["conv_bn_fold"])
    assert params_of(deploy) == {"a", "p.c", "b", "m.conv.c", "m.conv.bn", "m.pre.c", "m.pre.bn", "m.fc"}
    # `pair` is still called fused (`p`): the kept call gets a copy with the train-form body;
    # every fused call of `cbn` became a conv, so its copy takes the block's own name back.
    assert "class PairUnfused(" in deploy.source and "class Pair(" in deploy.source
    assert "class Cbn(" in deploy.source and "CbnUnfused" not in deploy.source
    assert not deploy.fusion.unfused  # what @unfused keeps is not a candidate that failed


def test_unfused_block_only_called_there_is_not_copied(workdir):
    deploy = check(workdir, _spec("4, H, W", "  m: mlp(4)", UNFUSED), (4, 6, 6), seed=3)
    assert params_of(deploy) == {"m.conv.c", "m.conv.bn", "m.pre.c", "m.pre.bn", "m.fc"}
    assert not deploy.fusion.fired
    assert "class Cbn(" in deploy.source and "Unfused" not in deploy.source
