"""archlang viz: what the drawing holds (units, folds, costs, edges), golden DOT, every spec
rendered by Graphviz, the interactive HTML checked in headless Chromium, and life without dot."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape

import pytest
from oracle import ROOT, VARIANTS, check_golden, spec

from archlang import viz
from archlang.cli import main
from archlang.compiler import compile_spec
from archlang.ops import OPS
from archlang.viz.html import unit_data
from archlang.viz.view import COLORS, build_view, category

HIERA = ROOT / "docs" / "sketches" / "hiera.arch"

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def units_of(view):
    return list(view.units.values())


def test_view_partitions_the_graph_and_its_costs():
    c = compile_spec(spec("convnext"), "tiny")
    view = build_view(c)
    owned = [i for u in units_of(view) for i in u.nodes]
    assert sorted(owned) == sorted(n.id for n in c.graph.nodes())  # every IR node in exactly one unit
    assert sum(u.params for u in units_of(view)) == c.cost.params
    assert sum(u.macs for u in units_of(view)) == c.cost.macs


def test_repeated_blocks_fold_unless_expanded():
    c = compile_spec(spec("convnext"), "tiny")
    folds = [u for u in units_of(build_view(c)) if u.kind == "fold"]
    assert [(u.path, u.count, u.subtitle) for u in folds] == [
        (f"stages.{i}.blocks", n, "convnext_block") for i, n in enumerate((3, 3, 9, 3))]
    expanded = build_view(c, expand=("stages.2.blocks",))  # 9 blocks, each opened at depth 2
    blocks = {".".join(u.path.split(".")[:4]) for u in units_of(expanded) if u.path.startswith("stages.2.blocks.")}
    assert blocks == {f"stages.2.blocks.{i}" for i in range(9)}
    shallow = build_view(c, depth=1, expand=("stages.2.blocks",))  # ... or collapsed at depth 1
    assert [u.path for u in units_of(shallow) if u.path.startswith("stages.2.blocks.")] == [
        f"stages.2.blocks.{i}" for i in range(9)]


def test_numbered_blocks_of_one_list_fold_by_stage():
    """Hiera's blocks are one numbered list, a loop per stage: each stage's identical blocks after
    its first fold into one unit, as a container's would; `--expand` opens them."""
    c = compile_spec(str(ROOT / "docs" / "sketches" / "hiera.arch"), "tiny")  # stages [1, 2, 7, 2]
    blocks = next(i for i in build_view(c).root.items if getattr(i, "title", None) == "blocks")
    folds = [(u.title, u.count) for u in blocks.items if getattr(u, "kind", None) == "fold"]
    assert folds == [("4-9", 6)]
    opened = next(i for i in build_view(c, expand=("blocks",)).root.items if getattr(i, "title", None) == "blocks")
    assert not [u for u in opened.items if getattr(u, "kind", None) == "fold"] and len(opened.items) == 12


def test_depth_controls_how_deep_clusters_open():
    c = compile_spec(spec("deit"), "tiny")
    top = {u.path for u in units_of(build_view(c, depth=0))}
    assert {"patch_embed", "blocks", "norm", "head"} <= top
    deep = {u.path for u in units_of(build_view(c, depth=3, expand=("blocks",)))}
    assert "blocks.0.attn.qkv" in deep and "blocks.11.mlp.fc2" in deep


def test_edges_carry_the_shape_that_crosses_them():
    c = compile_spec(spec("repvit"), "m0_9")
    view = build_view(c)
    shapes = {u.id: u for u in units_of(view)}
    assert view.edges
    for a, b, label in view.edges:
        assert a != b and label.startswith("[B")
    stem_out = next(label for a, b, label in view.edges if shapes[a].path == "stem.conv2.bn")
    assert stem_out == "[B, 48, 56, 56]"


def test_fused_drawing_shows_the_deploy_form():
    view = build_view(compile_spec(spec("repvit"), "m0_9", fuse=True), depth=9, expand=())
    ops = {u.subtitle for u in units_of(view) if u.kind == "op"}
    assert "conv2d" in ops and not ops & {"batchnorm2d", "batchnorm1d", "branch_sum", "branch_avg"}


def test_golden_dot():
    c = compile_spec(spec("deit"), "tiny_distilled", {"depth": 2})
    check_golden("deit_tiny_distilled_depth2.dot", viz.to_dot(build_view(c)))


