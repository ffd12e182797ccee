"""Source of the small helpers an emitted file may need, written out only when used."""

import inspect

from ..values import make_divisible

HELPERS = {
    "LayerNorm2d": '''class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
''',
    # the very function elaboration uses, so emitted and compile-time channel counts agree
    "make_divisible": inspect.getsource(make_divisible),
}
