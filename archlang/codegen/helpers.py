"""Source of the small helpers an emitted file may need, written out only when used.

An op lists the helpers it may need (`OpDef.helpers`); whether it does can depend on its
arguments (conv2d needs Conv2dSame only for padding="same" that varies with the input size), so
`needed` keeps those the emitted classes call, with the helpers those helpers call. Helpers that
pool with "same" padding are wrapped for torch.fx: a trace holds one node for them, which pads
for the size it is given.
"""

import inspect
import re

from ..values import linspace, make_divisible, to_pair

HELPERS = {
    "LayerNorm2d": '''class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
''',
    "symmetric_padding": '''def symmetric_padding(kernel_size, stride=1, dilation=1):
    """The padding timm gives a convolution by default, ((stride - 1) + dilation * (kernel_size - 1)) // 2,
    per axis when an argument is an (h, w) pair."""
    if all(isinstance(v, int) for v in (kernel_size, stride, dilation)):
        return ((stride - 1) + dilation * (kernel_size - 1)) // 2
    k, s, d = ((v, v) if isinstance(v, int) else v for v in (kernel_size, stride, dilation))
    return tuple(((ss - 1) + dd * (kk - 1)) // 2 for kk, ss, dd in zip(k, s, d))
''',
    "pad_same": '''def pad_same(x, kernel_size, stride, dilation=1, value=0.0):
    """Pad the last two axes as TensorFlow's "SAME" does: a window sliding by `stride` then has
    ceil(size / stride) positions, and an odd total puts its extra pixel after (bottom, right).
    Window arguments are ints or (h, w) pairs; the sizes come from x, so any input size works."""
    pads = []
    for axis in (-1, -2):  # F.pad lists the last axis first
        k, s, d = (v if isinstance(v, int) else v[axis] for v in (kernel_size, stride, dilation))
        extent = (k - 1) * d + 1
        total = extent - s + (-x.shape[axis]) % s
        if extent < s:  # a window narrower than its stride may need no padding at all
            total = total * (total > 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)
''',
    "Conv2dSame": '''class Conv2dSame(nn.Conv2d):
    """nn.Conv2d with TensorFlow's "SAME" padding, computed from the input size in forward."""

    def forward(self, x):
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
''',
    "avg_pool2d_same": '''def avg_pool2d_same(x, kernel_size, stride, ceil_mode=False, count_include_pad=True):
    """F.avg_pool2d with TensorFlow's "SAME" padding. At stride 1 with odd kernels that padding is
    the constant k // 2, which PyTorch pads (count_include_pad applies); otherwise zeros are added
    in forward and counted in the average."""
    k, s = ((v, v) if isinstance(v, int) else tuple(v) for v in (kernel_size, stride))
    if s == (1, 1) and k[0] % 2 and k[1] % 2:
        return F.avg_pool2d(x, k, 1, (k[0] // 2, k[1] // 2), ceil_mode, count_include_pad)
    return F.avg_pool2d(pad_same(x, k, s), k, s, 0, ceil_mode, count_include_pad)


torch.fx.wrap("avg_pool2d_same")  # one node in torch.fx traces, whatever the input size
''',
    "max_pool2d_same": '''def max_pool2d_same(x, kernel_size, stride, dilation=1, ceil_mode=False):
    """F.max_pool2d with TensorFlow's "SAME" padding: PyTorch's own where it is a constant within
    half the kernel (stride 1, odd dilated kernels), else -inf added in forward."""
    k, s, d = ((v, v) if isinstance(v, int) else tuple(v) for v in (kernel_size, stride, dilation))
    half = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
    if s == (1, 1) and all(dd * (kk - 1) % 2 == 0 and h <= kk // 2 for kk, dd, h in zip(k, d, half)):
        return F.max_pool2d(x, k, 1, half, d, ceil_mode)
    return F.max_pool2d(pad_same(x, k, s, d, value=float("-inf")), k, s, 0, d, ceil_mode)


torch.fx.wrap("max_pool2d_same")  # one node in torch.fx traces, whatever the input size
''',
    "AvgPool2dSame": '''class AvgPool2dSame(nn.AvgPool2d):
    """nn.AvgPool2d with TensorFlow's "SAME" padding (see avg_pool2d_same)."""

    def forward(self, x):
        return avg_pool2d_same(x, self.kernel_size, self.stride, self.ceil_mode, self.count_include_pad)
''',
    "MaxPool2dSame": '''class MaxPool2dSame(nn.MaxPool2d):
    """nn.MaxPool2d with TensorFlow's "SAME" padding (see max_pool2d_same)."""

    def forward(self, x):
        return max_pool2d_same(x, self.kernel_size, self.stride, self.dilation, self.ceil_mode)
''',
    "drop_path": '''def drop_path(x, p, training, scale_by_keep=True):
    """Stochastic depth: in training, zero all of x for each sample with probability p (in a residual
    branch: skip the branch) and divide what is kept by 1 - p, so the expected value stays x."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    if keep > 0.0 and scale_by_keep:
        mask = mask / keep
    return x * mask


torch.fx.wrap("drop_path")  # one node in torch.fx traces, in either mode
''',
    "DropPath": '''class DropPath(nn.Module):
    """drop_path as a module: stochastic depth in training, the identity in eval."""

    def __init__(self, p=0.0, scale_by_keep=True):
        super().__init__()
        self.p = p
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.p, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f"p={self.p}"
''',
    # the very function elaboration uses, so emitted and compile-time channel counts agree
    "make_divisible": inspect.getsource(make_divisible),
    "linspace": inspect.getsource(linspace),
    "to_pair": inspect.getsource(to_pair),
}


def needed(uses, sources: str) -> list[str]:
    """The helpers among `uses` that `sources` call (not as an attribute: `self.pad_same(...)` is a
    module) or, for classes, name (`isinstance(m, LayerNorm2d)`), with the helpers they call in
    turn; sorted, so the file is deterministic."""
    def called(text: str) -> set[str]:
        return {h for h in HELPERS if re.search(rf"(?<![\w.]){h}" + (r"\b" if h[0].isupper() else r"\("), text)}

    out = called(sources) & set(uses)
    todo = list(out)
    while todo:
        for h in called(HELPERS[todo.pop()]) - out:
            out.add(h)
            todo.append(h)
    return sorted(out)
