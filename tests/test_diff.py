"""`archlang diff`: section pairing, node alignment, the changelog, exit codes, and the
weight-transfer report checked against a real `load_state_dict`."""

from __future__ import annotations

import json
import re

import pytest
import torch
from oracle import ROOT, check_golden, spec
from test_structure import CHANNELS_LAST, ROLE_FREE

import archlang
from archlang.cli import main
from archlang.compiler import compile_spec, param_table
from archlang.diff import diff, format_diff
from archlang.diff.sections import is_owner


def run(capsys, *args):
    code = main(["diff", *args])
    out, err = capsys.readouterr()
    return code, out, err


def section(d, name):
    return next(s for s in d.sections if s.name == name)


def changes(sec) -> dict:
    return {c.item: (c.a, c.b) for c in sec.changes}


# A tiny spec whose labels are placeholders: the same architecture under two sets of names.
MINI = """family mini
param dims = [8, 16]
param depths = [1, 2]
input [B, 3, H, W]

block mixer(dim) {{
  residual {{
    @token_mixer {dw}: conv2d(dim, dim, 3, groups = dim)
    {norm}: layernorm2d(dim)
    @channel_mixer {mlp}: {{
      {fc1}: conv2d(dim, 2 * dim, 1)
      {act}: gelu()
      {fc2}: conv2d(2 * dim, dim, 1)
    }}
  }}
}}

model {{
  @stem {stem}: {{
    conv2d(3, dims[0], 2, stride = 2, padding = 0)
    batchnorm2d(dims[0])
  }}
  @stage {stages}: for i in 0..len(dims) {{
    if i > 0 {{
      @downsample {down}: conv2d(dims[i - 1], dims[i], 2, stride = 2, padding = 0)
    }}
    {blocks}: repeat depths[i] {{ mixer(dims[i]) }}
  }}
  @head {head}: {{
    x = mean(x, [2, 3])
    {fc}: linear(dims[-1], 10)
  }}
}}
"""
LABELS = ["dw", "norm", "mlp", "fc1", "act", "fc2", "stem", "stages", "down", "blocks", "head", "fc"]
RENAMED = dict(zip(LABELS, ["spatial", "ln", "ffn", "lin1", "gelu1", "lin2", "embed", "layers", "reduce",
                            "units", "classifier", "out"]))


@pytest.fixture
def mini_pair(tmp_path):
    a, b = tmp_path / "mini.arch", tmp_path / "mini_renamed.arch"
    a.write_text(MINI.format(**{k: k for k in LABELS}))
    b.write_text(MINI.format(**RENAMED))
    return str(a), str(b)


def test_two_variants_of_one_spec():
    """ConvNeXt-T vs -S: only stage 2 changes (9 -> 27 blocks); deltas are the two compiles' difference."""
    a, b = compile_spec(spec("convnext"), "tiny"), compile_spec(spec("convnext"), "small")
    d = diff(a, b)
    assert not d.identical
    assert [s.name for s in d.sections] == ["stem", "stage 0", "stage 1", "stage 2", "stage 3", "head"]
    assert [s.name for s in d.sections if s.status != "unchanged"] == ["stage 2"]
    assert changes(section(d, "stage 2")) == {"depth": (9, 27)}
    totals = {t.name: t for t in d.totals}
    assert totals["params"].delta == b.cost.params - a.cost.params
    assert totals["macs"].delta == b.cost.macs - a.cost.macs
    assert totals["activation_bytes"].delta > 0
    # every tensor of T loads by name into S; S's blocks 9..26 of stage 2 are new
    assert d.weights.unchanged == list({**param_table(a.graph)[0], **param_table(a.graph)[1]})
    assert not (d.weights.renamed or d.weights.reshaped or d.weights.not_loaded)
    assert len(d.weights.new) == 18 * 9 and all(n.startswith("stages.2.blocks.") for n in d.weights.new)
    assert {int(n.split(".")[3]) for n in d.weights.new} == set(range(9, 27))
    text = format_diff(d)
    assert "stage 2  changed  (stages.2)\n    depth          9 -> 27 (+18)\n" in text
    assert "stage 3  unchanged\n" in text
    assert f"{b.cost.params - a.cost.params:+,}" in text


