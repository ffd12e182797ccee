"""Windows, padding, resizing and the smaller layers and functions (issue 7): each is built from a
small spec, run on random inputs and compared with the same computation written in plain torch
(TF "same" padding against a reference written from its formula, on odd and even sizes, stride 1
and 2, and against timm's layers); IR shapes against the module's, IR MACs against fvcore; the
emitted module traces with torch.fx and works for other input sizes; bad arguments get located
errors, and unknown names get "did you mean" hints by meaning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from oracle import fvcore_macs

import archlang
from archlang.compiler import compile_spec
from archlang.errors import ArchError


def spec_file(tmp_path, text: str):
    path = tmp_path / "t.arch"
    path.write_text(text)
    return str(path)


def build(tmp_path, text: str, size: tuple[int, ...]):
    path = spec_file(tmp_path, text)
    return archlang.build(path, input_size=size), path


def ir_output(path: str, size: tuple[int, ...]) -> tuple:
    c = compile_spec(path, input_size=size)
    return tuple(c.graph.node(c.graph.output).shape[1:])


def run(model, x):
    with torch.no_grad():
        return model(x)


def close(a, b) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- references written from the formulas


def tf_same_pad(x, k, s, d=(1, 1), value=0.0):
    """TensorFlow SAME: ceil(n / s) outputs; total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0),
    the odd pixel after."""
    amounts = []
    for axis, kk, ss, dd in ((3, k[1], s[1], d[1]), (2, k[0], s[0], d[0])):
        n = x.shape[axis]
        total = max((math.ceil(n / ss) - 1) * ss + (kk - 1) * dd + 1 - n, 0)
        amounts += [total // 2, total - total // 2]
    return F.pad(x, amounts, value=value)


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def spec_text(v) -> str:
    return str(list(v)) if isinstance(v, (list, tuple)) else ("none" if v is None else str(v))


def reference_conv(x, conv, k, s, d, padding):
    k, s, d = pair(k), pair(s), pair(d)
    if padding == "same":
        return F.conv2d(tf_same_pad(x, k, s, d), conv.weight, conv.bias, s, 0, d, conv.groups)
    if padding is None:  # timm's symmetric default
        p = tuple(((ss - 1) + dd * (kk - 1)) // 2 for kk, ss, dd in zip(k, s, d))
    else:
        p = (0, 0) if padding == "valid" else pair(padding)
    return F.conv2d(x, conv.weight, conv.bias, s, p, d, conv.groups)


# ---------------------------------------------------------------- conv2d windows and padding

CONVS = [  # kernel, stride, dilation, padding
    (3, 1, 1, "same"), (3, 2, 1, "same"), (4, 1, 1, "same"), (5, 2, 1, "same"), (3, 2, 2, "same"),
    ([3, 5], [2, 1], 1, "same"), (1, 2, 1, "same"), (2, 3, 1, "same"),
    ([1, 7], 1, 1, None), ([3, 5], [2, 1], [1, 2], [1, 2]), (3, 2, 1, "valid"), (3, 2, 1, None),
]


@pytest.mark.parametrize("k,s,d,padding", CONVS, ids=[f"k{c[0]}s{c[1]}d{c[2]}p{c[3]}" for c in CONVS])
def test_conv2d_windows_match_torch_at_odd_and_even_sizes(tmp_path, k, s, d, padding):
    pad = f'"{padding}"' if isinstance(padding, str) else spec_text(padding)
    text = (f"input [B, 4, H, W]\nmodel {{\n  c: conv2d(4, 6, {spec_text(k)}, stride = {spec_text(s)}, "
            f"padding = {pad}, dilation = {spec_text(d)}, groups = 2)\n}}\n")
    model, path = build(tmp_path, text, (4, 15, 16))
    traced = torch.fx.symbolic_trace(model)
    for h, w in ((15, 16), (16, 15), (17, 17), (20, 22)):  # one module, any input size
        x = torch.randn(2, 4, h, w)
        y = run(model, x)
        assert close(y, reference_conv(x, model.c, k, s, d, padding))
        assert tuple(y.shape[1:]) == ir_output(path, (4, h, w))
        assert torch.equal(run(traced, x), y)
    if padding == "same":
        assert tuple(y.shape[2:]) == (math.ceil(20 / pair(s)[0]), math.ceil(22 / pair(s)[1]))


@pytest.mark.parametrize("k,s", [(3, 2), (4, 1), (5, 1), ([3, 1], [2, 2])])
def test_same_conv_matches_timm_and_fvcore(tmp_path, k, s):
    """timm's create_conv2d(padding="same") (Conv2dSame or a static nn.Conv2d) with the same
    weights gives the same output; the IR's MACs are fvcore's."""
    from timm.layers import create_conv2d

    text = (f"input [B, 4, H, W]\nmodel {{\n  c: conv2d(4, 8, {spec_text(k)}, stride = {spec_text(s)}, "
            f'padding = "same", bias = false)\n}}\n')
    model, path = build(tmp_path, text, (4, 16, 16))
    ref = create_conv2d(4, 8, pair(k), stride=pair(s), padding="same").eval()
    ref.load_state_dict(model.c.state_dict())  # strict: nn.Conv2d's keys either way
    for size in (15, 16):
        x = torch.randn(1, 4, size, size)
        assert torch.allclose(run(model, x), run(ref, x), atol=1e-6)
        assert compile_spec(path, input_size=(4, size, size)).cost.macs == fvcore_macs(model, (4, size, size))


def test_same_padding_is_static_when_constant_and_computed_otherwise(tmp_path):
    text = ('input [B, 4, H, W]\nmodel {\n  a: conv2d(4, 4, 3, padding = "same")\n'
            '  b: conv2d(4, 4, 3, stride = 2, padding = "same")\n  c: conv2d(4, 4, [1, 7], padding = none)\n}\n')
    source = compile_spec(spec_file(tmp_path, text), input_size=(4, 16, 16)).source
    assert "self.a = nn.Conv2d(4, 4, 3, padding=1)" in source
    assert "self.b = Conv2dSame(4, 4, 3, stride=2)" in source
    assert "self.c = nn.Conv2d(4, 4, (1, 7), padding=(0, 3))" in source
    assert "def pad_same(" in source and "import archlang" not in source


def test_window_pairs_through_parameters(tmp_path):
    """A block parameter may hold an int or a pair: padding none works for both (symmetric_padding)."""
    text = ("input [B, 4, H, W]\nblock unit(k, s) {\n  c: conv2d(4, 4, k, stride = s)\n}\n"
            "model {\n  a: unit([1, 7], [2, 1])\n  b: unit(3, 2)\n}\n")
    model, path = build(tmp_path, text, (4, 15, 16))
    x = torch.randn(2, 4, 15, 16)
    mid = reference_conv(x, model.a.c, (1, 7), (2, 1), 1, None)
    y = run(model, x)
    assert close(y, reference_conv(mid, model.b.c, 3, 2, 1, None))
    assert tuple(y.shape[1:]) == ir_output(path, (4, 15, 16))
    assert "padding=symmetric_padding(k, s)" in compile_spec(path, input_size=(4, 15, 16)).source


def test_padding_chosen_by_a_parameter(tmp_path):
    """A block parameter may hold any padding form: the module is chosen when it is built."""
    text = ("param pad = none\ninput [B, 4, H, W]\nblock unit(pad) {\n"
            "  c: conv2d(4, 4, 3, stride = 2, padding = pad)\n"
            "  p: maxpool2d(3, 2, padding = 0 if pad == none else pad)\n}\n"
            "model {\n  u: unit(pad)\n}\n")
    path = spec_file(tmp_path, text)
    for value in ("same", 1, None, "valid"):
        model = archlang.build(path, overrides={"pad": value}, input_size=(4, 16, 16))
        x = torch.randn(1, 4, 16, 16)
        mid = reference_conv(x, model.u.c, 3, 2, 1, value)
        if value == "same":
            want = F.max_pool2d(tf_same_pad(mid, (3, 3), (2, 2), value=float("-inf")), 3, 2)
        else:
            want = F.max_pool2d(mid, 3, 2, padding=0 if value in (None, "valid") else value)
        assert close(run(model, x), want), value


# ---------------------------------------------------------------- pooling

POOLS = [  # op, kernel, stride, padding, extra arguments
    ("avgpool2d", 3, 2, "same", ""), ("avgpool2d", 2, 2, 0, "ceil_mode = true, count_include_pad = false"),
    ("avgpool2d", 3, 2, 1, "count_include_pad = false"), ("avgpool2d", [3, 2], [2, 1], [1, 0], "ceil_mode = true"),
    ("maxpool2d", 3, 2, "same", ""), ("maxpool2d", 3, 1, "same", ""), ("maxpool2d", 3, 2, 1, "ceil_mode = true"),
    ("maxpool2d", [2, 3], None, 0, "dilation = [2, 1]"), ("avgpool2d", 3, 2, "same", "ceil_mode = true"),
]


def reference_pool(x, op, k, s, padding, extra: str):
    k = pair(k)
    s = k if s is None else pair(s)
    kw = {"ceil_mode": "ceil_mode = true" in extra}
    if op == "avgpool2d":
        kw["count_include_pad"] = "count_include_pad = false" not in extra
        if padding == "same":  # zeros, counted, as timm's AvgPool2dSame
            return F.avg_pool2d(tf_same_pad(x, k, s), k, s, 0, **kw)
        return F.avg_pool2d(x, k, s, pair(padding), **kw)
    d = (2, 1) if "dilation" in extra else (1, 1)
    if padding == "same":
        return F.max_pool2d(tf_same_pad(x, k, s, d, value=float("-inf")), k, s, 0, d, **kw)
    return F.max_pool2d(x, k, s, pair(padding), d, **kw)


@pytest.mark.parametrize("op,k,s,padding,extra", POOLS, ids=[f"{p[0]}-k{p[1]}s{p[2]}p{p[3]}-{p[4]}" for p in POOLS])
def test_pools_match_torch_as_modules_and_functions(tmp_path, op, k, s, padding, extra):
    pad = f'"{padding}"' if isinstance(padding, str) else spec_text(padding)
    args = f"{spec_text(k)}, stride = {spec_text(s)}, padding = {pad}" + (f", {extra}" if extra else "")
    text = f"input [B, 3, H, W]\nmodel {{\n  y = {op}(x, {args})\n  p: {op}({args})\n  x = cat([x, y], dim = 1)\n}}\n"
    model, path = build(tmp_path, text, (3, 15, 15))
    traced = torch.fx.symbolic_trace(model)
    for size in (15, 16, 9):
        x = torch.randn(2, 3, size, size)
        want = reference_pool(x, op, k, s, padding, extra)
        want = torch.cat([want, want], dim=1)  # the module, then the function
        y = run(model, x)
        assert close(y, want)
        assert tuple(y.shape[1:]) == ir_output(path, (3, size, size))
        assert torch.equal(run(traced, x), y)


def test_same_pools_match_timm(tmp_path):
    from timm.layers import create_pool2d

    text = ('input [B, 3, H, W]\nmodel {\n  a: avgpool2d(3, 2, padding = "same")\n'
            '  m: maxpool2d(3, 2, padding = "same")\n}\n')
    model, _ = build(tmp_path, text, (3, 16, 16))
    ref = torch.nn.Sequential(create_pool2d("avg", 3, 2, padding="same"), create_pool2d("max", 3, 2, padding="same"))
    for size in (15, 16):
        x = torch.randn(1, 3, size, size)
        assert torch.allclose(run(model, x), run(ref, x), atol=1e-6)


def test_adaptive_pool_takes_a_pair(tmp_path):
    model, path = build(tmp_path, "input [B, 3, H, W]\nmodel {\n  x = adaptive_avgpool2d(x, [2, 3])\n}\n", (3, 12, 12))
    x = torch.randn(2, 3, 12, 12)
    assert close(run(model, x), F.adaptive_avg_pool2d(x, (2, 3)))
    assert ir_output(path, (3, 12, 12)) == (3, 2, 3)


# ---------------------------------------------------------------- pad and interpolate


@pytest.mark.parametrize("args,kw", [
    ("[1, 2, 0, 3]", {}), ("[1, 2, 3, 0]", {"mode": "reflect"}), ("[2, 0, 1, 1]", {"mode": "replicate"}),
    ("[1, 1, 2, 2]", {"mode": "circular"}), ("[1, 1]", {"value": -2.5}), ("[-1, 2, 0, -2]", {}),
    ("[0, 0, 1, 1, 2, 0]", {}),
])
def test_pad_matches_f_pad(tmp_path, args, kw):
    extra = "".join(f", {k} = {v!r}".replace("'", '"') for k, v in kw.items())
    model, path = build(tmp_path, f"input [B, 3, H, W]\nmodel {{\n  x = pad(x, {args}{extra})\n}}\n", (3, 7, 8))
    x = torch.randn(2, 3, 7, 8)
    want = F.pad(x, [int(v) for v in args.strip("[]").split(",")], **kw)
    y = run(model, x)
    assert torch.equal(y, want) and tuple(y.shape[1:]) == ir_output(path, (3, 7, 8))


@pytest.mark.parametrize("args,kw", [
    ("size = [5, 9]", dict(size=(5, 9))), ("scale_factor = 2", dict(scale_factor=2)),
    ('scale_factor = 1.5, mode = "bilinear"', dict(scale_factor=1.5, mode="bilinear")),
    ('size = 11, mode = "bicubic", align_corners = true', dict(size=11, mode="bicubic", align_corners=True)),
    ('size = [4, 6], mode = "bilinear", align_corners = false',
     dict(size=(4, 6), mode="bilinear", align_corners=False)),
    ("scale_factor = [0.5, 1.25]", dict(scale_factor=(0.5, 1.25))),
])
def test_interpolate_matches_torch_and_fvcore(tmp_path, args, kw):
    text = f"input [B, 3, H, W]\nmodel {{\n  up: interpolate({args})\n  x = interpolate(x, {args})\n}}\n"
    model, path = build(tmp_path, text, (3, 7, 9))
    x = torch.randn(2, 3, 7, 9)
    want = F.interpolate(F.interpolate(x, **kw), **kw)
    y = run(model, x)
    assert torch.allclose(y, want, atol=1e-6) and tuple(y.shape[1:]) == ir_output(path, (3, 7, 9))
    assert torch.equal(run(torch.fx.symbolic_trace(model), x), y)
    assert compile_spec(path, input_size=(3, 7, 9)).cost.macs == fvcore_macs(model, (3, 7, 9))


def test_interpolate_resizes_a_position_table(tmp_path):
    """A learned [1, C, 4, 4] table resized to the map's 7 x 7 and added (bicubic, as ViTs resample)."""
    text = ("input [B, 8, 7, 7]\nmodel {\n  pos = weight([1, 8, 4, 4], init = \"normal\")\n"
            '  x = x + interpolate(pos, size = [7, 7], mode = "bicubic", align_corners = false)\n}\n')
    model, _ = build(tmp_path, text, (8, 7, 7))
    x = torch.randn(2, 8, 7, 7)
    want = x + F.interpolate(model.pos, size=(7, 7), mode="bicubic", align_corners=False)
    assert torch.allclose(run(model, x), want, atol=1e-6)


