"""archlang diff: a structural comparison of two architectures.

    diff(a: Compiled, b: Compiled) -> Diff     # the data (records.py), `Diff.as_dict()` is the JSON
    format_diff(d) -> str                      # the prose and the changelog a person reads
    run(args) -> int                           # the `archlang diff A B` command (command.py)

sections.py pairs stem, stages and head; align.py aligns nodes inside them; describe.py says
what a section is made of; weights.py says which of A's tensors load into B; prose.py (with
phrases.py) writes the paragraphs the report opens with.
"""

from __future__ import annotations

from .command import run
from .compare import diff
from .records import Diff
from .report import format_diff

__all__ = ["Diff", "diff", "format_diff", "run"]
