"""The text form of a Diff: the prose summary (prose.py), then a changelog of sections, totals
with deltas, the weight report.

Unchanged sections take one line; a changed one lists the items that differ, then its params
and GMACs. Long lists (renames, tensors) are cut at `limit` entries with a count; `--json`
carries them whole.
"""

from __future__ import annotations

import textwrap

from .records import ACTIVATION_MEMORY, Diff, SectionDiff, Total
from .sections import LOOSE

INDENT = "    "
LABELS_SHOWN = 12  # renames listed per section (all of them in --json)
WIDE = 64  # an item whose two values are longer than this prints them on two lines
LINE = 96  # a value longer than this prints one entry per line
SHARED_SHOWN = 3  # a long list with this many entries in both sides prints only the others
NONE = "none"
STATUS = {"unchanged": "unchanged", "changed": "changed", "added": "only in B", "removed": "only in A"}


def format_diff(d: Diff, limit: int = 8) -> str:
    size = "x".join(str(s) for s in d.input)
    if d.input_b is not None:
        size += " vs " + "x".join(str(s) for s in d.input_b)
    if d.identical:
        return f"{d.a} -> {d.b}  (input {size}): no structural difference\n"
    lines = [f"{d.a} -> {d.b}  (input {size})", ""]
    for para in d.summary:
        lines += [para, ""]
    width = max(len(s.name) for s in d.sections) + 2
    for sec in d.sections:
        lines += _section(sec, width)
    if any(s.status == "changed" for s in d.sections):
        lines.append("(nodes: module ops, weights and buffers, aligned by op and role in topological order)")
    lines += ["", *_totals(d.totals), "", *_weights(d, limit)]
    return "\n".join(lines) + "\n"


def _section(sec: SectionDiff, width: int) -> list[str]:
    head = f"{sec.name.ljust(width)}{STATUS[sec.status]}"
    if sec.status == "unchanged":
        return [head]
    lines = [head + _where(sec)]
    for c in sec.changes:
        if c.item == "labels":
            pairs = [f"{a} -> {b}" for a, b in zip(c.a, c.b)]
            lines.append(_item("labels", _cut(pairs, LABELS_SHOWN)))
        else:
            lines += _change(c.item, c.a, c.b)
    a, b = sec.params
    if a != b:
        lines.append(_item("params", f"{a:,} -> {b:,}  {_delta(a, b, 1)}"))
    a, b = sec.macs
    if a != b:
        unit, prefix = next((u, p) for u, p in ((1e9, "G"), (1e6, "M"), (1e3, "K"), (1, "")) if max(a, b) >= u)
        lines.append(_item(f"{prefix}MACs", f"{_num(a, unit)} -> {_num(b, unit)}  {_delta(a, b, unit)}"))
    nodes = ", ".join(f"{v} {k}" for k, v in sec.nodes.items() if v)
    if sec.status == "changed" and nodes:
        lines.append(_item("nodes", nodes))
    return lines


def _where(sec: SectionDiff) -> str:
    """The section's module paths, `(A -> B)` when they differ; nothing for loose top-level nodes."""
    a, b = (", ".join(p for p in paths if p != LOOSE) for paths in (sec.a_paths, sec.b_paths))
    if a and b and a != b:
        return f"  ({a} -> {b})"
    return f"  ({a or b})" if a or b else ""


def _change(item: str, a, b) -> list[str]:
    if isinstance(a, int) and isinstance(b, int):
        return [_item(item, f"{a:,} -> {b:,} ({b - a:+,})")]
    if len(str(a)) + len(str(b)) <= WIDE:
        return [_item(item, f"{a} -> {b}")]
    shared = _shared(str(a), str(b))
    if len(shared) >= SHARED_SHOWN:  # long lists that mostly agree: only the entries that differ
        a = ", ".join(e for e in entries(str(a)) if e not in shared) or NONE
        b = ", ".join(e for e in entries(str(b)) if e not in shared) or NONE
    # long: A, then B after an arrow, a side longer than a line with one entry per line
    first, *rest = _lines(str(a))
    lines = [_item(item, first)] + [_item("", e) for e in rest]
    first, *rest = _lines(str(b))
    lines += [_item("", f"-> {first}")] + [_item("", f"   {e}") for e in rest]
    if len(shared) >= SHARED_SHOWN:
        lines.append(_item("", f"({len(shared)} more in both)"))
    return lines


