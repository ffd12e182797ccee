"""Window geometry shared by convolution and pooling: pairs, padding rules and output sizes.

A window argument (kernel_size, stride, dilation, padding) is an int or a pair [h, w]. Padding
is also a word:
- none (conv2d only): timm's symmetric padding ((stride - 1) + dilation * (k - 1)) // 2;
- "valid": no padding;
- "same": TensorFlow's SAME. The output has ceil(size / stride) positions; the total padding
  (ceil(size / stride) - 1) * stride + dilation * (k - 1) + 1 - size (at least 0) is split with
  the odd pixel after (bottom, right). It depends on the input size unless stride is 1 and the
  dilated kernel is odd, when it is the constant dilation * (k - 1) // 2 on both sides ("static",
  as timm's get_padding_value decides); otherwise the emitted module pads in forward.

The shape rules here compute exact sizes for the one input size a build checks; the emit rules
(`symmetric_code`, `static_same`) write padding as literals when the arguments are literals.
"""

from __future__ import annotations

from .. import pycode as P
from ..limits import MAX_SIZE
from ..shapes import ShapeError

WORDS = ("same", "valid")


def is_int(v) -> bool:
    return type(v) is int


def pair(v) -> tuple:
    """An int or a pair as a pair (h, w)."""
    return tuple(v) if isinstance(v, tuple) else (v, v)


# ---------------------------------------------------------------- argument checks (Arg.check)
# Each returns what the value should have been, or None when it is fine.


def int_pair(least: int):
    def check(v):
        items = v if isinstance(v, tuple) else (v,)
        if (isinstance(v, tuple) and len(v) != 2) or not all(is_int(x) and least <= x <= MAX_SIZE for x in items):
            return ("a positive int" if least == 1 else f"an int >= {least}") + " or a pair [h, w] of them"
        return None
    return check


positive_pair = int_pair(1)
size_pair = int_pair(0)


def padding_value(allow_none: bool):
    def check(v):
        if v in WORDS or (allow_none and v is None) or size_pair(v) is None:
            return None
        return "an int >= 0, a pair [h, w], \"same\" or \"valid\"" + (" or none" if allow_none else "")
    return check


# ---------------------------------------------------------------- padding and output sizes


def same_padding(k: int, stride: int = 1, dilation: int = 1) -> int:
    """The symmetric padding timm uses when no padding is given."""
    return ((stride - 1) + dilation * (k - 1)) // 2


def tf_same(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one axis: (before, after), the odd pixel after."""
    total = max((-(-size // stride) - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def is_static_same(k, stride, dilation) -> bool:
    """Whether "same" padding is one constant for every input size (timm's is_static_pad)."""
    return all(s == 1 and (d * (kk - 1)) % 2 == 0 for kk, s, d in zip(pair(k), pair(stride), pair(dilation)))


def static_pool_same(k, stride, dilation) -> bool:
    """Whether a pool pads "same" as PyTorch's own symmetric padding: static, and within the half
    kernel PyTorch allows (the emitted pool helpers decide the same way)."""
    return is_static_same(k, stride, dilation) and \
        all(d * (kk - 1) // 2 <= kk // 2 for kk, d in zip(pair(k), pair(dilation)))


def pads(padding, sizes: tuple[int, int], k, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """(before, after) padding of the two spatial axes for a window argument set."""
    out = []
    for size, kk, s, d, p in zip(sizes, pair(k), pair(stride), pair(dilation), pair(padding)):
        if padding is None:
            p = same_padding(kk, s, d)
        elif padding == "valid":
            p = 0
        elif padding == "same":
            out.append(tf_same(size, kk, s, d) if not is_static_same(k, stride, dilation)
                       else ((d * (kk - 1)) // 2,) * 2)
            continue
        out.append((p, p))
    return tuple(out)


def window_out(size: int, k: int, stride: int, dilation: int, before: int, after: int,
               ceil_mode: bool = False, what: str = "the window") -> int:
    """Positions of a window sliding over a padded axis, as PyTorch counts them: with ceil_mode a
    last, partial window counts, unless it would start in the padding after the input."""
    span = dilation * (k - 1) + 1
    out = (size + before + after - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    if out < 1:
        raise ShapeError(f"{what}: a {size}-pixel axis (padded by {before} + {after}) is too small for a "
                         f"kernel of extent {span}", hint="use a larger input size")
    return out


# ---------------------------------------------------------------- emitted padding


def symmetric_code(a: dict[str, P.Code]) -> P.Code:
    """Emitted padding for padding=none: folded to a literal (per axis for pairs) when the window is
    literal; otherwise the emitted helper `symmetric_padding`, since a name may hold an int or a pair."""
    k, s, d = a["kernel_size"], a["stride"], a["dilation"]
    if k.is_const and s.is_const and d.is_const:
        per = tuple(same_padding(*v) for v in zip(pair(k.const), pair(s.const), pair(d.const)))
        pairs = any(isinstance(c.const, tuple) for c in (k, s, d))
        return P.lit(per if pairs else per[0])
    args = [k, s, d]
    while len(args) > 1 and args[-1].is_const and args[-1].const == 1:
        args.pop()  # the helper's defaults
    return P.call("symmetric_padding", *args)


def static_same(a: dict[str, P.Code]) -> P.Code | None:
    """The constant padding "same" amounts to, when the window is literal and static; else None
    (the emitted module then pads in forward)."""
    k, s, d = a["kernel_size"], a["stride"], a["dilation"]
    if not (k.is_const and s.is_const and d.is_const) or s.const is None:
        return None
    if not is_static_same(k.const, s.const, d.const):
        return None
    per = tuple((dd * (kk - 1)) // 2 for kk, dd in zip(pair(k.const), pair(d.const)))
    return P.lit(per[0] if per[0] == per[1] and not isinstance(k.const, tuple) else per)
