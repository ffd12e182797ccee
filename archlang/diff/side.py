"""One side of the prose diff: a model in the form compared, its train and deploy forms, and the
sections of each (stem, stages, head, ...), read once and shared by the paragraphs."""

from __future__ import annotations

from dataclasses import dataclass

from ..axes import channel_axes
from ..compiler import Compiled
from ..ir import Node
from ..ops import OPS
from .sections import sections


@dataclass
class Side:
    """One model: the form compared (`shown`), its train and deploy forms, and its sections."""

    name: str
    shown: Compiled
    train: Compiled
    deploy: Compiled

    def __post_init__(self):
        self.secs = sections(self.shown.graph, self.shown.cost)
        self.train_secs = sections(self.train.graph, self.train.cost)
        self.deploy_secs = sections(self.deploy.graph, self.deploy.cost)
        self.axes = channel_axes(self.shown.graph)

    def train_nodes(self, section: str | None) -> list[Node]:
        """The train form's nodes of a section (None: of the whole model)."""
        if section is None:
            return list(self.train.graph.nodes())
        sec = self.train_secs.get(section)
        return sec.nodes if sec is not None else []

    def ops_with(self, section: str | None, trait: str) -> str:
        """The ops with `trait` in the train form of a section, sorted: `gelu, silu`."""
        return ", ".join(sorted({n.op for n in self.train_nodes(section) if OPS[n.op].has(trait)}))