def test_two_families():
    """ConvNeXt vs RepViT: every section differs, and the changelog names the mixers and norms."""
    a = compile_spec(spec("convnext"), "atto")
    d = diff(a, compile_spec(spec("repvit"), "m0_9"))
    assert all(s.status == "changed" for s in d.sections)
    stage = changes(section(d, "stage 0"))
    assert stage["width"] == (40, 48)
    assert stage["token mixer"] == ("conv2d 7x7 depthwise", "repvgg_dw(dim=w, k=3)")
    assert stage["channel mixer"] == ("mlp(in_dim=w, hidden=4w, use_conv=true, use_grn=false, drop=0.0)",
                                      "repvit_mlp(dim=w, hidden=2w)")
    assert stage["norms"] == ("layernorm2d(eps=1e-06)", "batchnorm2d(eps=1e-05)")
    assert stage["activations"] == ("gelu", "gelu, relu, sigmoid")
    assert changes(section(d, "stage 2"))["depth"] == (6, 14)
    assert changes(section(d, "stage 1"))["downsample"] == ("{layernorm2d(eps=1e-06), conv2d 2x2 stride 2}",
                                                          "repvit_downsample(in_dim=w/2, out_dim=w)")
    assert changes(section(d, "head"))["layers"][1] == \
        "batchnorm1d(eps=1e-05), linear, batchnorm1d(eps=1e-05), linear"
    assert not d.weights.unchanged and len(d.weights.not_loaded) > 100
    text = format_diff(d)
    for line in ("stem     changed  (stem)", "    token mixer    conv2d 7x7 depthwise -> repvgg_dw(dim=w, k=3)",
                 f"weights: {sum(map(len, param_table(a.graph)))} tensors of A's state_dict into B"):
        assert line in text


def test_spec_with_itself(capsys):
    code, out, err = run(capsys, spec("convnext") + ":tiny", spec("convnext"))  # tiny is the default
    assert (code, err) == (0, "")
    assert out == "convnext:tiny -> convnext:tiny  (input 3x224x224): no structural difference\n"
    code, out, _ = run(capsys, spec("deit") + ":tiny", spec("deit") + ":deit_tiny_patch16_224", "--json")
    data = json.loads(out)
    assert code == 0 and data["identical"] is True
    assert set(data["status"].values()) == {"unchanged"}
    assert all(s["status"] == "unchanged" for s in data["sections"])


def test_labels_only(mini_pair, capsys):
    """Same architecture, other labels: not identical (exit 1), but everything aligns and every
    tensor loads after renaming, into a model built from B (strictly)."""
    a, b = mini_pair
    code, out, _ = run(capsys, a, b)
    assert code == 1
    assert "    labels         " in out and "dw -> spatial" in out and "mlp -> ffn" in out
    d = diff(compile_spec(a), compile_spec(b))
    assert not d.identical
    assert all(s.nodes["added"] == s.nodes["removed"] == s.nodes["changed"] == 0 for s in d.sections)
    assert set(d.status.values()) == {"unchanged"}
    w = d.weights
    assert not (w.unchanged or w.reshaped or w.not_loaded or w.new)
    expected = {}
    for name in {**param_table(compile_spec(a).graph)[0], **param_table(compile_spec(a).graph)[1]}:
        expected[name] = ".".join(RENAMED.get(part, part) for part in name.split("."))
    assert {r.a: r.b for r in w.renamed} == expected
    ma, mb = archlang.build(a), archlang.build(b)
    sd = ma.state_dict()
    mb.load_state_dict({r.b: sd[r.a] for r in w.renamed}, strict=True)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(mb(x), ma(x))


