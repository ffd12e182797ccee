"""fuse-reparam (placeholder until the rewrite rules land)."""

from . import register


@register("fuse-reparam")
def fuse_reparam(program, graph):
    raise NotImplementedError
