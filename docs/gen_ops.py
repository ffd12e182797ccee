"""Regenerate the op and builtin tables of docs/language.md from the compiler's own tables.

    python docs/gen_ops.py          # rewrite the tables in place
    python docs/gen_ops.py --check  # exit 1 if the committed tables are out of date

The tables sit between `<!-- ops:begin -->` / `<!-- ops:end -->` and `<!-- builtins:begin -->` /
`<!-- builtins:end -->`; everything else in the file is left alone.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent / "language.md"
KINDS = ("module", "act", "function", "source")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def arguments(op) -> str:
    """How the op is written: its operator form, a labelled layer (modules, which are applied
    to `x` or to explicit inputs), or a call with the tensor(s) first."""
    from archlang.lower import arg_list

    syntax = getattr(op, "syntax", "")
    if syntax:
        return syntax
    parts = []
    if op.n_inputs == -2:
        return f"{op.name}({', '.join(arg_list(op))}, t, u, ...)"
    if op.kind != "module" and op.n_inputs == -1:
        parts.append("[tensors]")
    elif op.kind != "module":
        parts.extend(["t", "u", "v"][:op.n_inputs])
    parts += arg_list(op, sizes="axis=size, ...")
    call = f"{op.name}({', '.join(parts)})"
    return f"label: {call}" if op.kind == "module" else call


def ops_table() -> str:
    from archlang.ops import OPS

    order = {kind: i for i, kind in enumerate(KINDS)}
    lines = ["| op | kind | written as | what it does |", "|---|---|---|---|"]
    for name, op in sorted(OPS.items(), key=lambda item: (order.get(item[1].kind, len(KINDS)), item[0])):
        lines.append(f"| `{name}` | {op.kind} | `{_cell(arguments(op))}` | {_cell(op.doc)} |")
    return "\n".join(lines)


def builtins_table() -> str:
    from archlang.values import BUILTINS

    lines = ["| function | what it computes |", "|---|---|"]
    for name, entry in BUILTINS.items():
        lines.append(f"| `{name}` | {_cell(entry[-1])} |")
    return "\n".join(lines)


SECTIONS = {"ops": ops_table, "builtins": builtins_table}


def render(text: str) -> str:
    """`text` with every generated section replaced by its current contents."""
    for key, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {key}:begin -->\n).*?(\n<!-- {key}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: markers <!-- {key}:begin --> / <!-- {key}:end --> not found")
        body = make()
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run python docs/gen_ops.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        DOC.write_text(new)
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(DOC.parent.parent))
    sys.exit(main(sys.argv[1:]))