def test_sections_pair_by_role():
    """DeiT marks no stage: its blocks are one stage found from the structure, other rows pair by
    name, and the head role groups head and head_dist."""
    d = diff(compile_spec(spec("deit"), "tiny", {"depth": 1}), compile_spec(spec("deit"), "tiny_distilled",
                                                                             {"depth": 1}))
    assert [s.name for s in d.sections] == ["stem", "stage 0", "norm", "head", "(top level)"]
    assert section(d, "stage 0").a_paths == ["blocks"]
    head = section(d, "head")
    assert (head.a_paths, head.b_paths) == (["head"], ["head", "head_dist"])
    assert section(d, "stem").status == "unchanged"
    assert changes(section(d, "stage 0"))["attention"] == ("sdpa(heads=3, tokens=197, head_dim=64)",
                                                          "sdpa(heads=3, tokens=198, head_dim=64)")
    # pos_embed keeps its name (an anchor) though B adds dist_token before it
    (unloaded,) = d.weights.not_loaded
    assert (unloaded.a, unloaded.b, unloaded.a_shape, unloaded.b_shape) == \
        ("pos_embed", "pos_embed", (1, 197, 192), (1, 198, 192))
    assert d.weights.new == ["dist_token", "head_dist.weight", "head_dist.bias"]
    assert d.status["dist_token"] == d.status["head_dist"] == "added"
    assert d.status["pos_embed"] == d.status["blocks.0.attn.qkv"] == "changed"  # 198 tokens now
    assert d.status["patch_embed.proj"] == d.status["head"] == "unchanged"


