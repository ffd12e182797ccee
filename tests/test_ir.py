"""The IR between passes: invariants hold after elaboration, shape inference and fusion; costs
add up across nodes, modules and summary rows."""

from __future__ import annotations

import pytest
from oracle import spec

from archlang import passes
from archlang.compiler import compile_spec
from archlang.program import load, resolve_settings

CASES = [("convnext", "atto"), ("convnext", "v2_tiny"), ("deit", "base_distilled"), ("repvit", "m1_5")]


@pytest.mark.parametrize("family,variant", CASES)
def test_invariants_hold_after_every_pass(family, variant):
    program = load(spec(family))
    name, settings = resolve_settings(program, variant, None)
    build = passes.Build(program, name, settings, (3, 224, 224))
    seen = []
    for pass_name in passes.DEPLOY_PIPELINE:
        build = passes.get(pass_name)(build)
        seen.append(pass_name)
        if build.graph is not None:
            assert build.graph.lint() == [], seen
            assert build.graph.shaped == (pass_name != "elaborate")
    assert build.fusion is not None and build.unfused.cost is not None


def test_pipeline_lints_between_passes(monkeypatch):
    """A pass that breaks an invariant is caught by the driver, naming the pass."""
    program = load(spec("convnext"))
    name, settings = resolve_settings(program, "atto", None)
    real = passes.PASSES["check-shapes"]

    def broken(build):
        out = real(build)
        graph = out.graph
        graph.output = 10**9  # not a node
        return out

    monkeypatch.setitem(passes.PASSES, "check-shapes", broken)
    monkeypatch.setenv("ARCHLANG_LINT", "1")
    with pytest.raises(AssertionError, match="after pass 'check-shapes'.*output is not a node"):
        passes.run(passes.Build(program, name, settings, (3, 224, 224)))


def test_every_pass_has_one_signature():
    import inspect

    for name, fn in passes.PASSES.items():
        params = list(inspect.signature(fn).parameters)
        assert params == ["build"], name


@pytest.mark.parametrize("family,variant", CASES)
def test_costs_add_up(family, variant):
    c = compile_spec(spec(family), variant)
    cost = c.cost
    assert sum(cost.node_params.values()) == cost.params == cost.modules[""][0]
    assert sum(cost.node_macs.values()) == cost.macs == cost.modules[""][1]
    assert sum(r.params for r in cost.rows) == cost.params
    assert sum(r.macs for r in cost.rows) == cost.macs


def test_costs_scale_with_input_size():
    small = compile_spec(spec("convnext"), "atto", input_size=(3, 128, 128)).cost
    big = compile_spec(spec("convnext"), "atto", input_size=(3, 256, 256)).cost
    assert small.params == big.params
    # below the head, every cost is proportional to the number of positions (4x here)
    assert big.macs - big.modules["head"][1] == 4 * (small.macs - small.modules["head"][1])


def test_fusion_removes_every_batchnorm_in_repvit():
    c = compile_spec(spec("repvit"), "m0_9", fuse=True)
    ops = {n.op for n in c.graph.nodes()}
    assert not ops & {"batchnorm2d", "batchnorm1d", "branch_sum", "branch_avg", "dropout"}
    rules = {rule for rule, _ in c.fusion.applied}
    assert rules == {"conv_bn_fold", "bn_linear_fold", "parallel_conv_sum", "parallel_linear_sum", "collapse_block",
                     "eval_identity_drop"}  # the dropouts before and inside the classifier