# ---------------------------------------------------------------- layers and functions


def test_groupnorm_matches_torch_and_fvcore(tmp_path):
    text = ("input [B, 8, H, W]\nmodel {\n  gn: groupnorm(4, 8, eps = 0.001)\n"
            "  gn1: groupnorm(1, 8, affine = false)\n}\n")
    model, path = build(tmp_path, text, (8, 5, 6))
    torch.nn.init.normal_(model.gn.weight)
    torch.nn.init.normal_(model.gn.bias)
    x = torch.randn(2, 8, 5, 6)
    want = F.group_norm(F.group_norm(x, 4, model.gn.weight, model.gn.bias, 1e-3), 1, eps=1e-5)
    assert close(run(model, x), want)
    assert sum(p.numel() for p in model.parameters()) == 16 == compile_spec(path, input_size=(8, 5, 6)).cost.params
    assert compile_spec(path, input_size=(8, 5, 6)).cost.macs == fvcore_macs(model, (8, 5, 6)) == 9 * 8 * 30


ACTS = {"relu6": F.relu6, "mish": F.mish, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "silu": F.silu,
        "gelu": lambda t: F.gelu(t, approximate="tanh")}


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activations_as_layers_and_functions(tmp_path, name):
    args = 'approximate = "tanh"' if name == "gelu" else ""
    fn_args = f", {args}" if args else ""
    text = (f"input [B, 4, H, W]\nmodel {{\n  act: {name}({args})\n  x = {name}(x{fn_args})\n"
            f"  seq: {{ conv2d(4, 4, 1); {name}({args}) }}\n}}\n")
    model, _ = build(tmp_path, text, (4, 3, 3))
    x = torch.randn(2, 4, 3, 3) * 4
    f = ACTS[name]
    assert close(run(model, x), f(model.seq[0](f(f(x)))))
    assert type(model.act).__name__ == type(model.seq[1]).__name__  # the nn module in both places