def test_golden_text_and_json(capsys):
    args = (spec("deit") + ":tiny", spec("deit") + ":tiny_distilled")
    code, out, _ = run(capsys, *args)
    assert code == 1
    check_golden("diff_deit_tiny_distilled.txt", out)
    code, out, _ = run(capsys, *args, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["totals"]["params"]["delta"] == data["totals"]["params"]["b"] - data["totals"]["params"]["a"]
    assert data["weights"]["counts"]["unchanged"] == len(data["weights"]["unchanged"])
    check_golden("diff_deit_tiny_distilled.json", out)


SMALL_PAIRS = [
    pytest.param(("convnext", "atto", {"depths": [1, 1, 2, 1]}), ("convnext", "atto", {"depths": [1, 1, 3, 1],
                                                                                     "num_classes": 10}),
                 id="convnext-deeper-fewer-classes"),
    pytest.param(("deit", "tiny", {"depth": 2}), ("deit", "tiny_distilled", {"depth": 1}), id="deit-distilled"),
    pytest.param(("convnext", "atto", {"depths": [1, 1, 1, 1]}), ("repvit", "m0_9", {"depth": [1, 1, 1, 1]}),
                 id="convnext-repvit"),
]


@pytest.mark.parametrize("pa, pb", SMALL_PAIRS)
def test_weight_report_matches_load_state_dict(pa, pb):
    ca, cb = (compile_spec(spec(s), v, o) for s, v, o in (pa, pb))
    w = diff(ca, cb).weights
    ma, mb = (archlang.build(spec(s), v, o) for s, v, o in (pa, pb))
    sa, sb = ma.state_dict(), mb.state_dict()
    # every tensor of A is reported once; every tensor of B is a target once or new
    reported = w.unchanged + [r.a for r in w.renamed] + [r.a for r in w.reshaped] + [u.a for u in w.not_loaded]
    assert sorted(reported) == sorted(sa)
    targets = w.unchanged + [r.b for r in w.renamed] + [r.b for r in w.reshaped] + \
        [u.b for u in w.not_loaded if u.b] + w.new
    assert sorted(targets) == sorted(sb)
    # "unchanged" is exactly what load_state_dict takes by name
    assert set(w.unchanged) == {k for k, v in sa.items() if k in sb and sb[k].shape == v.shape}
    result = mb.load_state_dict({k: sa[k] for k in w.unchanged}, strict=False)
    # (BatchNorm fills in a missing num_batches_tracked itself, so torch does not list it)
    missing = {k for k in set(sb) - set(w.unchanged) if not k.endswith("num_batches_tracked")}
    assert not result.unexpected_keys and set(result.missing_keys) == missing
    for k in w.unchanged:
        assert torch.equal(mb.state_dict()[k], sa[k])
    for u in w.not_loaded:
        if u.b is not None:
            with pytest.raises(RuntimeError, match="size mismatch"):
                mb.load_state_dict({u.b: sa[u.a]}, strict=False)
    mb.load_state_dict({r.b: sa[r.a] for r in w.renamed}, strict=False)
    mb.load_state_dict({r.b: sa[r.a].reshape(r.b_shape) for r in w.reshaped}, strict=False)
    for r in w.renamed:
        assert torch.equal(mb.state_dict()[r.b], sa[r.a])


def test_viz_status(tmp_path, capsys):
    """--viz colours B: status covers exactly B's tensor owners; the drawing is written."""
    a, b = compile_spec(spec("convnext"), "atto"), compile_spec(spec("convnext"), "atto", {"depths": [2, 2, 7, 2]})
    d = diff(a, b)
    assert set(d.status) == {n.path for n in b.graph.nodes() if is_owner(n)}
    assert d.status["stages.2.blocks.6.conv_dw"] == d.status["stages.2.blocks.6.gamma"] == "added"
    assert d.status["stages.2.blocks.5.mlp.act"] == d.status["stem.0"] == "unchanged"
    out = tmp_path / "changes.dot"
    code, _, err = run(capsys, spec("convnext") + ":atto", spec("convnext") + ":v2_atto", "--viz", str(out))
    assert code == 1 and err == ""
    assert "added" in out.read_text()


@pytest.mark.parametrize("arg, caret, message", [
    ("missing.arch:tiny", "^" * len("missing.arch"), "cannot read 'missing.arch': no such file"),
    ("{convnext}:tnay", "^^^^", "no variant 'tnay'"),
    ("{convnext}:", "^", "expected a variant name after ':'"),
])
def test_bad_arguments(capsys, arg, caret, message):
    arg = arg.format(convnext=spec("convnext"))
    for args in ((arg, spec("convnext")), (spec("convnext"), arg)):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        assert err.startswith("<command line>:1:") and message in err
        assert f" 1 | {arg}\n" in err
        caret_line = err.splitlines()[2]
        assert caret_line.rstrip().endswith(caret) and caret_line.index("^") == err.splitlines()[1].index(arg) + \
            (0 if arg.startswith("missing") else len(spec("convnext")) + 1)
        assert "Traceback" not in err


# ---------------------------------------------------------------- layout-aware sections

SKETCHES = ROOT / "docs" / "sketches"
HIERA, EVA02 = str(SKETCHES / "hiera.arch"), str(SKETCHES / "eva02.arch")


def test_hiera_vs_eva02_reads_stage_by_stage(capsys):
    """Hiera marks no stage and keeps channels-last maps; EVA-02 is a ViT. The report still pairs
    stem, stages and head, reads widths on the right axis, and names no internal node."""
    code, out, _ = run(capsys, HIERA, EVA02)
    assert code == 1
    assert not re.search(r"%\d", out)  # no node ids such as p=%9.shape[2]
    assert max(len(line) for line in out.splitlines()) < 160
    assert "p=side" in out  # a run-time size, by the name the spec gives it
    d = diff(compile_spec(HIERA), compile_spec(EVA02))
    assert [s.name for s in d.sections] == ["stem", "stage 0", "stage 1", "stage 2", "stage 3", "fc_norm", "head",
                                            "(top level)"]
    s0 = changes(section(d, "stage 0"))
    assert s0["depth"] == (1, 2) and s0["width"] == (16, 64)
    assert s0["output"] == ("[B, 56, 56, w]", "[B, 257, w]")
    assert s0["attention"] == ("attention(heads=1, tokens=64, head_dim=16, windows=49)",
                               "attention(heads=1, tokens=257, head_dim=64)")
    assert s0["reshapes"][0].startswith(
        "'b (nh p) (nw q) (three m d) -> three (b nh nw) m (p q) d' (nh=7, nw=7, three=3, m=1), "
        "'(b nh nw) m (p q) d -> b (nh p) (nw q) (m d)' (nh=7, nw=7, p=side)")
    assert [(s.status, changes(s).get("width")) for s in d.sections if s.name in ("stage 1", "stage 2", "stage 3")] \
        == [("removed", (32, "none")), ("removed", (64, "none")), ("removed", (128, "none"))]
    assert section(d, "fc_norm").status == "added"


def test_hiera_against_itself_with_a_changed_param():
    """Mask-unit attention off from stage 2 on: only stage 2 changes (its first block reads the
    flag of stage 1), and the report says how: windows, attention sizes, partition steps."""
    a = compile_spec(HIERA)
    assert diff(a, compile_spec(HIERA)).identical
    d = diff(a, compile_spec(HIERA, None, {"mask_unit_attn": [True, False, False, False]}))
    assert [s.name for s in d.sections if s.status != "unchanged"] == ["stage 2"]
    c = changes(section(d, "stage 2"))
    assert set(c) == {"token mixer", "attention", "reshapes"}
    assert "windows=7, pool=true" in c["token mixer"][0] and "windows=1, pool=true" in c["token mixer"][1]
    assert c["attention"][0].startswith("attention(heads=4, tokens=4, keys=16, head_dim=16, windows=49)")
    assert "windows" not in c["attention"][1]


def test_channels_last_width_is_the_last_axis(tmp_path):
    """A stage that only gets wider: width 16 -> 24 on the last axis, same resolution."""
    path = tmp_path / "cl.arch"
    path.write_text(CHANNELS_LAST)
    d = diff(compile_spec(path, "narrow"), compile_spec(path, "wide"))
    assert [(s.name, s.status) for s in d.sections] == [("stem", "unchanged"), ("stage 0", "unchanged"),
                                                        ("stage 1", "changed"), ("head", "changed")]
    assert changes(section(d, "stage 1")) == {"width": (16, 24)}


def test_role_free_spec_compares_found_stages(tmp_path):
    a, b = tmp_path / "a.arch", tmp_path / "b.arch"
    a.write_text(ROLE_FREE)
    b.write_text(ROLE_FREE.replace("[8, 16, 16]", "[8, 16, 16, 16]").replace("[1, 2, 1]", "[1, 2, 1, 1]"))
    d = diff(compile_spec(a), compile_spec(b))
    assert [(s.name, s.status) for s in d.sections] == [("patch", "unchanged"), ("stage 0", "unchanged"),
                                                        ("stage 1", "changed"), ("fc", "unchanged")]
    s1 = section(d, "stage 1")
    assert (s1.a_paths, s1.b_paths) == (["layers.1-2"], ["layers.1-3"])
    assert changes(s1) == {"depth": (2, 3)}


CHAIN = """family chain
input [B, 3, H, W]
param window = 7

model {
  stem: conv2d(3, 16, 4, stride = 4, padding = 0)
  x = rearrange(x, "b c h w -> b h w c")
  PARTITION
  fc: linear(16, 16)
}
"""


def test_runs_of_layout_ops_read_as_one_step(tmp_path):
    """reshape/permute/reshape after a rearrange is one window partition, written in einops terms;
    the same partition written as one rearrange keeps the spec's axis names."""
    chain, pattern = tmp_path / "chain.arch", tmp_path / "pattern.arch"
    chain.write_text(CHAIN.replace("PARTITION", "x = reshape(x, [-1, 8, window, 8, window, 16])\n"
                                   "  x = permute(x, [0, 1, 3, 2, 4, 5])\n  x = reshape(x, [-1, window * window, 16])"))
    pattern.write_text(CHAIN.replace("PARTITION", 'x = rearrange(x, "b (nh p) (nw q) c -> (b nh nw) (p q) c", '
                                     "p = window, q = window)"))
    d = diff(compile_spec(chain), compile_spec(pattern))
    assert changes(section(d, "(top level)"))["reshapes"] == (
        "'b c (h h2) (w w2) -> (b h w) (h2 w2) c'", "'b c (nh p) (nw q) -> (b nh nw) (p q) c' (p=7, q=7)")


def test_activation_memory_leaves_out_eval_identities(tmp_path):
    """Dropout and drop-path make no tensor of their own in eval: adding them changes nothing."""
    from archlang.diff.compare import activation_bytes

    base = "input [B, 3, H, W]\nmodel {\n  c: conv2d(3, 8, 3)\n  %s\n  fc: conv2d(8, 4, 1)\n}\n"
    sizes = []
    for extra in ("pass", "drop: dropout(0.5)", "dp: drop_path(0.2)"):
        path = tmp_path / f"m{len(sizes)}.arch"
        path.write_text(base % extra)
        sizes.append(activation_bytes(compile_spec(path).graph))
    assert sizes[0] == sizes[1] == sizes[2] == (8 + 4) * 224 * 224 * 4
