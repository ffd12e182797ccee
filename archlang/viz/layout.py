"""A built-in SVG layout for when Graphviz is not installed (used by --format html).

Units are stacked top to bottom in dataflow order, indented by cluster depth, with each cluster
drawn as a box around its rows. An edge to the next row is a short arrow; longer edges (residual
and skip connections) arc along the right-hand side, each in its own lane.
"""

from __future__ import annotations

from html import escape

from .dot import STATUS_COLORS, human, unit_status
from .view import COLORS, Cluster, Unit, View

ROW, GAP, WIDTH, INDENT, HEADER = 58, 14, 300, 16, 22


def _rows(c: Cluster, depth: int, out: list, boxes: list) -> int:
    """Flatten a cluster into rows; returns the deepest unit depth inside it."""
    start, deepest = len(out), depth
    for item in c.items:
        if isinstance(item, Cluster):
            out.append(("header", item, depth + 1))
            deepest = max(deepest, _rows(item, depth + 1, out, boxes))
        else:
            out.append(("unit", item, depth))
    if c.path:
        boxes.append((c, depth, start - 1, len(out) - 1, deepest))
    return deepest


def draw(view: View, status: dict[str, str] | None = None) -> str:
    rows: list = []
    boxes: list = []
    _rows(view.root, 0, rows, boxes)
    y, tops = 10, []
    for kind, _, _ in rows:
        tops.append(y)
        y += HEADER if kind == "header" else ROW + GAP
    where = {item.id: (tops[i], depth) for i, (kind, item, depth) in enumerate(rows) if kind == "unit"}
    lanes = 0
    parts = []
    for c, depth, first, last, deepest in boxes:
        x = 4 + INDENT * (depth - 1)
        right = 20 + INDENT * deepest + WIDTH + 8 + 4 * (deepest - depth)
        top, bottom = tops[first], tops[last] + (ROW if rows[last][0] == "unit" else HEADER) + 4
        parts.append(f'<rect x="{x}" y="{top}" width="{right - x}" height="{bottom - top}" '
                     f'rx="6" fill="none" stroke="#aaaaaa"/>')
        parts.append(f'<text x="{x + 6}" y="{top + 15}" font-size="12" fill="#555">{escape(c.title)}</text>')
    for i, (kind, item, depth) in enumerate(rows):
        if kind == "unit":
            parts.append(_unit(item, tops[i], depth, status))
    order = [item.id for kind, item, _ in rows if kind == "unit"]
    for a, b, label in view.edges:
        (ya, da), (yb, db) = where[a], where[b]
        xa, xb = 20 + INDENT * da + WIDTH // 2, 20 + INDENT * db + WIDTH // 2
        if order.index(b) == order.index(a) + 1:
            parts.append(f'<path d="M{xa},{ya + ROW} L{xb},{yb}" stroke="#555" fill="none" marker-end="url(#a)"/>')
            continue
        lanes += 1
        right = 20 + WIDTH + INDENT * 6 + 10 * lanes
        parts.append(f'<path d="M{xa + WIDTH // 2},{ya + ROW // 2} C{right},{ya + ROW // 2} {right},{yb + ROW // 2} '
                     f'{xb + WIDTH // 2},{yb + ROW // 2}" stroke="#777" fill="none" marker-end="url(#a)">'
                     f'<title>{escape(label)}</title></path>')
    width = 40 + WIDTH + INDENT * 6 + 10 * (lanes + 1)
    defs = ('<defs><marker id="a" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" markerHeight="6" '
            'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {y + 10}" width="{width}" '
            f'height="{y + 10}" font-family="Helvetica, Arial, sans-serif">{defs}{"".join(parts)}</svg>')


def _unit(u: Unit, top: int, depth: int, status) -> str:
    x = 20 + INDENT * depth
    fill = COLORS[u.category] if status is None else STATUS_COLORS[unit_status(u, status)]
    what = f"{u.subtitle} ×{u.count}" if u.kind == "fold" else u.subtitle
    costs = ", ".join(s for s in (f"{human(u.params)} params" if u.params else "",
                                  f"{human(u.macs)} MACs" if u.macs else "") if s)
    lines = [f'<tspan font-weight="bold">{escape(u.title)}</tspan>' + (f" {escape(what)}" if what else ""),
             escape(u.shape), escape(costs)]
    text = "".join(f'<text x="{x + 8}" y="{top + 16 + 15 * k}" font-size="11">{line}</text>'
                   for k, line in enumerate(lines) if line)
    return (f'<g id="{u.id}" class="node"><title>{escape(u.path or u.title)}</title>'
            f'<rect x="{x}" y="{top}" width="{WIDTH}" height="{ROW}" rx="6" fill="{fill}" stroke="#666"/>'
            f'{text}</g>')
