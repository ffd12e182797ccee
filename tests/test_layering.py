"""Imports point one way: base -> front end -> IR and elaboration -> passes -> codegen -> pipeline
-> tools (issue 6, part 6).

The import graph is read from the source with `ast` (imports inside functions count: a lazy import
is still a dependency), over archlang/ and passes/ (installed as archlang.passes). Every module
belongs to one layer and may import only from its own layer or lower ones; apart from the two
registry packages the graph has no cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module is placed by its longest listed prefix; the package itself is "archlang".
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "limits", "shapes", "dtypes", "pycode", "einpattern", "values")),
    ("front end", ("syntax", "parser", "program", "pynames", "sources")),
    ("IR and elaboration", ("ir", "ops", "phases", "bodies", "binding", "inits", "lower", "evaluate", "elaborate",
                            "structure", "axes")),
    ("passes", ("passes",)),
    ("codegen", ("codegen",)),
    ("pipeline", ("compiler", "validate")),
    ("tools", ("tooling", "summary", "spec_names", "arguments", "fusion", "timm_compat",
               "viz", "diff", "cli", "")),
]

# A registry package's __init__ declares a table and imports, at its end, the modules that fill
# it; they import the table back (`from . import register`). Each such package is one unit.
REGISTRIES = {"archlang.ops", "archlang.passes"}


def module_files() -> dict[str, Path]:
    files = {}
    for base, prefix in ((ROOT / "archlang", "archlang"), (ROOT / "passes", "archlang.passes")):
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("").parts
            if rel[:1] == ("passes",) and base.name == "archlang":
                continue  # archlang/passes is a link to passes/
            parts = [prefix, *rel]
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return {m for m in out if m in known and m != name}


def import_graph() -> nx.DiGraph:
    files = module_files()
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        graph.add_edges_from((name, dep) for dep in imports_of(name, path, set(files)))
    return graph


def unit(module: str) -> str:
    return next((r for r in REGISTRIES if module == r or module.startswith(r + ".")), module)


def layer(module: str) -> int:
    rest = module.removeprefix("archlang").removeprefix(".")
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if rest == p or (p and rest.startswith(p + ".")):
                if best is None or len(p) > best[1]:
                    best = (rank, len(p))
    assert best is not None, f"{module} is in no layer: add it to LAYERS where it belongs"
    return best[0]


GRAPH = import_graph()


def test_graph_is_read():
    assert {"archlang.cli", "archlang.program", "archlang.passes.check_shapes", "archlang.ops.conv"} <= set(GRAPH)
    assert ("archlang.elaborate", "archlang.evaluate") in GRAPH.edges
    assert ("archlang.viz.command", "archlang.tooling") in GRAPH.edges


def test_no_import_cycles():
    units = nx.DiGraph()
    units.add_nodes_from(unit(m) for m in GRAPH)
    units.add_edges_from((unit(a), unit(b)) for a, b in GRAPH.edges if unit(a) != unit(b))
    cycles = list(nx.simple_cycles(units))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_registry_packages_have_no_cycles_among_their_entries():
    """Inside a registry unit, a cycle may only run through the package itself (its table); its
    modules may import one another (fusion's rule table uses its term helpers) without a cycle."""
    for registry in REGISTRIES:
        members = [m for m in GRAPH if unit(m) == registry and m != registry]
        cycles = list(nx.simple_cycles(GRAPH.subgraph(members)))
        assert cycles == [], f"entries of {registry} import each other in a cycle: {cycles[:3]}"


def test_imports_point_one_way():
    wrong = [f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
             for a, b in GRAPH.edges if layer(b) > layer(a)]
    assert wrong == []


def test_front_end_needs_nothing_after_it():
    """The parser, the syntax and the program loader work without the IR, passes or codegen."""
    front = [m for m in GRAPH if LAYERS[layer(m)][0] == "front end"]
    reach = set().union(*(nx.descendants(GRAPH, m) for m in front))
    assert {LAYERS[layer(m)][0] for m in reach} <= {"base", "front end"}