def _shared(a: str, b: str) -> list[str]:
    """Entries of both A's and B's list."""
    theirs = set(entries(b))
    return [e for e in entries(a) if e in theirs]


def _lines(text: str) -> list[str]:
    return [text] if len(text) <= LINE else entries(text)


def entries(text: str) -> list[str]:
    """A description's comma-separated entries (commas inside brackets or quotes stay)."""
    out, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(", ", i):
            out.append(text[start:i])
            start = i + 2
    return out + [text[start:]]


def _item(name: str, text: str) -> str:
    return f"{INDENT}{name.ljust(15)}{text}"


def _totals(totals: list[Total]) -> list[str]:
    units = {"params": ("params", 1, 0), "macs": ("GMACs", 1e9, 3), "activation_bytes": ("activations MiB", 2**20, 1)}
    rows = [("totals", "A", "B", "delta", "")]
    for t in totals:
        label, unit, digits = units[t.name]
        rows.append((f"  {label}", _num(t.a, unit, digits), _num(t.b, unit, digits),
                     _signed(t.delta, unit, digits), _percent(t)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = [f"{r[0].ljust(widths[0])}  " + "  ".join(c.rjust(w) for c, w in zip(r[1:], widths[1:])) for r in rows]
    note = textwrap.wrap(ACTIVATION_MEMORY, 96, initial_indent="  ", subsequent_indent="    ")
    return [line.rstrip() for line in out] + note


def _weights(d: Diff, limit: int) -> list[str]:
    w = d.weights
    counts = w.counts()
    total_a = sum(counts[k] for k in ("unchanged", "renamed", "reshaped", "not_loaded"))
    lines = [f"weights: {total_a} tensors of A's state_dict into B (parameters and persistent buffers)"]
    labels = {"unchanged": "load unchanged (same name and shape)",
              "renamed": "load after renaming (aligned, same shape)",
              "reshaped": "load only reshaped (same element count)",
              "not_loaded": "do not load (other size, or no counterpart)",
              "new": "new in B (nothing in A fills them)"}
    for key, label in labels.items():
        lines.append(f"  {counts[key]:>6}  {label}")
    lists = {"renamed": [f"{r.a} -> {r.b}" for r in w.renamed],
             "reshaped": [f"{r.a} {_shape(r.a_shape)} -> {r.b} {_shape(r.b_shape)}" for r in w.reshaped],
             "not_loaded": [f"{u.a} {_shape(u.a_shape)}" + (f" vs {u.b} {_shape(u.b_shape)}" if u.b else
                                                             " (no counterpart)") for u in w.not_loaded],
             "new": w.new}
    for key, entries in lists.items():
        if entries:
            lines.append(f"  {labels[key].split(' (')[0]}:")
            lines += [f"{INDENT}{e}" for e in _cut(entries, limit, many=True)]
    return lines


def _cut(entries: list[str], limit: int, many: bool = False):
    """The first `limit` entries and a count of the rest (a list, or one comma-joined string)."""
    kept = entries[:limit]
    if len(entries) > limit:
        kept.append(f"... and {len(entries) - limit} more (--json lists all)")
    return kept if many else ", ".join(kept)


def _num(v: int, unit: float, digits: int = 3) -> str:
    return f"{v:,}" if unit == 1 else f"{v / unit:,.{digits}f}"


def _signed(v: int, unit: float, digits: int) -> str:
    return f"{v:+,}" if unit == 1 else f"{v / unit:+,.{digits}f}"


def _delta(a: int, b: int, unit: float) -> str:
    rel = f", {100.0 * (b - a) / a:+.1f}%" if a else ""
    return f"({_signed(b - a, unit, 3)}{rel})"


def _percent(t: Total) -> str:
    return "n/a" if t.relative is None else f"{t.relative:+.1f}%"


def _shape(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]" if shape is not None else "?"