@pytest.mark.parametrize("name", ["exp", "sin", "cos", "log"])
def test_elementwise_functions_as_calls_and_statements(tmp_path, name):
    text = f"input [B, 4]\nmodel {{\n  x = {name}(x)\n  {name}()\n}}\n"
    model, _ = build(tmp_path, text, (4,))
    x = torch.rand(2, 4) + 3  # log(log(x)) needs x > e
    f = getattr(torch, name)
    assert close(run(model, x), f(f(x)))


@pytest.mark.parametrize("dim", [1, 2, 3, -1])
def test_softmax_and_log_softmax_over_any_axis(tmp_path, dim):
    text = (f"input [B, 3, 4, 5]\nmodel {{\n  sm: softmax({dim})\n  x = log_softmax(x, dim = {dim})\n"
            f"  lsm: log_softmax(dim = {dim})\n  x = softmax(x, {dim})\n}}\n")
    model, _ = build(tmp_path, text, (3, 4, 5))
    x = torch.randn(2, 3, 4, 5)
    want = x.softmax(dim).log_softmax(dim).log_softmax(dim).softmax(dim)
    assert close(run(model, x), want)


def test_outer_builds_a_table(tmp_path):
    text = ("param n = 6\ninput [B, 6, 4]\nmodel {\n  t = arange(x, n)\n  f = exp(-arange(x, 4))\n"
            "  x = x + outer(t, f)\n}\n")
    model, path = build(tmp_path, text, (6, 4))
    x = torch.randn(2, 6, 4)
    assert close(run(model, x), x + torch.outer(torch.arange(6.0), torch.exp(-torch.arange(4.0))))
    assert ir_output(path, (6, 4)) == (6, 4)


