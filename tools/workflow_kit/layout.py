"""Where nodes sit in the UI: a node's column is its longest path from a source; rows stack inside a column."""

from __future__ import annotations

from .graph import NOTE_TYPE, Graph, Node, Out


def positions(graph: Graph) -> dict[int, tuple[int, int]]:
    depth: dict[int, int] = {}

    def column(node: Node) -> int:
        if node.id not in depth:
            parents = [v.node for v in node.values.values() if isinstance(v, Out)]
            depth[node.id] = 1 + max((column(p) for p in parents), default=-1)
        return depth[node.id]

    heights: dict[int, int] = {}
    placed = {}
    for node in graph.nodes:
        if node.type == NOTE_TYPE:
            placed[node.id] = (-480, 0)
            continue
        col = column(node)
        y = heights.get(col, 0)
        placed[node.id] = (col * 360, y)
        heights[col] = y + size(graph, node)[1] + 60
    return placed


def size(graph: Graph, node: Node) -> tuple[int, int]:
    if node.size:
        return node.size
    if node.type == NOTE_TYPE:
        return (440, 560)
    spec = graph.specs[node.type]
    rows = max(len(spec.outputs), sum(1 for i in spec.inputs if not i.is_widget))
    widgets = sum(1 + i.has_control for i in spec.inputs if i.is_widget)
    multiline = sum(60 for i in spec.inputs if i.is_widget and i.options.get("multiline"))
    return (320, 40 + 22 * rows + 26 * widgets + multiline)


def execution_order(graph: Graph) -> list[Node]:
    """Nodes in an order where every node comes after the nodes it reads from (the UI's 'order')."""
    done, ordered = set(), []

    def visit(node: Node) -> None:
        if node.id in done:
            return
        for value in node.values.values():
            if isinstance(value, Out):
                visit(value.node)
        done.add(node.id)
        ordered.append(node)

    for node in graph.nodes:
        visit(node)
    return ordered
