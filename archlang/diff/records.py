"""The data a diff produces: what `--json` prints and what the text report is rendered from.

Plain dataclasses, so `dataclasses.asdict` is the JSON form; numbers stay exact (params,
MACs and bytes as ints), the text report does the rounding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# How `activation memory` is counted; printed under the totals and stored in the JSON.
ACTIVATION_MEMORY = ("activation memory: the sum over IR nodes whose output carries the batch axis of "
                     "output elements x 4 bytes (fp32), for one sample; weights, buffers, their views, "
                     "the input and eval-time identities (dropout, drop-path) are excluded")


@dataclass
class Change:
    """One property of a section that differs, e.g. depth 9 -> 27."""

    item: str
    a: object
    b: object


@dataclass
class SectionDiff:
    """Stem, one stage, the head or another top-level row, as it compares between A and B."""

    name: str  # "stem", "stage 2", "head", or a row name such as "blocks"
    status: str  # "unchanged" | "changed" | "added" (only in B) | "removed" (only in A)
    a_paths: list[str]
    b_paths: list[str]
    params: tuple[int, int]  # (A, B)
    macs: tuple[int, int]
    changes: list[Change] = field(default_factory=list)
    # owner nodes (module ops, weights, buffers): aligned-equal, aligned-changed, only in B, only in A
    nodes: dict[str, int] = field(default_factory=dict)


@dataclass
class Total:
    name: str  # "params" | "macs" | "activation_bytes"
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def relative(self) -> float | None:
        """Relative change in percent, None when A's value is 0."""
        return 100.0 * self.delta / self.a if self.a else None


@dataclass
class Rename:
    a: str
    b: str


@dataclass
class Reshape:
    a: str
    b: str
    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]


@dataclass
class Unloaded:
    """A tensor of A that loads nowhere in B: its counterpart has another size, or there is none."""

    a: str
    a_shape: tuple[int, ...]
    b: str | None
    b_shape: tuple[int, ...] | None


@dataclass
class Transfer:
    """Where each tensor of A's state_dict (parameters and persistent buffers) goes in B."""

    unchanged: list[str] = field(default_factory=list)  # same name, same shape: loads as is
    renamed: list[Rename] = field(default_factory=list)  # aligned, same shape, another name
    reshaped: list[Reshape] = field(default_factory=list)  # same element count, another shape
    not_loaded: list[Unloaded] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # tensors of B that nothing in A fills

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("unchanged", "renamed", "reshaped", "not_loaded", "new")}


@dataclass
class Diff:
    a: str
    b: str
    input: tuple[int, ...]
    identical: bool
    sections: list[SectionDiff]
    totals: list[Total]
    weights: Transfer
    status: dict[str, str]  # B's owner paths -> "added" | "changed" | "unchanged" (for viz)
    summary: list[str] = field(default_factory=list)  # the prose paragraphs (prose.py)
    input_b: tuple[int, ...] | None = None  # B's input size, when it differs from A's

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["totals"] = {t.name: {"a": t.a, "b": t.b, "delta": t.delta, "relative_percent": _round(t.relative)}
                          for t in self.totals}
        data["weights"]["counts"] = self.weights.counts()
        data["activation_memory"] = ACTIVATION_MEMORY
        return data


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
