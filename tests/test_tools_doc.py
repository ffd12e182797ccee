"""docs/tools.md shows what the tools print: every `$ archlang ...` command in its console blocks
is run and its output compared with the text shown. A line `...` stands for any lines (an
excerpt); `archlang viz` writes to a temporary file instead of docs/images."""

from __future__ import annotations

import re
import shlex

import pytest
from oracle import ROOT

from archlang.cli import main

TOOLS_MD = ROOT / "docs" / "tools.md"


def commands() -> list[tuple[str, list[str]]]:
    """(command line, lines shown after it) for each command in a console block."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", TOOLS_MD.read_text(), re.S):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.M):
            if chunk.startswith("$ archlang "):
                first, *shown = chunk.rstrip("\n").split("\n")
                out.append((first[2:], shown))
    return out


def matches(shown: list[str], got: list[str]) -> bool:
    """`shown` is `got`, where a `...` line stands for any run of lines."""
    parts: list[list[str]] = [[]]
    for line in shown:
        if line == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    first, *rest = parts
    if got[:len(first)] != first:
        return False
    pos = len(first)
    for part in rest:
        hit = next((i for i in range(pos, len(got) - len(part) + 1) if got[i:i + len(part)] == part), None)
        if hit is None:
            return False
        pos = hit + len(part)
    return pos == len(got) or shown[-1] == "..."


CASES = commands()


def test_the_doc_shows_commands():
    assert sum(cmd.startswith("archlang diff") for cmd, _ in CASES) >= 3


@pytest.mark.parametrize("command, shown", CASES, ids=[c for c, _ in CASES])
def test_shown_output_is_what_the_tool_prints(command, shown, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)[1:]
    written = None
    if args[0] == "viz":  # draw into tmp_path, then print as if written where the doc says
        i = args.index("-o") + 1
        written, args[i] = args[i], str(tmp_path / "out.svg")
    main(args)
    out = capsys.readouterr().out
    if written:
        out = out.replace(str(tmp_path / "out.svg"), written)
    assert matches(shown, out.rstrip("\n").split("\n")), f"docs/tools.md shows other output for: {command}\n{out}"
