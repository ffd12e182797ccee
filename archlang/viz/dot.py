"""A View as Graphviz DOT text: clusters for opened modules, one HTML-like label per unit.

Every unit is labelled with its name, what it is (op, block, or block xN), its output shape,
parameters and MACs, and filled with its category's colour; a legend cluster explains the
colours. Unit ids become SVG element ids, which the interactive HTML uses to find nodes.
"""

from __future__ import annotations

from html import escape

from .view import CATEGORIES, COLORS, Cluster, Unit, View

STATUS_COLORS = {"added": "#93d68f", "changed": "#f6c26b", "unchanged": "#eeeeee", "removed": "#ef8a8a"}


def human(n: int) -> str:
    """12,345,678 -> 12.3M, for node labels (exact numbers are in the summary and the panel)."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return str(n)


def unit_label(u: Unit) -> str:
    what = f"{u.subtitle} ×{u.count}" if u.kind == "fold" else u.subtitle
    rows = [f"<b>{escape(u.title)}</b>"]
    if what:
        rows.append(f"<i>{escape(what)}</i>")
    if u.shape:
        rows.append(escape(u.shape))
    costs = []
    if u.params:
        costs.append(f"{human(u.params)} params")
    if u.macs:
        costs.append(f"{human(u.macs)} MACs")
    if costs:
        rows.append(escape(", ".join(costs)))
    cells = "".join(f"<tr><td>{r}</td></tr>" for r in rows)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(view: View, rankdir: str = "TB", status: dict[str, str] | None = None, legend: bool = True) -> str:
    lines = [
        f"digraph {_quote(view.title)} {{",
        f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, compound=true, nodesep=0.25, '
        f'ranksep=0.3, labeljust=l, tooltip={_quote(view.title)}];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, color="#666666"];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555", fontcolor="#555555", arrowsize=0.6];',
    ]
    _cluster(view.root, lines, 1, status, top=True)
    for a, b, shape in view.edges:
        lines.append(f"  {a} -> {b} [label={_quote(shape)}];")
    if legend:
        _legend(lines, status)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster(c: Cluster, lines: list[str], depth: int, status, top: bool = False) -> None:
    pad = "  " * depth
    if not top:
        lines.append(f"{pad}subgraph {_quote('cluster_' + c.path)} {{")
        roles = f" ({', '.join(c.roles)})" if c.roles else ""
        lines.append(f'{pad}  label={_quote(c.title + roles)}; style="rounded"; color="#aaaaaa"; '
                     f'bgcolor="{_shade(depth)}";')
    inner = pad + ("  " if not top else "")
    for item in c.items:
        if isinstance(item, Cluster):
            _cluster(item, lines, depth + (0 if top else 1), status)
        else:
            fill = _fill(item, status)
            shape = ", shape=ellipse" if item.category == "merge" else ""
            lines.append(f'{inner}{item.id} [id="{item.id}", label={unit_label(item)}, fillcolor="{fill}", '
                         f'tooltip={_quote(item.path or item.title)}{shape}];')
    if not top:
        lines.append(f"{pad}}}")


def _fill(u: Unit, status: dict[str, str] | None) -> str:
    if status is None:
        return COLORS[u.category]
    return STATUS_COLORS[unit_status(u, status)]


def unit_status(u: Unit, status: dict[str, str]) -> str:
    """The strongest status among the tensors a unit owns: added > changed > unchanged."""
    seen = {status.get(path, "unchanged") for path in u.owners}
    for s in ("added", "changed"):
        if s in seen:
            return s
    return "unchanged"


def _shade(depth: int) -> str:
    level = max(0, 250 - 6 * depth)
    return f"#{level:02x}{level:02x}{min(255, level + 3):02x}"


def _legend(lines: list[str], status) -> None:
    """One node holding a table of colour swatches, so the legend stays compact."""
    entries = ([(STATUS_COLORS[s], s) for s in ("added", "changed", "unchanged")] if status is not None
               else [(fill, text) for _, fill, text in CATEGORIES])
    cells = "".join(f'<td bgcolor="{fill}" border="1" cellpadding="3">{escape(text)}</td>' for fill, text in entries)
    lines.append(f'  legend [id="legend", shape=plain, fontsize=9, label=<<table border="0" cellspacing="2">'
                 f"<tr><td><b>legend</b></td>{cells}</tr></table>>];")