def test_every_label_shows_name_shape_and_costs():
    text = viz.to_dot(build_view(compile_spec(spec("convnext"), "atto")))
    for line in text.splitlines():
        if re.match(r"\s+u\d+ \[", line):
            assert "[B" in line, line  # output shape
    assert "convnext_block ×2" in unescape(text) and "params" in text and "MACs" in text


@pytest.mark.parametrize("family,variant", [(s, v) for s, v, _, _ in VARIANTS],
                         ids=[f"{s}:{v}" for s, v, _, _ in VARIANTS])
def test_svg_renders_for_every_variant(family, variant):
    svg = viz.render_bytes(compile_spec(spec(family), variant), "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert svg.count('class="node"') >= 5


def test_svg_of_fused_form_and_lr_layout(tmp_path):
    out = viz.render(compile_spec(spec("repvit"), "m1_1", fuse=True), tmp_path / "r.svg", rankdir="LR")
    assert "</svg>" in out.read_text()


def chromium_selftest(path) -> dict:
    assert CHROMIUM, "the HTML test needs Chromium (Debian: apt-get install chromium); .ci/run installs it"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={path.parent / 'profile'}", "--virtual-time-budget=3000", "--window-size=1200,800",
           "--dump-dom", f"file://{path}#selftest"]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-selftest="([^"]*)"', dom)
    assert found, dom[:500]
    return json.loads(unescape(found.group(1)))


@pytest.mark.parametrize("with_dot", [True, False], ids=["graphviz-svg", "built-in-layout"])
def test_html_renders_and_a_click_opens_the_panel(tmp_path, monkeypatch, with_dot):
    if not with_dot:
        monkeypatch.setattr(viz, "have_dot", lambda: False)
    c = compile_spec(spec("convnext"), "tiny")
    path = viz.render(c, tmp_path / "cnx.html")
    html = path.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # self-contained
    result = chromium_selftest(path)
    view = build_view(c)
    biggest = max(view.units.values(), key=lambda u: u.params)
    assert result["nodes"] == len(view.units) and result["width"] > 200 and result["height"] > 200
    assert result["clicked"] == biggest.id
    assert biggest.path in result["panel"] and f"{biggest.params:,}" in result["panel"]
    assert "specs/convnext.arch:" in result["panel"]


def test_without_dot_only_dot_and_html_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz here
    assert main(["viz", spec("deit"), "-o", str(tmp_path / "d.svg")]) == 2
    err = capsys.readouterr().err
    assert "needs Graphviz's `dot` program, which is not on PATH" in err and "apt-get install graphviz" in err
    assert "Traceback" not in err and not (tmp_path / "d.svg").exists()
    assert main(["viz", spec("deit"), "--format", "dot", "-o", str(tmp_path / "d.dot")]) == 0
    assert main(["viz", spec("deit"), "-o", str(tmp_path / "d.html")]) == 0
    assert "<svg" in (tmp_path / "d.html").read_text()


def test_unknown_expand_scope_is_a_located_error(capsys, tmp_path):
    assert main(["viz", spec("convnext"), "--expand", "stages.2.block", "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err
    assert "no module 'stages.2.block' to expand" in err and "did you mean 'stages.2.blocks'" in err


def test_colours_come_from_the_ops_traits():
    """Outside a role, an op is coloured by what it is: attention written out (matmul, softmax) as
    attention, layout ops as reshapes, weights as tensors; every op gets a colour the legend explains."""
    g = compile_spec(str(HIERA)).graph
    colour = {op: category(g, "", op) for op in OPS}
    assert colour["matmul"] == colour["softmax"] == colour["sdpa"] == "attention"
    assert colour["rearrange"] == colour["select"] == colour["permute"] == "reshape"
    assert colour["weight"] == colour["input"] == "tensor" and colour["add"] == colour["branch_sum"] == "merge"
    assert colour["conv2d"] == "conv" and colour["layernorm2d"] == colour["batchnorm1d"] == "norm"
    assert colour["gelu"] == colour["dropout"] == colour["maxpool2d"] == "act"
    assert set(colour.values()) <= set(COLORS)


def test_panel_shows_run_time_sizes_by_their_spec_names():
    c = compile_spec(str(HIERA))
    data = unit_data(c, build_view(c, depth=9, expand=("blocks",)))
    values = [v for u in data.values() for _, v in u["rows"]]
    assert "nh=7, nw=7, p=side" in values
    assert not any(re.search(r"%\d", v) for v in values)