def test_conv_bn_fold_keeps_pairs_and_same_padding(tmp_path):
    text = ('input [B, 4, H, W]\nmodel {\n  a: conv2d(4, 4, [1, 5], bias = false)\n  a_bn: batchnorm2d(4)\n'
            '  b: conv2d(4, 4, 3, stride = 2, padding = "same", bias = false)\n  b_bn: batchnorm2d(4)\n}\n')
    model, _ = build(tmp_path, text, (4, 9, 10))
    for bn in (model.a_bn, model.b_bn):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    fused = archlang.fuse(model)
    x = torch.randn(2, 4, 9, 10)
    assert torch.allclose(run(fused, x), run(model, x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())


# ---------------------------------------------------------------- located errors

ERRORS = [  # statement, message, where the caret starts (an argument's value, or the statement)
    ("c: conv2d(3, 4, [1, 2, 3])", "argument 'kernel_size' of conv2d must be a positive int or a pair [h, w]",
     "[1, 2, 3]"),
    ('c: conv2d(3, 4, 3, padding = "full")', 'must be an int >= 0, a pair [h, w], "same" or "valid" or none',
     '"full"'),
    ("c: conv2d(3, 4, 3, stride = [2, 0])", "argument 'stride' of conv2d must be", "[2, 0]"),
    ("p: maxpool2d(3, padding = 2)", "maxpool2d padding 2 is more than half the kernel size 3", "p: maxpool2d"),
    ("x = avgpool2d(x, 2, stride = 0)", "argument 'stride' of avgpool2d must be", "0)"),
    ("p: adaptive_avgpool2d([2, 0])", "argument 'output_size' of adaptive_avgpool2d must be", "[2, 0]"),
    ("x = pad(x, [1, 2, 3])", "pad takes an even-length list of ints", "pad(x"),
    ('x = pad(x, [9, 0, 0, 0], mode = "reflect")', "reflect padding by 9 needs an axis longer than that", "pad(x"),
    ('x = pad(x, [1, 1], mode = "reflect", value = 1)', 'pad mode "reflect" takes no value', "pad(x"),
    ('x = pad(x, [1, 1], mode = "mirror")', "argument 'mode' of pad must be one of", '"mirror"'),
    ("x = pad(x, [0, 0, 0, 0, 0, 0, 1, 1])", "cannot pad the batch axis", "pad(x"),
    ("x = interpolate(x, size = 4, scale_factor = 2)", "either size or scale_factor (exactly one)", "interpolate(x"),
    ("x = interpolate(x, scale_factor = 2, align_corners = true)", "align_corners is only for modes",
     "interpolate(x"),
    ('x = interpolate(x, size = 4, mode = "cubic")', "argument 'mode' of interpolate must be one of", '"cubic"'),
    ('x = interpolate(x, size = [4, 4, 4], mode = "bilinear")', "must be a positive int or a list of 2",
     "interpolate(x"),
    ("g: groupnorm(2, 3)", "groupnorm: 3 channels cannot be split into 2 groups", "g: groupnorm"),
    ("g: groupnorm(1, 4)", "groupnorm(1, 4) expects 4 channels on axis 1", "g: groupnorm"),
    ("g: groupnorm(0, 3)", "argument 'num_groups' of groupnorm must be a positive int", "0,"),
    ("x = log_softmax(x, dim = 4)", "axis 4 is out of range for a tensor of rank 4", "log_softmax(x"),
    ("x = outer(x, x)", "outer takes two vectors", "outer(x"),
]


@pytest.mark.parametrize("stmt,message,at", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_bad_arguments_are_located(tmp_path, stmt, message, at):
    text = f"input [B, 3, H, W]\nmodel {{\n  {stmt}\n}}\n"
    with pytest.raises(ArchError) as err:
        compile_spec(spec_file(tmp_path, text), input_size=(3, 8, 8))
    assert message in err.value.message
    assert err.value.span.line == 3 and err.value.span.col == 3 + stmt.index(at)


# ---------------------------------------------------------------- hints by meaning


@pytest.mark.parametrize("written,meant", [
    ("group_norm", "groupnorm"), ("GroupNorm", "groupnorm"), ("gn", "groupnorm"), ("LayerNorm", "layernorm"),
    ("Conv2d", "conv2d"), ("BatchNorm2d", "batchnorm2d"), ("ReLU6", "relu6"), ("bn", "batchnorm2d"),
    ("Upsample", "interpolate"), ("swish", "silu"), ("AvgPool2d", "avgpool2d"), ("LogSoftmax", "log_softmax"),
])
def test_unknown_layer_hints_by_meaning(tmp_path, written, meant):
    text = f"input [B, 8, H, W]\nmodel {{\n  n: {written}(2, 8)\n}}\n"
    with pytest.raises(ArchError) as err:
        compile_spec(spec_file(tmp_path, text), input_size=(8, 4, 4))
    assert err.value.message == f"unknown layer '{written}'"
    assert err.value.hint == f"did you mean '{meant}'?"
    assert (err.value.span.line, err.value.span.col) == (3, 6)


def test_unknown_function_hints_by_meaning(tmp_path):
    text = "input [B, 8, H, W]\nmodel {\n  x = group_norm(x, 2)\n  x = Mish(x)\n}\n"
    with pytest.raises(ArchError) as err:
        compile_spec(spec_file(tmp_path, text), input_size=(8, 4, 4))
    assert err.value.hint == "did you mean 'groupnorm'?" and (err.value.span.line, err.value.span.col) == (3, 7)
    with pytest.raises(ArchError) as err:
        compile_spec(spec_file(tmp_path, text.replace("group_norm(x, 2)", "x")), input_size=(8, 4, 4))
    assert err.value.hint == "did you mean 'mish'?"


# ---------------------------------------------------------------- translation validation

VALIDATED = {
    "windows": """
input [B, 3, H, W]
model {
  a: conv2d(3, 8, 3, stride = 2, padding = "same")
  b: conv2d(8, 8, [1, 7], groups = 8)
  c: conv2d(8, 8, 3, padding = "same")
  p: avgpool2d(3, 2, padding = "same")
  q: maxpool2d(3, 1, padding = "same")
  x = maxpool2d(x, 3, 2, padding = "same")
  y = avgpool2d(x, 3, 1, padding = "same", count_include_pad = false)
  x = avgpool2d(x + y, 2, ceil_mode = true, count_include_pad = false)
  x = pad(x, [1, 2, 0, 3], mode = "replicate")
  g: groupnorm(2, 8)
  up: interpolate(scale_factor = 2)
  x = interpolate(x, size = [9, 9], mode = "bilinear", align_corners = false)
  r: relu6()
  x = mish(x)
  x = log_softmax(x, dim = 1)
  lsm: log_softmax(dim = 2)
}
""",
    "by-parameter": """
param pad = "same"
param k = [3, 5]
input [B, 3, H, W]
block unit(k, pad) {
  c: conv2d(3, 3, k, stride = 2, padding = pad)
  p: maxpool2d(3, 2, padding = pad)
  x = avgpool2d(x, 3, 1, padding = pad)
}
model {
  u: unit(k, pad)
  v: unit(3, 1)
}
""",
}


@pytest.mark.parametrize("name", sorted(VALIDATED))
def test_emitted_modules_are_their_ir(tmp_path, name):
    """torch.fx node for node against the IR (archlang/validate.py), at an odd and an even size."""
    from archlang.compiler import verify

    path = spec_file(tmp_path, VALIDATED[name])
    for size in (31, 32):
        verify(compile_spec(path, input_size=(3, size, size)), full=True)
